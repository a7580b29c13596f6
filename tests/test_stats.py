"""Known-answer tests for normbt_viz.analysis.stats: intervals against hand computations, bootstrap behaviour on cases
whose answer is obvious, the distance bins, and the SpecError messages for bad input."""

import numpy as np
import pandas as pd
import pytest

from normbt_viz.errors import SpecError
from normbt_viz.train.diagnostics import assign_bins, distance_bin_edges
from normbt_viz.analysis.stats import (
    mean_interval,
    paired_bootstrap_diff,
    paired_bootstrap_diff_seeds,
    summarise_seeds,
    update_share_by_decile,
)


def test_mean_interval_matches_hand_computed_t_interval():
    # mean 3, std sqrt(2.5) = 1.58114, t_{0.975, 4} = 2.776445, half width 2.776445 * 1.58114 / sqrt(5) = 1.963243
    result = mean_interval([1, 2, 3, 4, 5])
    assert result["mean"] == pytest.approx(3.0)
    assert result["std"] == pytest.approx(1.581139, abs=1e-6)
    assert result["n"] == 5
    assert result["low"] == pytest.approx(3.0 - 1.963243, abs=1e-5)
    assert result["high"] == pytest.approx(3.0 + 1.963243, abs=1e-5)


def test_mean_interval_single_value_is_a_point():
    result = mean_interval([0.7])
    assert result["n"] == 1
    assert np.isnan(result["std"])
    assert result["low"] == result["high"] == result["mean"] == pytest.approx(0.7)


def test_mean_interval_wider_at_higher_confidence():
    narrow = mean_interval([1, 2, 3, 4, 5], confidence=0.8)
    wide = mean_interval([1, 2, 3, 4, 5], confidence=0.99)
    assert wide["high"] - wide["low"] > narrow["high"] - narrow["low"]


def test_paired_diff_of_identical_arms_is_zero():
    correct = np.random.default_rng(4).integers(0, 2, size=100)
    result = paired_bootstrap_diff(correct, correct.copy())
    assert result["diff"] == 0.0
    assert result["low"] == 0.0
    assert result["high"] == 0.0
    assert result["n_pairs"] == 100
    assert result["p_two_sided"] == 1.0


def _flipped_pair(n_pairs=100, n_flipped=10, seed=5):
    """Arm a, and arm b equal to a except that n_flipped pairs a got wrong are right in b."""
    rng = np.random.default_rng(seed)
    correct_a = rng.integers(0, 2, size=n_pairs)
    correct_b = correct_a.copy()
    flipped = rng.choice(np.flatnonzero(correct_a == 0), size=n_flipped, replace=False)
    correct_b[flipped] = 1
    return correct_a, correct_b


def test_paired_diff_detects_ten_flipped_pairs():
    correct_a, correct_b = _flipped_pair()
    result = paired_bootstrap_diff(correct_a, correct_b, seed=0)
    assert result["diff"] == pytest.approx(0.10)
    assert result["low"] <= 0.10 <= result["high"]
    assert result["low"] > 0.0
    assert result["p_two_sided"] < 0.05


def test_paired_diff_sign_follows_b_minus_a():
    correct_a, correct_b = _flipped_pair()
    result = paired_bootstrap_diff(correct_b, correct_a)
    assert result["diff"] == pytest.approx(-0.10)
    assert result["high"] < 0.0


def test_paired_diff_seeds_averages_over_seeds():
    rows = [_flipped_pair(seed=seed) for seed in range(3)]
    correct_a = np.stack([a for a, _ in rows])
    correct_b = np.stack([b for _, b in rows])
    result = paired_bootstrap_diff_seeds(correct_a, correct_b)
    assert result["diff"] == pytest.approx(0.10)
    assert result["n_seeds"] == 3
    assert result["n_pairs"] == 100
    assert 0.0 < result["low"] <= 0.10 <= result["high"]


def test_paired_diff_seeds_with_one_seed_matches_unpaired_version():
    correct_a, correct_b = _flipped_pair()
    single = paired_bootstrap_diff(correct_a, correct_b, seed=11)
    seeds = paired_bootstrap_diff_seeds(correct_a[None, :], correct_b[None, :], seed=11)
    assert {key: seeds[key] for key in single} == single


def test_distance_bin_edges_split_continuous_data_evenly():
    distances = np.random.default_rng(6).exponential(scale=3.0, size=1000)
    edges = distance_bin_edges(distances, n_bins=5)
    assert edges.shape == (6,)
    assert edges[0] == -np.inf and edges[-1] == np.inf
    assert np.all(np.diff(edges) > 0)
    counts = np.bincount(assign_bins(distances, edges), minlength=5)
    assert counts.size == 5
    assert np.all(counts == 200)


def test_distance_bin_edges_dedupe_ties():
    edges = distance_bin_edges([1.0, 1.0, 1.0, 1.0, 1.0, 2.0], n_bins=4)
    assert np.all(np.diff(edges) > 0)
    assert edges.size < 5


def test_assign_bins_is_closed_on_the_left():
    edges = np.array([-np.inf, 1.0, 2.0, np.inf])
    bins = assign_bins([0.5, 1.0, 1.5, 2.0, 5.0], edges)
    assert bins.tolist() == [0, 1, 1, 2, 2]


