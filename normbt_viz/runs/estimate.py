"""How long a run will take, from what finished runs took on this machine.

Every finished run of this host is measured once from its own files (status.json and the `elapsed_s` of its
metrics rows) and the measurement kept in `<cache>/run_rates.json`, per backbone and scope. A run's time is
modelled as three parts, each scaled from the measured runs:

    start   the background worker starting (Python, torch), once per launch: seconds;
    setup   loading the backbone, reading the data, featurising every pair once (frozen backbone: then cached)
            and the first evaluation: seconds per pair, measured apart for a cold and a warm feature cache and for
            the first run of a launch (which loads the backbone) and the later ones (which reuse it);
    steps   training steps with their evaluations: seconds per trained pair (steps × batch);
    finish  saving the model: seconds, as measured.

Texts of another length cost another time per pair: a run on HH-RLHF's answers featurises and trains several
times the tokens of one on the demo's short ones. Each measurement keeps its data's tokens per pair (approximate:
characters / 4 per side, capped at the run's max length, so no tokenizer is loaded for a form's estimate), and the
per-pair rates are scaled by the new data's tokens per pair over the measured runs'.

The machine may be shared: a run measured while other work kept the CPUs busy took longer than the same run
alone. The worker records each run's CPU time (`cpu_s`), so its rates are scaled to the machine to itself
(its share of the machine: cpu_s / (cores × wall_s)), and an estimate is scaled back by how busy the machine is
when it is asked for (1 + load / cores).

Nothing here is a hard-coded speed: with no measured run of a backbone and scope there is no estimate.
"""

from __future__ import annotations

import json
import math
import os
import socket
import statistics
import time
from dataclasses import dataclass

from normbt_viz.atomic import atomic_write_json
from normbt_viz.model.backbones import cache_root
from normbt_viz.runs.rundir import RunDir
from normbt_viz.spec import RunSpec

RATES_FILE = "run_rates.json"
KEEP_PER_KIND = 20  # the newest measurements per backbone and scope; older ones describe an older machine state
LONG_RUN_S = 600  # a launch longer than this gets a warning before it starts
SETTLE_S = 5.0
CHARS_PER_TOKEN = 4.0  # English prose through a subword tokenizer: close enough to scale a time estimate


def tokens_per_pair(pairs, max_length: int) -> float | None:
    """Approximate tokens the backbone reads per pair (both sides, each prompt + answer, truncated at
    `max_length`), from the texts' lengths in characters; None without texts."""
    import numpy as np

    if pairs is None or len(pairs) == 0 or not {"chosen", "rejected"} <= set(pairs.columns):
        return None
    prompt = pairs["prompt"].fillna("").astype(str).str.len().to_numpy() if "prompt" in pairs else 0
    sides = [np.minimum((prompt + pairs[side].fillna("").astype(str).str.len().to_numpy()) / CHARS_PER_TOKEN, max_length)
             for side in ("chosen", "rejected")]
    return float(np.mean(sides[0] + sides[1]))


def rates_path():
    return cache_root() / RATES_FILE


def kind_of(spec: RunSpec) -> str:
    return f"{spec.backbone}|{spec.scope}"


def data_key(spec: RunSpec) -> str:
    """The fields whose equality means the same pairs through the same backbone: the feature cache is warm."""
    return json.dumps([spec.dataset, spec.dataset_config, spec.dataset_split, spec.column_mapping, spec.demo_size,
                       spec.demo_noise, spec.demo_seed, spec.limit, spec.backbone, spec.max_length, spec.pooling])


def measure(run: RunDir, first: bool) -> dict | None:
    """One finished run's rates (`first`: it was the first run its worker trained), or None when it did not
    finish here or recorded no timings."""
    status = run.status()
    if status.get("state") != "done" or status.get("host") != socket.gethostname() or not status.get("wall_s"):
        return None
    metrics = run.metrics()
    if "elapsed_s" not in metrics or metrics.empty or not status.get("total_steps"):
        return None
    spec = run.spec()
    elapsed = metrics.dropna(subset=["elapsed_s"]).sort_values("step")
    setup_s = float(elapsed["elapsed_s"].iloc[0])
    last_s = float(elapsed["elapsed_s"].iloc[-1])
    n_pairs = int(status.get("n_train") or 0) + int(status.get("n_eval") or 0)
    trained = int(status["total_steps"]) * spec.batch_size * spec.grad_accum
    if n_pairs <= 0 or trained <= 0:
        return None
    # The share of the machine the run had (1 when its CPU time was not recorded: a run outside the worker).
    share = min(1.0, float(status["cpu_s"]) / ((os.cpu_count() or 1) * float(status["wall_s"]))) if status.get("cpu_s") else 1.0
    start_s = max(float(status.get("started_at") or 0) - float(status.get("created_at") or 0), 0.0) if first else None
    texts = run.pair_texts()
    return {
        "run": str(run.path), "host": status["host"], "finished_at": status.get("finished_at"), "kind": kind_of(spec),
        "data": data_key(spec),
        "cache_hit": bool(status.get("feature_cache_hit")), "first": first, "n_pairs": n_pairs,
        "share": share, "setup_s_per_pair": share * setup_s / n_pairs, "start_s": start_s,
        "step_s_per_pair": share * max(last_s - setup_s, 0.0) / trained,
        "finish_s": share * max(float(status["wall_s"]) - last_s, 0.0), "wall_s": float(status["wall_s"]),
        "tokens_per_pair": tokens_per_pair(texts, spec.max_length),
    }


def read_rates() -> list[dict]:
    try:
        return json.loads(rates_path().read_text()).get("runs", [])
    except (OSError, json.JSONDecodeError, AttributeError):
        return []  # none yet, or a file cut short: the next update rewrites it


