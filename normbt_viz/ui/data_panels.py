"""The Data page's two interactive panels: the column-mapping editor and the token-length survey.

They hold widget state and call the core (the mapping's parser, the tokenizer-only length survey); the page only
places them. Widget keys are stable (`map_<role>`, `survey_lengths`, `use_suggested_length`): tests click them.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from normbt_viz.data.source import DataSource
from normbt_viz.errors import NormBTError
from normbt_viz.ui.common import JUDGMENT_ROLES, LIST_ROLES, ROLES, mapping_from_texts, mapping_texts, md_text

# Each row of the editor: its roles and the caption that explains them.
MAPPING_ROWS = (
    (ROLES, "Which column plays which role. Empty = detect automatically; `-` = this dataset has no such column; "
            "`chosen.answer` or `metadata.score_chosen` reads a nested field."),
    (JUDGMENT_ROLES, "Judgment files: two responses and a winner column; a_wins/b_wins are the winner values meaning "
                     "each side won, comma-separated (e.g. `model_a` / `model_b`, or `<0` / `>0` for a signed strength)."),
    (LIST_ROLES, "Scores beside chosen/rejected (equal scores are ties), a ranked list of answers (best first), and "
                 "which pairs a ranking (best, adjacent, all) or lists of answer variants (matched, all) give."),
)


def mapping_panel(mapping: dict, expanded: bool) -> None:
    """The column-mapping editor: shown under a loaded dataset, and under a load error so the user can fix it."""
    state = st.session_state
    with st.expander("Column mapping", expanded=expanded):
        shown = mapping_texts(mapping)
        edited = {}
        for roles, caption in MAPPING_ROWS:
            st.caption(caption)
            for column, role in zip(st.columns(len(roles)), roles):
                edited[role] = column.text_input(role, value=shown[role], key=f"map_{role}")
        apply, reset = st.columns(2)
        if apply.button("Apply mapping"):
            try:
                state["column_mapping"] = mapping_from_texts(edited)
                st.rerun()
            except NormBTError as exc:
                st.error(md_text(exc))
        if reset.button("Reset to auto-detect"):
            state["column_mapping"] = None
            st.rerun()


def token_length_panel(pairs: pd.DataFrame, source: DataSource, backbone: str) -> None:
    """How many pairs each max length would truncate with the backbone's tokenizer, and a button that sets the
    suggested max length for training. The survey is kept in session state for this source and backbone only."""
    from normbt_viz.model.lengths import survey_lengths

    state = st.session_state
    key = (source.dataset, repr(source.load_options()), backbone)
    if st.button("Count tokens", key="survey_lengths"):
        try:
            with st.spinner("Tokenizing…"):
                survey = survey_lengths(pairs, backbone)
            state["length_survey"] = {"key": key, "table": survey.table(), "line": survey.line(), "suggested": survey.suggested}
        except NormBTError as exc:
            st.error(md_text(exc))
    lengths = state["length_survey"]
    if lengths and lengths["key"] == key:
        st.dataframe(lengths["table"], hide_index=True)
        st.caption(md_text(lengths["line"]))
        if st.button(f"Train with max length {lengths['suggested']}", key="use_suggested_length"):
            state["max_length"] = lengths["suggested"]
            st.rerun()
