"""The reproducible evidence report: a fixed comparison of every arm over several seeds, one command.

`python -m normbt_viz report --config cpu` (a linear head on frozen MiniLM, two minutes) and `--config decoder`
(SmolLM2-135M with its top block training, under an hour on a 2-core CPU) train every comparison arm over
several seeds, then a label-noise study, and write a folder with a Markdown summary, the key figures as PNG
and the raw numbers as CSV. Every field of the configuration's run spec can be overridden (a backbone, a scope,
a dataset, benchmark scores), so the same command runs the paper-scale version on a GPU box.

The report's runs live in one folder; a finished run whose spec matches is reused rather than retrained, so an
interrupted report continues where it stopped (`--runs` the same folder) and a report can be re-rendered.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from normbt_viz.analysis.comparison import (
    CLOSE_BIN, REFERENCE_ARM, clean_accuracy, close_pair_verdicts, comparison_markdown, compare_runs, format_interval,
    weight_on_flipped,
)
from normbt_viz.analysis.stats import mean_interval
from normbt_viz.analysis.updates import PROXY_COLUMNS, proxy_table, update_shares
from normbt_viz.errors import SpecError
from normbt_viz.evals.scoring import BENCHMARKS, score_model_folder
from normbt_viz.params import check_fields, flags_for, param
from normbt_viz.runs.launcher import train_inline
from normbt_viz.runs.rundir import RunDir, list_runs
from normbt_viz.spec import ARM_DESCRIPTIONS, ARMS, BOOKKEEPING_FIELDS, RunSpec

# bt_margin is left out: the demo data has no margin column (the arm needs one per pair).
REPORT_ARMS = ("bt", "normbt", "normbt_clip", "bt_gradclip", "bt_layernorm", "bt_smooth", "normbt_cosine")

DECODER_WHY = (
    "SmolLM2-135M-Instruct with its top block (k = 1 of 30) training on the block cache, on the 1000 demo pairs "
    "(800 train, 200 eval), 3 epochs of batch 32 (75 steps), evaluations every 25 steps. One block, not two: on "
    "this 2-core CPU a k = 2 run trained in about 190 s after the cache was built (2.5 s a step), so 27 runs would "
    "take about 90 minutes; a k = 1 run takes 104-120 s (measured: 26 runs after the first), so 7 arms x 3 seeds "
    "and the noise study (bt, normbt at 20%, 3 seeds) fit in an hour with the block cache computed once (340 s for "
    "the first run; the noisy copy of the data reuses it). The top block's 3.5M parameters still move h during "
    "training, which a frozen backbone cannot show. 1000 pairs, as in the first decoder run, so the two compare. "
    "The step-0 exact per-pair gradient norms cover all 200 eval pairs (the update share per decile); later "
    "evaluations cover 64 (the proxy over training)."
)


@dataclass
class ReportConfig:
    """The report's own options (declared with `param()`, so `report --help` documents them like the run spec's)
    and the run spec every run starts from (`base`; the run-spec flags override it)."""

    name: str = param("cpu", "the named configuration this one starts from", choices=("cpu", "decoder", "quick"), flag=False)
    arms: tuple[str, ...] = param(REPORT_ARMS, "arms compared over the seeds", choices=tuple(ARMS), group="report")
    seeds: tuple[int, ...] = param((0, 1, 2), "seeds of every arm", low=0, group="report")
    # Label-noise rates beside the clean data; the clean column is the arm comparison's own runs.
    noise_rates: tuple[float, ...] = param((0.1, 0.2), "label-noise rates of the noise study, demo data only ('' skips it)", low=0.0, high=0.5, group="report")
    noise_arms: tuple[str, ...] = param(("bt", "normbt", "normbt_clip"), "arms of the noise study", choices=tuple(ARMS), group="report")
    base: RunSpec = field(default_factory=lambda: RunSpec(backbone="minilm", dataset="demo", demo_size=1000, scope="head", epochs=3.0))
    benchmarks: tuple[str, ...] = param((), "benchmarks to score every run's model on", choices=BENCHMARKS, flag="benchmark", group="report")
    benchmark_data: tuple[str, ...] = param((), "data of each --benchmark, in the same order: a hub id or a local .jsonl/.json/.parquet (default: the hub)", group="report")
    benchmark_limit: int | None = param(None, "at most N rows per benchmark subset (a quick look)", low=1, group="report")
    why: str = ""  # what was chosen and why, for the summary

    def validate(self) -> "ReportConfig":
        check_fields(self, prefix="report ")
        if len(self.benchmark_data) > len(self.benchmarks):
            raise SpecError(f"report benchmark_data has {len(self.benchmark_data)} entries for {len(self.benchmarks)} benchmark(s): give one per --benchmark")
        self.base.validate()
        return self

    def data_of(self, benchmark: str) -> str | None:
        """Where `benchmark`'s data comes from (None: the hub)."""
        return dict(zip(self.benchmarks, self.benchmark_data)).get(benchmark)

    @classmethod
    def cpu(cls) -> "ReportConfig":
        return cls(why="A linear score head on frozen all-MiniLM-L6-v2 features: every arm in seconds, the rebalancing exactly as the paper's formula says.")

    @classmethod
    def decoder(cls) -> "ReportConfig":
        return cls(
            name="decoder",
            noise_rates=(0.2,),
            noise_arms=("bt", "normbt"),
            base=RunSpec(backbone="smollm2", dataset="demo", demo_size=1000, scope="top-k", top_k=1, epochs=3.0,
                         full_grad_sample=64, initial_grad_sample=200, eval_every=25),
            why=DECODER_WHY,
        )

    @classmethod
    def quick(cls) -> "ReportConfig":
        """A minimal configuration that exercises every part of the report in well under a minute."""
        return cls(
            name="quick",
            arms=("bt", "normbt", "bt_layernorm"),
            seeds=(0, 1),
            noise_rates=(0.2,),
            noise_arms=("bt", "normbt"),
            base=RunSpec(backbone="minilm", dataset="demo", demo_size=120, scope="head", max_steps=10, eval_every=5, batch_size=16),
            why="The smallest configuration that exercises every part of the report (a test, not evidence).",
        )

    @classmethod
    def named(cls, name: str) -> "ReportConfig":
        if name not in CONFIGS:
            raise SpecError(f"report config {name!r} is not one of {', '.join(CONFIGS)}")
        return getattr(cls, name)()


