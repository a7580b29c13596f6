"""The report command end to end on its minimal configuration."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def test_report_quick_writes_summary_figures_and_csv(tmp_path):
    out = tmp_path / "report"
    result = subprocess.run([sys.executable, "-m", "normbt_viz", "report", "--quick", "--out", str(out), "--runs", str(tmp_path / "runs")],
                            cwd=REPO, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr[-2000:]
    summary = (out / "summary.md").read_text()
    for heading in ("Accuracy overall", "Paired difference against `bt`", "Accuracy per category", "Accuracy per distance bin",
                    "Update share per distance decile", "Label-noise study", "Weight on flipped", "The reviewers' question",
                    "Paired difference against `bt` per distance bin", "The proxy over training"):
        assert heading in summary, heading
    for png in ("error_vs_distance.png", "update_share_by_decile.png", "accuracy_per_distance_bin.png", "paired_difference_per_bin.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    overall = pd.read_csv(out / "overall.csv")
    assert set(overall["arm"]) == {"bt", "normbt", "bt_layernorm"} and (overall["n"] == 2).all()
    assert ((overall["low"] <= overall["mean"]) & (overall["mean"] <= overall["high"])).all()
    shares = pd.read_csv(out / "update_share_by_decile.csv")
    assert set(shares["part"]) == {"head"}  # a frozen backbone has no backbone update
    for arm, table in shares.groupby("arm"):
        assert abs(table["update_share"].sum() - 1.0) < 1e-6
    bt, normbt = (shares[shares["arm"] == a].set_index("decile")["update_share"] for a in ("bt", "normbt"))
    # The rebalancing: under BT the closest decile gets far less than its tenth; NormBT gives it much more.
    assert bt.loc[1] < 0.05 and normbt.loc[1] > 2 * bt.loc[1]
    paired = pd.read_csv(out / "paired.csv")
    assert set(paired["arm"]) == {"normbt", "bt_layernorm"} and ((paired["low"] <= paired["diff"]) & (paired["diff"] <= paired["high"])).all()
    noise = pd.read_csv(out / "noise_clean_accuracy.csv")
    assert set(noise["noise"]) == {0.0, 0.2}


def test_report_reuses_finished_runs_of_the_same_spec(tmp_path):
    """An interrupted or repeated report trains only what its runs folder lacks."""
    from normbt_viz.experiments.report import ReportConfig, write_report
    import dataclasses

    config = dataclasses.replace(ReportConfig.quick(), arms=("bt", "normbt"), seeds=(0,), noise_rates=())
    write_report(config, tmp_path / "first", tmp_path / "runs")
    assert "(2 runs trained, 0 reused)" in (tmp_path / "first" / "summary.md").read_text()
    bigger = dataclasses.replace(config, seeds=(0, 1))
    write_report(bigger, tmp_path / "second", tmp_path / "runs")
    summary = (tmp_path / "second" / "summary.md").read_text()
    assert "(2 runs trained, 2 reused)" in summary
    first, second = (pd.read_csv(tmp_path / name / "per_seed.csv") for name in ("first", "second"))
    # The reused runs are the same runs: seed 0's accuracy is unchanged.
    merged = first.merge(second, on=["arm", "seed"], suffixes=("_first", "_second"))
    assert len(merged) == 2 and (merged["accuracy_first"] == merged["accuracy_second"]).all()


def test_report_decoder_config_takes_overrides_and_reports_the_backbone_update_and_the_proxy(tmp_path):
    """The decoder report's parts on a small top-k run (MiniLM's top block here, to stay quick): the backbone's
    share of the update per decile from the exact per-pair norms, the proxy over training, the per-arm answer
    on the closest pairs, and benchmark scores of every run's model on a local file shaped like RewardBench."""
    import json

    from normbt_viz.cli import main

    rows = [{"id": f"{subset}-{k}", "prompt": "Name a fruit.", "chosen": f"An apple {k}.", "rejected": f"Off topic {k}.", "subset": subset,
             "chosen_model": "m", "rejected_model": "m"}
            for subset in ("alpacaeval-easy", "mt-bench-hard", "refusals-dangerous", "math-prm") for k in range(2)]
    bench = tmp_path / "rb.jsonl"
    bench.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "report"
    code = main(["report", "--config", "decoder", "--backbone", "minilm", "--demo-size", "100", "--max-steps", "4", "--eval-every", "2",
                 "--batch-size", "16", "--full-grad-sample", "8", "--initial-grad-sample", "20", "--arms", "bt,normbt,bt_smooth",
                 "--seeds", "0,1", "--noise-rates", "", "--benchmark", "rewardbench", "--benchmark-data", str(bench),
                 "--device", "cpu", "--out", str(out), "--runs", str(tmp_path / "runs")])
    assert code == 0
    summary = (out / "summary.md").read_text()
    assert "report --config decoder --arms bt,normbt,bt_smooth --seeds 0,1 --noise-rates ''" in summary
    assert "--backbone minilm" in summary and "scope `top-k` (k = 1)" in summary
    shares = pd.read_csv(out / "update_share_by_decile.csv")
    assert set(shares["part"]) == {"head", "backbone"} and set(shares["arm"]) == {"bt", "normbt", "bt_smooth"}
    for (_part, _arm), table in shares.groupby(["part", "arm"]):
        assert abs(table["update_share"].sum() - 1.0) < 1e-6
    assert shares.loc[shares["part"] == "backbone", "n"].sum() == 20 * 3  # the step-0 sample, every eval pair of it
    proxy = pd.read_csv(out / "proxy_over_training.csv")
    assert set(proxy["step"]) == {0, 2, 4} and proxy["eval_proxy_corr"].between(-1, 1).all()
    verdicts = pd.read_csv(out / "close_pair_verdicts.csv")
    assert set(verdicts["arm"]) == {"normbt", "bt_smooth"}
    assert set(verdicts["verdict"]) <= {"beats BT beyond its interval", "worse than BT beyond its interval", "no difference beyond its interval"}
    scores = pd.read_csv(out / "benchmark_scores.csv")
    assert len(scores) == 6 and scores["score"].between(0, 1).all()
    for heading in ("The reviewers' question", "Backbone (the trainable blocks)", "The proxy over training", "Label-noise study", "Benchmark scores"):
        assert heading in summary, heading
    assert (out / "proxy_over_training.png").read_bytes()[:4] == b"\x89PNG"


