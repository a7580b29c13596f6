"""Checkpoints and resume: a run killed with SIGKILL after a checkpoint and resumed with `--resume` ends with the
same final weights, mu and eval metrics as the same run uninterrupted (tolerance 1e-6 relative: the same
operations in the same order, so in practice they are equal)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from normbt_viz.runs.launcher import train_inline
from normbt_viz.runs.rundir import RunDir, list_runs
from normbt_viz.spec import RunSpec

REPO = Path(__file__).resolve().parents[1]
FLAGS = dict(demo_size=200, max_steps=400, eval_every=100, batch_size=8, save_every=50, save_total_limit=2, loss="normbt",
             num_threads=1)


def cli(*args, env):
    return subprocess.run([sys.executable, "-m", "normbt_viz", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_killed_after_a_checkpoint_then_resumed_equals_uninterrupted(tmp_path, feature_cache):
    reference, status = train_inline(RunSpec(**FLAGS), tmp_path / "reference")
    assert status["state"] == "done", status

    env = {**os.environ, "PYTHONPATH": str(REPO), "NORMBT_VIZ_CACHE": str(feature_cache)}
    root = tmp_path / "killed"
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in FLAGS.items()]
    process = subprocess.Popen([sys.executable, "-m", "normbt_viz", "train", *flags, "--runs", str(root)], cwd=REPO, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    run = None
    while time.time() < deadline and process.poll() is None:
        runs = list_runs(root)
        if runs and runs[0].checkpoint_steps() and runs[0].checkpoint_steps()[-1] >= 100:
            run = runs[0]
            break
        time.sleep(0.05)
    assert run is not None and process.poll() is None, "the run finished before a checkpoint could be interrupted"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed_at = run.status()["step"]
    assert run.status()["state"] == "interrupted"
    assert killed_at < FLAGS["max_steps"]

    resumed = cli("train", "--resume", str(run.path), env=env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    run = RunDir(run.path)
    assert run.status()["state"] == "done" and run.status()["resumed_from"] >= 100
    assert len(run.checkpoint_steps()) <= FLAGS["save_total_limit"]

    for name in ("head.safetensors",):
        mine, theirs = load_file(run.model_path / name), load_file(reference.model_path / name)
        for key in theirs:
            np.testing.assert_allclose(mine[key].numpy(), theirs[key].numpy(), rtol=1e-6, atol=1e-7)
    one, two = reference.metrics(), run.metrics()
    assert two["step"].tolist() == one["step"].tolist()  # nothing written after the checkpoint survives twice
    np.testing.assert_allclose(two["normbt_mu"].dropna(), one["normbt_mu"].dropna(), rtol=1e-6)
    last_one, last_two = one.dropna(subset=["eval_accuracy"]).iloc[-1], two.dropna(subset=["eval_accuracy"]).iloc[-1]
    assert last_two["eval_accuracy"] == last_one["eval_accuracy"]
    assert last_two["eval_loss"] == pytest.approx(last_one["eval_loss"], rel=1e-6)
    steps = run.records(columns=["step"])["step"]
    assert steps.is_monotonic_increasing or sorted(steps) == steps.tolist()
    assert steps.value_counts().max() == FLAGS["batch_size"] and steps.nunique() == FLAGS["max_steps"]


def test_resume_refuses_a_finished_run_in_one_line(tmp_path, feature_cache):
    run, status = train_inline(RunSpec(demo_size=60, max_steps=4, save_every=2), tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO), "NORMBT_VIZ_CACHE": str(feature_cache)}
    result = cli("train", "--resume", str(run.path), env=env)
    assert result.returncode == 2 and "already done" in result.stderr and result.stderr.strip().count("\n") == 0
