"""Faults: two runs training at once while their files are read, cancel ending a whole process group, files
broken or removed under the app, and a runs folder that cannot be created. No mocks: real processes, real
signals, real files. (SIGKILL at random moments and resume: tests/test_faults_kill.py.)"""

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
    at = AppTest.from_file(str(REPO / "pages" / "1_Train.py"), default_timeout=60)
    at.session_state["runs_root"] = str(root)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory, feature_cache):
    """(root, steps, reads): BT and NormBT trained by two processes at once into one root, every file of both
    parsed in a loop while they train (the runs are then reused by the broken-file test)."""
    env = _env(feature_cache)
    root = tmp_path_factory.mktemp("concurrent") / "runs"
    steps = 150
    processes = [_start(["train", "--demo-size", "200", "--max-steps", str(steps), "--eval-every", "50", "--num-threads", "1",
                         "--loss", loss, "--runs", str(root)], env) for loss in ("bt", "normbt")]
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
    return root, steps, reads


def test_two_runs_at_once_while_read(concurrent):
    """Two training processes (BT and NormBT) into one runs root, read in a loop while they train: every read
    parses, each run's metrics are its own (steps 1..N once each), the two specs differ in arm."""
    root, steps, reads = concurrent
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


# One process with grace 0 (the group's SIGTERM ends it), a torchrun pair with the default grace (the loop's
# cancel file ends both ranks first); the other two combinations pass too (run by hand) and cost 20 s more.
@pytest.mark.parametrize("processes,grace_s", [(1, 0.0), (2, 5.0)])
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


def test_corrupted_snapshot_and_removed_run_show_one_error(concurrent, tmp_path):
    """Garbage bytes in a pairs snapshot: the page reading it shows one error line; a page on the other run keeps
    working. A run directory removed while the app shows it: the next rerun shows one error line or the other run."""
    root = tmp_path / "runs"
    shutil.copytree(concurrent[0], root)
    by_loss = {run.spec().loss: run for run in list_runs(root)}
    bt, normbt = by_loss["bt"], by_loss["normbt"]
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

    # Gradients opens at step 0; the broken snapshot is the last step's, so the page is asked for that one.
    for name, state in (("4_Gradients.py", {"grad_step": step}), ("6_Pairs.py", {"pairs_run": bt.name})):
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
    assert cli.main(["runs", "--runs", str(root)]) == 0


def test_runs_folder_that_cannot_be_created_is_one_line(tmp_path, feature_cache):
    """A runs root under a regular file (fails even for root): one line naming the folder, exit 2, no file written."""
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file")
    env = _env(feature_cache)
    for out in (blocker, blocker / "runs"):
        result = subprocess.run([sys.executable, "-m", "normbt_viz", "train", "--demo-size", "60", "--max-steps", "2",
                                 "--runs", str(out)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr[-2000:]
        assert result.stderr.strip().count("\n") == 0 and str(blocker) in result.stderr, result.stderr
        listed = subprocess.run([sys.executable, "-m", "normbt_viz", "runs", "--runs", str(out)], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=60)
        assert listed.returncode == 2 and str(blocker) in listed.stderr and listed.stderr.strip().count("\n") == 0, listed.stderr
    assert blocker.read_text() == "a file" and sorted(p.name for p in tmp_path.iterdir()) == ["not_a_folder"]
