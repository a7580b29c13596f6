"""The reproducible evidence report: a fixed comparison on the embedded backbone and the demo data.

`python -m normbt_viz report` trains every comparison arm over several seeds, then a label-noise study,
and writes a folder with a Markdown summary, the key figures as PNG and the raw numbers as CSV. The
configuration is fixed here so that anyone gets the same numbers on the same hardware class.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from normbt_viz.analysis.comparison import clean_accuracy, compare_runs, summary_markdown, weight_on_flipped
from normbt_viz.runs.launcher import train_inline
from normbt_viz.runs.rundir import RunDir
from normbt_viz.spec import ARM_DESCRIPTIONS, RunSpec
from normbt_viz.analysis.stats import mean_interval, update_share_by_decile

# bt_margin is left out: the demo data has no margin column (the arm needs one per pair).
REPORT_ARMS = ("bt", "normbt", "normbt_clip", "bt_gradclip", "bt_layernorm", "bt_smooth", "normbt_cosine")


@dataclass
class ReportConfig:
    arms: tuple[str, ...] = REPORT_ARMS
    seeds: tuple[int, ...] = (0, 1, 2)
    noise_rates: tuple[float, ...] = (0.0, 0.1, 0.2)
    noise_arms: tuple[str, ...] = ("bt", "normbt", "normbt_clip")
    base: RunSpec = field(default_factory=lambda: RunSpec(backbone="minilm", dataset="demo", demo_size=1000, scope="head", epochs=3.0))

    @classmethod
    def quick(cls) -> "ReportConfig":
        """A minimal configuration that exercises every part of the report in well under a minute."""
        return cls(
            arms=("bt", "normbt", "bt_layernorm"),
            seeds=(0, 1),
            noise_rates=(0.0, 0.2),
            noise_arms=("bt", "normbt"),
            base=RunSpec(backbone="minilm", dataset="demo", demo_size=120, scope="head", max_steps=10, eval_every=5, batch_size=16),
        )


def _train(spec: RunSpec, runs_root: Path) -> RunDir:
    run, status = train_inline(spec, runs_root)
    if status["state"] != "done":
        raise RuntimeError(f"report run {run.name} ended {status['state']}: {status.get('error')}")
    return run


def _plot_error_vs_distance(runs: dict[str, RunDir], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def _plot_update_share(shares: dict[str, pd.DataFrame], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(shares)
    for i, (label, table) in enumerate(shares.items()):
        ax.bar(table["decile"] + (i - (len(shares) - 1) / 2) * width, table["update_share"], width=width, label=label)
    ax.axhline(1 / 10, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("distance decile (1 = closest pairs)")
    ax.set_ylabel("share of the total head update")
    ax.set_title("Who gets the update: share per distance decile, step 0")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_accuracy_per_bin(per_bin: pd.DataFrame, path: Path) -> None:
    import matplotlib.pyplot as plt

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


def noise_study(config: ReportConfig, runs_root: Path, seeds: tuple[int, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(clean accuracy per arm and noise rate over seeds, weight put on flipped training pairs)."""
    accuracy_rows, runs = [], []
    for rate in config.noise_rates:
        for seed in seeds:
            for arm in config.noise_arms:
                run = _train(dataclasses.replace(config.base.with_arm(arm), demo_noise=rate, seed=seed, name=""), runs_root)
                runs.append(run)
                accuracy_rows.append({"arm": arm, "noise": rate, "seed": seed, "clean_accuracy": clean_accuracy(run)})
    per_seed = pd.DataFrame(accuracy_rows)
    summary = []
    for (arm, rate), group in per_seed.groupby(["arm", "noise"], sort=False):
        summary.append({"arm": arm, "noise": rate, **mean_interval(group["clean_accuracy"].to_numpy())})
    flipped = weight_on_flipped([r for r in runs if r.spec().demo_noise > 0])
    return pd.DataFrame(summary), flipped


