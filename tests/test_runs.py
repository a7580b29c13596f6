"""The run directory owns its layout, comparisons refuse runs that are not seeds of one experiment, and
left-out pairs carry no weight."""

from __future__ import annotations

import numpy as np
import pytest

from normbt_viz.analysis.comparison import compare_runs
from normbt_viz.errors import SpecError
from normbt_viz.runs.launcher import train_inline
from normbt_viz.spec import RunSpec


def small_run(root, **fields):
    run, status = train_inline(RunSpec(**{"demo_size": 200, "demo_noise": 0.1, "max_steps": 4, "eval_every": 2, **fields}), root)
    assert status["state"] == "done", status
    return run


def test_every_file_of_a_run_is_named_by_the_run_directory(trained_runs):
    run = trained_runs["bt"]
    for path in (run.spec_path, run.status_path, run.metrics_path, run.bins_path, run.pair_texts_path, run.pairs_path(0)):
        assert path.is_file(), path
    assert run.model_path.is_dir()
    assert not list(run.path.rglob(".*.tmp"))  # every write went through the atomic helper and was renamed
    texts = run.pair_texts()
    assert texts["pair_id"].is_unique and {"prompt", "chosen", "rejected"} <= set(texts.columns)
    assert len(run.bin_edges()) >= 3


def test_identical_input_pairs_have_no_weight(trained_runs):
    pairs = trained_runs["normbt"].pairs()
    left_out = pairs[pairs["identical_input"]]
    assert len(left_out) > 0, "the demo's lowercase pairs are identical inputs for MiniLM"
    assert left_out["weight"].isna().all()
    trained = pairs.loc[~pairs["identical_input"], "weight"]
    assert trained.notna().all() and trained.mean() < 10  # no mu/eps value swamps the mean


def test_compare_refuses_the_same_arm_and_seed_twice(trained_runs, tmp_path):
    twin = small_run(tmp_path, arm="bt", loss="bt", seed=0)
    with pytest.raises(SpecError, match=f"{trained_runs['bt'].name} and {twin.name} are both arm 'bt' seed 0"):
        compare_runs([trained_runs["bt"], trained_runs["normbt"], twin])


def test_compare_refuses_runs_on_another_dataset(trained_runs, tmp_path):
    other = small_run(tmp_path, demo_size=120, arm="normbt", loss="normbt", seed=1)
    with pytest.raises(SpecError, match=f"{other.name} differ in dataset"):
        compare_runs([trained_runs["bt"], other])


def test_compare_pools_seeds_of_one_experiment(trained_runs):
    comparison = compare_runs([trained_runs["bt"], trained_runs["normbt"]])
    assert sorted(comparison.overall["arm"]) == ["bt", "normbt"]
    assert np.isfinite(comparison.paired["diff"]).all()
