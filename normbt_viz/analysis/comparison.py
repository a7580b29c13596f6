"""Compare finished runs: accuracy per arm overall, per category and per distance bin, with intervals over
seeds, and each arm's paired difference against `bt` on the same eval pairs.

Distance bins are a property of the pairs, fixed from a reference run's initial (pre-training) distances,
so every arm is scored on the same bins even when it changes the representation (the LayerNorm arm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from normbt_viz.errors import SpecError
from normbt_viz.runs.rundir import RunDir
from normbt_viz.spec import BOOKKEEPING_FIELDS, RunSpec
from normbt_viz.analysis.stats import paired_bootstrap_diff_seeds, summarise_seeds

REFERENCE_ARM = "bt"
# The pairs the reviewers' question is about: the closest distance bin (fixed from the initial model).
CLOSE_BIN = 0


@dataclass
class Comparison:
    overall: pd.DataFrame  # arm, mean, std, low, high, n
    per_category: pd.DataFrame  # arm, category, mean, std, low, high, n
    per_bin: pd.DataFrame  # arm, distance_bin, distance_low, distance_high, mean, std, low, high, n
    paired: pd.DataFrame  # arm, diff, low, high, p_two_sided, n_pairs, n_seeds (against REFERENCE_ARM)
    per_seed: pd.DataFrame  # arm, seed, accuracy
    paired_per_bin: pd.DataFrame = field(default_factory=pd.DataFrame)  # arm, distance_bin, diff, low, high, ... per bin
    runs: list[str] = field(default_factory=list)


def config_diff(specs: dict[str, RunSpec]) -> pd.DataFrame:
    """Spec fields whose values differ between the runs (one row per run), bookkeeping fields left out."""
    records = {label: spec.to_dict() for label, spec in specs.items()}
    fields = [f for f in next(iter(records.values()), {}) if f not in BOOKKEEPING_FIELDS]
    differing = [f for f in fields if len({repr(r.get(f)) for r in records.values()}) > 1]
    return pd.DataFrame([{"run": label, **{f: record.get(f) for f in differing}} for label, record in records.items()])


def final_eval_pairs(run: RunDir) -> pd.DataFrame:
    frame = run.pairs()
    return frame[frame["split"] == "eval"].reset_index(drop=True)


def check_comparable(records: list[tuple]) -> None:
    """Refuse to pool runs whose intervals would not mean what they say: runs on another dataset, backbone or
    eval split are not seeds of one experiment, and the same (arm, seed) twice is one seed counted twice."""
    first_arm, first_seed, first_run, first_frame = records[0]
    first_spec = first_run.spec()
    first_eval = set(first_frame["pair_id"])
    seen: dict[tuple, str] = {}
    for arm, seed, run, frame in records:
        spec = run.spec()
        for what, mine, theirs in (("dataset", spec.dataset_fingerprint, first_spec.dataset_fingerprint),
                                   ("backbone", spec.backbone, first_spec.backbone),
                                   ("eval split", set(frame["pair_id"]) == first_eval, True)):
            if mine != theirs:
                raise SpecError(f"runs {first_run.name} and {run.name} differ in {what}: they cannot be compared as seeds of one experiment")
        if (arm, seed) in seen:
            raise SpecError(f"runs {seen[(arm, seed)]} and {run.name} are both arm {arm!r} seed {seed}: pick one of them")
        seen[(arm, seed)] = run.name


def compare_runs(runs: list[RunDir], n_boot: int = 2000, seed: int = 0) -> Comparison:
    """Tables comparing the final eval accuracy of `runs` (finished runs on the same eval pairs)."""
    records = []
    for run in runs:
        spec = run.spec()
        records.append((spec.arm_name, spec.seed, run, final_eval_pairs(run)))
    if not records:
        raise SpecError("no finished runs to compare")
    check_comparable(records)
    reference = next((r for r in records if r[0] == REFERENCE_ARM), records[0])
    initial = reference[2].pairs(0)
    initial = initial[initial["split"] == "eval"]
    bin_of = dict(zip(initial["pair_id"], initial["distance_bin"]))
    edges = reference[2].bin_edges()

    per_seed, per_cat, per_bin = [], [], []
    correct_by = {}
    # `run_seed`, not `seed`: the bootstrap's own seed must not depend on which run came last.
    for arm, run_seed, _run, frame in records:
        frame = frame.assign(ref_bin=frame["pair_id"].map(bin_of))
        per_seed.append({"arm": arm, "seed": run_seed, "accuracy": frame["correct"].mean()})
        for category, acc in frame.groupby("category")["correct"].mean().items():
            per_cat.append({"arm": arm, "seed": run_seed, "category": category, "accuracy": acc})
        for b, acc in frame.groupby("ref_bin")["correct"].mean().items():
            per_bin.append({"arm": arm, "seed": run_seed, "distance_bin": int(b), "accuracy": acc})
        correct_by[(arm, run_seed)] = frame.set_index("pair_id")["correct"].astype(float)

    per_seed_df = pd.DataFrame(per_seed)
    overall = summarise_seeds(per_seed_df, "accuracy", ["arm"])
    per_category = summarise_seeds(pd.DataFrame(per_cat), "accuracy", ["arm", "category"])
    per_bin_df = summarise_seeds(pd.DataFrame(per_bin), "accuracy", ["arm", "distance_bin"])
    if len(edges) >= 2:
        per_bin_df["distance_low"] = per_bin_df["distance_bin"].map(lambda b: edges[int(b)])
        per_bin_df["distance_high"] = per_bin_df["distance_bin"].map(lambda b: edges[int(b) + 1])

    arms = [arm for arm in dict.fromkeys(r[0] for r in records) if arm != REFERENCE_ARM]
    paired = [{"arm": arm, **result} for arm in arms if (result := _paired_against_reference(correct_by, arm, None, n_boot, seed))]
    paired_per_bin = []
    for b in sorted(set(bin_of.values())):
        in_bin = [pid for pid, pair_bin in bin_of.items() if pair_bin == b]
        for arm in arms:
            if result := _paired_against_reference(correct_by, arm, in_bin, n_boot, seed):
                paired_per_bin.append({"arm": arm, "distance_bin": int(b), **result})
    return Comparison(
        overall=overall,
        per_category=per_category,
        per_bin=per_bin_df,
        paired=pd.DataFrame(paired),
        per_seed=per_seed_df,
        paired_per_bin=pd.DataFrame(paired_per_bin),
        runs=[r[2].name for r in records],
    )


def _paired_against_reference(correct_by: dict, arm: str, pair_ids, n_boot: int, seed: int) -> dict | None:
    """`arm` minus REFERENCE_ARM on the same eval pairs (all, or `pair_ids`), over the seeds both have."""
    seeds = sorted(s for a, s in correct_by if a == arm and (REFERENCE_ARM, s) in correct_by)
    if not seeds:
        return None
    if pair_ids is None:
        pair_ids = correct_by[(REFERENCE_ARM, seeds[0])].index
    a = np.stack([correct_by[(REFERENCE_ARM, s)].reindex(pair_ids).to_numpy() for s in seeds])
    b = np.stack([correct_by[(arm, s)].reindex(pair_ids).to_numpy() for s in seeds])
    return {"vs": REFERENCE_ARM, **paired_bootstrap_diff_seeds(a, b, n_boot=n_boot, seed=seed)}


def _trained_windows(run: RunDir) -> list[tuple[int, pd.DataFrame]]:
    """(step, train pairs with weight, update_norm and flipped) at the start and the end of training.

    From the train sample the run re-scored at its first and last evaluation when it has one (the head scope's
    default); otherwise from the per-pair record stream: the first and the last epoch's worth of steps, in which
    every training pair was trained once, each with the weight it got when it was trained."""
    steps = run.pair_steps()
    windows = []
    for step in (steps[0], steps[-1]) if steps else ():
        frame = run.pairs(step)
        train = frame[frame["split"] == "train"]
        if not train.empty and "flipped" in train:
            windows.append((step, train))
    if windows:
        return windows
    records = run.records(columns=["step", "pair_id", "weight", "update_norm"])
    if records.empty:
        return []
    texts = run.pair_texts()
    if "flipped" not in texts:
        return []
    records = records.assign(flipped=records["pair_id"].map(texts.set_index("pair_id")["flipped"]).fillna(False).astype(bool))
    spec = run.spec()
    per_epoch = max(1, -(-int(run.status().get("n_trained_pairs") or len(records)) // (spec.batch_size * spec.grad_accum)))
    last = int(records["step"].max())
    return [(per_epoch, records[records["step"] <= per_epoch]), (last, records[records["step"] > last - per_epoch])]


def weight_on_flipped(runs: list[RunDir]) -> pd.DataFrame:
    """How much of each run's update goes to label-noise (flipped) training pairs at the start and the end.

    Returns arm, seed, noise, step, flipped_share_of_pairs, flipped_share_of_update, median_weight_flipped,
    median_weight_clean (see `_trained_windows` for which pairs). Medians, because a pair whose two answers map
    to the same h (d = 0) gets a NormBT weight of μ/ε and would swamp a mean."""
    rows = []
    for run in runs:
        spec = run.spec()
        for step, train in _trained_windows(run):
            flipped = train["flipped"].astype(bool)
            total = train["update_norm"].sum()
            rows.append(
                {
                    "arm": spec.arm_name,
                    "seed": spec.seed,
                    "noise": spec.demo_noise,
                    "step": step,
                    "flipped_share_of_pairs": float(flipped.mean()),
                    "flipped_share_of_update": float(train.loc[flipped, "update_norm"].sum() / total) if total > 0 else np.nan,
                    "median_weight_flipped": float(train.loc[flipped, "weight"].median()) if flipped.any() else np.nan,
                    "median_weight_clean": float(train.loc[~flipped, "weight"].median()),
                }
            )
    return pd.DataFrame(rows)


def clean_accuracy(run: RunDir) -> float:
    """Final eval accuracy on pairs whose label was not flipped (flipped eval pairs have a wrong label)."""
    frame = final_eval_pairs(run)
    clean = frame[~frame["flipped"].astype(bool)] if "flipped" in frame else frame
    return float(clean["correct"].mean())


def format_interval(row) -> str:
    return f"{row['mean']:.3f} ± {row['std']:.3f} [{row['low']:.3f}, {row['high']:.3f}]" if row["n"] > 1 else f"{row['mean']:.3f}"


def comparison_markdown(comparison: Comparison) -> str:
    """The comparison as Markdown tables (accuracy as mean ± std [95% t-interval] over seeds)."""
    lines = ["## Accuracy overall (final eval, mean ± std [95% interval] over seeds)", "", "| arm | accuracy | seeds |", "|---|---|---|"]
    for _, row in comparison.overall.iterrows():
        lines.append(f"| {row['arm']} | {format_interval(row)} | {int(row['n'])} |")
    if not comparison.paired.empty:
        lines += ["", f"## Paired difference against `{REFERENCE_ARM}` on the same eval pairs (bootstrap over pairs)", "",
                  "| arm | diff | 95% interval | p (two-sided) | pairs | seeds |", "|---|---|---|---|---|---|"]
        for _, row in comparison.paired.iterrows():
            lines.append(f"| {row['arm']} | {row['diff']:+.3f} | [{row['low']:+.3f}, {row['high']:+.3f}] | {row['p_two_sided']:.3f} | {int(row['n_pairs'])} | {int(row['n_seeds'])} |")
    for title, table, key in (("category", comparison.per_category, "category"), ("distance bin (0 = closest pairs)", comparison.per_bin, "distance_bin")):
        pivot = table.assign(text=table.apply(format_interval, axis=1)).pivot(index=key, columns="arm", values="text")
        lines += ["", f"## Accuracy per {title}", "", "| " + key + " | " + " | ".join(pivot.columns) + " |", "|---" * (len(pivot.columns) + 1) + "|"]
        for index, row in pivot.iterrows():
            lines.append(f"| {index} | " + " | ".join(str(v) for v in row.values) + " |")
    return "\n".join(lines) + "\n"


def close_pair_verdicts(comparison: Comparison, close_bin: int = CLOSE_BIN) -> pd.DataFrame:
    """Per arm, its paired difference against BT on the closest distance bin and what it says: beats BT beyond
    its interval (the interval lies above 0), loses beyond it (below 0), or no difference beyond the interval."""
    table = comparison.paired_per_bin
    if table.empty:
        return pd.DataFrame(columns=["arm", "diff", "low", "high", "n_pairs", "n_seeds", "verdict"])
    rows = table[table["distance_bin"] == close_bin].copy()
    rows["verdict"] = np.select([rows["low"] > 0, rows["high"] < 0], ["beats BT beyond its interval", "worse than BT beyond its interval"],
                                "no difference beyond its interval")
    return rows[["arm", "diff", "low", "high", "n_pairs", "n_seeds", "verdict"]].reset_index(drop=True)
