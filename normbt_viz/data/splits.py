"""Splitting and sampling pairs: the deterministic train/eval split (stratified by category) and the seeded
subset `--limit` takes. Pure functions of a pair table and a seed."""

from __future__ import annotations

import numbers

import numpy as np
import pandas as pd

from normbt_viz.data.formats.common import show
from normbt_viz.errors import SpecError


def split_pairs(pairs: pd.DataFrame, eval_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, eval): a deterministic split from `seed`, stratified by category when there is one.

    Eval gets round(eval_fraction * n) pairs, at least 1 when n >= 2 and the fraction is positive, and
    never all of them. Each category contributes its share (largest remainders get the rounding), taking
    its members in the order of one `default_rng(seed)` permutation. Both parts keep the original order."""
    if not isinstance(eval_fraction, numbers.Real) or isinstance(eval_fraction, bool) or not 0 <= eval_fraction <= 0.9:
        raise SpecError(f"eval_fraction must be a number between 0 and 0.9, got {show(eval_fraction)}")
    n = len(pairs)
    n_eval = round(eval_fraction * n)
    if eval_fraction > 0 and n >= 2:
        n_eval = min(max(n_eval, 1), n - 1)
    elif n < 2:
        n_eval = 0

    order = np.random.default_rng(seed).permutation(n)
    categories = (pairs["category"].astype(str).to_numpy() if "category" in pairs else np.zeros(n, dtype=int))[order]
    _, group, counts = np.unique(categories, return_inverse=True, return_counts=True)
    quotas = eval_fraction * counts
    per_group = np.floor(quotas).astype(int)
    leftover = n_eval - int(per_group.sum())
    if leftover > 0:
        per_group[np.argsort(-(quotas - per_group), kind="stable")[:leftover]] += 1

    # Rank of each permuted pair within its category: the first per_group[g] of group g go to eval.
    by_group = np.argsort(group, kind="stable")
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=int)
    rank[by_group] = np.arange(n) - starts[group[by_group]]
    is_eval = rank < per_group[group]
    train_positions = np.sort(order[~is_eval])
    eval_positions = np.sort(order[is_eval])
    return pairs.iloc[train_positions].reset_index(drop=True), pairs.iloc[eval_positions].reset_index(drop=True)


def sample_pairs(pairs: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """A reproducible random subset of `limit` pairs in their original order; all pairs for None or a
    limit of at least len(pairs)."""
    if limit is None:
        return pairs.reset_index(drop=True)
    if not isinstance(limit, numbers.Integral) or isinstance(limit, bool) or limit <= 0:
        raise SpecError(f"limit must be a positive whole number of pairs or None, got {show(limit)}")
    if limit >= len(pairs):
        return pairs.reset_index(drop=True)
    positions = np.sort(np.random.default_rng(seed).choice(len(pairs), size=int(limit), replace=False))
    return pairs.iloc[positions].reset_index(drop=True)