def write_report(config: ReportConfig, out: Path, runs_root: Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs_root = Path(runs_root) / f"_report-{time.strftime('%Y%m%d-%H%M%S')}"
    started = time.time()
    runs = [_train(dataclasses.replace(config.base.with_arm(arm), seed=seed, name=""), runs_root) for seed in config.seeds for arm in config.arms]
    comparison = compare_runs(runs)
    comparison_s = time.time() - started
    noise_summary, flipped = noise_study(config, runs_root, config.seeds)
    total_s = time.time() - started

    first_seed = {r.spec().arm_name: r for r in runs if r.spec().seed == config.seeds[0]}
    pair = {k: first_seed[k] for k in ("bt", "normbt") if k in first_seed}
    shares = {}
    for label, run in pair.items():
        step0 = run.pairs(0)
        step0 = step0[step0["split"] != "batch"]
        shares[label] = update_share_by_decile(step0["rep_distance"].to_numpy(), step0["update_norm"].to_numpy())
    _plot_error_vs_distance(pair, out / "error_vs_distance.png")
    _plot_update_share(shares, out / "update_share_by_decile.png")
    _plot_accuracy_per_bin(comparison.per_bin, out / "accuracy_per_distance_bin.png")

    for name in ("overall", "per_category", "per_bin", "paired", "per_seed"):
        getattr(comparison, name).to_csv(out / f"{name}.csv", index=False)
    noise_summary.to_csv(out / "noise_clean_accuracy.csv", index=False)
    flipped.to_csv(out / "noise_weight_on_flipped.csv", index=False)
    share_table = pd.concat([t.assign(arm=k) for k, t in shares.items()], ignore_index=True)
    share_table.to_csv(out / "update_share_by_decile.csv", index=False)

    base = config.base
    lines = [
        "# NormBT Viz report",
        "",
        f"Backbone `{base.backbone}`, synthetic demo data ({base.demo_size} pairs, {int(base.eval_fraction * 100)}% held out), scope `{base.scope}`, "
        f"seeds {list(config.seeds)}; arms: " + ", ".join(f"`{a}` ({ARM_DESCRIPTIONS[a]})" for a in config.arms) + ".",
        f"Command: `python -m normbt_viz report{' --quick' if base.demo_size < 1000 else ''}`. "
        f"Wall time: {total_s:.0f} s ({comparison_s:.0f} s for the arm comparison).",
        "",
        summary_markdown(comparison),
        "## Update share per distance decile at step 0 (BT vs NormBT)",
        "",
        "| decile | " + " | ".join(shares) + " |",
        "|---" * (len(shares) + 1) + "|",
    ]
    for decile in range(1, 11):
        cells = [f"{t.loc[t['decile'] == decile, 'update_share'].iloc[0]:.3f}" if (t["decile"] == decile).any() else "" for t in shares.values()]
        lines.append(f"| {decile} | " + " | ".join(cells) + " |")
    lines += ["", "## Label-noise study: accuracy on clean eval pairs (mean ± std [95% interval])", "", "| arm | " + " | ".join(f"noise {r:.0%}" for r in config.noise_rates) + " |",
              "|---" * (len(config.noise_rates) + 1) + "|"]
    for arm in config.noise_arms:
        cells = []
        for rate in config.noise_rates:
            row = noise_summary[(noise_summary["arm"] == arm) & (noise_summary["noise"] == rate)].iloc[0]
            cells.append(f"{row['mean']:.3f} ± {row['std']:.3f} [{row['low']:.3f}, {row['high']:.3f}]" if row["n"] > 1 else f"{row['mean']:.3f}")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    if not flipped.empty:
        last = flipped[flipped["step"] == flipped.groupby(["arm", "seed", "noise"])["step"].transform("max")]
        table = last.groupby(["arm", "noise"])[["flipped_share_of_pairs", "flipped_share_of_update", "median_weight_flipped", "median_weight_clean"]].mean()
        lines += ["", "## Weight on flipped (label-noise) training pairs at the last step, mean over seeds", "",
                  "| arm | noise | share of pairs | share of update | median weight flipped | median weight clean |", "|---|---|---|---|---|---|"]
        for (arm, rate), row in table.iterrows():
            lines.append(f"| {arm} | {rate:.0%} | {row['flipped_share_of_pairs']:.3f} | {row['flipped_share_of_update']:.3f} | "
                         f"{row['median_weight_flipped']:.3f} | {row['median_weight_clean']:.3f} |")
    lines += ["", "Figures: `error_vs_distance.png`, `update_share_by_decile.png`, `accuracy_per_distance_bin.png`. Raw numbers: the CSV files beside this summary.",
              f"Runs: `{runs_root}`.", ""]
    (out / "summary.md").write_text("\n".join(lines))
    return out
