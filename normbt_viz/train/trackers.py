"""Experiment trackers (TensorBoard, W&B, trackio, MLflow) fed from the run's own metrics, through Accelerate.

A run's numbers are born in `metrics.jsonl`; a tracker gets exactly those rows (every numeric field: loss,
accuracy, `normbt_mu`, the eval metrics per distance bin and category) at the row's step, and the resolved run
spec as its config. `TrackedRun` wraps the run directory the trainer writes through, so the training loop does
not know trackers exist: each `append_metrics` goes to the file first, then to every tracker. Accelerate's
tracker classes write on the main process only, as the run directory does.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

from normbt_viz.errors import SpecError

PROJECT = "normbt-viz"
# The module each tracker imports, and the extra that installs it.
TRACKER_MODULES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio", "mlflow": "mlflow"}


def check_trackers(names: list[str]) -> None:
    """Fail with one line, before anything is written, when a requested tracker's package is missing
    (Accelerate would otherwise drop it with a debug message)."""
    for name in names:
        module = TRACKER_MODULES[name]
        if importlib.util.find_spec(module) is None:
            raise SpecError(f"report_to={name!r} needs the package {module} (pip install 'normbt-viz[{name}]' or pip install {module})")


def tracker_config(spec_dict: dict) -> dict:
    """The spec as a tracker config: trackers take flat scalars, so nested values (column mapping, package
    versions) become JSON text and None stays None."""
    return {key: value if value is None or isinstance(value, (bool, int, float, str)) else json.dumps(value, sort_keys=True)
            for key, value in spec_dict.items()}


def scalars(row: dict) -> dict[str, float]:
    """The numeric fields of one metrics row, the step excluded (it is the tracker's own axis)."""
    return {key: float(value) for key, value in row.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)}


class Trackers:
    """The trackers named in the spec, started lazily at the first metrics row (so the logged config carries the
    dataset fingerprint and package versions the trainer fills in)."""

    def __init__(self, names: list[str], run_name: str, logging_dir: Path):
        check_trackers(names)
        self.names, self.run_name, self.logging_dir = names, run_name, Path(logging_dir)
        self.active: list = []

    def start(self, config: dict) -> None:
        from accelerate.tracking import LOGGER_TYPE_TO_CLASS

        for name in self.names:
            tracker_class = LOGGER_TYPE_TO_CLASS[name]
            if name == "tensorboard":
                tracker = tracker_class(self.run_name, self.logging_dir)
            elif name == "mlflow":
                tracker = tracker_class(experiment_name=PROJECT, run_name=self.run_name)
            else:  # wandb and trackio take the project first and pass the rest to their own init
                tracker = tracker_class(PROJECT, name=self.run_name)
            tracker.start()
            tracker.store_init_configuration(tracker_config(config))
            self.active.append(tracker)

    def log(self, rows: list[dict]) -> None:
        for row in rows:
            values = scalars(row)
            if values:
                for tracker in self.active:
                    tracker.log(values, step=int(row["step"]))

    def finish(self) -> None:
        for tracker in self.active:
            tracker.finish()
        self.active = []


class TrackedRun:
    """A run directory whose metrics also go to the trackers; everything else passes through untouched."""

    def __init__(self, run, spec, trackers: Trackers):
        self._run, self._spec, self._trackers = run, spec, trackers

    def append_metrics(self, rows: list[dict]) -> None:
        self._run.append_metrics(rows)
        if not self._trackers.active:
            self._trackers.start(self._spec.to_dict())
        self._trackers.log(rows)

    def __getattr__(self, name):
        return getattr(self._run, name)


def track(run, spec) -> tuple[object, Trackers | None]:
    """(the run to write through, the trackers to finish at the end); the run itself when `report_to` is empty."""
    if not spec.trackers:
        return run, None
    trackers = Trackers(spec.trackers, run.name, run.trackers_path)
    return TrackedRun(run, spec, trackers), trackers
