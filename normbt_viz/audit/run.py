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
from normbt_viz.audit.judge import judge_margins
from normbt_viz.audit.pair_features import answer_token_counts, pair_feature_frame
from normbt_viz.audit.scoring import ProgressFn, audit_pairs, cleaning_plan, detection_metrics
from normbt_viz.audit.spec import FLAGS, AuditConfig
from normbt_viz.audit.summary import audit_markdown
from normbt_viz.params import flags_for


# Featurisation rates measured cold on this project's 2-core CPU, pairs per second at max length 128 (time grows
# about linearly in max length): MiniLM on the 2,308 HH-RLHF harmless test pairs took 510 s (shared with other
# jobs, load 7-9); SmolLM2 as the audit reads it by default (packed pairs, bf16 on an AVX512-BF16 CPU) featurised
# the same file at 256 tokens in 466 s on a quiet machine (5.0 pairs/s, so 9.9 at 128). In float32 it is about
# 2.5x slower.
FEATURE_PAIRS_PER_S_AT_128 = {"minilm": 4.5, "smollm2": 9.9}
BF16_SPEEDUP = 2.5  # SmolLM2's packed read of 150 HH pairs: 79.6 s in float32, 31.4 s in bf16 (this CPU)
SCORING_PAIRS_PER_S = 250.0  # L2 choice, folds x seeds, the self-check and the flags: ~9 s for the HH file


def estimate_seconds(n_pairs: int, backbone: str, max_length: int, measured: list[dict] = ()) -> tuple[float, str]:
    """(seconds a cold audit of `n_pairs` should take, where the rate comes from): the latest audit in `measured`
    (audit.json metas) that featurised the same backbone without its cache, else the rates measured here.
    A local folder or a hub backbone without either is assumed as slow as SmolLM2."""
    for meta in measured:
        config = meta.get("config", {})
        if (config.get("backbone") == backbone and not meta.get("feature_chunks_cached")
                and meta.get("timings", {}).get("features_s", 0) > 1):
            per_pair_token = meta["timings"]["features_s"] / (meta["n_pairs"] * config.get("max_length", 128))
            return n_pairs * (max_length * per_pair_token + 1 / SCORING_PAIRS_PER_S), f"measured by the audit of {meta.get('source', '?')}"
    rate = FEATURE_PAIRS_PER_S_AT_128.get(backbone, FEATURE_PAIRS_PER_S_AT_128["smollm2"]) * 128 / max_length
    if backbone != "minilm" and not _native_bf16():  # SmolLM2's rate was measured in bf16
        rate /= BF16_SPEEDUP
    return n_pairs * (1 / rate + 1 / SCORING_PAIRS_PER_S), "measured on a 2-core CPU"


def _native_bf16() -> bool:
    """Whether the audit's default dtype (auto) runs the backbone in bf16 on this machine."""
    from normbt_viz.model.backbones import inference_dtype, select_device

    return inference_dtype(AuditConfig.dtype, select_device("auto")) == "bfloat16"


def audit_features(backbone, pairs: pd.DataFrame, config: AuditConfig, progress=None):
    """(h_chosen, h_rejected, the answer block (chosen, rejected) or None, chunks found in the cache) as the audit
    reads `pairs` with `config`: a decoder read at its last token packs both answers after their shared prompt
    and gives the answer block (unless `answer_block` is off); any other backbone reads each side alone."""
    from normbt_viz.model.features import chunked_packed_features, chunked_representations, packs_prompt

    if config.answer_block and packs_prompt(backbone):
        tensors, hits = chunked_packed_features(backbone, pairs, config.max_length, config.chunk_size, progress)
        return tensors["chosen"], tensors["rejected"], (tensors["answer_chosen"], tensors["answer_rejected"]), hits
    h_chosen, h_rejected, hits = chunked_representations(backbone, pairs, config.max_length, config.chunk_size,
                                                         config.batch_size, progress)
    return h_chosen, h_rejected, None, hits


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kilobytes on Linux


def run_audit(config: AuditConfig, out_dir: str | Path, progress: ProgressFn | None = None) -> dict:
    """Audit every pair of `config`'s data source into `out_dir`: audit.parquet, summary.md, audit.json,
    skipped_rows.csv (when rows were skipped) and the cleaned copy. Returns the meta."""
    from normbt_viz.data.run_data import sample_table
    from normbt_viz.data.sources import load_pairs, write_like_source
    from normbt_viz.model.backbones import inference_dtype, load_backbone, select_device

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
        pairs = sample_table(table, config.limit, seed=0)
        if table.n_skipped:
            folder.write_skipped(table.skipped)
        report("loading the backbone", 0, len(pairs))
        dtype = inference_dtype(config.dtype, select_device(config.device))
        backbone = load_backbone(config.backbone, pooling=config.pooling, device=config.device, dtype=dtype)
        report("features", 0, len(pairs))
        feature_started = time.time()
        n_chunks = math.ceil(len(pairs) / config.chunk_size)
        h_chosen, h_rejected, answer_block, hits = audit_features(
            backbone, pairs, config, lambda done, total, _hit: report("features", done, total))
        features_s = time.time() - feature_started
        audit_started = time.time()
        extra = None
        if config.pair_features:
            extra = pair_feature_frame(pairs, answer_token_counts(backbone.tokenizer, pairs["chosen"]),
                                       answer_token_counts(backbone.tokenizer, pairs["rejected"]))
        judge_s = judge_cached = None
        if config.judge:
            judge_started = time.time()
            margins, judge_cached = judge_margins(config.judge, pairs, config.max_length, config.batch_size,
                                                  lambda done, total: report("judge", done, total),
                                                  device=str(backbone.device), dtype=dtype, chunk_size=config.chunk_size)
            judge_s = time.time() - judge_started
            extra = pd.concat([extra if extra is not None else pd.DataFrame(index=pairs.index),
                               pd.DataFrame({"judge_margin": margins}, index=pairs.index)], axis=1)
        frame, found = audit_pairs(pairs, h_chosen, h_rejected, config, report, extra, config.backbone, answer_block)
        audit_s = time.time() - audit_started
        folder.write_frame(frame)
        meta = {
            "source": table.source, "format": table.format, "dataset": config.dataset,
            "n_pairs": len(frame), "n_skipped_rows": table.n_skipped, "notes": table.notes,
            "load_report": table.report.to_dict(),
            "config": {**dataclasses.asdict(config), "remove_flags": list(config.remove_flags)},
            **found, "feature_chunks": n_chunks, "feature_chunks_cached": hits, "dtype": dtype,
            "flag_counts": {name: int(frame[f"flag_{name}"].sum()) for name in FLAGS},
            "detection": detection_metrics(frame),
            "timings": {"features_s": round(features_s, 2), "audit_s": round(audit_s, 2),
                        **({"judge_s": round(judge_s, 2), "judge_cached": judge_cached} if config.judge else {})},
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
