"""The Audit page's view of an audit frame: the sort orders it offers and the filtered, sorted slice it shows."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
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


# The reasons a flagged pair's line can hold (`audit.selfcheck.flag_reasons`), each with the words that mark it.
REASONS = {
    "scored against its label": "scored against its label out of fold",
    "chosen has the length this dataset disfavours": "this dataset prefers",
    "the judge alone also scores it against its label": "the judge alone also scores it against",
    **{name.replace("_", " "): name.replace("_", " ") for name in
       ("identical", "near_identical", "duplicate", "conflict", "near_duplicate", "length_ratio", "empty_looking")},
}
TEXT_WIDTH = 1500


def reason_mask(frame: pd.DataFrame, reasons: list[str]) -> np.ndarray:
    """Pairs whose reason line holds every one of `reasons` (keys of REASONS); all pairs for none."""
    mask = np.ones(len(frame), dtype=bool)
    for reason in reasons:
        mask &= frame["reason"].str.contains(REASONS[reason], regex=False).to_numpy()
    return mask


def readable_pairs(view: pd.DataFrame, texts: pd.DataFrame) -> pd.DataFrame:
    """The flagged pairs as one readable table: the reason, the score, then the prompt's end and both answers side
    by side (each cut to TEXT_WIDTH characters; a prompt keeps its end, where the question is)."""
    merged = view.merge(texts, on="pair_id", how="left")
    return pd.DataFrame({
        "pair_id": merged["pair_id"],
        "reason": merged["reason"],
        "score": merged["label_issue_score"].round(3),
        "prompt (end)": merged["prompt"].fillna("").str[-TEXT_WIDTH // 3:],
        "chosen (as labelled)": merged["chosen"].fillna("").str[:TEXT_WIDTH],
        "rejected (as labelled)": merged["rejected"].fillna("").str[:TEXT_WIDTH],
    })


def length_figure(frame: pd.DataFrame) -> go.Figure:
    """Out-of-fold margin against the answers' log word ratio (chosen over rejected), label issues marked: how
    much of the score answer length explains, as a picture."""
    figure = go.Figure()
    for flagged, name, color in ((False, "other pairs", "#9aa5b1"), (True, "label issue", "#d62728")):
        part = frame[frame["flag_label_issue"] == flagged]
        figure.add_trace(go.Scattergl(x=part["log_words_ratio"], y=part["oof_margin"], mode="markers", name=name,
                                      marker={"size": 4, "color": color, "opacity": 0.6}, text=part["pair_id"]))
    figure.update_layout(xaxis_title="log(words in chosen / words in rejected)", yaxis_title="out-of-fold margin",
                         height=360, margin={"t": 30, "b": 40})
    return figure