CONFIGS = ("cpu", "decoder", "quick")


def _overrides_line(config: ReportConfig) -> str:
    """A paragraph naming the run-spec fields this report changed from its named configuration, since the
    configuration's reasons (its data, its sizes) were written for its own defaults; "" when none changed."""
    own = ReportConfig.named(config.name).base
    changed = [f"`{f.name}` {getattr(own, f.name)!r} → {getattr(config.base, f.name)!r}" for f in dataclasses.fields(own)
               if f.name not in BOOKKEEPING_FIELDS and getattr(own, f.name) != getattr(config.base, f.name)]
    if not changed:
        return ""
    return (f"This report changes the `{config.name}` configuration: {', '.join(changed)}. The reasons above were "
            "written for the configuration's own data and sizes.\n")


def _experiment_key(spec: RunSpec) -> str:
    values = dataclasses.replace(spec).resolve().to_dict()
    for name in BOOKKEEPING_FIELDS:  # two specs equal but for these are the same run
        values.pop(name, None)
    return json.dumps(values, sort_keys=True, default=str)


class RunBook:
    """The report's runs folder: trains a spec unless a finished run of the same spec is already there."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.done: dict[str, RunDir] = {}
        for run in reversed(list_runs(self.root)):  # oldest first, so the newest of two equal runs wins
            try:
                if run.status().get("state") == "done":
                    self.done[_experiment_key(run.spec())] = run
            except SpecError:
                continue  # an unreadable run is retrained, not trusted
        self.reused: list[RunDir] = []
        self.trained: list[RunDir] = []

    def run(self, spec: RunSpec) -> RunDir:
        key = _experiment_key(spec)
        if key in self.done:
            self.reused.append(self.done[key])
            return self.done[key]
        run, status = train_inline(spec, self.root)
        if status["state"] != "done":
            raise SpecError(f"report run {run.name} ended {status['state']}: {status.get('error')}")
        self.done[key] = run
        self.trained.append(run)
        return run

    def training_seconds(self, runs: list[RunDir]) -> tuple[float, float]:
        """(the runs' own wall times added up, the span from the first one's start to the last one's end): what
        producing `runs` took, whether they were trained by this command or reused from an earlier one."""
        statuses = [run.status() for run in {run.path: run for run in runs}.values()]
        total = float(sum(s.get("wall_s") or 0.0 for s in statuses))
        starts = [s["started_at"] for s in statuses if s.get("started_at")]
        ends = [s["finished_at"] for s in statuses if s.get("finished_at")]
        return total, (max(ends) - min(starts)) if starts and ends else float("nan")


# ---- figures (matplotlib, written as PNG) -----------------------------------------------------------------------

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_error_vs_distance(runs: dict[str, RunDir], path: Path) -> None:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(5.5 * len(runs), 4.2), sharey=True, squeeze=False)
    for ax, (label, run) in zip(axes[0], runs.items()):
        pairs = run.pairs(0)  # at the start all pairs have comparable error; the colour shows who gets the update
        pairs = pairs[pairs["split"] != "batch"]
        points = ax.scatter(pairs["rep_distance"], pairs["pred_error"], c=pairs["update_norm"], s=10, cmap="viridis")
        ax.set_title(f"{label}: update norm at step 0")
        ax.set_xlabel("representation distance ‖h_c − h_r‖")
        fig.colorbar(points, ax=ax, label="per-pair head update norm")
    axes[0][0].set_ylabel("prediction error σ(−Δ)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_update_share(shares: pd.DataFrame, path: Path) -> None:
    """One panel per parameter group (head, backbone): each arm's share of the update per distance decile."""
    plt = _pyplot()
    parts = list(dict.fromkeys(shares["part"]))
    fig, axes = plt.subplots(1, len(parts), figsize=(6.5 * len(parts), 4), squeeze=False, sharey=True)
    for ax, part in zip(axes[0], parts):
        tables = dict(list(shares[shares["part"] == part].groupby("arm", sort=False)))
        # BT and NormBT drawn last and thick, so an arm that coincides with BT (global clipping) does not hide it.
        for arm in sorted(tables, key=lambda a: a in (REFERENCE_ARM, "normbt")):
            table = tables[arm]
            ax.plot(table["decile"], table["update_share"], marker="o", label=arm, linewidth=2.5 if arm in (REFERENCE_ARM, "normbt") else 1)
        ax.axhline(1 / 10, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("distance decile (1 = closest pairs)")
        ax.set_title(f"share of the {part} update at step 0")
        ax.set_xticks(range(1, 11))
    axes[0][0].set_ylabel("share of the total update")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_accuracy_per_bin(per_bin: pd.DataFrame, path: Path) -> None:
    plt = _pyplot()
    arms = list(dict.fromkeys(per_bin["arm"]))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / len(arms)
    for i, arm in enumerate(arms):
        rows = per_bin[per_bin["arm"] == arm].sort_values("distance_bin")
        x = rows["distance_bin"].to_numpy() + (i - (len(arms) - 1) / 2) * width
        err = np.vstack([rows["mean"] - rows["low"], rows["high"] - rows["mean"]])
        ax.errorbar(x, rows["mean"], yerr=np.nan_to_num(err), fmt="o", capsize=3, label=arm)
    ax.set_xlabel("distance bin (0 = closest pairs, fixed from the initial model)")
    ax.set_ylabel("eval accuracy (mean, 95% interval over seeds)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_paired_per_bin(paired_per_bin: pd.DataFrame, path: Path) -> None:
    """Each arm minus BT on the same eval pairs, per distance bin, with the paired bootstrap interval."""
    plt = _pyplot()
    arms = list(dict.fromkeys(paired_per_bin["arm"]))
    fig, ax = plt.subplots(figsize=(8, 4.2))
    width = 0.8 / max(1, len(arms))
    for i, arm in enumerate(arms):
        rows = paired_per_bin[paired_per_bin["arm"] == arm].sort_values("distance_bin")
        x = rows["distance_bin"].to_numpy() + (i - (len(arms) - 1) / 2) * width
        err = np.vstack([rows["diff"] - rows["low"], rows["high"] - rows["diff"]])
        ax.errorbar(x, rows["diff"], yerr=np.nan_to_num(err), fmt="o", capsize=3, label=arm)
    ax.axhline(0, color="grey", linewidth=1)
    ax.set_xlabel("distance bin (0 = closest pairs)")
    ax.set_ylabel(f"accuracy minus {REFERENCE_ARM} (95% paired bootstrap)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)




def _plot_proxy(proxy: pd.DataFrame, path: Path) -> None:
    """The proxy over training: one panel per correlation, one line per run (colour by arm)."""
    plt = _pyplot()
    panels = {c: t for c, t in PROXY_COLUMNS.items() if c in proxy and proxy[c].notna().any()}
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4), sharey=True, squeeze=False)
    axes = axes[0]
    colours = {}
    for ax, (column, title) in zip(axes, panels.items()):
        for (arm, seed), rows in proxy.dropna(subset=[column]).groupby(["arm", "seed"], sort=False):
            colour = colours.setdefault(arm, f"C{len(colours)}")
            ax.plot(rows["step"], rows[column], marker="o", color=colour, alpha=0.8, label=arm if seed == proxy["seed"].min() else None)
        ax.axhline(0, color="grey", linewidth=1)
        ax.set_title(title)
        ax.set_xlabel("step")
    axes[0].set_ylabel("Pearson r over the sampled eval pairs")
    axes[-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- the parts of the report ------------------------------------------------------------------------------------

def noise_study(config: ReportConfig, book: RunBook) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clean accuracy per arm and noise rate over seeds, weight put on flipped training pairs). Rate 0 is the
    arm comparison's own runs (the book reuses them)."""
    if config.base.dataset != "demo" or not config.noise_rates:
        return pd.DataFrame(), pd.DataFrame()
    accuracy_rows, noisy = [], []
    for rate in (0.0, *config.noise_rates):
        for seed in config.seeds:
            for arm in config.noise_arms:
                run = book.run(dataclasses.replace(config.base.with_arm(arm), demo_noise=rate, seed=seed, name=""))
                if rate > 0:
                    noisy.append(run)
                accuracy_rows.append({"arm": arm, "noise": rate, "seed": seed, "clean_accuracy": clean_accuracy(run)})
    per_seed = pd.DataFrame(accuracy_rows)
    summary = [{"arm": arm, "noise": rate, **mean_interval(group["clean_accuracy"].to_numpy())}
               for (arm, rate), group in per_seed.groupby(["arm", "noise"], sort=False)]
    return pd.DataFrame(summary), weight_on_flipped(noisy)


def score_benchmarks(config: ReportConfig, runs: list[RunDir]) -> pd.DataFrame:
    """Each run's model scored on each configured benchmark (kept in the run's scores/ folder and reused):
    arm, seed, benchmark, score (0..1)."""
    rows = []
    for benchmark in config.benchmarks:
        for run in runs:
            existing = run.read_scores().get(benchmark)
            if existing and "error" not in existing:
                result = existing
            else:
                result, _ = score_model_folder(run.model_path, benchmark, data=config.data_of(benchmark),
                                               limit=config.benchmark_limit, device=config.base.device)
            spec = run.spec()
            rows.append({"arm": spec.arm_name, "seed": spec.seed, "benchmark": benchmark, "score": float(result["score"])})
    return pd.DataFrame(rows)


# ---- the summary ------------------------------------------------------------------------------------------------

def _command(config: ReportConfig) -> str:
    """The command line that reproduces `config`: the named config plus every flag that differs from it."""
    default = ReportConfig.named(config.name)
    argv = ["python", "-m", "normbt_viz", "report", "--config", config.name, *flags_for(config, default),
            *flags_for(config.base, default.base)]
    return shlex.join(argv)


def _decile_table(shares: pd.DataFrame, part: str) -> list[str]:
    table = shares[shares["part"] == part].pivot(index="decile", columns="arm", values="update_share")
    lines = ["| decile | " + " | ".join(table.columns) + " |", "|---" * (len(table.columns) + 1) + "|"]
    lines += [f"| {decile} | " + " | ".join(f"{v:.3f}" for v in row.values) + " |" for decile, row in table.iterrows()]
    return lines


def _proxy_lines(proxy: pd.DataFrame) -> list[str]:
    if proxy.empty:
        return ["No run recorded exact per-pair gradient norms (they need `--diagnostics full` and `--full-grad-sample` above 0)."]
    columns = [c for c in PROXY_COLUMNS if c in proxy and proxy[c].notna().any()]
    lines = ["| arm | step | " + " | ".join(PROXY_COLUMNS[c] for c in columns) + " |", "|---|---|" + "---|" * len(columns)]
    for (arm, step), rows in proxy.groupby(["arm", "step"], sort=True):
        cells = []
        for column in columns:
            values = rows[column].dropna().to_numpy()
            cells.append(f"{values.mean():+.2f} (seeds {', '.join(f'{v:+.2f}' for v in values)})" if values.size else "")
        lines.append(f"| {arm} | {int(step)} | " + " | ".join(cells) + " |")
    return lines


def _noise_lines(config: ReportConfig, noise_summary: pd.DataFrame, flipped: pd.DataFrame) -> list[str]:
    if noise_summary.empty:
        why = "no noise rate given" if not config.noise_rates else "label noise is injected into the demo data only (`--demo-noise`)"
        return ["## Label-noise study", "", f"Skipped: {why}."]
    rates = sorted(set(noise_summary["noise"]))
    lines = ["## Label-noise study: accuracy on clean eval pairs (mean ± std [95% interval])", "",
             "| arm | " + " | ".join(f"noise {r:.0%}" for r in rates) + " |", "|---" * (len(rates) + 1) + "|"]
    for arm in config.noise_arms:
        cells = [format_interval(noise_summary[(noise_summary["arm"] == arm) & (noise_summary["noise"] == rate)].iloc[0]) for rate in rates]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    if not flipped.empty:
        last = flipped[flipped["step"] == flipped.groupby(["arm", "seed", "noise"])["step"].transform("max")]
        table = last.groupby(["arm", "noise"])[["flipped_share_of_pairs", "flipped_share_of_update", "median_weight_flipped", "median_weight_clean"]].mean()
        lines += ["", "## Weight on flipped (label-noise) training pairs at the end of training, mean over seeds", "",
                  "The last evaluation's re-scored train sample, or, where the run re-scored none (backbone scopes), the last "
                  "epoch of the per-pair record stream (each pair with the weight it was trained with).", "",
                  "| arm | noise | share of pairs | share of update | median weight flipped | median weight clean |", "|---|---|---|---|---|---|"]
        for (arm, rate), row in table.iterrows():
            lines.append(f"| {arm} | {rate:.0%} | {row['flipped_share_of_pairs']:.3f} | {row['flipped_share_of_update']:.3f} | "
                         f"{row['median_weight_flipped']:.3f} | {row['median_weight_clean']:.3f} |")
    return lines


def _benchmark_lines(scores: pd.DataFrame) -> list[str]:
    if scores.empty:
        return []
    lines = ["", "## Benchmark scores (points, mean ± std [95% interval] over seeds)", "", "| benchmark | arm | score |", "|---|---|---|"]
    for (benchmark, arm), rows in scores.groupby(["benchmark", "arm"], sort=False):
        lines.append(f"| {benchmark} | {arm} | {format_interval({k: 100 * v if k != 'n' else v for k, v in mean_interval(rows['score'].to_numpy()).items()})} |")
    return lines


def write_report(config: ReportConfig, out: Path, runs_root: Path) -> Path:
    """Train (or reuse) the report's runs under `runs_root` and write the report folder `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    book = RunBook(Path(runs_root))
    started = time.time()
    runs = [book.run(dataclasses.replace(config.base.with_arm(arm), seed=seed, name="")) for seed in config.seeds for arm in config.arms]
    comparison = compare_runs(runs)
    noise_summary, flipped = noise_study(config, book)
    benchmark_scores = score_benchmarks(config, runs)
    wall_s = time.time() - started

    first_seed = {r.spec().arm_name: r for r in runs if r.spec().seed == config.seeds[0]}
    shares = update_shares(first_seed)
    proxy = proxy_table(runs)
    proxy_shown = proxy[proxy["arm"].isin([REFERENCE_ARM, "normbt"])] if not proxy.empty else proxy
    verdicts = close_pair_verdicts(comparison)
    pair = {k: first_seed[k] for k in (REFERENCE_ARM, "normbt") if k in first_seed}
    _plot_error_vs_distance(pair, out / "error_vs_distance.png")
    _plot_update_share(shares, out / "update_share_by_decile.png")
    _plot_accuracy_per_bin(comparison.per_bin, out / "accuracy_per_distance_bin.png")
    if not comparison.paired_per_bin.empty:
        _plot_paired_per_bin(comparison.paired_per_bin, out / "paired_difference_per_bin.png")
    if not proxy_shown.empty:
        _plot_proxy(proxy_shown, out / "proxy_over_training.png")

    for name in ("overall", "per_category", "per_bin", "paired", "paired_per_bin", "per_seed"):
        getattr(comparison, name).to_csv(out / f"{name}.csv", index=False)
    for name, table in (("noise_clean_accuracy", noise_summary), ("noise_weight_on_flipped", flipped), ("update_share_by_decile", shares),
                        ("proxy_over_training", proxy), ("close_pair_verdicts", verdicts), ("benchmark_scores", benchmark_scores)):
        if not table.empty:
            table.to_csv(out / f"{name}.csv", index=False)

    base = config.base
    details = [f"{base.demo_size} pairs" if base.dataset == "demo" else "", f"at most {base.limit} pairs" if base.limit else "",
               f"{int(base.eval_fraction * 100)}% held out"]
    data = ("synthetic demo data" if base.dataset == "demo" else f"dataset `{base.dataset}`") + f" ({', '.join(d for d in details if d)})"
    all_runs = runs + [run for run in book.trained + book.reused if run not in runs]
    total_s, span_s = book.training_seconds(all_runs)
    scope = f"`{base.scope}`" + (f" (k = {base.top_k})" if base.scope == "top-k" else "")
    trained = len({r.path for r in book.trained})
    lines = [
        f"# NormBT Viz report: `{config.name}`",
        "",
        f"Backbone `{base.backbone}`, {data}, scope {scope}, seeds {list(config.seeds)}; arms: "
        + ", ".join(f"`{a}` ({ARM_DESCRIPTIONS[a]})" for a in config.arms) + ".",
        "",
        f"Command: `{_command(config)}`. Wall time of this command: {wall_s:.0f} s ({trained} runs trained, "
        f"{len({r.path for r in book.reused})} reused). The report's {len({r.path for r in all_runs})} runs took {total_s:.0f} s "
        f"added up, {span_s:.0f} s from the first one's start to the last one's end.",
        "",
        f"Why this configuration: {config.why}" if config.why else "",
        "",
        _overrides_line(config),
        comparison_markdown(comparison),
    ]
    if not comparison.paired_per_bin.empty:
        pivot = comparison.paired_per_bin.assign(text=lambda t: t.apply(lambda r: f"{r['diff']:+.3f} [{r['low']:+.3f}, {r['high']:+.3f}]", axis=1))
        pivot = pivot.pivot(index="arm", columns="distance_bin", values="text").reindex([a for a in config.arms if a != REFERENCE_ARM])
        lines += [f"## Paired difference against `{REFERENCE_ARM}` per distance bin (0 = closest pairs; 95% bootstrap over pairs)", "",
                  "| arm | " + " | ".join(f"bin {b}" for b in pivot.columns) + " |", "|---" * (len(pivot.columns) + 1) + "|"]
        lines += [f"| {arm} | " + " | ".join(str(v) for v in row.values) + " |" for arm, row in pivot.iterrows()]
        lines += ["", f"## The reviewers' question: which arms gain on the closest pairs (bin {CLOSE_BIN})?", "",
                  "Do gradient clipping, a LayerNorm before the head or label smoothing give the gain NormBT is credited with "
                  "on pairs whose answers look alike to the model? Paired against BT on the same eval pairs and seeds:", "",
                  "| arm | diff vs BT | 95% interval | pairs x seeds | answer |", "|---|---|---|---|---|"]
        lines += [f"| {r['arm']} | {r['diff']:+.3f} | [{r['low']:+.3f}, {r['high']:+.3f}] | {int(r['n_pairs'])} x {int(r['n_seeds'])} | {r['verdict']} |"
                  for _, r in verdicts.iterrows()]
        winners = verdicts.loc[verdicts["low"] > 0, "arm"].tolist()
        lines += ["", "Beyond their interval on the closest pairs: " + (", ".join(f"`{a}`" for a in winners) if winners else "no arm") + "; "
                  "the others' intervals include 0 or lie below it. The interval covers which eval pairs were drawn with the "
                  "training seeds held fixed; the spread between seeds is in the per-bin accuracy table above.", ""]
    lines += ["## Update share per distance decile at step 0", "",
              "Pairs ordered by the initial distance ‖h_c − h_r‖ (decile 1 = closest). Head: |∂(wℓ)/∂Δ|·‖h_c − h_r‖, exact for a linear head.", ""]
    lines += _decile_table(shares, "head")
    if (shares["part"] == "backbone").any():
        lines += ["", "Backbone (the trainable blocks): from the exact per-pair gradient norms, ‖∇_backbone‖² = ‖∇‖² − ‖∇_head‖², "
                  "scaled by each arm's |∂(wℓ)/∂Δ|.", ""]
        lines += _decile_table(shares, "backbone")
    lines += ["", "## The proxy over training", "",
              "At each evaluation, over the eval pairs with exact per-pair gradient norms: the Pearson r of the distance ‖h_c − h_r‖ "
              "with the exact norm of the unweighted BT gradient (the paper's proxy claim), and with that norm divided by the "
              "prediction error σ(−Δ), i.e. ‖∇Δ‖, the part of the gradient the paper's argument is about (fitted pairs' small "
              "errors taken out). For runs that train blocks, the third column is the blocks' part alone: the head's part of ‖∇Δ‖ is "
              "the distance itself, so the second column is close to 1 by construction when the head dominates the norm.", ""]
    lines += _proxy_lines(proxy_shown)
    if not proxy.empty:
        lines += ["", "BT and NormBT shown; every arm's values are in `proxy_over_training.csv`."]
    lines += [""] + _noise_lines(config, noise_summary, flipped)
    lines += _benchmark_lines(benchmark_scores)
    figures = [p.name for p in sorted(out.glob("*.png"))]
    lines += ["", "Figures: " + ", ".join(f"`{f}`" for f in figures) + ". Raw numbers: the CSV files beside this summary.",
              f"Runs: `{book.root}`.", ""]
    (out / "summary.md").write_text("\n".join(lines))
    return out
