"""The small harness gpu_bench.py runs its parts in: one-line logging and errors, the JSON results rewritten after
every part (so a killed script still leaves what it measured), the wall-clock budget the parts share, and the
watchdog that cancels a run past the deadline."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import threading
import time
from pathlib import Path

import torch


def log(message: str) -> None:
    print(message, flush=True)


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:300] if text else ''}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


class Results:
    """The JSON written to --out, rewritten after every part."""

    def __init__(self, out: Path):
        self.out = out
        self.data: dict = {"parts": {}, "errors": {}, "skipped": {}, "timings_s": {}}

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_name(self.out.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=2, default=_json_default))
        os.replace(tmp, self.out)

    @contextlib.contextmanager
    def part(self, name: str):
        start = time.time()
        log(f"-- {name}")
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        try:
            yield
        except Exception as exc:  # one line, then the next part
            self.data["errors"][name] = one_line(exc)
            log(f"!! {name} failed: {one_line(exc)}")
        finally:
            self.data["timings_s"][name] = round(time.time() - start, 2)
            if torch.cuda.is_available():
                self.data.setdefault("peak_memory_gib", {})[name] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            free_memory()
            try:
                self.save()
            except Exception as exc:
                log(f"!! writing {self.out} failed: {one_line(exc)}")

    def skip(self, name: str, why: str) -> None:
        self.data["skipped"][name] = why
        log(f"-- {name} skipped: {why}")


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


class Budget:
    """Wall-clock budget: parts ask for a share of what is left and size their step counts from it."""

    def __init__(self, seconds: float):
        self.start, self.seconds = time.time(), seconds

    @property
    def left(self) -> float:
        return self.seconds - (time.time() - self.start)

    def share(self, weight: float, weights_left: float) -> float:
        return max(0.0, self.left) * weight / max(weight, weights_left)


class Watchdog(threading.Thread):
    """Past the hard deadline, ask every run under runs_root to stop (each checks its cancel file per step)."""

    def __init__(self, runs_root: Path, deadline: float):
        super().__init__(daemon=True)
        self.runs_root, self.deadline, self.fired = runs_root, deadline, False

    def run(self) -> None:
        while time.time() < self.deadline:
            time.sleep(1.0)
        self.fired = True
        log(f"!! budget exhausted: cancelling runs under {self.runs_root}")
        try:
            from normbt_viz.runs.rundir import list_runs

            for run in list_runs(self.runs_root):
                run.request_cancel()
        except Exception as exc:
            log(f"!! watchdog: {one_line(exc)}")
