"""The partner picker the comparison pages share: a run to put beside the chosen one, defaulting to its partner."""

from __future__ import annotations

import streamlit as st

from normbt_viz.analysis.groups import partner_of
from normbt_viz.runs.rundir import RunDir
from normbt_viz.ui.common import latest_of_arm, pick_run
from normbt_viz.ui.state import follows_key


def pick_partner(label: str, run: RunDir, candidates: list[RunDir], key: str) -> RunDir:
    """A picker over `candidates` that opens on `run`'s partner (same experiment and seed, the other arm; else
    the newest NormBT run). Choosing another `run` brings its own partner back as the default, while the user's
    own choice stands for as long as `run` does."""
    followed = follows_key(key)  # which run the picker's current value was chosen for
    if st.session_state.get(followed) != run.name:
        st.session_state.pop(key, None)
        st.session_state[followed] = run.name
    return pick_run(label, candidates, key, partner_of(run, candidates) or latest_of_arm(candidates, "normbt"))
