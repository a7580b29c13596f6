"""Start runs in the background and stop them, speaking only run specs and run directories.

One worker process (`python -m normbt_viz worker DIR...`) trains a group of runs one after another: on a
2-core CPU two runs at once are each slower than both in a row, and the later runs of a group reuse the
feature cache the first one built. The worker starts its own session, so it outlives the app's script
thread, a page reload and an app restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from normbt_viz.runs.rundir import LIVE_STATES, RunDir, safe_name
from normbt_viz.spec import RunSpec


def new_run_dir(runs_root: str | Path, spec: RunSpec, **status) -> RunDir:
    """Create `<root>/<arm>-s<seed>-<time>-<id>` with spec.json and a queued status."""
    spec.resolve()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    # The name is sanitised so that no spec (from the app, a file or a flag) can place a run outside the root;
    # the time stamp, a random suffix and create()'s exist_ok=False keep it from overwriting another run.
    return RunDir(Path(runs_root) / f"{safe_name(spec.name)}-{stamp}-{uuid.uuid4().hex[:4]}").create(spec, **status)


def train_inline(spec: RunSpec, runs_root: str | Path) -> tuple[RunDir, dict]:
    """Train `spec` in this process into a new run directory; returns it and its final status."""
    from normbt_viz.train.loop import run_training

    run = new_run_dir(runs_root, spec)
    return run, run_training(run.spec(), run)


def launch(specs: list[RunSpec], runs_root: str | Path, processes: int = 1) -> list[RunDir]:
    """Queue `specs` as new runs and start one background worker that trains them in order, each run on
    `processes` data-parallel processes (one per local GPU; a torchrun group started by the worker).

    Every spec is checked first (its data loads, its backbone resolves), so bad input is reported here, in
    one line, rather than as a run that fails in the background."""
    from normbt_viz.train.preflight import preflight

    checked = set()
    for spec in specs:
        key = (repr(spec.source), spec.backbone, spec.loss)  # what preflight checks: the data, the backbone, the loss's needs
        if key not in checked:
            preflight(spec)
            checked.add(key)
    runs = [new_run_dir(runs_root, spec) for spec in specs]
    # The worker's log is kept in the first run of its queue; every run's status points to it.
    with runs[0].open_log() as log:
        process = start_detached([sys.executable, "-m", "normbt_viz", "worker", "--processes", str(processes),
                                  *[str(r.path) for r in runs]], log)
    for run in runs:
        # Queued runs carry the worker's pid too, so a worker that dies marks its whole queue interrupted.
        run.write_status(pid=process.pid, host=os.uname().nodename, log=str(runs[0].log_path))
    return runs


CANCEL_GRACE_S = 5.0


def cancel(run: RunDir, grace_s: float = CANCEL_GRACE_S) -> None:
    """Ask a run to stop: a queued run never starts, a running one stops at its next step. A run still live
    `grace_s` later (a step that takes long, a torchrun group) has its process group sent SIGTERM from a
    background thread, so the caller (the app's script run) does not wait: the worker was started in its own
    session, so its pid is the group id and the signal reaches every process of the run; run_training turns
    SIGTERM into `cancelled`."""
    run.request_cancel()
    status = run.read_raw_status()
    if status.get("state") == "queued":  # its worker skips it; the worker's other runs go on
        run.write_status(state="cancelled", error="cancelled before it started", finished_at=time.time())
        return
    pid = status.get("pid")
    if status.get("state") == "running" and pid and status.get("host") in (None, os.uname().nodename):
        try:
            group = os.getpgid(int(pid))  # under torchrun the recorded pid is rank 0's, not the group leader's
        except ProcessLookupError:
            return
        if group == os.getpgid(0):  # trained inside this very process (train_inline): never signal ourselves
            return
        import threading

        threading.Thread(target=_end_group_after, args=(run, group, grace_s), daemon=True).start()


def _end_group_after(run: RunDir, group: int, grace_s: float) -> None:
    deadline = time.time() + grace_s
    while time.time() < deadline:
        if run.status().get("state") not in LIVE_STATES:
            return
        time.sleep(0.2)
    try:
        os.killpg(group, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.time() + grace_s
    while time.time() < deadline and _group_alive(group):
        time.sleep(0.1)
    if _group_alive(group):  # SIGTERM did not end it (a stuck collective): end it for good
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if run.read_raw_status().get("state") in LIVE_STATES:  # killed before run_training could record it
        run.write_status(state="cancelled", error="cancelled (process group ended)", finished_at=time.time())


def _group_alive(group: int) -> bool:
    try:  # a worker this process started and nobody reaped is a zombie that still answers kill(0)
        os.waitpid(group, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def work(run_paths: list[str], processes: int = 1) -> int:
    """The worker's loop: train each queued run in turn; a failure is recorded and the queue goes on.

    With several processes each run is one torchrun group (`train --run-dir`), all in the worker's session,
    so ending that session ends every process of the run."""
    from normbt_viz.train.loop import run_training

    failures = 0
    for path in run_paths:
        run = RunDir(path)
        if run.cancel_requested or run.read_raw_status().get("state") != "queued":
            continue
        before = _cpu_seconds()
        if processes > 1:
            failures += subprocess.call(distributed_command(run.path, processes)) != 0
        else:
            try:
                run_training(run.spec(), run)
            except Exception as exc:  # recorded in status.json by run_training; keep going with the queue
                print(f"{run.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
                failures += 1
        # The CPU time the run used, beside its wall time: their ratio says how much of the machine it had, so
        # time estimates can tell a slow run from a busy machine (runs/estimate.py).
        run.write_status(cpu_s=round(_cpu_seconds() - before, 2))
    return 1 if failures else 0


def _cpu_seconds() -> float:
    """User and system CPU time of this process and its finished children (a torchrun group), all threads."""
    import resource

    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                   resource.getrusage(resource.RUSAGE_CHILDREN)))


def local_gpu_count() -> int:
    """CUDA devices on this machine: how many data-parallel processes one run may use here."""
    import torch

    return torch.cuda.device_count()


def distributed_command(run_path: str | Path, processes: int) -> list[str]:
    """The torchrun command that trains an existing queued run directory on `processes` local processes."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "normbt_viz", "train", "--run-dir", str(run_path)]


CLUSTER_GPUS = 8  # the GPUs of one node, unless the user gives another number


def cluster_commands(spec_path: str | Path, gpus: int = CLUSTER_GPUS, runs_root: str = "/shared/runs", arms: list[str] | None = None,
                     seeds: list[int] | None = None) -> dict[str, str]:
    """The commands that train a written spec elsewhere, as the README gives them: one GPU, every GPU of a box
    (accelerate launch), and a Slurm job whose run directory on shared storage the app then reads. With `arms`
    or `seeds` they run `compare`, one run per arm and seed from the one spec, instead of `train`."""
    spec = f"--spec {spec_path} --runs {runs_root}"
    if arms or seeds:
        command = f"compare {spec} --losses {','.join(arms or ['bt'])} --seeds {','.join(map(str, seeds or [0]))}"
    else:
        command = f"train {spec}"
    return {
        "one GPU": f"python -m normbt_viz {command}",
        "every GPU of one box": f"accelerate launch --config_file configs/accelerate/multi_gpu_ddp.yaml --num_processes {gpus} -m normbt_viz {command}",
        "Slurm": f"srun --nodes 1 --ntasks-per-node 1 --gpus-per-node {gpus} accelerate launch --config_file configs/accelerate/multi_gpu_ddp.yaml --num_processes {gpus} -m normbt_viz {command}",
    }


def start_detached(argv: list[str], log) -> subprocess.Popen:
    """Start `argv` in its own session (it outlives the app's script run, a page reload and an app restart),
    its output appended to the open `log` handle (from `RunDir.open_log` or `AuditDir.open_log`)."""
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def resume(run: RunDir) -> None:
    """Continue an interrupted or cancelled run from its last checkpoint, in a background process."""
    with run.open_log() as log:
        start_detached([sys.executable, "-m", "normbt_viz", "train", "--resume", str(run.path)], log)
