"""Faults: real training processes killed with SIGKILL at random moments and resumed, two runs training at once
while their files are read, cancel ending a whole process group, files broken or removed under the app, and a
runs folder that cannot be created. No mocks: real processes, real signals, real files."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from normbt_viz import cli
from normbt_viz.runs.launcher import cancel, launch
from normbt_viz.runs.rundir import RunDir, list_runs
from normbt_viz.spec import RunSpec

REPO = Path(__file__).resolve().parents[1]
MAX_STEPS = 300
TRAIN = ["--demo-size", "200", "--max-steps", str(MAX_STEPS), "--save-every", "5", "--eval-every", "50",
         "--batch-size", "8", "--save-total-limit", "2", "--num-threads", "1"]


def _env(feature_cache: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "NORMBT_VIZ_CACHE": str(feature_cache)}


def _start(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "normbt_viz", *args], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def assert_files_parse(run: RunDir) -> None:
    """Every file of the run directory reads: status, spec, metrics, each snapshot, the record stream, bins,
    pair texts; every checkpoint listed is complete (a `.tmp` staging folder is never listed as one)."""
    assert isinstance(json.loads(run.status_path.read_text()), dict)
    run.spec()
    metrics = run.metrics()
    if len(metrics):
        assert metrics["step"].notna().all()
    for step in run.pair_steps():
        assert len(run.pairs(step)) > 0
    run.records(columns=["step", "pair_id"])
    if run.bins_path.is_file():
        run.bin_edges()
    if run.pair_texts_path.is_file():
        assert len(run.pair_texts()) > 0
    for step in run.checkpoint_steps():
        folder = run.checkpoint_path(step)
        assert not folder.name.endswith(".tmp")
        state = json.loads((folder / "trainer_state.json").read_text())
        assert state["step"] == step
        assert (folder / "initial_distance.npy").is_file()


def _train_page(root: Path) -> AppTest:
    at = AppTest.from_file(str(REPO / "pages" / "2_Train.py"), default_timeout=60)
    at.session_state["runs_root"] = str(root)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


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
                           "--out", str(tmp_path / "warm")], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert warm.returncode == 0, warm.stderr[-2000:]

    run: RunDir | None = None
    cycles = fresh_starts = refused = 0
    kills_before_checkpoint = 0
    while cycles < 22:
        known = {r.path for r in list_runs(root)}
        process = _start(["train", "--resume", str(run.path)] if run else ["train", *TRAIN, "--out", str(root)], env)
        time.sleep(rng.uniform(0.0, 4.5))
        finished = process.poll() is not None
        os.kill(process.pid, signal.SIGKILL)
        process.communicate()
        cycles += 1
        if run is None:
            new = [r for r in list_runs(root) if r.path not in known]
            if not new:  # killed before the run directory existed: nothing to check, start again
                continue
            run = new[0]
        assert not finished or process.returncode in (0, -9), process.returncode
        assert_files_parse(run)
        state = run.status()["state"]
        if state == "done":  # the kill came after the end: nothing left to lose
            break
        assert state == "interrupted", run.status()
        # the CLI (its real entry point, in this process) and the Train page both show it
        assert cli.main(["runs", "--out", str(root)]) == 0
        line = [row for row in capsys.readouterr().out.splitlines() if run.name in row]
        assert line and "interrupted" in line[0], line
        at = _train_page(root)
        labels = [p.proto.text for p in at.get("progress")]
        assert any(run.name in text and "· interrupted ·" in text for text in labels), labels
        resumable = [b for b in at.button if b.key == f"resume_{run.name}"]
        assert bool(resumable) == bool(run.checkpoint_steps())
        if not run.checkpoint_steps():
            kills_before_checkpoint += 1
            refused_run = subprocess.run([sys.executable, "-m", "normbt_viz", "train", "--resume", str(run.path)], cwd=REPO,
                                         env=env, capture_output=True, text=True, timeout=120)
            assert refused_run.returncode == 2 and "no checkpoint" in refused_run.stderr, refused_run.stderr
            assert refused_run.stderr.strip().count("\n") == 0, refused_run.stderr
            refused += 1
            run, fresh_starts = None, fresh_starts + 1
        assert time.time() - started < 80, f"{cycles} cycles took too long"

    if run is None or run.status()["state"] != "done":
        if run is None:
            final = subprocess.run([sys.executable, "-m", "normbt_viz", "train", *TRAIN, "--out", str(root)], cwd=REPO, env=env,
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
    assert evals == list(range(0, MAX_STEPS + 1, 50))
    steps = run.records(columns=["step"])["step"]
    assert steps.nunique() == MAX_STEPS and steps.value_counts().nunique() == 1
    assert sorted(run.pair_steps()) == list(range(0, MAX_STEPS + 1, 50))
    assert cycles >= 20, cycles
    print(f"\nFAULTS kill-and-resume: {cycles} SIGKILL cycles, {kills_before_checkpoint} before a checkpoint "
          f"({refused} resume refusals, {fresh_starts} fresh starts), resumed from {run.status().get('resumed_from')}, "
          f"{time.time() - started:.1f} s", file=sys.stderr)


def test_two_runs_at_once_while_read(tmp_path, feature_cache):
    """Two training processes (BT and NormBT) into one runs root, read in a loop while they train: every read
    parses, each run's metrics are its own (steps 1..N once each), the two specs differ in arm."""
    env = _env(feature_cache)
    root = tmp_path / "runs"
    steps = 150
    processes = [_start(["train", "--demo-size", "200", "--max-steps", str(steps), "--eval-every", "50", "--num-threads", "1",
                         "--loss", loss, "--out", str(root)], env) for loss in ("bt", "normbt")]
    reads = 0
    deadline = time.time() + 80
    while any(p.poll() is None for p in processes) and time.time() < deadline:
        for run in list_runs(root):
            if not run.spec_path.is_file():
                continue
            assert_files_parse(run)
            metrics = run.metrics()
            if "loss" in metrics:
                training = metrics[metrics["loss"].notna()]["step"].tolist()
                assert training == list(range(1, len(training) + 1)), run.name
            reads += 1
        time.sleep(0.05)
    for p in processes:
        assert p.wait(timeout=60) == 0, p.stderr.read()[-2000:]
    runs = list_runs(root)
    assert len(runs) == 2 and reads > 10
    assert {r.spec().loss for r in runs} == {"bt", "normbt"}
    assert runs[0].spec().arm_name != runs[1].spec().arm_name
    for run in runs:
        assert run.status()["state"] == "done"
        metrics = run.metrics()
        assert metrics[metrics["loss"].notna()]["step"].tolist() == list(range(1, steps + 1))
        assert metrics["step"].max() == steps
    at = AppTest.from_file(str(REPO / "pages" / "3_Runs.py"), default_timeout=60)
    at.session_state["runs_root"] = str(root)
    at.run()
    assert not at.exception and not at.error
    print(f"\nFAULTS concurrent: 2 runs, {reads} reads while training, 0 corrupted", file=sys.stderr)


