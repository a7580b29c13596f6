"""Where each arm's update goes, read from finished runs: the share of the step-0 update per distance decile, and
how well the representation distance predicts each pair's exact gradient norm as training goes on (the proxy the
paper's argument rests on)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from normbt_viz.analysis.comparison import REFERENCE_ARM
from normbt_viz.analysis.stats import update_share_by_decile
from normbt_viz.numeric import pearson_r
from normbt_viz.runs.rundir import RunDir

PROXY_COLUMNS = {
    "eval_proxy_corr": "r(distance, exact gradient norm)",
    "eval_proxy_corr_per_error": "r(distance, exact gradient norm / σ(−Δ))",
    "eval_proxy_corr_backbone": "r(distance, blocks' part / σ(−Δ))",
}


def update_shares(first_seed: dict[str, RunDir]) -> pd.DataFrame:
    """Share of the step-0 update per distance decile, per arm and parameter group (head; backbone where it
    trains, from the exact per-pair norms). Pairs are ordered by the BT run's initial distance, so every arm's
    deciles hold the same pairs."""
    reference = first_seed.get(REFERENCE_ARM) or next(iter(first_seed.values()))
    initial = reference.pairs(0)
    distance_of = initial[initial["split"] == "eval"].set_index("pair_id")["rep_distance"]
    tables = []
    for arm, run in first_seed.items():
        step0 = run.pairs(0)
        step0 = step0[step0["split"] == "eval"].assign(ref_distance=lambda f: f["pair_id"].map(distance_of))
        step0 = step0[np.isfinite(step0["ref_distance"]) & np.isfinite(step0["update_norm"])]
        parts = [("head", step0, "update_norm")]
        if "backbone_update_norm" in step0:
            graded = step0.dropna(subset=["backbone_update_norm"])
            if len(graded) >= 10:
                parts.append(("backbone", graded, "backbone_update_norm"))
        for part, rows, column in parts:
            table = update_share_by_decile(rows["ref_distance"].to_numpy(), rows[column].to_numpy())
            tables.append(table.assign(arm=arm, part=part))
    return pd.concat(tables, ignore_index=True)


def proxy_table(runs: list[RunDir]) -> pd.DataFrame:
    """arm, seed, step and both proxy correlations at every evaluation of every run that recorded them."""
    frames = []
    for run in runs:
        metrics = run.metrics()
        if metrics.empty or "eval_proxy_corr" not in metrics:
            continue
        spec = run.spec()
        columns = [c for c in PROXY_COLUMNS if c in metrics]
        rows = metrics.dropna(subset=["eval_proxy_corr"])[["step", *columns]]
        if "eval_proxy_corr_backbone" not in rows and spec.scope != "head":
            rows = rows.assign(eval_proxy_corr_backbone=[_backbone_proxy(run, int(step)) for step in rows["step"]])
        frames.append(rows.assign(arm=spec.arm_name, seed=spec.seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["step", *PROXY_COLUMNS, "arm", "seed"])


def _backbone_proxy(run: RunDir, step: int) -> float:
    """r(distance, blocks' part of the exact norm / σ(−Δ)) from a snapshot, for runs recorded before the
    trainer logged it as `eval_proxy_corr_backbone`."""
    pairs = run.pairs(step)
    if "backbone_grad_norm" not in pairs:
        return float("nan")
    graded = pairs[(pairs["split"] == "eval")].dropna(subset=["backbone_grad_norm"])
    r = pearson_r(graded["rep_distance"], graded["backbone_grad_norm"] / graded["pred_error"])
    return float("nan") if r is None else r