def test_report_refuses_an_unknown_arm_in_one_line(tmp_path, capsys):
    from normbt_viz.cli import main

    assert main(["report", "--quick", "--arms", "bt,nope", "--out", str(tmp_path / "r"), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'nope'" in err[0]
    assert not (tmp_path / "runs").exists()
    missing = tmp_path / "missing.jsonl"
    assert main(["report", "--quick", "--dataset", str(missing), "--out", str(tmp_path / "r"), "--runs", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(missing) in err[0]
    assert not (tmp_path / "runs").exists()  # refused before any run directory was made
    for bad, named in ((["--benchmark", "rewardbench,nope"], "'nope'"), (["--seeds", "0,x"], "'0,x'"), (["--noise-arms", "bt,zzz"], "'zzz'")):
        try:  # argparse ends a malformed list with SystemExit(2); the checks after parsing return 2
            code = main(["report", "--quick", *bad, "--out", str(tmp_path / "r"), "--runs", str(tmp_path / "runs")])
        except SystemExit as stop:
            code = stop.code
        assert code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and named in err[0], (bad, err)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("scope", ["full", "lora"])
def test_report_runs_on_a_users_file_with_another_scope(tmp_path, scope):
    """The GPU-box path on a small scale: a dataset file instead of the demo data, another scope. The label-noise
    study needs the demo generator, so it is skipped, and the summary says why."""
    from normbt_viz.cli import main
    from normbt_viz.data.demo import generate_demo_pairs

    data = tmp_path / "prefs.jsonl"
    generate_demo_pairs(60, 0.0, 3)[["prompt", "chosen", "rejected", "category"]].to_json(data, orient="records", lines=True)
    out = tmp_path / "report"
    assert main(["report", "--config", "decoder", "--backbone", "minilm", "--scope", scope, "--dataset", str(data), "--arms", "bt,normbt",
                 "--seeds", "0", "--max-steps", "2", "--eval-every", "2", "--batch-size", "8", "--full-grad-sample", "4",
                 "--initial-grad-sample", "12", "--device", "cpu", "--out", str(out), "--runs", str(tmp_path / "runs")]) == 0
    summary = (out / "summary.md").read_text()
    assert f"dataset `{data}` (20% held out), scope `{scope}`" in summary
    assert "Skipped: label noise is injected into the demo data only" in summary
    overall = pd.read_csv(out / "overall.csv")
    assert set(overall["arm"]) == {"bt", "normbt"}
    assert set(pd.read_csv(out / "update_share_by_decile.csv")["part"]) == {"head", "backbone"}


def test_weight_on_flipped_reads_the_record_stream_when_no_train_sample_was_rescored(tmp_path):
    """Backbone scopes re-score no train sample by default: the first and last epoch of the per-pair record
    stream say how much of the update went to flipped pairs."""
    from normbt_viz.analysis.comparison import weight_on_flipped
    from normbt_viz.runs.launcher import train_inline
    from normbt_viz.spec import RunSpec

    spec = RunSpec(scope="top-k", top_k=1, demo_size=80, demo_noise=0.25, max_steps=8, eval_every=8, batch_size=16,
                   full_grad_sample=4).with_arm("normbt")
    run, status = train_inline(spec, tmp_path)
    assert status["state"] == "done" and run.spec().diagnose_train_pairs == 0
    table = weight_on_flipped([run])
    per_epoch = -(-status["n_trained_pairs"] // 16)
    assert table["step"].tolist() == [per_epoch, 8]
    flipped = run.pair_texts().query("split == 'train'")["flipped"].mean()
    # An epoch visits every trained pair once (a few identical-input pairs are left out, so a window of whole
    # steps can hold a pair or two of the next epoch): each window holds about the train set's share of flips.
    assert np.allclose(table["flipped_share_of_pairs"], flipped, atol=4 / 64)
    assert table["flipped_share_of_update"].between(0, 1).all() and (table["median_weight_clean"] > 0).all()


def test_decoder_config_is_the_study_the_readme_describes():
    """The committed decoder report (docs/report_decoder) was made by this configuration: changing it silently
    would make `report --config decoder` disagree with the evidence the README cites."""
    from normbt_viz.experiments.report import REPORT_ARMS, ReportConfig

    config = ReportConfig.decoder()
    base = config.base
    assert (base.backbone, base.scope, base.top_k, base.dataset, base.demo_size, base.epochs) == ("smollm2", "top-k", 1, "demo", 1000, 3.0)
    assert (base.initial_grad_sample, base.full_grad_sample, base.eval_every) == (200, 64, 25)
    assert config.arms == REPORT_ARMS and len(config.arms) == 7 and config.seeds == (0, 1, 2)
    assert config.noise_rates == (0.2,) and config.noise_arms == ("bt", "normbt")
    recorded = pd.read_csv(REPO / "docs" / "report_decoder" / "per_seed.csv")
    assert set(recorded["arm"]) == set(REPORT_ARMS) and set(recorded["seed"]) == {0, 1, 2}
