"""Turn a Streamlit plotly selection event into pair ids, and those ids into rows.

The figure builders put the pair id first in every point's customdata (a list) or as the customdata itself
(a scalar); points without customdata (segment lines, reference lines) carry no pair and are skipped.
"""

from __future__ import annotations

import pandas as pd


def selected_pair_ids(selection_event) -> list[str]:
    """Pair ids of the selected points, in selection order, each once; [] for no or an empty event."""
    if not selection_event:
        return []
    selection = selection_event.get("selection") or {}
    ids: list[str] = []
    for point in selection.get("points") or []:
        custom = point.get("customdata")
        if custom is None:
            continue
        pair_id = custom[0] if isinstance(custom, (list, tuple)) else custom
        if pair_id is not None and str(pair_id) not in ids:
            ids.append(str(pair_id))
    return ids


def selected_pairs(pairs_df: pd.DataFrame, ids: list[str]) -> pd.DataFrame:
    """Rows of `pairs_df` whose pair_id is in `ids`, in the order of `ids` (one row per id and split)."""
    if not ids or pairs_df.empty:
        return pairs_df.iloc[0:0]
    order = {pair_id: i for i, pair_id in enumerate(ids)}
    chosen = pairs_df[pairs_df["pair_id"].isin(order)]
    return chosen.iloc[chosen["pair_id"].map(order).argsort(kind="stable")].reset_index(drop=True)
