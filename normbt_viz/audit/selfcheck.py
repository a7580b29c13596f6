"""How far to trust the flags on *this* dataset: the baselines every audit is compared with, the self-check on
known flips injected into a copy of the user's pairs, how much of the score answer length explains, and the
one-line reason each flagged pair carries.

The self-check flips a seeded share of a copy of the pairs (a flip negates the pair's row, so nothing is
featurised again), runs the same out-of-fold scorer with the same L2, and scores the known flips with it, with a
length rule and with cleanlab on the same out-of-fold probabilities. A user sees at once when the audit is no
better than "flag the pairs whose chosen answer has the length this dataset disfavours".
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import torch

from normbt_viz.audit.scoring import auroc, label_issue_scores, oof_margins, precision_at_k


def length_rule(log_words_ratio: np.ndarray) -> tuple[np.ndarray, str]:
    """(a label-issue score per pair, the direction the data prefers): when most chosen answers are longer
    the data prefers longer answers and a pair whose chosen is shorter is suspect, and the other way round."""
    prefers_longer = np.mean(log_words_ratio > 0) >= np.mean(log_words_ratio < 0)
    return (-log_words_ratio if prefers_longer else log_words_ratio), ("longer" if prefers_longer else "shorter")


def cleanlab_scores(p_chosen: np.ndarray, seed: int = 0) -> np.ndarray | None:
    """A score ranking cleanlab's `find_label_issues` output (its issues by self-confidence, then the rest
    tied) for pairs whose labelled-chosen answer wins with probability `p_chosen`; None without cleanlab.
    A pair is a two-class example with symmetric classes: a seeded half is presented as (rejected, chosen)
    with label 1, the rest as (chosen, rejected) with label 0, so neither class is all one side."""
    try:
        from cleanlab.filter import find_label_issues
    except ImportError:
        return None
    n = len(p_chosen)
    chosen_second = np.random.default_rng(1000 + seed).random(n) < 0.5
    p_second = np.where(chosen_second, p_chosen, 1 - p_chosen)
    ranked = find_label_issues(chosen_second.astype(int), np.column_stack([1 - p_second, p_second]),
                               return_indices_ranked_by="self_confidence")
    score = np.zeros(n)
    score[ranked] = len(ranked) - np.arange(len(ranked))
    return score


def p_chosen_wins(margins: np.ndarray) -> np.ndarray:
    """Mean over fold seeds of σ(margin): the out-of-fold probability that the labelled chosen answer wins."""
    return (1 / (1 + np.exp(-np.clip(margins, -50, 50)))).mean(axis=1)


def method_scores(margins: np.ndarray, log_words_ratio: np.ndarray, seed: int = 0,
                  judge_margin: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The audit's label-issue score and the two baselines', on the same out-of-fold margins; with a judge, its
    score gap alone too (the lower r(chosen) - r(rejected), the more suspect)."""
    scores = {"audit": label_issue_scores(margins)[0], "length rule": length_rule(log_words_ratio)[0]}
    if judge_margin is not None:
        scores["judge alone"] = -judge_margin
    cleanlab = cleanlab_scores(p_chosen_wins(margins), seed)
    if cleanlab is not None:
        scores["cleanlab"] = cleanlab
    return scores


def detection_table(scores: dict[str, np.ndarray], truth: np.ndarray, rows: np.ndarray | None = None) -> dict:
    """{method: {auroc, precision_at_k}} against known flips `truth` (k = their count), over `rows` if given."""
    rows = np.ones(len(truth), dtype=bool) if rows is None else rows
    k = int(truth[rows].sum())
    return {name: {"auroc": auroc(score[rows], truth[rows]), "precision_at_k": precision_at_k(score[rows], truth[rows], k)}
            for name, score in scores.items()}


