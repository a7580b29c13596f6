"""The Audit page's view of an audit frame: the sort orders it offers and the filtered, sorted slice it shows."""

from __future__ import annotations

import numpy as np
import pandas as pd

DISPLAY_LIMIT = 2000
SORTS = {
    "label-issue score (highest first)": ("label_issue_score", False),
    "representation distance (smallest first)": ("rep_distance", True),
    "out-of-fold margin (most negative first)": ("oof_margin", True),
    "margin spread across seeds (largest first)": ("oof_margin_std", False),
    "length ratio (largest first)": ("length_ratio", False),
}


def audit_view(frame: pd.DataFrame, flags: list[str], categories: list[str] | None, sort: str,
               limit: int = DISPLAY_LIMIT) -> tuple[pd.DataFrame, int]:
    """(the first `limit` pairs with any of `flags` (all pairs for none) in `categories`, sorted; how many
    matched before the limit)."""
    mask = np.ones(len(frame), dtype=bool)
    if flags:
        mask = frame[[f"flag_{f}" for f in flags]].any(axis=1).to_numpy()
    if categories:
        mask &= frame["category"].isin(categories).to_numpy()
    column, ascending = SORTS[sort]
    matched = frame[mask].sort_values(column, ascending=ascending, kind="stable")
    return matched.head(limit).reset_index(drop=True), len(matched)
