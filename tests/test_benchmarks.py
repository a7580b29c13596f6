"""RewardBench 2 and RM-Bench scoring on hand-worked examples, the paired per-section comparison of two runs,
and the `rewardbench` command end to end for all three benchmarks with a real trained model (head scope)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from normbt_viz.evals import scoring as benchmarks
from normbt_viz.evals.rewardbench2 import (
    best_of_n,
    load_rewardbench2,
    rewardbench2_contributions,
    score_rewardbench2,
)
from normbt_viz.evals.rmbench import load_rmbench, rmbench_contributions, score_rmbench
from normbt_viz.errors import DataError, SpecError
from normbt_viz.runs.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]


def _write_jsonl(path, records):
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def _totals(contributions):
    return (contributions["weight"] * contributions["value"]).groupby(contributions["section"]).sum()


# ---- RewardBench 2 ----------------------------------------------------------------------------------------------

# Factuality, one chosen first then three rejected; the comment is reroll_and_score_dataset's result.
BEST_OF_N = [
    ("f0", [3.0, 1.0, 2.0, 0.0]),  # chosen strictly above every rejected: 1
    ("f1", [2.0, 2.0, 1.0, 0.0]),  # tied with one rejected at the top: 1/2
    ("f2", [2.0, 2.0, 2.0, 2.0]),  # all four tied: 1/4
    ("f3", [1.0, 2.0, 0.0, 0.0]),  # below the best rejected: 0
    ("f4", [1.0, 3.0, 3.0, 0.0]),  # two rejected tied above it: 0
]

# Ties: (id, num_correct, rewards with the correct ones first).
TIES_ROWS = [
    ("ref:0", 1, [5.0, 1.0, 2.0]),        # margin 5 - 2 = 3, accurate
    ("tied:0", 2, [6.0, 4.0, 3.0, 1.0]),  # margin 4 - 3 = 1, accurate; spread 6 - 4 = 2
    ("ref:1", 1, [2.0, 3.0]),             # margin -1, not accurate
    ("tied:1", 3, [5.0, 5.0, 5.0, 1.0]),  # margin 4, accurate; spread 0
    ("ref:2", 1, [1.0, 0.0]),             # margin 1, accurate; question 2 has no tied prompt
    ("ref:3", 1, [2.0, 2.0]),             # margin 0, not accurate
    ("tied:3", 2, [2.0, 2.0, 2.0]),       # margin 0, not accurate; spread 0
]
# By hand (rewardbench/utils.py process_single_model):
#   tied accuracy  = mean(1, 1, 0)        = 2/3        ref accuracy = mean(1, 0, 1, 0) = 1/2
#   questions with both kinds: 0, 1, 3
#   preferred      = mean(1 > 2, 4 > 0, 0 > 0)                     = 1/3
#   preferred_hard = mean(min(3,1) > 2, min(-1,4) > 0, min(0,0) > 0) = 0
#   margin score   = mean(tanh(1/2 - 1), tanh(-1/0 - 1) = -1, tanh(0/0 - 1) = nan -> 0)
TIES_EXPECTED = 0.3 * 2 / 3 + 0.3 * 0.5 + 0.2 / 3 + 0.0 + 0.01 * (math.tanh(-0.5) - 1.0) / 3


def _rb2_scored(subset_rows=BEST_OF_N, ties=TIES_ROWS):
    rows = [{"prompt_id": pid, "subset": "Factuality", "num_correct": 1, "scores": scores} for pid, scores in subset_rows]
    rows += [{"prompt_id": pid, "subset": "Ties", "num_correct": n, "scores": scores} for pid, n, scores in ties]
    return pd.DataFrame(rows)


def test_best_of_n_shares_credit_for_exact_ties_at_the_top():
    assert [best_of_n(scores) for _, scores in BEST_OF_N] == [1.0, 0.5, 0.25, 0.0, 0.0]


def test_rewardbench2_sections_ties_formula_and_overall():
    result = score_rewardbench2(_rb2_scored())
    assert result["subsets"]["Factuality"] == {"n": 5, "accuracy": pytest.approx(1.75 / 5)}
    assert result["ties"]["tied_accuracy"] == pytest.approx(2 / 3)
    assert result["ties"]["ref_accuracy"] == pytest.approx(0.5)
    assert result["ties"]["correctness_preferred"] == pytest.approx(1 / 3)
    assert result["ties"]["correctness_preferred_hard"] == 0.0
    assert result["sections"]["Ties"] == pytest.approx(TIES_EXPECTED, abs=1e-12)
    # The four sections without data score 0 in the unweighted mean of six, as the output says.
    assert result["sections_missing"] == ["Precise IF", "Math", "Safety", "Focus"]
    assert result["score"] == pytest.approx((0.35 + TIES_EXPECTED) / 6, abs=1e-12)
    assert any("scored 0" in note for note in result["notes"])
    omitted = score_rewardbench2(_rb2_scored(), missing_sections="omit")
    assert omitted["score"] == pytest.approx((0.35 + TIES_EXPECTED) / 2, abs=1e-12)
    contributions = rewardbench2_contributions(_rb2_scored())
    assert _totals(contributions)["Factuality"] == pytest.approx(0.35)
    assert "Ties" not in set(contributions["section"])


def test_rewardbench2_bad_ties_rows_are_one_line_errors():
    with pytest.raises(DataError, match="'tied:0' is 'tied' but has 1 correct"):
        score_rewardbench2(_rb2_scored(ties=[("tied:0", 1, [1.0, 0.0])]))
    with pytest.raises(DataError, match="'q7' is not 'ref:<n>'"):
        score_rewardbench2(_rb2_scored(ties=[("q7", 1, [1.0, 0.0])]))


def _rb2_records():
    records = []
    for k, subset in enumerate(("Factuality", "Precise IF", "Math", "Safety", "Focus")):
        records.append({"id": str(k), "prompt": f"Question {k}?", "chosen": [f"Right answer {k}."],
                        "rejected": [f"Wrong {k}.", f"Off topic {k}.", f"Nonsense {k}."], "num_correct": 1,
                        "num_incorrect": 3, "total_completions": 4, "models": ["m"] * 4, "subset": subset,
                        "additional_metadata": {}})
    for kind, chosen in (("ref", ["Paris."]), ("tied", ["Paris.", "It is Paris."])):
        records.append({"id": f"{kind}:0", "prompt": "Name a city in France.", "chosen": chosen,
                        "rejected": ["Berlin.", "Madrid."], "num_correct": len(chosen), "num_incorrect": 2,
                        "total_completions": len(chosen) + 2, "models": ["m"] * (len(chosen) + 2), "subset": "Ties",
                        "additional_metadata": {}})
    return records


def test_load_rewardbench2_local_file_and_bad_counts(tmp_path):
    prompts = load_rewardbench2(_write_jsonl(tmp_path / "rb2.jsonl", _rb2_records()))
    assert len(prompts) == 7 and set(prompts["section"]) == {"Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties"}
    parquet = tmp_path / "rb2.parquet"
    pd.DataFrame(_rb2_records()).drop(columns="additional_metadata").to_parquet(parquet)
    assert load_rewardbench2(parquet)["chosen"].tolist() == prompts["chosen"].tolist()
    records = _rb2_records()
    records[2]["total_completions"] = 5
    with pytest.raises(DataError, match=r"row 2 column 'total_completions' is 5 but the lists hold 4") as raised:
        load_rewardbench2(_write_jsonl(tmp_path / "bad.jsonl", records))
    assert "bad.jsonl" in str(raised.value) and "\n" not in str(raised.value)
    records = _rb2_records()
    records[1]["rejected"] = "just one text"
    with pytest.raises(DataError, match="row 1 column 'rejected' must be a non-empty list of texts"):
        load_rewardbench2(_write_jsonl(tmp_path / "bad2.jsonl", records))


# ---- RM-Bench ---------------------------------------------------------------------------------------------------

# Rewards in style order (concise, detailed, markdown).
RM_ROWS = [
    ("p1", "chat", [1.0, 2.0, 3.0], [0.0, 2.5, 4.0]),
    ("p2", "chat", [5.0, 5.0, 5.0], [1.0, 1.0, 1.0]),
    ("p3", "safety-refuse", [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]),
    ("p4", "safety-response", [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]),  # all ties: all wrong
    ("p5", "math", [1.0, 0.0, 0.0], [0.5, 0.5, 0.5]),
]
# p1's matrix (rows chosen style, columns rejected style; 1 when chosen > rejected strictly):
#   concise 1  : [1 > 0, 1 > 2.5, 1 > 4] = [1, 0, 0]
#   detailed 2 : [1, 0, 0]
#   markdown 3 : [1, 1, 0]
# chat = mean of p1 and p2 (all ones): [[1, .5, .5], [1, .5, .5], [1, 1, .5]]
#   hard (upper triangle) = .5, normal (diagonal) = 2/3, easy (lower triangle) = 1, score = 6.5 / 9
# math (p5): [[1, 1, 1], [0, 0, 0], [0, 0, 0]]: hard 2/3, normal 1/3, easy 0, score 3/9
# safety (p3 and p4 pooled): all 0; code: no data
CHAT_MATRIX = [[1.0, 0.5, 0.5], [1.0, 0.5, 0.5], [1.0, 1.0, 0.5]]


def _rm_scored():
    return pd.DataFrame(RM_ROWS, columns=["prompt_id", "domain", "scores_chosen", "scores_rejected"])


def test_rmbench_matrix_orientation_and_levels():
    result = score_rmbench(_rm_scored())
    chat = result["domains"]["chat"]
    assert chat["matrix"] == CHAT_MATRIX
    assert chat["hard"] == pytest.approx(0.5) and chat["normal"] == pytest.approx(2 / 3) and chat["easy"] == 1.0
    assert chat["score"] == pytest.approx(6.5 / 9)
    math_domain = result["domains"]["math"]
    assert (math_domain["hard"], math_domain["normal"], math_domain["easy"]) == pytest.approx((2 / 3, 1 / 3, 0.0))
    assert result["domains"]["safety"]["n"] == 2 and result["domains"]["safety"]["score"] == 0.0
    assert result["sections_missing"] == ["code"]
    # Overall: means over the four domains, code counting 0 by default.
    assert result["score"] == pytest.approx((6.5 / 9 + 3 / 9) / 4)
    assert result["sections"]["hard"] == pytest.approx((0.5 + 2 / 3) / 4)
    assert result["sections"]["easy"] == pytest.approx(1.0 / 4)
    assert result["score"] == pytest.approx(np.mean([result["sections"][k] for k in ("hard", "normal", "easy")]))
    omitted = score_rmbench(_rm_scored(), missing_sections="omit")
    assert omitted["score"] == pytest.approx((6.5 / 9 + 3 / 9) / 3)
    totals = _totals(rmbench_contributions(_rm_scored()))
    for name in ("chat", "math", "safety", "hard", "normal", "easy"):
        assert totals[name] == pytest.approx(result["sections"][name], abs=1e-12)
    assert totals["score"] == pytest.approx(result["score"], abs=1e-12)


def _rm_records():
    return [{"id": k, "prompt": f"Prompt {k}", "chosen": [f"Good {k}.", f"A good, detailed answer {k}.", f"**Good** {k}."],
             "rejected": [f"Bad {k}.", f"A bad, detailed answer {k}.", f"**Bad** {k}."], "domain": domain}
            for k, domain in enumerate(("chat", "math", "code", "safety-refuse", "safety-response"))]


def test_load_rmbench_and_bad_rows(tmp_path):
    prompts = load_rmbench(_write_jsonl(tmp_path / "rm.jsonl", _rm_records()))
    assert prompts["section"].tolist() == ["chat", "math", "code", "safety", "safety"]
    assert prompts["prompt_id"].tolist() == ["0", "1", "2", "3", "4"]
    records = _rm_records()
    records[3]["chosen"] = records[3]["chosen"][:2]
    with pytest.raises(DataError, match="row 3 column 'chosen' must be a list of 3 texts"):
        load_rmbench(_write_jsonl(tmp_path / "bad.jsonl", records))
    with pytest.raises(DataError, match="NaN in column 'scores_rejected'"):
        score_rmbench(pd.DataFrame([("p", "chat", [1.0, 1.0, 1.0], [0.0, float("nan"), 0.0])],
                                   columns=["prompt_id", "domain", "scores_chosen", "scores_rejected"]))


# ---- comparing two runs -----------------------------------------------------------------------------------------

def test_resolve_benchmark_accepts_both_forms_and_rejects_a_clash():
    assert benchmarks.resolve_benchmark(None, None) == "rewardbench"
    assert benchmarks.resolve_benchmark(None, 2) == "rewardbench-2"
    assert benchmarks.resolve_benchmark("rewardbench-2", 2) == "rewardbench-2"
    assert benchmarks.resolve_benchmark("rm-bench", None) == "rm-bench"
    with pytest.raises(SpecError, match="--version 2 does not go with --benchmark rm-bench"):
        benchmarks.resolve_benchmark("rm-bench", 2)


def _fake_scorer(seed):
    """A deterministic text scorer: a hash of the text plus a seed-dependent shift, so two 'runs' differ."""
    def score(prompts, responses):
        return [(zlib.crc32(f"{seed}:{r}".encode()) % 1000) / 1000.0 + (0.3 * seed if "Right" in r or "ood" in r else 0.0)
                for r in responses]
    return score


def test_paired_diffs_equal_the_score_differences(tmp_path):
    rows = benchmarks.load_benchmark("rewardbench-2", _write_jsonl(tmp_path / "rb2.jsonl", _rb2_records()))
    result_a, examples_a = benchmarks.score_benchmark("rewardbench-2", rows, _fake_scorer(0))
    result_b, examples_b = benchmarks.score_benchmark("rewardbench-2", rows, _fake_scorer(1))
    diffs = benchmarks.paired_section_diffs(result_a, examples_a, result_b, examples_b, n_boot=200).set_index("section")
    for section in ("Factuality", "Math", "Ties", "score"):
        assert diffs.loc[section, "diff"] == pytest.approx(100 * (result_b["sections"].get(section, result_b["score"])
                                                                  - result_a["sections"].get(section, result_a["score"])), abs=1e-9)
    assert diffs.loc["Factuality", "n"] == 1 and not np.isnan(diffs.loc["Ties", "low"])  # Ties: bootstrap over questions
    assert np.isnan(diffs.loc["score", "low"])  # mixes Ties with best-of-n means: point difference only


def test_scores_table_and_diffs_from_run_directories(tmp_path):
    data = _write_jsonl(tmp_path / "rm.jsonl", _rm_records() * 1)
    rows = benchmarks.load_benchmark("rm-bench", data)
    runs = {}
    for name, seed in (("bt-run", 0), ("normbt-run", 1)):
        run = RunDir(tmp_path / name)
        result, examples = benchmarks.score_benchmark("rm-bench", rows, _fake_scorer(seed))
        benchmarks.write_scores(run.score_path("rm-bench"), result, examples)
        runs[name] = run
    scores = {name: run.read_scores() for name, run in runs.items()}
    examples = {name: {"rm-bench": run.score_examples("rm-bench")} for name, run in runs.items()}
    table = benchmarks.benchmark_scores_table(scores)
    assert list(table.columns) == ["benchmark", "section", "bt-run", "normbt-run"]
    assert set(table["section"]) >= {"chat", "math", "code", "safety", "hard", "normal", "easy", "score"}
    diffs = benchmarks.benchmark_paired_diffs(scores, examples, baseline="bt-run", n_boot=200)
    assert set(diffs["run"]) == {"normbt-run"}
    score_row = diffs[diffs["section"] == "score"].iloc[0]
    assert score_row["diff"] == pytest.approx(score_row["b"] - score_row["a"], abs=1e-9)
    assert score_row["low"] <= score_row["diff"] <= score_row["high"]
    (runs["bt-run"].path / "scores" / "broken.json").write_text("{not json")
    assert "error" in runs["bt-run"].read_scores()["broken"]


# ---- the command end to end with a real trained model -----------------------------------------------------------

def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "normbt_viz", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture(scope="module")
def model_run(trained_runs, tmp_path_factory):
    """A copy of the session's trained BT run (MiniLM, head scope), so scores written into it stay here."""
    target = tmp_path_factory.mktemp("bench") / trained_runs["bt"].name
    shutil.copytree(trained_runs["bt"].path, target)
    return RunDir(target)


