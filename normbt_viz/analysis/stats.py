"""Comparison statistics for BT vs NormBT runs: intervals over seeds, bootstrap intervals over eval pairs, paired
differences on the same pairs, and the distance-binned views (accuracy per bin, share of the update per decile)
that show where NormBT changes what the model learns from.

Every function is pure (arrays or DataFrames in, dicts or DataFrames out) and validates its inputs at the boundary,
raising `SpecError` with a one-line message that names the parameter and the value. Nothing deeper re-checks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from normbt_viz.errors import SpecError
from normbt_viz.numeric import as_finite_array, check_positive_int

# Bootstrap index draws are made in blocks of about this many indices, so a 2000-resample bootstrap over tens of
# thousands of pairs does not materialise one (n_boot x n) array at once.
_BOOTSTRAP_BLOCK = 1 << 22


def _check_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float, np.floating, np.integer)):
        raise SpecError(f"confidence must be a number in (0, 1); got {confidence!r}")
    if not 0.0 < float(confidence) < 1.0:
        raise SpecError(f"confidence must be in (0, 1); got {confidence!r}")
    return float(confidence)


def _check_same_shape(first: np.ndarray, second: np.ndarray, first_name: str, second_name: str) -> None:
    if first.shape != second.shape:
        raise SpecError(f"{second_name} must have the shape of {first_name} {first.shape}; got {second.shape}")


def _check_columns(df: pd.DataFrame, columns: Sequence[str], parameter: str) -> None:
    for column in columns:
        if column not in df.columns:
            raise SpecError(f"{parameter}={column!r} is not a column of the DataFrame (columns: {list(df.columns)})")


def _resample_index_blocks(n: int, n_boot: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield (rows, n) arrays of indices drawn with replacement, n_boot rows in all, in memory-bounded blocks."""
    rows_per_block = max(1, _BOOTSTRAP_BLOCK // n)
    remaining = n_boot
    while remaining > 0:
        rows = min(rows_per_block, remaining)
        yield rng.integers(0, n, size=(rows, n))
        remaining -= rows


def _percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = 1.0 - confidence
    low, high = np.quantile(replicates, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def mean_interval(values, confidence: float = 0.95) -> dict:
    """Student-t confidence interval for the mean of a few per-seed results.

    Returns {"mean", "std", "n", "low", "high"} with std the sample standard deviation (ddof=1) and the interval
    mean ± t_{(1+confidence)/2, n-1} · std / √n. Seeds are few (3-5), so the t quantile, not 1.96, is what keeps
    the interval honest. With one value there is no spread to estimate: std is nan and low = high = mean, which a
    plot shows as a point without error bars rather than a made-up width.
    """
    confidence = _check_confidence(confidence)
    array = as_finite_array(values, "values")
    n = array.size
    mean = float(array.mean())
    if n == 1:
        return {"mean": mean, "std": float("nan"), "n": 1, "low": mean, "high": mean}
    std = float(array.std(ddof=1))
    half_width = float(scipy_stats.t.ppf((1.0 + confidence) / 2.0, df=n - 1)) * std / np.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "low": mean - half_width, "high": mean + half_width}


def _paired_bootstrap(per_pair_diff: np.ndarray, n_boot: int, confidence: float, seed: int) -> dict:
    """Bootstrap the mean of per-pair differences; the core shared by the one-seed and multi-seed comparisons."""
    rng = np.random.default_rng(seed)
    replicates = np.concatenate(
        [per_pair_diff[block].mean(axis=1) for block in _resample_index_blocks(per_pair_diff.size, n_boot, rng)]
    )
    diff = float(per_pair_diff.mean())
    low, high = _percentile_interval(replicates, confidence)
    if diff > 0:
        opposite_share = float(np.mean(replicates <= 0))
    elif diff < 0:
        opposite_share = float(np.mean(replicates >= 0))
    else:
        opposite_share = 1.0
    return {
        "diff": diff,
        "low": low,
        "high": high,
        "n_pairs": int(per_pair_diff.size),
        "p_two_sided": min(1.0, 2.0 * opposite_share),
    }


def paired_bootstrap_diff(
    correct_a, correct_b, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict:
    """Paired bootstrap of mean(b) - mean(a) for two models scored on the same eval pairs.

    `correct_a` and `correct_b` are aligned per-pair outcomes (0/1 correctness, or any float). Resampling the pair
    indices once and applying them to both arms keeps the pairing, so the pair-difficulty variance that both arms
    share cancels and the interval is much narrower than two independent intervals would suggest.

    Returns {"diff", "low", "high", "n_pairs", "p_two_sided"}. p_two_sided is twice the share of resamples whose
    difference is zero or of the sign opposite to the observed one, capped at 1 (1 when the observed difference is
    0). Its resolution is 1/n_boot: a value of 0 means "below 1/n_boot", not "impossible".
    """
    confidence = _check_confidence(confidence)
    n_boot = check_positive_int(n_boot, "n_boot")
    outcomes_a = as_finite_array(correct_a, "correct_a")
    outcomes_b = as_finite_array(correct_b, "correct_b")
    _check_same_shape(outcomes_a, outcomes_b, "correct_a", "correct_b")
    return _paired_bootstrap(outcomes_b - outcomes_a, n_boot, confidence, seed)


def paired_bootstrap_diff_seeds(
    correct_a, correct_b, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict:
    """Paired bootstrap of the seed-averaged difference b - a, for arms trained with several seeds.

    `correct_a` and `correct_b` are (seeds x pairs) arrays of the same shape, column j being the same eval pair in
    every row. Pairs are resampled (one index set for all seeds and both arms) and the statistic is the mean over
    seeds and pairs of b - a. Because every pair has the same number of seeds, that equals the mean over pairs of
    the per-pair seed-averaged difference, which is what is resampled.

    The interval covers eval-set sampling with the seeds held fixed; the spread between training seeds is what
    `mean_interval` / `summarise_seeds` show. Returns {"diff", "low", "high", "n_pairs", "n_seeds", "p_two_sided"},
    with p_two_sided as in `paired_bootstrap_diff`.
    """
    confidence = _check_confidence(confidence)
    n_boot = check_positive_int(n_boot, "n_boot")
    outcomes_a = as_finite_array(correct_a, "correct_a", ndim=2)
    outcomes_b = as_finite_array(correct_b, "correct_b", ndim=2)
    _check_same_shape(outcomes_a, outcomes_b, "correct_a", "correct_b")
    result = _paired_bootstrap((outcomes_b - outcomes_a).mean(axis=0), n_boot, confidence, seed)
    result["n_seeds"] = int(outcomes_a.shape[0])
    return result


def update_share_by_decile(rep_distance, update_norm, n_bins: int = 10) -> pd.DataFrame:
    """The rebalancing picture: how much of the total update each distance decile receives.

    Pairs are sorted by `rep_distance` and cut into `n_bins` equal-count bins (sizes differ by at most one; ties
    are split by input order, so a heavily tied distance still gives equal-count bins). Returns one row per bin
    with columns decile (1..n_bins, nearest pairs first), distance_low, distance_high, n, update_share (the bin's
    sum of `update_norm` over the total, summing to 1) and mean_update_norm. Under BT the far deciles take most
    of the update; under NormBT the shares flatten toward 1/n_bins, which is the paper's claim made visible.
    """
    n_bins = check_positive_int(n_bins, "n_bins")
    distances = as_finite_array(rep_distance, "rep_distance")
    norms = as_finite_array(update_norm, "update_norm")
    _check_same_shape(distances, norms, "rep_distance", "update_norm")
    if distances.size < n_bins:
        raise SpecError(f"n_bins={n_bins} is more than the number of pairs ({distances.size})")
    if (norms < 0).any():
        first = int(np.flatnonzero(norms < 0)[0])
        raise SpecError(f"update_norm[{first}]={norms[first]!r} is negative; a norm cannot be")
    total = norms.sum()
    if total <= 0:
        raise SpecError("update_norm sums to 0; there is no update to share out")
    order = np.argsort(distances, kind="stable")
    rows = []
    for decile, members in enumerate(np.array_split(order, n_bins), start=1):
        rows.append(
            {
                "decile": decile,
                "distance_low": float(distances[members].min()),
                "distance_high": float(distances[members].max()),
                "n": int(members.size),
                "update_share": float(norms[members].sum() / total),
                "mean_update_norm": float(norms[members].mean()),
            }
        )
    return pd.DataFrame(rows)


def summarise_seeds(
    per_seed: pd.DataFrame, value_col: str, by: list[str], confidence: float = 0.95
) -> pd.DataFrame:
    """Mean and t-interval over seeds of one metric, per group.

    `per_seed` has one row per (arm, seed[, group...]) with the metric in `value_col`; `by` names the columns to
    group on (e.g. ["arm"] or ["arm", "section"]), the seed being what varies inside a group. Returns the `by`
    columns plus mean, std, low, high, n, one row per group, from `mean_interval`.
    """
    confidence = _check_confidence(confidence)
    if isinstance(by, str):
        by = [by]
    if len(by) == 0:
        raise SpecError("by must name at least one column; got []")
    _check_columns(per_seed, [value_col], "value_col")
    _check_columns(per_seed, by, "by")
    if len(per_seed) == 0:
        raise SpecError("per_seed must have at least one row; got 0")
    # Checked here so a bad value is reported by its column, not as mean_interval's `values`.
    as_finite_array(per_seed[value_col], f"per_seed[{value_col!r}]")
    rows = []
    for key, group in per_seed.groupby(by, sort=True, dropna=False):
        keys = key if isinstance(key, tuple) else (key,)
        interval = mean_interval(group[value_col].to_numpy(dtype=float), confidence)
        rows.append({**dict(zip(by, keys)), **{k: interval[k] for k in ("mean", "std", "low", "high", "n")}})
    return pd.DataFrame(rows, columns=[*by, "mean", "std", "low", "high", "n"])
