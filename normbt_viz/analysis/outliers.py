"""Pure table functions behind the app's pages: outliers among pairs, label-noise recovery, BT-vs-NormBT
disagreement, length bias and series export. DataFrames in, DataFrames or dicts
out; the pages only draw what these return.
"""

from __future__ import annotations

import pandas as pd

from normbt_viz.numeric import pearson_r



def unique_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per pair id: a pair logged as both `train` and `batch` keeps its first (eval/train) row."""
    return pairs.drop_duplicates("pair_id", keep="first").reset_index(drop=True)


def near_identical(pairs: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """The `n` pairs with the smallest representation distance (the ones BT barely updates)."""
    return pairs.nsmallest(n, "rep_distance").reset_index(drop=True)


def misranked(pairs: pd.DataFrame, n: int = 20) -> pd.DataFrame:
    """The `n` most confidently misranked pairs: negative margin, most negative first."""
    return pairs[pairs["margin"] < 0].nsmallest(n, "margin").reset_index(drop=True)


def flip_recovery(pairs: pd.DataFrame, n: int = 20) -> dict:
    """How many injected label flips (the demo's `flipped` column) are among the `n` most misranked pairs.

    A flipped pair's stored label is wrong, so a model that ranks it 'wrong' has learnt the truth: the
    misranked list doubles as a label-noise detector. Returns n_flipped, n_listed, found, precision
    (found / n_listed) and recall (found / n_flipped); the ratios are NaN where undefined."""
    flipped = pairs["flipped"].astype(bool) if "flipped" in pairs else pd.Series(False, index=pairs.index)
    listed = misranked(pairs, n)
    found = int(listed["flipped"].astype(bool).sum()) if "flipped" in listed else 0
    n_flipped = int(flipped.sum())
    return {
        "n_flipped": n_flipped,
        "n_listed": len(listed),
        "found": found,
        "precision": found / len(listed) if len(listed) else float("nan"),
        "recall": found / n_flipped if n_flipped else float("nan"),
    }


def disagreement(pairs_a: pd.DataFrame, pairs_b: pd.DataFrame, label_a: str = "a", label_b: str = "b") -> pd.DataFrame:
    """Pairs scored by two runs (same pair id and split), with both margins and their difference b - a,
    largest absolute difference first."""
    keep = ["pair_id", "split", "category", "margin", "rep_distance", "correct"]
    extra = [c for c in ("flipped",) if c in pairs_a]
    merged = pairs_a[keep + extra].merge(pairs_b[["pair_id", "split", "margin", "correct"]], on=["pair_id", "split"],
                                         suffixes=(f"_{label_a}", f"_{label_b}"))
    merged["margin_diff"] = merged[f"margin_{label_b}"] - merged[f"margin_{label_a}"]
    return merged.iloc[merged["margin_diff"].abs().argsort(kind="stable")[::-1]].reset_index(drop=True)


def length_bias(pairs: pd.DataFrame) -> dict:
    """Does the reward follow length? Pearson r between the reward difference (margin) and the token-length
    difference (chosen - rejected), and accuracy when the chosen answer is longer, shorter or as long."""
    length_diff = (pairs["len_chosen"] - pairs["len_rejected"]).to_numpy(dtype=float)
    margin = pairs["margin"].to_numpy(dtype=float)
    corr = pearson_r(margin, length_diff)
    result = {"corr": float("nan") if corr is None else corr}
    for name, mask in (("longer", length_diff > 0), ("shorter", length_diff < 0), ("equal", length_diff == 0)):
        result[f"n_chosen_{name}"] = int(mask.sum())
        result[f"accuracy_chosen_{name}"] = float(pairs["correct"][mask].mean()) if mask.any() else float("nan")
    return result


def length_stats(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per category: pairs, mean word count of chosen and rejected answers, share where chosen is longer."""
    words_chosen = pairs["chosen"].str.split().str.len()
    words_rejected = pairs["rejected"].str.split().str.len()
    frame = pd.DataFrame({"category": pairs["category"], "chosen": words_chosen, "rejected": words_rejected})
    grouped = frame.groupby("category")
    return pd.DataFrame(
        {
            "pairs": grouped.size(),
            "mean_words_chosen": grouped["chosen"].mean().round(1),
            "mean_words_rejected": grouped["rejected"].mean().round(1),
            "share_chosen_longer": grouped.apply(lambda g: float((g["chosen"] > g["rejected"]).mean()), include_groups=False).round(3),
        }
    ).reset_index()


def metrics_long(metrics_by_run: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """All runs' metric rows stacked with a leading `run` column, for CSV export."""
    frames = [m.assign(run=label) for label, m in metrics_by_run.items() if not m.empty]
    if not frames:
        return pd.DataFrame(columns=["run", "step"])
    stacked = pd.concat(frames, ignore_index=True)
    return stacked[["run"] + [c for c in stacked.columns if c != "run"]]