def update_rates(runs: list[RunDir]) -> list[dict]:
    """Add the finished runs not measured yet to the rates file; returns every kept measurement."""
    known = read_rates()
    seen = {(m["run"], m.get("finished_at")) for m in known}
    statuses = {run.path: run.read_raw_status() for run in runs}
    # The runs of one launch share their worker's log; the one that started first loaded the backbone.
    first_start: dict[str, float] = {}
    for status in statuses.values():
        if status.get("log") and status.get("started_at"):
            first_start[status["log"]] = min(first_start.get(status["log"], math.inf), status["started_at"])
    added = []
    for run in runs:
        status = statuses[run.path]
        # A worker's run gets its cpu_s just after "done": give it a moment before measuring it for good.
        settled = not status.get("log") or "cpu_s" in status or time.time() - float(status.get("finished_at") or 0) > SETTLE_S
        if status.get("state") == "done" and settled and (str(run.path), status.get("finished_at")) not in seen:
            first = not status.get("log") or first_start.get(status["log"]) == status.get("started_at")
            try:
                measured = measure(run, first)
            except Exception:  # a run whose files cannot be read is simply not a measurement
                measured = None
            if measured:
                added.append(measured)
    if not added:
        return known
    kept = []
    for kind in dict.fromkeys(m["kind"] for m in known + added):
        kept += sorted((m for m in known + added if m["kind"] == kind), key=lambda m: m.get("finished_at") or 0)[-KEEP_PER_KIND:]
    atomic_write_json(rates_path(), {"runs": kept})
    return kept


@dataclass
class Estimate:
    seconds: float | None  # None: nothing measured yet for some run of the launch
    note: str  # what the figure rests on, or why there is none

    @property
    def long(self) -> bool:
        return self.seconds is not None and self.seconds > LONG_RUN_S


def total_steps(spec: RunSpec, n_pairs: int) -> int:
    """The optimizer steps a run of `spec` on `n_pairs` pairs will take (the trainer's own rule: epochs over the
    training split in whole batches, unless max_steps)."""
    from normbt_viz.train.state import total_steps_for  # imports torch: only once an estimate is asked for

    n_train = max(1, int(round(min(n_pairs, spec.limit or n_pairs) * (1 - spec.eval_fraction))))
    return total_steps_for(spec, n_train)


def _median_of(measured: list[dict], field: str, prefer: list[dict]) -> float:
    """The median of `field` over the measurements that match the most of `prefer`'s conditions, tried in order
    (each a dict of field -> value), ending with all of them. A median, because a run slowed down by other work on
    the machine is one outlier among the runs of a kind."""
    for conditions in [*prefer, {}]:
        values = [m[field] for m in measured if m.get(field) is not None and all(m.get(k) == v for k, v in conditions.items())]
        if values:
            return statistics.median(values)
    return 0.0


def estimate_launch(specs: list[RunSpec], n_pairs: int, measured: list[dict], pair_tokens: float | None = None) -> Estimate:
    """Seconds for `specs` run one after another by one worker (as the app launches them) on `n_pairs` pairs
    each, of `pair_tokens` approximate tokens a pair (`tokens_per_pair`; None: as long as the measured runs'). The
    first run loads the backbone; a run on data not featurised before pays the cold setup."""
    seconds, scales = 0.0, []
    measured = [m for m in measured if m.get("host") == socket.gethostname()]  # a cache folder may be shared
    warm_data = {m["data"] for m in measured}
    for position, spec in enumerate(specs):
        of_kind = [m for m in measured if m["kind"] == kind_of(spec)]
        if not of_kind:
            return Estimate(None, f"no estimate yet: the first run of {spec.backbone} / {spec.scope} on this machine measures it")
        first, hit = position == 0, data_key(spec) in warm_data
        measured_tokens = [m["tokens_per_pair"] for m in of_kind if m.get("tokens_per_pair")]
        scale = pair_tokens / statistics.median(measured_tokens) if pair_tokens and measured_tokens else 1.0
        scales.append(scale)
        if first:
            seconds += _median_of(of_kind, "start_s", [{"first": True}])
        seconds += _median_of(of_kind, "setup_s_per_pair", [{"first": first, "cache_hit": hit}, {"cache_hit": hit}]) * n_pairs * scale
        seconds += statistics.median(m["step_s_per_pair"] for m in of_kind) * total_steps(spec, n_pairs) * spec.batch_size * spec.grad_accum * scale
        seconds += statistics.median(m["finish_s"] for m in of_kind)
        warm_data.add(data_key(spec))
    kinds = sorted({kind_of(s) for s in specs})
    n_runs = sum(1 for m in measured if m["kind"] in kinds)
    note = f"an estimate from {n_runs} finished run(s) of {', '.join(k.replace('|', ' / ') for k in kinds)} on this machine"
    if scales and not 0.8 <= max(scales) <= 1.25:
        note += f", scaled {max(scales):.1f}× for texts of {pair_tokens:,.0f} tokens a pair (approximately)"
    slowdown, busy = machine_slowdown()
    return Estimate(seconds * slowdown, note + busy)


def machine_slowdown() -> tuple[float, str]:
    """(how much slower than on an idle machine a run will go now, a note saying so or ""): other work's load
    shares the cores, so a run that would use them all gets cores / (cores + load) of them."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    slowdown = 1.0 + load / cores
    note = f"; the CPUs are busy now (load {load:.1f} on {cores} cores), counted as {slowdown:.1f}× slower" if slowdown >= 1.5 else ""
    return slowdown, note


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(5, round(seconds / 5) * 5):.0f} s"
    return f"about {seconds / 60:.0f} min" if seconds < 5400 else f"about {seconds / 3600:.1f} h"
