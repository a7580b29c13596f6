"""The run directory: the contract between the trainer, the app, the CLI and any remote machine.

    <runs_root>/<run_name>/
        spec.json            the resolved RunSpec (the only input a training process needs)
        status.json          state, step, total_steps, timestamps, pid, host, error
        metrics.jsonl        one JSON object per logged step, appended (a torn last line is skipped on read)
        pairs/step_<N>.parquet   per-pair diagnostics at evaluation step N
        records/steps_<A>-<B>.parquet   every trained pair's record at every step A..B, from the training forward
        bins.json            the distance-bin edges (fixed per pair from the initial model's eval distances)
        pair_texts.parquet   prompt, chosen and rejected of every pair the run saw, by pair_id
        load_report.json     the data load's story: layout, mapping, assumptions, skipped rows, ties, truncation
        projections/<method>_<view>.npy   cached 2-D maps for the Embeddings page
        representations/step_<N>.npz  the h the head read for a sample of eval pairs at step N (backbone scopes)
        checkpoints/step_<N>/   resumable state (Accelerate's save_state + trainer_state.json), the last few kept
        model/               the trained reward model (safetensors) and, where it reads the same h, an
                             AutoModelForSequenceClassification export
        scores/<benchmark>.json            benchmark scores (`python -m normbt_viz rewardbench`)
        scores/<benchmark>.examples.parquet   their per-example contributions (for paired bootstraps)
        cancel               present when a user asked the run to stop
        worker.log           the output of the background process that trained it (first run of a queue)

    <runs_root>/_uploads/<hash>-<name>   files uploaded in the app, which runs then read

`RunDir` is the only code that knows these names: everything else asks it for a path or a table. Every file
is written through `normbt_viz.atomic`, so a process killed at any moment leaves files that parse. A run whose
process died before finishing reads as `interrupted`.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from normbt_viz.atomic import atomic_write, atomic_write_json, atomic_write_text, json_safe
from normbt_viz.errors import SpecError, first_line
from normbt_viz.spec import RunSpec

_UNSAFE = __import__("re").compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, fallback: str = "run") -> str:
    """`name` as one harmless path component: characters other than letters, digits, '.', '_' and '-' become
    '_', leading dots go (no '..', no hidden files), at most 80 characters; `fallback` when nothing is left.
    Run names and upload names from the app or a spec pass through here before they touch the disk."""
    cleaned = _UNSAFE.sub("_", str(name)).lstrip(".")[:80]
    return cleaned if cleaned.strip("_") else fallback


def safe_upload_name(name: str) -> str:
    """A browser-sent file name as a safe file name in `_uploads`: its last component only (either slash),
    the stem through `safe_name`, the extension kept only when it is a data format the loader reads."""
    base = Path(str(name).replace("\\", "/").split("/")[-1])
    suffix = base.suffix.lower() if base.suffix.lower() in (".jsonl", ".json", ".csv", ".parquet") else ""
    return safe_name(base.stem if suffix else base.name, "upload") + suffix



def store_upload(runs_root: str | Path, name: str, content: bytes) -> Path:
    """Keep a file uploaded in the app under `<runs_root>/_uploads`, named by its content's hash and a harmless
    form of the browser-sent name (so it cannot leave the folder); the same content is stored once."""
    import hashlib

    target = Path(runs_root) / "_uploads" / f"{hashlib.sha256(content).hexdigest()[:12]}-{safe_upload_name(name)}"
    if not target.is_file():
        atomic_write(target, lambda tmp: tmp.write_bytes(content))
    return target


STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
LIVE_STATES = ("queued", "running")


def default_runs_root() -> Path:
    return Path(os.environ.get("NORMBT_VIZ_RUNS", "runs"))


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def score_examples_path(score_json: Path) -> Path:
    """The per-example table stored beside a benchmark score file: `<stem>.examples.parquet`."""
    score_json = Path(score_json)
    return score_json.with_name(f"{score_json.stem}.examples.parquet")


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

    # the layout ------------------------------------------------------------------------------------
    @property
    def spec_path(self) -> Path:
        return self.path / "spec.json"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def bins_path(self) -> Path:
        return self.path / "bins.json"

    @property
    def pair_texts_path(self) -> Path:
        return self.path / "pair_texts.parquet"

    @property
    def load_report_path(self) -> Path:
        return self.path / "load_report.json"

    @property
    def model_path(self) -> Path:
        return self.path / "model"

    @property
    def cancel_path(self) -> Path:
        return self.path / "cancel"

    @property
    def trackers_path(self) -> Path:
        """Where a local tracker (TensorBoard) writes its event files for this run (report_to)."""
        return self.path / "trackers"

    @property
    def log_path(self) -> Path:
        return self.path / "worker.log"

    def pairs_path(self, step: int) -> Path:
        return self.path / "pairs" / f"step_{step}.parquet"

    def projection_path(self, method: str, view: str) -> Path:
        """One file per method and view, not per step: the mapped pairs and vectors are the same at every step."""
        return self.path / "projections" / f"{method}_{view}.npy"

    # writing ---------------------------------------------------------------------------------------
    def create(self, spec: RunSpec, **status) -> "RunDir":
        """Make the folder with status.json first and spec.json last: a folder counts as a run once it has a
        spec, so a run that is listed always has a status (`status` adds fields such as the creator's pid)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError, PermissionError, OSError) as exc:
            raise SpecError(f"runs folder {self.path.parent} cannot be created or written: {exc.strerror or exc}") from exc
        if not self.path.parent.is_dir():
            raise SpecError(f"runs folder {self.path.parent} is not a folder")
        self.path.mkdir(exist_ok=False)
        self.write_status(state="queued", step=0, total_steps=None, created_at=time.time(), **status)
        self.write_spec(spec)
        return self

    def write_model_card(self, text: str) -> Path:
        """Replace the model card (README.md) of the run's sequence-classifier export; returns its path."""
        from normbt_viz.model.export import EXPORT_DIR

        path = self.model_path / EXPORT_DIR / "README.md"
        atomic_write_text(path, text)
        return path

    def write_status(self, **fields) -> dict:
        status = self.read_raw_status()
        status.update(fields)
        status["updated_at"] = time.time()
        atomic_write_json(self.status_path, status)
        return status

    def mark_running(self) -> None:
        self.write_status(state="running", pid=os.getpid(), host=socket.gethostname(), started_at=time.time())

    def append_metrics(self, rows: list[dict]) -> None:
        """Append rows to metrics.jsonl. Not atomic and not fsynced (that made a run quadratic in its steps):
        a kill mid-write can leave a torn last line, which `metrics()` skips."""
        self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.metrics_path, "a") as handle:
            handle.write("".join(json.dumps(json_safe(r)) + "\n" for r in rows))

    def write_records(self, frame: pd.DataFrame) -> None:
        """One chunk of the per-pair record stream (rows of consecutive steps), as its own Parquet file."""
        if frame.empty:
            return
        first, last = int(frame["step"].min()), int(frame["step"].max())
        _write_parquet(frame, self.path / "records" / f"steps_{first:08d}-{last:08d}.parquet")

    def write_spec(self, spec: RunSpec) -> None:
        atomic_write_text(self.spec_path, spec.to_json())

    def write_pairs(self, step: int, frame: pd.DataFrame) -> None:
        _write_parquet(frame, self.pairs_path(step))

    def write_pair_texts(self, frame: pd.DataFrame) -> None:
        _write_parquet(frame, self.pair_texts_path)

    def write_load_report(self, report: dict) -> None:
        atomic_write_json(self.load_report_path, report)

    def load_report(self) -> dict | None:
        """The data load's story as the trainer saved it (LoadReport.to_dict()); None for runs older than it."""
        if not self.load_report_path.is_file():
            return None
        return json.loads(self.load_report_path.read_text())

    def write_bins(self, edges: list[float], source: str) -> None:
        atomic_write_json(self.bins_path, {"edges": edges, "source": source})

    def write_projection(self, method: str, view: str, coords) -> None:
        import numpy as np

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:  # a file object: np.save would append ".npy" to a bare path
                np.save(handle, coords)

        atomic_write(self.projection_path(method, view), write)

    def representations_path(self, step: int) -> Path:
        return self.path / "representations" / f"step_{step}.npz"

    def write_representations(self, step: int, pair_ids, h_chosen, h_rejected) -> None:
        import numpy as np

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:  # a file object: np.savez would append ".npz" to a bare path
                np.savez(handle, pair_id=np.asarray(pair_ids, dtype=str), h_chosen=h_chosen, h_rejected=h_rejected)

        atomic_write(self.representations_path(step), write)

    def representation_steps(self) -> list[int]:
        folder = self.path / "representations"
        return sorted(int(p.stem.split("_")[1]) for p in folder.glob("step_*.npz")) if folder.is_dir() else []

    def representations(self, step: int) -> tuple[list, object, object]:
        """(pair ids, h_chosen, h_rejected) recorded at `step`, as float32."""
        import numpy as np

        with np.load(self.representations_path(step), allow_pickle=False) as data:
            return data["pair_id"].tolist(), data["h_chosen"].astype(np.float32), data["h_rejected"].astype(np.float32)

    def open_log(self):
        """worker.log, opened for appending by a background process's output."""
        return open(self.log_path, "ab")

    def checkpoint_path(self, step: int) -> Path:
        return self.path / "checkpoints" / f"step_{step}"

    def checkpoint_staging_path(self, step: int) -> Path:
        """Where step `step`'s checkpoint is written before `commit_checkpoint` renames it into place: a
        checkpoint folder either is complete or does not exist (checkpoint_steps() skips the .tmp)."""
        return self.checkpoint_path(step).with_name(f"step_{step}.tmp")

    def clear_checkpoint_staging(self, step: int) -> None:
        import shutil

        shutil.rmtree(self.checkpoint_staging_path(step), ignore_errors=True)

    def commit_checkpoint(self, step: int, trainer_state: dict, initial_distance) -> None:
        """Add the loop's own state (step, the loss's state such as mu, the distance bins, the initial distances)
        to the staged checkpoint, then move it into place."""
        import numpy as np

        staging = self.checkpoint_staging_path(step)
        # Plain json.dumps, not atomic_write_json: the outer bin edges are ±inf, which JSON's Infinity keeps.
        atomic_write_text(staging / "trainer_state.json", json.dumps(trainer_state))

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:
                np.save(handle, initial_distance)

        atomic_write(staging / "initial_distance.npy", write)
        os.replace(staging, self.checkpoint_path(step))

    def checkpoint_state(self, step: int) -> tuple[dict, object]:
        """(the loop's state, the initial distances) that `commit_checkpoint` stored with step `step`."""
        import numpy as np

        folder = self.checkpoint_path(step)
        return json.loads((folder / "trainer_state.json").read_text()), np.load(folder / "initial_distance.npy", allow_pickle=False)

    def model_staging(self) -> Path:
        """An empty folder to write the model into before `commit_model` replaces `model/` with it."""
        import shutil

        staging = self.model_path.with_name("model.tmp")
        shutil.rmtree(staging, ignore_errors=True)
        return staging

    def commit_model(self) -> None:
        import shutil

        shutil.rmtree(self.model_path, ignore_errors=True)
        os.replace(self.model_path.with_name("model.tmp"), self.model_path)

    def checkpoint_steps(self) -> list[int]:
        """Steps with a complete checkpoint (a folder still being written ends in .tmp and is not one)."""
        folder = self.path / "checkpoints"
        if not folder.is_dir():
            return []
        return sorted(int(p.name.split("_")[1]) for p in folder.iterdir() if p.is_dir() and p.name.startswith("step_")
                      and p.name.split("_")[1].isdigit())

    def prune_checkpoints(self, keep: int) -> None:
        import shutil

        for step in self.checkpoint_steps()[:-keep]:
            # Renamed out of the listing first: a kill mid-delete leaves a `.old` folder, never a half-deleted
            # `step_N` that checkpoint_steps() would list as complete.
            doomed = self.checkpoint_path(step).with_name(f"step_{step}.old")
            shutil.rmtree(doomed, ignore_errors=True)
            os.replace(self.checkpoint_path(step), doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    def truncate_after(self, step: int) -> None:
        """Drop what a run wrote after `step` (metrics rows, snapshots, record chunks, maps), before it resumes
        from its checkpoint at `step`, so the resumed run's files read as one uninterrupted run."""
        if self.metrics_path.is_file():
            kept = []
            for line in self.metrics_path.read_text().splitlines():
                try:
                    if json.loads(line)["step"] <= step:
                        kept.append(line + "\n")
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # a torn last line
            atomic_write_text(self.metrics_path, "".join(kept))
        for later in [s for s in self.pair_steps() if s > step]:
            self.pairs_path(later).unlink(missing_ok=True)
        for later in [s for s in self.representation_steps() if s > step]:
            self.representations_path(later).unlink(missing_ok=True)
        for chunk in (self.path / "records").glob("steps_*.parquet"):
            if int(chunk.stem.split("_")[1].split("-")[0]) > step:
                chunk.unlink()

    def request_cancel(self) -> None:
        atomic_write_text(self.cancel_path, str(time.time()))

    @property
    def cancel_requested(self) -> bool:
        return self.cancel_path.exists()

    # reading ---------------------------------------------------------------------------------------
    def spec(self) -> RunSpec:
        spec = RunSpec.load(self.spec_path)
        if "group_by_length" not in json.loads(self.spec_path.read_text()):
            # Written before length-grouped batches existed: the run keeps the order it was trained in, so a resume
            # continues the same batches rather than taking the new default for its scope.
            spec.group_by_length = False
        return spec

    def read_raw_status(self) -> dict:
        path = self.status_path
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
        path = self.metrics_path
        if not path.is_file():
            return pd.DataFrame()
        rows = []
        for line in path.read_text().splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:  # the line a killed writer left half-written
                    continue
        return pd.DataFrame(rows)

    def records(self, pair_ids: list[str] | None = None, columns: list[str] | None = None) -> pd.DataFrame:
        """The per-pair record stream (one row per trained pair per step), optionally for some pairs only.

        Read with a filter pushed into Parquet, so one pair's history out of a long run reads only what it needs."""
        files = sorted((self.path / "records").glob("steps_*.parquet"))
        if not files:
            return pd.DataFrame(columns=columns or ["step", "pair_id"])
        import pyarrow.dataset as ds

        dataset = ds.dataset([str(f) for f in files], format="parquet")
        where = ds.field("pair_id").isin(list(pair_ids)) if pair_ids is not None else None
        return dataset.to_table(columns=columns, filter=where).to_pandas()

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
        return pd.read_parquet(self.pairs_path(step))

    def pairs_mtime(self, step: int) -> float:
        """When the snapshot at `step` was written (0 when it is not there): a cache key for readers."""
        path = self.pairs_path(step)
        return path.stat().st_mtime if path.is_file() else 0.0

    def pair_texts(self) -> pd.DataFrame:
        """prompt, chosen, rejected (and flags) of every pair the run saw, one row per pair_id."""
        if not self.pair_texts_path.is_file():
            return pd.DataFrame(columns=["pair_id", "prompt", "chosen", "rejected"])
        return pd.read_parquet(self.pair_texts_path).drop_duplicates("pair_id")

    def bin_edges(self) -> list[float]:
        path = self.bins_path
        return json.loads(path.read_text()).get("edges", []) if path.is_file() else []

    def read_projection(self, method: str, view: str):
        """The cached coordinates, or None when there are none yet."""
        import numpy as np

        path = self.projection_path(method, view)
        return np.load(path, allow_pickle=False) if path.is_file() else None

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
                results[path.stem] = {"error": f"{path}: {type(exc).__name__}: {first_line(exc)}"}
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