def test_assign_bins_finite_last_edge_belongs_to_last_bin():
    assert assign_bins([0.0, 1.0, 2.0], [0.0, 1.0, 2.0]).tolist() == [0, 1, 1]


def test_update_share_follows_distance_when_update_is_proportional():
    distances = np.random.default_rng(7).uniform(0.1, 10.0, size=1000)
    table = update_share_by_decile(distances, 3.0 * distances)
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["n"].tolist() == [100] * 10
    assert table["update_share"].sum() == pytest.approx(1.0)
    assert table["update_share"].idxmax() == 9
    assert np.all(np.diff(table["update_share"]) > 0)
    assert np.all(table["distance_low"] <= table["distance_high"])
    assert np.all(table["distance_high"].to_numpy()[:-1] <= table["distance_low"].to_numpy()[1:])


def test_update_share_is_flat_when_update_is_constant():
    distances = np.random.default_rng(8).uniform(0.1, 10.0, size=1000)
    table = update_share_by_decile(distances, np.full(1000, 0.4))
    assert table["update_share"].sum() == pytest.approx(1.0)
    assert table["update_share"].tolist() == pytest.approx([0.1] * 10)
    assert table["mean_update_norm"].tolist() == pytest.approx([0.4] * 10)


def test_summarise_seeds_uses_mean_interval_per_group():
    per_seed = pd.DataFrame(
        {
            "arm": ["bt"] * 5 + ["normbt"] * 3,
            "seed": [0, 1, 2, 3, 4, 0, 1, 2],
            "accuracy": [1, 2, 3, 4, 5, 0.7, 0.8, 0.9],
        }
    )
    table = summarise_seeds(per_seed, "accuracy", ["arm"])
    assert list(table.columns) == ["arm", "mean", "std", "low", "high", "n"]
    assert table["arm"].tolist() == ["bt", "normbt"]
    bt = table.iloc[0]
    assert bt["mean"] == pytest.approx(3.0)
    assert bt["low"] == pytest.approx(3.0 - 1.963243, abs=1e-5)
    assert bt["n"] == 5
    expected = mean_interval([0.7, 0.8, 0.9])
    assert table.iloc[1]["high"] == pytest.approx(expected["high"])


def test_summarise_seeds_groups_on_several_columns():
    per_seed = pd.DataFrame(
        {
            "arm": ["bt", "bt", "bt", "bt"],
            "section": ["Chat", "Chat", "Reasoning", "Reasoning"],
            "accuracy": [0.9, 0.8, 0.6, 0.7],
        }
    )
    table = summarise_seeds(per_seed, "accuracy", ["arm", "section"])
    assert table[["arm", "section"]].values.tolist() == [["bt", "Chat"], ["bt", "Reasoning"]]
    assert table["mean"].tolist() == pytest.approx([0.85, 0.65])


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda: mean_interval([1, 2, 3], confidence=1.0), "confidence"),
        (lambda: mean_interval([1, 2, 3], confidence=0.0), "confidence"),
        (lambda: mean_interval([]), "values"),
        (lambda: mean_interval([1.0, np.nan]), "values"),
        (lambda: paired_bootstrap_diff([1, 0, 1], [1, 0]), "correct_b"),
        (lambda: paired_bootstrap_diff([], []), "correct_a"),
        (lambda: paired_bootstrap_diff([1, 0], [1, 0], confidence=1.5), "confidence"),
        (lambda: paired_bootstrap_diff_seeds([1, 0], [1, 0]), "correct_a"),
        (lambda: paired_bootstrap_diff_seeds(np.ones((2, 3)), np.ones((3, 3))), "correct_b"),
        (lambda: distance_bin_edges([], n_bins=5), "rep_distance"),
        (lambda: distance_bin_edges([1.0, 2.0], n_bins=0), "n_bins"),
        (lambda: assign_bins([1.0], [2.0, 1.0]), "edges"),
        (lambda: assign_bins([3.0], [0.0, 1.0, 2.0]), "rep_distance"),
        (lambda: update_share_by_decile([1.0, 2.0, 3.0], [1.0, 2.0]), "update_norm"),
        (lambda: update_share_by_decile([1.0, 2.0], [1.0, 2.0], n_bins=10), "n_bins"),
        (lambda: update_share_by_decile([1.0, 2.0], [0.0, 0.0], n_bins=2), "update_norm"),
        (lambda: update_share_by_decile([1.0, 2.0], [-1.0, 2.0], n_bins=2), "update_norm"),
        (lambda: summarise_seeds(pd.DataFrame({"arm": ["bt"], "acc": [0.5]}), "accuracy", ["arm"]), "value_col"),
        (lambda: summarise_seeds(pd.DataFrame({"arm": ["bt"], "acc": [0.5]}), "acc", ["section"]), "by"),
    ],
)
def test_bad_inputs_raise_spec_error_naming_the_parameter(call, named):
    with pytest.raises(SpecError, match=named) as raised:
        call()
    assert "\n" not in str(raised.value)