def _gone(group: int) -> bool:
    try:
        os.waitpid(group, os.WNOHANG)  # the worker is our child: reap it, or its zombie answers kill(0)
    except ChildProcessError:
        pass
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("processes,grace_s", [(1, 5.0), (2, 5.0), (1, 0.0), (2, 0.0)])
def test_cancel_ends_the_whole_process_group(tmp_path, feature_cache, processes, grace_s, monkeypatch):
    """cancel() of a live background run: within ~10 s no process of its group is alive and it reads cancelled.
    With the default grace the loop's cancel file does it; with grace 0 the group's SIGTERM does (the path a run
    stuck in a long step takes)."""
    monkeypatch.setenv("NORMBT_VIZ_CACHE", str(feature_cache))
    root = tmp_path / "runs"
    spec = RunSpec(demo_size=200, max_steps=100000, eval_every=100000, num_threads=1)
    (run,) = launch([spec], root, processes=processes)
    group = int(run.read_raw_status()["pid"])  # the worker: started with start_new_session, so its pid is the group
    deadline = time.time() + 60
    while time.time() < deadline and not (run.read_raw_status().get("state") == "running" and run.metrics().shape[0] > 2):
        time.sleep(0.1)
    assert run.read_raw_status().get("state") == "running", run.read_raw_status()
    asked = time.time()
    cancel(run, grace_s=grace_s)
    while time.time() - asked < 12 and not (_gone(group) and run.status()["state"] == "cancelled"):
        time.sleep(0.1)
    took = time.time() - asked
    assert _gone(group), f"process group {group} still alive {took:.1f} s after cancel"
    assert run.status()["state"] == "cancelled", run.status()
    assert took < 10
    print(f"\nFAULTS cancel (processes={processes}, grace {grace_s:.0f} s): group ended and run cancelled in {took:.1f} s", file=sys.stderr)


