"""The three benchmarks behind one interface, and BT-vs-NormBT comparisons of their scores.

`load_benchmark` reads the data, `score_benchmark` turns a text scorer (any callable from prompts and responses
to rewards, e.g. a trained `RewardModel.score`) into the benchmark's result dict and its per-example
contributions; `write_scores` stores both where `RunDir.read_scores` / `RunDir.score_examples` find them.
The pure scoring rules live in rewardbench.py (v1), rewardbench2.py and rmbench.py.

Per-example contributions are a long table (example_id, section, value, weight) in which, for every reported
number that is a weighted mean over examples, sum(weight * value) over the section's rows is that number. A
paired bootstrap over examples (`paired_section_diffs`) then resamples exactly what the score is made of.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from normbt_viz.evals import rewardbench as rb1
from normbt_viz.evals import rewardbench2 as rb2
from normbt_viz.evals import rmbench
from normbt_viz.analysis.stats import paired_bootstrap_diff
from normbt_viz.errors import SpecError
from normbt_viz.atomic import atomic_write, atomic_write_json
from normbt_viz.runs.rundir import RunDir, score_examples_path

BENCHMARKS: tuple[str, ...] = ("rewardbench", "rewardbench-2", "rm-bench")
DEFAULT_DATA: dict[str, tuple[str, str]] = {
    "rewardbench": ("allenai/reward-bench", "filtered"),
    "rewardbench-2": ("allenai/reward-bench-2", "test"),
    "rm-bench": ("THU-KEG/RM-Bench", "train"),
}
# The headline of each benchmark and how it is formed, for the CLI and the app.
OVERALL: dict[str, str] = {
    "rewardbench": "score = mean of Chat, Chat Hard, Safety, Reasoning; score_with_prior_sets = upstream's "
    "average with Prior Sets (0.5 weight)",
    "rewardbench-2": "score = unweighted mean of Factuality, Precise IF, Math, Safety, Focus, Ties",
    "rm-bench": "score = mean of the chat, math, code, safety scores (= mean of hard, normal, easy)",
}
TextScorer = Callable[[list, list], list]


def resolve_benchmark(benchmark: str | None, version: int | None) -> str:
    """The benchmark named by `--benchmark` and/or `--version` (1 or 2, RewardBench only); RewardBench v1 when
    neither is given. Raises SpecError when they disagree."""
    if benchmark is not None and benchmark not in BENCHMARKS:
        raise SpecError(f"--benchmark {benchmark!r} is invalid (expected one of {', '.join(BENCHMARKS)})")
    if version is not None and version not in (1, 2):
        raise SpecError(f"--version {version!r} is invalid (expected 1 or 2)")
    by_version = {None: None, 1: "rewardbench", 2: "rewardbench-2"}[version]
    if benchmark is None:
        return by_version or "rewardbench"
    if by_version is not None and benchmark != by_version:
        raise SpecError(f"--version {version} does not go with --benchmark {benchmark} (--version picks RewardBench 1 or 2)")
    return benchmark


def load_benchmark(benchmark: str, data: str | Path | None = None, split: str | None = None,
                   limit: int | None = None) -> pd.DataFrame:
    """The benchmark's rows from the hub (its default id and split) or a local file; with `limit`, at most that
    many rows per subset (per domain for RM-Bench), for a quick look."""
    benchmark = resolve_benchmark(benchmark, None)
    default_source, default_split = DEFAULT_DATA[benchmark]
    source, split = data or default_source, split or default_split
    if limit is not None and (isinstance(limit, bool) or limit < 1):
        raise SpecError(f"--limit {limit!r} is invalid (expected a positive integer)")
    if benchmark == "rewardbench":
        rows, group = rb1.load_rewardbench(source, split), "subset"
    elif benchmark == "rewardbench-2":
        rows, group = rb2.load_rewardbench2(source, split), "subset"
    else:
        rows, group = rmbench.load_rmbench(source, split), "domain"
    return rows.groupby(group, group_keys=False, sort=False).head(limit) if limit else rows


def score_benchmark(benchmark: str, rows: pd.DataFrame, score_texts: TextScorer,
                    missing_sections: str = "zero") -> tuple[dict, pd.DataFrame]:
    """(result, contributions) for `rows` from `load_benchmark`, scoring every response with
    `score_texts(prompts, responses)`."""
    benchmark = resolve_benchmark(benchmark, None)
    if benchmark == "rewardbench":
        prompts = rows["prompt"].tolist()
        scored = rows.assign(score_chosen=list(score_texts(prompts, rows["chosen"].tolist())),
                             score_rejected=list(score_texts(prompts, rows["rejected"].tolist())))
        return (rb1.score_rewardbench(scored, missing_sections),
                rb1.rewardbench_contributions(scored, missing_sections))
    if benchmark == "rewardbench-2":
        texts = rb2.completions(rows)
        scored = rb2.attach_scores(rows, score_texts(texts["prompt"].tolist(), texts["text"].tolist()))
        result = rb2.score_rewardbench2(scored, missing_sections)
        ties = scored[scored["section"] == rb2.TIES]
        # Kept so a comparison can bootstrap Ties over its questions (it is not a mean over prompts).
        result["ties_questions"] = rb2.ties_question_stats(ties).to_dict("records") if len(ties) else []
        return result, rb2.rewardbench2_contributions(scored)
    flat_prompts = [p for p in rows["prompt"] for _ in range(3)]
    chosen = np.asarray(score_texts(flat_prompts, [t for texts in rows["chosen"] for t in texts]), dtype=float).reshape(-1, 3)
    rejected = np.asarray(score_texts(flat_prompts, [t for texts in rows["rejected"] for t in texts]), dtype=float).reshape(-1, 3)
    scored = rows.assign(scores_chosen=list(chosen), scores_rejected=list(rejected))
    return rmbench.score_rmbench(scored, missing_sections), rmbench.rmbench_contributions(scored, missing_sections)


def write_scores(out: str | Path, result: dict, contributions: pd.DataFrame) -> tuple[Path, Path]:
    """The result as JSON at `out` and the contributions as parquet beside it (`<stem>.examples.parquet`),
    both written atomically. Returns both paths."""
    out = Path(out)
    examples = score_examples_path(out)
    atomic_write(examples, lambda tmp: contributions.to_parquet(tmp, index=False))
    atomic_write_json(out, result)
    return out, examples


def score_model_folder(model_dir: str | Path, benchmark: str, data: str | Path | None = None, split: str | None = None,
                       limit: int | None = None, batch_size: int = 16, device: str = "auto", missing_sections: str = "zero",
                       out: str | Path | None = None) -> tuple[dict, Path]:
    """Score a saved reward model (`<run>/model`) on `benchmark` and write the result (default
    `<run>/scores/<benchmark>.json`) and its per-example table. Returns (result, path of the JSON)."""
    from normbt_viz.model.reward_model import RewardModel

    model_dir = Path(model_dir)
    if not (model_dir / "reward_model.json").is_file():
        raise SpecError(f"--model {model_dir}: not a reward model folder (no reward_model.json); pass <run>/model")
    rows = load_benchmark(benchmark, data, split, limit)
    model = RewardModel.load(model_dir, device=device)
    result, examples = score_benchmark(
        benchmark, rows, lambda prompts, responses: model.score(prompts, responses, batch_size), missing_sections
    )
    path, _ = write_scores(Path(out) if out else RunDir(model_dir.parent).score_path(benchmark), result, examples)
    return result, path


def summary_lines(result: dict) -> list[str]:
    """What the CLI prints: one line per section and the overall score(s), in points (x100, one decimal, as
    upstream's tables print them), then the notes."""
    lines = [f"{name}: {100 * value:.1f}" for name, value in result["sections"].items()]
    if result.get("benchmark") == "rewardbench":
        prior = result.get(rb1.PRIOR_SETS_NAME)
        if prior is not None:
            lines.append(f"{rb1.PRIOR_SETS_NAME}: {100 * prior:.1f}")
        lines.append(f"score (4 sections): {100 * result['score']:.1f}")
        lines.append(f"score_with_prior_sets (upstream 'average'): {100 * result['score_with_prior_sets']:.1f}")
    else:
        lines.append(f"score: {100 * result['score']:.1f}")
    return lines + [f"note: {note}" for note in result.get("notes", [])]


# ---- comparing runs -------------------------------------------------------------------------------------------

def _headline(result: dict) -> dict[str, float]:
    values = dict(result.get("sections", {}))
    if result.get("benchmark") == "rewardbench":
        if result.get(rb1.PRIOR_SETS_NAME) is not None:
            values[rb1.PRIOR_SETS_NAME] = result[rb1.PRIOR_SETS_NAME]
        values["score_with_prior_sets"] = result.get("score_with_prior_sets")
    values["score"] = result.get("score")
    return {k: (float("nan") if v is None else float(v)) for k, v in values.items()}


def benchmark_scores_table(scores_by_run: dict[str, dict[str, dict]]) -> pd.DataFrame:
    """Side by side: one row per (benchmark, section) and one column per run, in points (x100). `scores_by_run`
    maps a run name to `RunDir.read_scores()`; results that could not be read (an "error" key) are skipped."""
    rows: dict[tuple[str, str], dict] = {}
    for run, results in scores_by_run.items():
        for benchmark, result in results.items():
            if "error" in result:
                continue
            for section, value in _headline(result).items():
                rows.setdefault((benchmark, section), {"benchmark": benchmark, "section": section})[run] = 100 * value
    return pd.DataFrame(list(rows.values()), columns=["benchmark", "section", *scores_by_run])


_TIES_COLUMNS = ("tied_accurate", "ref_accurate", "preferred", "preferred_hard", "margin_score")
_TIES_PART_WEIGHTS = np.array([rb2.TIES_WEIGHTS[name] for name in (
    "tied_accuracy", "ref_accuracy", "correctness_preferred", "correctness_preferred_hard", "correctness_margin_score")])


def _ties_scores(stats: np.ndarray) -> np.ndarray:
    """Ties scores of (..., questions, 5) arrays of `_TIES_COLUMNS`: the weighted sum of the column means over
    the questions where a column is defined (0 where it is nowhere), as `rb2.ties_score_from_stats`."""
    defined = ~np.isnan(stats)
    counts = defined.sum(axis=-2)
    sums = np.where(defined, stats, 0.0).sum(axis=-2)
    means = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return means @ _TIES_PART_WEIGHTS


def _ties_bootstrap(questions_a: list, questions_b: list, n_boot: int, seed: int) -> dict | None:
    """Paired bootstrap of Ties(b) - Ties(a) over the questions both runs scored (resampling questions, each with
    its ref and tied prompts), recomputing upstream's formula on every resample."""
    if not questions_a or not questions_b:
        return None
    a = pd.DataFrame(questions_a).set_index("question")
    b = pd.DataFrame(questions_b).set_index("question")
    common = a.index.intersection(b.index)
    if common.empty:
        return None
    stats_a = a.loc[common, list(_TIES_COLUMNS)].to_numpy(dtype=float)
    stats_b = b.loc[common, list(_TIES_COLUMNS)].to_numpy(dtype=float)
    point = float(_ties_scores(stats_b) - _ties_scores(stats_a))
    index = np.random.default_rng(seed).integers(0, len(common), size=(n_boot, len(common)))
    replicates = _ties_scores(stats_b[index]) - _ties_scores(stats_a[index])
    low, high = np.quantile(replicates, [0.025, 0.975])
    share = np.mean(replicates <= 0) if point > 0 else np.mean(replicates >= 0) if point < 0 else 0.5
    return {"diff": point, "low": float(low), "high": float(high), "n_pairs": int(len(common)),
            "p_two_sided": float(min(1.0, 2.0 * share))}


def paired_section_diffs(result_a: dict, examples_a: pd.DataFrame, result_b: dict, examples_b: pd.DataFrame,
                         n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per section, b - a with a 95% paired bootstrap interval over the examples both runs scored.

    Sections that are weighted means over examples (all of v1 and RM-Bench, the five best-of-n sections of
    RewardBench 2) resample the contributions with `stats.paired_bootstrap_diff`: the statistic is
    sum(weight * (value_b - value_a)), exactly the difference of the scores when both runs scored the same
    examples (weights are rescaled to their full-set total when only some examples are common). RewardBench 2's
    Ties resamples its questions and recomputes upstream's formula; its overall score, which mixes the two, gets
    the point difference only (low/high NaN). Returns columns section, a, b, diff, low, high, n, p_two_sided,
    in points (x100) except n and p.
    """
    headline_a, headline_b = _headline(result_a), _headline(result_b)
    rows = []
    sections = [s for s in headline_a if s in headline_b]
    for section in sections:
        row = {"section": section, "a": 100 * headline_a[section], "b": 100 * headline_b[section],
               "diff": 100 * (headline_b[section] - headline_a[section]), "low": np.nan, "high": np.nan,
               "n": np.nan, "p_two_sided": np.nan}
        part_a = examples_a[examples_a["section"] == section] if len(examples_a) else examples_a
        part_b = examples_b[examples_b["section"] == section] if len(examples_b) else examples_b
        if len(part_a) and len(part_b):
            joined = part_a.merge(part_b[["example_id", "value"]], on="example_id", suffixes=("_a", "_b"))
            if len(joined):
                scale = part_a["weight"].sum() / joined["weight"].sum()
                weight = joined["weight"].to_numpy(dtype=float) * scale * len(joined)
                boot = paired_bootstrap_diff(weight * joined["value_a"].to_numpy(dtype=float),
                                             weight * joined["value_b"].to_numpy(dtype=float), n_boot=n_boot, seed=seed)
                row.update(diff=100 * boot["diff"], low=100 * boot["low"], high=100 * boot["high"],
                           n=boot["n_pairs"], p_two_sided=boot["p_two_sided"])
        elif section == rb2.TIES and result_a.get("benchmark") == "rewardbench-2":
            boot = _ties_bootstrap(result_a.get("ties_questions") or [], result_b.get("ties_questions") or [], n_boot, seed)
            if boot:
                row.update(diff=100 * boot["diff"], low=100 * boot["low"], high=100 * boot["high"],
                           n=boot["n_pairs"], p_two_sided=boot["p_two_sided"])
        rows.append(row)
    return pd.DataFrame(rows, columns=["section", "a", "b", "diff", "low", "high", "n", "p_two_sided"])


def benchmark_paired_diffs(scores_by_run: dict[str, dict[str, dict]], examples_by_run: dict[str, dict[str, pd.DataFrame]],
                           baseline: str, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Every run against `baseline` (the BT run) on every benchmark both have scores for: `paired_section_diffs`
    with columns benchmark and run in front (a = the baseline, b = the run)."""
    frames = []
    base_scores = scores_by_run.get(baseline, {})
    for run, results in scores_by_run.items():
        if run == baseline:
            continue
        for benchmark, result in results.items():
            base = base_scores.get(benchmark)
            if base is None or "error" in base or "error" in result:
                continue
            diffs = paired_section_diffs(base, examples_by_run.get(baseline, {}).get(benchmark, pd.DataFrame()),
                                         result, examples_by_run.get(run, {}).get(benchmark, pd.DataFrame()),
                                         n_boot=n_boot, seed=seed)
            frames.append(diffs.assign(benchmark=benchmark, run=run))
    columns = ["benchmark", "run", "section", "a", "b", "diff", "low", "high", "n", "p_two_sided"]
    return pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)


def runs_benchmark_view(runs: list, arms: dict[str, str], n_boot: int = 2000, seed: int = 0) -> dict:
    """Everything the Runs page shows about benchmark scores of `runs` (RunDirs; `arms` maps run name to arm):
    {"scores": `benchmark_scores_table` (empty when no run has scores), "baseline": the first run whose arm is
    "bt" among those with scores (None if none), "diffs": `benchmark_paired_diffs` against it, "errors": one line
    per score file that could not be read}."""
    scores = {run.name: run.read_scores() for run in runs}
    scores = {name: results for name, results in scores.items() if results}
    errors = [result["error"] for results in scores.values() for result in results.values() if "error" in result]
    baseline = next((name for name in scores if arms.get(name) == "bt"), None)
    diffs = pd.DataFrame()
    if baseline is not None and len(scores) > 1:
        by_name = {run.name: run for run in runs}
        examples = {name: {benchmark: by_name[name].score_examples(benchmark) for benchmark, result in results.items()
                           if "error" not in result} for name, results in scores.items()}
        diffs = benchmark_paired_diffs(scores, examples, baseline, n_boot=n_boot, seed=seed)
    return {"scores": benchmark_scores_table(scores), "baseline": baseline, "diffs": diffs, "errors": errors}
