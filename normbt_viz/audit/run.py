"""Running an audit: load the source, featurise every pair (chunked and cached, so an interrupted audit
continues where it stopped), score and flag them, and write the folder through `AuditDir`; or start that as a
background process for the app."""

from __future__ import annotations

import dataclasses
import math
import resource
import sys
import time
from pathlib import Path

import pandas as pd

from normbt_viz.audit.auditdir import AuditDir
from normbt_viz.audit.scoring import ProgressFn, audit_pairs, cleaning_plan, detection_metrics
from normbt_viz.audit.spec import FLAGS, AuditConfig
from normbt_viz.audit.summary import audit_markdown
from normbt_viz.params import flags_for


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


def run_audit(config: AuditConfig, out_dir: str | Path, progress: ProgressFn | None = None) -> dict:
    """Audit every pair of `config`'s data source into `out_dir`: audit.parquet, summary.md, audit.json,
    skipped_rows.csv (when rows were skipped) and the cleaned copy. Returns the meta."""
    from normbt_viz.data.sources import load_pairs, sample_pairs, write_like_source
    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.model.features import chunked_representations

    config.validate()
    if config.num_threads:
        import torch

        torch.set_num_threads(config.num_threads)
    folder = AuditDir(out_dir).create()
    started = time.time()

    def report(phase: str, done: int, total: int) -> None:
        folder.write_progress(state="running", phase=phase, done=done, total=total)
        if progress:
            progress(phase, done, total)

    folder.write_progress(state="running", phase="loading", done=0, total=1, started_at=started, error=None)
    try:
        table = load_pairs(config.dataset, **config.load_options())
        pairs = sample_pairs(table.pairs, config.limit, seed=0)
        if table.n_skipped:
            folder.write_skipped(table.skipped)
        backbone = load_backbone(config.backbone, pooling=config.pooling, device=config.device)
        feature_started = time.time()
        n_chunks = math.ceil(len(pairs) / config.chunk_size)
        h_chosen, h_rejected, hits = chunked_representations(
            backbone, pairs, config.max_length, config.chunk_size, config.batch_size,
            lambda done, total, _hit: report("features", done, total))
        features_s = time.time() - feature_started
        audit_started = time.time()
        frame, found = audit_pairs(pairs, h_chosen, h_rejected, config, report)
        audit_s = time.time() - audit_started
        folder.write_frame(frame)
        meta = {
            "source": table.source, "format": table.format, "dataset": config.dataset,
            "n_pairs": len(frame), "n_skipped_rows": table.n_skipped, "notes": table.notes,
            "config": {**dataclasses.asdict(config), "remove_flags": list(config.remove_flags)},
            **found, "feature_chunks": n_chunks, "feature_chunks_cached": hits,
            "flag_counts": {name: int(frame[f"flag_{name}"].sum()) for name in FLAGS},
            "detection": detection_metrics(frame),
            "timings": {"features_s": round(features_s, 2), "audit_s": round(audit_s, 2)},
        }
        meta["cleaned"] = write_cleaned(table, frame, folder, config, write_like_source)
        meta["peak_rss_mb"] = round(_peak_rss_mb(), 1)
        meta["wall_s"] = round(time.time() - started, 2)
        folder.write_summary(audit_markdown(frame, meta))
        folder.write_meta(meta)
    except BaseException as exc:
        state = "cancelled" if isinstance(exc, KeyboardInterrupt) else "failed"
        folder.write_progress(state=state, error=f"{type(exc).__name__}: {exc}".splitlines()[0], finished_at=time.time())
        raise
    folder.write_progress(state="done", phase="done", done=1, total=1, finished_at=time.time())
    return meta


def write_cleaned(table, frame: pd.DataFrame, folder: AuditDir, config: AuditConfig, writer) -> dict | None:
    """The cleaned copy (`writer` is `data.sources.write_like_source`, handed the folder's path for it)."""
    if config.clean == "none":
        return None
    keep, flip, description = cleaning_plan(frame, config)
    path = writer(table, frame["source_row"].to_numpy()[keep], frame["source_row"].to_numpy()[flip & keep],
                  folder.cleaned_stem, like_source=config.clean_format == "source")
    return {"file": path.name, "description": description, "n_pairs": int(keep.sum()), "n_flipped": int((flip & keep).sum())}


def launch_audit(config: AuditConfig, out_dir: str | Path) -> int:
    """Start `python -m normbt_viz audit --out OUT_DIR` with the flags that reproduce `config`, in its own
    session (it outlives the app's script run), logging to OUT_DIR/audit.log; returns its pid. Progress and the
    outcome are in OUT_DIR/progress.json; rerunning into the same folder resumes from the cached feature chunks."""
    from normbt_viz.runs.launcher import start_detached

    config.validate()
    folder = AuditDir(out_dir).create()
    folder.write_progress(state="queued", phase="starting", done=0, total=1)
    # --dataset always, since the command requires it even when it is the default.
    argv = [sys.executable, "-m", "normbt_viz", "audit", "--dataset", config.dataset, "--out", str(folder.path),
            *flags_for(dataclasses.replace(config, dataset=AuditConfig().dataset))]
    with folder.open_log() as log:
        process = start_detached(argv, log)
    folder.write_pid(process.pid)
    return process.pid
