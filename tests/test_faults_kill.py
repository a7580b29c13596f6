"""Faults, part 1: one real training process killed with SIGKILL at seeded random moments (imports, setup, steps,
metrics appends, snapshot and checkpoint writes, pruning) at least 20 times, checked after each kill and resumed,
then resumed to the end: nothing lost. Its own file because it alone takes most of a 90 s budget."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from normbt_viz import cli
from normbt_viz.runs.rundir import RunDir, list_runs
from tests.test_faults import REPO, _env, _start, _train_page, assert_files_parse

MAX_STEPS = 400
EVAL_EVERY = 100
TRAIN = ["--demo-size", "200", "--max-steps", str(MAX_STEPS), "--save-every", "5", "--eval-every", str(EVAL_EVERY),
         "--batch-size", "8", "--save-total-limit", "2", "--num-threads", "1"]


def _wait_running(root: Path, process: subprocess.Popen, timeout: float = 30) -> None:
    """Until `process` has set its run up and begun training: its status names it and it has written metrics
    (a resume rewrites metrics.jsonl when it truncates, then appends)."""
    launched = time.time()
    deadline = launched + timeout
    while time.time() < deadline and process.poll() is None:
        if any(r.read_raw_status().get("state") == "running" and r.read_raw_status().get("pid") == process.pid
               and r.metrics_path.is_file() and r.metrics_path.stat().st_mtime >= launched for r in list_runs(root)):
            return
        time.sleep(0.05)


def test_sigkill_at_random_moments_then_resume_loses_nothing(tmp_path, feature_cache, capsys):
    """At least 20 SIGKILLs at seeded random delays (setup, training, checkpoint writes); after each, every file
    parses and the run reads `interrupted` through RunDir, the CLI and the Train page; then it resumes (or, killed
    before its first checkpoint, resume says so in one line with exit 2 and the run starts fresh)."""
    started = time.time()
    env = _env(feature_cache)
    root = tmp_path / "runs"
    rng = random.Random(12)
    # warm the feature cache so a cycle's time goes to training, not to MiniLM
    warm = subprocess.run([sys.executable, "-m", "normbt_viz", "train", "--demo-size", "200", "--max-steps", "2",
                           "--runs", str(tmp_path / "warm")], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert warm.returncode == 0, warm.stderr[-2000:]

    run: RunDir | None = None
    cycles = fresh_starts = refused = 0
    kills_before_checkpoint = completed = 0
    trace = []  # step reached / last checkpoint after each kill
    while cycles < 20:
        known = {r.path for r in list_runs(root)}
        process = _start(["train", "--resume", str(run.path)] if run else ["train", *TRAIN, "--runs", str(root)], env)
        if cycles == 0:  # during setup, once the run folder exists: before the first checkpoint
            while process.poll() is None and not [r for r in list_runs(root) if r.path not in known]:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.3))
        elif run is not None and rng.random() < 0.5:
            # any moment from the launch: imports, setup, a resume loading its checkpoint and truncating
            time.sleep(rng.uniform(0.2, 2.5))
        else:  # a moment of training: steps, metrics appends, snapshot and checkpoint writes, pruning
            _wait_running(root, process)
            time.sleep(rng.uniform(0.0, 0.3))
        finished = process.poll() is not None
        os.kill(process.pid, signal.SIGKILL)
        process.communicate()
        cycles += 1
        if run is None:
            new = [r for r in list_runs(root) if r.path not in known]
            if not new:  # killed before the run directory existed: nothing to check, start again
                trace.append("no-dir")
                continue
            run = new[0]
        assert not finished or process.returncode in (0, -9), process.returncode
        assert_files_parse(run)
        state = run.status()["state"]
        if state == "done":  # the kill came after the end: nothing left to lose
            completed += 1
            if cycles >= 20:
                break
            run = None  # another run, so every cycle kills something live
            continue
        assert state == "interrupted", run.status()
        # the CLI (its real entry point, in this process) and the Train page both show it
        assert cli.main(["runs", "--runs", str(root)]) == 0
        line = [row for row in capsys.readouterr().out.splitlines() if run.name in row]
        assert line and "interrupted" in line[0], line
        at = _train_page(root)
        labels = [p.proto.text for p in at.get("progress")]
        assert any(run.name in text and "· interrupted ·" in text for text in labels), labels
        resumable = [b for b in at.button if b.key == f"resume_{run.name}"]
        assert bool(resumable) == bool(run.checkpoint_steps())
        trace.append(f"{run.status().get('step')}/{(run.checkpoint_steps() or ['-'])[-1]}")
        if not run.checkpoint_steps():
            kills_before_checkpoint += 1
            refused_run = subprocess.run([sys.executable, "-m", "normbt_viz", "train", "--resume", str(run.path)], cwd=REPO,
                                         env=env, capture_output=True, text=True, timeout=120)
            assert refused_run.returncode == 2 and "no checkpoint" in refused_run.stderr, refused_run.stderr
            assert refused_run.stderr.strip().count("\n") == 0, refused_run.stderr
            refused += 1
            run, fresh_starts = None, fresh_starts + 1

    if run is None or run.status()["state"] != "done":
        if run is None:
            final = subprocess.run([sys.executable, "-m", "normbt_viz", "train", *TRAIN, "--runs", str(root)], cwd=REPO, env=env,
                                   capture_output=True, text=True, timeout=120)
            run = list_runs(root)[0]
        else:
            final = subprocess.run([sys.executable, "-m", "normbt_viz", "train", "--resume", str(run.path)], cwd=REPO, env=env,
                                   capture_output=True, text=True, timeout=120)
        assert final.returncode == 0, final.stderr[-2000:]
    assert run.status()["state"] == "done"
    assert_files_parse(run)
    metrics = run.metrics()
    training = metrics[metrics["loss"].notna()]["step"].tolist()
    assert training == list(range(1, MAX_STEPS + 1))  # no gap, no duplicate
    evals = metrics[metrics["eval_accuracy"].notna()]["step"].tolist()
    assert evals == list(range(0, MAX_STEPS + 1, EVAL_EVERY))
    steps = run.records(columns=["step"])["step"]
    assert steps.nunique() == MAX_STEPS and steps.value_counts().nunique() == 1
    assert sorted(run.pair_steps()) == list(range(0, MAX_STEPS + 1, EVAL_EVERY))
    resumed_from = run.status().get("resumed_from")
    assert cycles >= 20, cycles
    print(f"\nFAULTS kill-and-resume: {cycles} SIGKILL cycles, {kills_before_checkpoint} before a checkpoint "
          f"({refused} resume refusals, {fresh_starts} fresh starts, {completed} runs done before the last), final run last resumed from step {resumed_from}, "
          f"{time.time() - started:.1f} s; after each kill (step/checkpoint): {' '.join(trace)}", file=sys.stderr)