def self_check(x: torch.Tensor, trainable: np.ndarray, log_words_ratio: np.ndarray, folds: int, seeds: int,
               l2: float, rate: float, seed: int, judge_margin: np.ndarray | None = None) -> dict | None:
    """Flip a seeded `rate` of a copy of the trainable pairs (rows of the design matrix `x`), score the copy
    with the same out-of-fold model, and report on those known flips: AUROC and precision at k for the audit,
    the length rule and cleanlab; the scorer's out-of-fold accuracy on the copy's unflipped pairs; and the flag
    purity that accuracy allows (a scorer right on a share a of pairs misranks a share 1-a of clean pairs, so
    among misranked pairs the flips make at most rate·a / (rate·a + (1-rate)(1-a))). None with too few pairs."""
    candidates = np.flatnonzero(trainable)
    n_flip = int(round(rate * len(candidates)))
    if n_flip < 2 or len(candidates) - n_flip < folds:
        return None
    flipped = np.zeros(len(trainable), dtype=bool)
    flipped[np.random.default_rng(seed).choice(candidates, n_flip, replace=False)] = True
    sign = np.where(flipped, -1.0, 1.0)
    margins = oof_margins(x * torch.from_numpy(sign).to(x.dtype)[:, None], folds, seeds, l2, trainable)
    scores = method_scores(margins, log_words_ratio * sign, seed, None if judge_margin is None else judge_margin * sign)
    table = detection_table(scores, flipped, trainable)
    accuracy = float((margins.mean(axis=1)[trainable & ~flipped] > 0).mean())
    purity = rate * accuracy / (rate * accuracy + (1 - rate) * (1 - accuracy)) if accuracy < 1 else 1.0
    return {"rate": rate, "seed": seed, "n_flipped": n_flip, "methods": table, "oof_accuracy": accuracy,
            "flag_purity_ceiling": purity, "auroc_ceiling": auroc_ceiling(accuracy), "cleanlab_available": "cleanlab" in scores}


def auroc_ceiling(accuracy: float) -> float:
    """The flip-finding AUROC of a scorer that ranks a share `accuracy` of clean pairs as labelled, when its
    margin toward a pair's true preference is normal, m ~ N(μ, σ²) with Φ(μ/σ) = accuracy: a flip scores m and
    a clean pair −m, so AUROC = P(m₁ + m₂ > 0) = Φ(√2 · Φ⁻¹(accuracy)). The figure says how far better fitting
    can go on these features: past it, only a scorer that knows the preference better helps. On HH-RLHF harmless
    the audit's accuracy is 0.68, whose ceiling is 0.75, where the audit stands; 0.80 needs 0.724."""
    normal = NormalDist()
    clipped = min(max(accuracy, 1e-9), 1 - 1e-9)
    return float(normal.cdf(math.sqrt(2.0) * normal.inv_cdf(clipped)))


def length_share(oof_margin: np.ndarray, log_words_ratio: np.ndarray, rows: np.ndarray) -> float:
    """Share of the out-of-fold margin's variance that a straight line in the log word ratio explains (R²)."""
    m, r = oof_margin[rows], log_words_ratio[rows]
    if len(m) < 3 or np.std(m) == 0 or np.std(r) == 0:
        return math.nan
    return float(np.corrcoef(m, r)[0, 1] ** 2)


def flag_reasons(frame: pd.DataFrame, prefers: str, scorer: str) -> list[str]:
    """One line per pair saying why it is flagged ("" for unflagged pairs): for a label issue the out-of-fold
    margin and its spread, which scorer raised it, and whether its chosen answer has the length the dataset
    disfavours; then every other flag by name."""
    reasons = []
    for row in frame.itertuples(index=False):
        parts = []
        if row.flag_label_issue:
            text = (f"scored against its label out of fold (margin {row.oof_margin:+.2f} ± {row.oof_margin_std:.2f}) "
                    f"by {scorer}")
            chosen_shorter = row.words_chosen < row.words_rejected
            chosen_longer = row.words_chosen > row.words_rejected
            if (prefers == "longer" and chosen_shorter) or (prefers == "shorter" and chosen_longer):
                text += f"; this dataset prefers {prefers} answers and this chosen is {'shorter' if chosen_shorter else 'longer'}"
            judge = getattr(row, "judge_margin", None)
            if judge is not None:
                text += (f"; the judge alone also scores it against its label (reward gap {judge:+.2f})" if judge < 0
                         else f"; the judge alone agrees with the label (reward gap {judge:+.2f})")
            parts.append(text)
        for name in ("identical", "near_identical", "duplicate", "conflict", "near_duplicate", "length_ratio",
                     "empty_looking"):
            if getattr(row, f"flag_{name}"):
                parts.append(name.replace("_", " "))
        reasons.append("; ".join(parts))
    return reasons