def test_corrupted_snapshot_and_removed_run_show_one_error(trained_runs, tmp_path, monkeypatch):
    """Garbage bytes in a pairs snapshot: the page reading it shows one error line; a page on the other run keeps
    working. A run directory removed while the app shows it: the next rerun shows one error line or the other run."""
    root = tmp_path / "runs"
    for arm, run in trained_runs.items():
        shutil.copytree(run.path, root / run.name)
    bt, normbt = RunDir(root / trained_runs["bt"].name), RunDir(root / trained_runs["normbt"].name)
    step = bt.pair_steps()[-1]
    bt.pairs_path(step).write_bytes(b"\x00garbage, not parquet\xff" * 10)

    def page(name: str, **state) -> AppTest:
        at = AppTest.from_file(str(REPO / "pages" / name), default_timeout=60)
        at.session_state["runs_root"] = str(root)
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    for name, state in (("4_Gradients.py", {}), ("6_Pairs.py", {"pairs_run": bt.name})):
        at = page(name, **state)
        assert len(at.error) == 1 and bt.name in at.error[0].value and "step_" in at.error[0].value, [e.value for e in at.error]
    # the NormBT run's page works; only its "Compare with" tab, which reads the broken BT snapshot, says so
    ok = page("6_Pairs.py", pairs_run=normbt.name)
    assert len(ok.error) == 1 and bt.name in ok.error[0].value and len(ok.dataframe) >= 2, [e.value for e in ok.error]
    runs_page = page("3_Runs.py")  # its comparison reads the broken final snapshot: one line, the table stays
    assert len(runs_page.error) == 1 and "cannot compare" in runs_page.error[0].value and len(runs_page.dataframe) >= 1

    # removed while shown: the Pairs page showed the NormBT run, then its folder goes
    shutil.rmtree(normbt.path)
    ok.run()
    assert not ok.exception, [e.value for e in ok.exception]
    assert len(ok.error) <= 1
    assert RunDir(normbt.path).status() == {} and RunDir(normbt.path).metrics().empty and RunDir(normbt.path).pairs().empty
    assert cli.main(["runs", "--out", str(root)]) == 0


def test_runs_folder_that_cannot_be_created_is_one_line(tmp_path, feature_cache):
    """A runs root under a regular file (fails even for root): one line naming the folder, exit 2, no file written."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file")
    env = _env(feature_cache)
    for out in (blocker, blocker / "runs"):
        result = subprocess.run([sys.executable, "-m", "normbt_viz", "train", "--demo-size", "60", "--max-steps", "2",
                                 "--out", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr[-2000:]
        assert result.stderr.strip().count("\n") == 0 and str(blocker) in result.stderr, result.stderr
        listed = subprocess.run([sys.executable, "-m", "normbt_viz", "runs", "--out", str(out)], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=60)
        assert listed.returncode == 2 and str(blocker) in listed.stderr and listed.stderr.strip().count("\n") == 0, listed.stderr
    assert blocker.read_text() == "a file" and sorted(p.name for p in tmp_path.iterdir()) == ["not_a_folder"]
