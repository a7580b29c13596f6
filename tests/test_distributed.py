"""Data parallelism on CPU: `torchrun --nproc_per_node 2` (gloo) with a global batch of 16 gives the run one
process gives with a batch of 16, for `bt` and `normbt`, on a scope where a backbone block trains.

Tolerance: the two differ only in the order of floating-point sums (a gradient averaged over two processes,
mu's batch mean as an all-reduced sum), so per-step losses, mu and final margins agree to 1e-4 relative and the
final eval accuracy exactly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from normbt_viz.runs.launcher import train_inline
from normbt_viz.runs.rundir import list_runs
from normbt_viz.spec import RunSpec

REPO = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")
FLAGS = dict(scope="top-k", top_k=1, demo_size=80, max_steps=6, eval_every=3, batch_size=16, max_length=64, lr=1e-3,
             full_grad_sample=4)

pytestmark = pytest.mark.skipif(not TORCHRUN.exists() and shutil.which("torchrun") is None, reason="torchrun not installed")


def torchrun_train(root: Path, arm: str, cache: Path) -> Path:
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in FLAGS.items()]
    command = [str(TORCHRUN if TORCHRUN.exists() else shutil.which("torchrun")), "--standalone", "--nproc_per_node", "2",
               "-m", "normbt_viz", "train", "--arm", arm, *flags, "--runs", str(root)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "NORMBT_VIZ_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = list_runs(root)
    return run


@pytest.mark.parametrize("arm", ["bt", "normbt"])
def test_two_processes_train_exactly_like_one(tmp_path, feature_cache, arm):
    single, status = train_inline(RunSpec(**FLAGS).with_arm(arm), tmp_path / "one")
    assert status["state"] == "done", status
    double = torchrun_train(tmp_path / "two", arm, feature_cache)
    assert double.status()["n_processes"] == 2 and single.status()["n_processes"] == 1

    one, two = single.metrics(), double.metrics()
    steps = one.dropna(subset=["loss"])
    other = two.dropna(subset=["loss"])
    assert steps["step"].tolist() == other["step"].tolist() == list(range(1, 7))
    np.testing.assert_allclose(other["loss"], steps["loss"], rtol=1e-4)
    np.testing.assert_allclose(other["grad_norm"], steps["grad_norm"], rtol=1e-4)
    if arm == "normbt":
        np.testing.assert_allclose(other["normbt_mu"], steps["normbt_mu"], rtol=1e-5)
    final_one, final_two = one.dropna(subset=["eval_accuracy"]).iloc[-1], two.dropna(subset=["eval_accuracy"]).iloc[-1]
    assert final_two["eval_accuracy"] == final_one["eval_accuracy"]

    snapshot_one, snapshot_two = single.pairs(6), double.pairs(6)
    assert snapshot_one["pair_id"].tolist() == snapshot_two["pair_id"].tolist()  # the same per-pair snapshot
    np.testing.assert_allclose(snapshot_two["margin"], snapshot_one["margin"], rtol=1e-4, atol=1e-5)
    graded_one, graded_two = snapshot_one["full_grad_norm"].dropna(), snapshot_two["full_grad_norm"].dropna()
    np.testing.assert_allclose(graded_two, graded_one, rtol=1e-4)
    records_one = single.records().sort_values(["step", "pair_id"]).reset_index(drop=True)
    records_two = double.records().sort_values(["step", "pair_id"]).reset_index(drop=True)
    assert records_one["pair_id"].tolist() == records_two["pair_id"].tolist()  # every rank's batch records gathered
    np.testing.assert_allclose(records_two["margin"], records_one["margin"], rtol=1e-4, atol=1e-5)