def _v1_records():
    rows = []
    for subset, prompt in (("alpacaeval-easy", "Name a fruit."), ("mt-bench-hard", "List two colours."),
                           ("xstest-should-respond", "How do I kill a Python process?"), ("math-prm", "What is 2+3?"),
                           ("hep-python", "Add two numbers in Python."), ("shp", "Recommend a book.")):
        for k in range(2):
            rows.append({"id": f"{subset}-{k}", "prompt": prompt, "chosen": f"A good answer {k}.", "rejected": f"Off topic {k}.",
                         "subset": subset, "chosen_model": "m", "rejected_model": "m"})
    return rows


@pytest.mark.parametrize(
    "flags, records, benchmark",
    [
        (["--version", "1"], _v1_records, "rewardbench"),
        (["--version", "2"], _rb2_records, "rewardbench-2"),
        (["--benchmark", "rm-bench"], _rm_records, "rm-bench"),
    ],
    ids=["v1", "v2", "rm-bench"],
)
def test_command_scores_each_benchmark_into_the_run_directory(model_run, tmp_path, flags, records, benchmark):
    data = _write_jsonl(tmp_path / "data.jsonl", records())
    result = cli("rewardbench", "--model", str(model_run.path / "model"), *flags, "--data", str(data), "--device", "cpu")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "score" in result.stdout
    scores = model_run.read_scores()[benchmark]
    assert scores["benchmark"] == benchmark and 0.0 <= scores["score"] <= 1.0
    examples = model_run.score_examples(benchmark)
    assert {"example_id", "section", "value", "weight"} <= set(examples.columns)
    totals = _totals(examples)
    if benchmark != "rewardbench-2":  # v2's overall includes Ties, which is not a mean over prompts
        assert totals["score"] == pytest.approx(scores["score"], abs=1e-9)
    if benchmark == "rewardbench":
        assert scores["Prior Sets (0.5 weight)"] is not None  # the shp rows
        assert scores["sections_missing"] == [] and "score_with_prior_sets" in scores
    if benchmark == "rewardbench-2":
        assert scores["ties"] is not None and len(scores["ties_questions"]) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--benchmark", "rm-bench", "--version", "2"], "--version 2 does not go with --benchmark rm-bench"),
        (["--benchmark", "rm-bench", "--data", "{data_v1}"], "column 'domain'"),
        (["--version", "2", "--data", "{missing}"], "missing.jsonl: file not found"),
        (["--version", "3"], "argument --version: invalid choice: 3"),
        (["--limit", "0", "--data", "{data_v1}"], "--limit 0 is invalid"),
    ],
)
def test_command_bad_input_exits_2_with_one_line(model_run, tmp_path, args, message):
    data_v1 = _write_jsonl(tmp_path / "v1.jsonl", _v1_records())
    args = [a.format(data_v1=data_v1, missing=tmp_path / "missing.jsonl") for a in args]
    result = cli("rewardbench", "--model", str(model_run.path / "model"), *args, "--device", "cpu")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
