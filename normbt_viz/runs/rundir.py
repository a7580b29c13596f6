"""The run directory: the contract between the trainer, the app, the CLI and any remote machine.

    <runs_root>/<run_name>/
        spec.json            the resolved RunSpec (the only input a training process needs)
        status.json          state, step, total_steps, timestamps, pid, host, error
        metrics.jsonl        one JSON object per logged step
        pairs/step_<N>.parquet   per-pair diagnostics at evaluation step N
        model/               the trained reward model (safetensors) and, where it reads the same h, an
                             AutoModelForSequenceClassification export
        scores/<benchmark>.json            benchmark scores (`python -m normbt_viz rewardbench`)
        scores/<benchmark>.examples.parquet   their per-example contributions (for paired bootstraps)
        cancel               present when a user asked the run to stop

Every file is written to a temporary file and renamed, so a process killed at any moment leaves files
that parse. A run whose process died before finishing reads as `interrupted`.
"""

from __future__ import annotations

import json
import math
import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from normbt_viz.spec import RunSpec

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
LIVE_STATES = ("queued", "running")


def default_runs_root() -> Path:
    return Path(os.environ.get("NORMBT_VIZ_RUNS", "runs"))


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def score_examples_path(score_json: Path) -> Path:
    """The per-example table stored beside a benchmark score file: `<stem>.examples.parquet`."""
    score_json = Path(score_json)
    return score_json.with_name(f"{score_json.stem}.examples.parquet")


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item"):
        return _json_safe(value.item())
    return value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped by its parent) still answers kill(0); /proc tells them apart.
    stat = Path(f"/proc/{pid}/stat")
    if stat.is_file():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return True
    return True


@dataclass
class RunDir:
    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    # writing ---------------------------------------------------------------------------------------
    def create(self, spec: RunSpec) -> "RunDir":
        self.path.mkdir(parents=True, exist_ok=False)
        atomic_write_text(self.path / "spec.json", spec.to_json())
        self.write_status(state="queued", step=0, total_steps=None, created_at=time.time())
        return self

    def write_status(self, **fields) -> dict:
        status = self.read_raw_status()
        status.update(fields)
        status["updated_at"] = time.time()
        atomic_write_text(self.path / "status.json", json.dumps(_json_safe(status), indent=2))
        return status

    def mark_running(self) -> None:
        self.write_status(state="running", pid=os.getpid(), host=socket.gethostname(), started_at=time.time())

    def write_metrics(self, rows: list[dict]) -> None:
        """Rewrite the whole metrics file atomically: it stays small and never ends in half a line."""
        atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(_json_safe(r)) + "\n" for r in rows))

    def write_pairs(self, step: int, frame: pd.DataFrame) -> None:
        atomic_write_parquet(frame, self.path / "pairs" / f"step_{step}.parquet")

    def write_json(self, name: str, payload: dict) -> None:
        atomic_write_text(self.path / name, json.dumps(_json_safe(payload), indent=2))

    def request_cancel(self) -> None:
        atomic_write_text(self.path / "cancel", str(time.time()))

    @property
    def cancel_requested(self) -> bool:
        return (self.path / "cancel").exists()

    # reading ---------------------------------------------------------------------------------------
    def spec(self) -> RunSpec:
        return RunSpec.load(self.path / "spec.json")

    def read_raw_status(self) -> dict:
        path = self.path / "status.json"
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:  # edited by hand or copied half-way: show it, do not hide the other runs
            return {"state": "unreadable", "error": f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}"}

    def status(self) -> dict:
        """status.json, with a live state whose process is gone on this host reported as interrupted."""
        status = self.read_raw_status()
        state = status.get("state")
        if state in LIVE_STATES and status.get("pid") and status.get("host") == socket.gethostname():
            if not _pid_alive(int(status["pid"])):
                status["state"] = "interrupted"
        return status

    def metrics(self) -> pd.DataFrame:
        path = self.path / "metrics.jsonl"
        if not path.is_file():
            return pd.DataFrame()
        rows = []
        for line in path.read_text().splitlines():
            if line.strip():
                rows.append(json.loads(line))
        return pd.DataFrame(rows)

    def pair_steps(self) -> list[int]:
        folder = self.path / "pairs"
        if not folder.is_dir():
            return []
        return sorted(int(p.stem.split("_")[1]) for p in folder.glob("step_*.parquet"))

    def pairs(self, step: int | None = None) -> pd.DataFrame:
        """Per-pair diagnostics at `step` (default: the last recorded step)."""
        steps = self.pair_steps()
        if not steps:
            return pd.DataFrame()
        step = steps[-1] if step is None else step
        return pd.read_parquet(self.path / "pairs" / f"step_{step}.parquet")

    def read_json(self, name: str) -> dict:
        path = self.path / name
        return json.loads(path.read_text()) if path.is_file() else {}

    def score_path(self, benchmark: str) -> Path:
        """Where the benchmark's scores of this run's model go: scores/<benchmark>.json."""
        return self.path / "scores" / f"{benchmark}.json"

    def read_scores(self) -> dict[str, dict]:
        """{benchmark: result} for every scores/*.json; a file that does not parse reads as {"error": one line}."""
        results = {}
        for path in sorted((self.path / "scores").glob("*.json")):
            try:
                results[path.stem] = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                results[path.stem] = {"error": f"{path}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        return results

    def score_examples(self, benchmark: str) -> pd.DataFrame:
        """The per-example contributions stored beside scores/<benchmark>.json (empty when there are none)."""
        path = score_examples_path(self.score_path(benchmark))
        return pd.read_parquet(path) if path.is_file() else pd.DataFrame()


def list_runs(runs_root: str | Path) -> list[RunDir]:
    """Run directories under the root, newest first (a folder counts once it has a spec.json)."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if p.is_dir() and (p / "spec.json").is_file()]
    return sorted(runs, key=lambda r: (r.read_raw_status().get("created_at") or 0, r.name), reverse=True)


def runs_table(runs_root: str | Path) -> pd.DataFrame:
    """One row per run: name, arm, state, progress and headline metrics (for the CLI and the app)."""
    rows = []
    for run in list_runs(runs_root):
        status = run.status()
        try:
            spec = run.spec()
        except Exception as exc:  # a broken spec must not hide the other runs
            rows.append({"run": run.name, "state": "unreadable", "error": str(exc)})
            continue
        metrics = run.metrics()
        last_eval = metrics.dropna(subset=["eval_accuracy"]).iloc[-1] if "eval_accuracy" in metrics else None
        started, updated = status.get("started_at"), status.get("updated_at")
        rows.append(
            {
                "run": run.name,
                "arm": spec.arm_name,
                "seed": spec.seed,
                "backbone": spec.backbone,
                "dataset": spec.dataset,
                "scope": spec.scope,
                "state": status.get("state"),
                "step": status.get("step"),
                "total_steps": status.get("total_steps"),
                "elapsed_s": round(updated - started, 1) if started and updated else None,
                "eval_accuracy": None if last_eval is None else last_eval["eval_accuracy"],
                "eval_loss": None if last_eval is None else last_eval.get("eval_loss"),
                "error": status.get("error"),
            }
        )
    return pd.DataFrame(rows)
