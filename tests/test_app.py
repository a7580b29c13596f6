"""AppTest smoke tests: every page renders without an exception on a runs root made by real training runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from normbt_viz.runs.launcher import new_run_dir

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120


@pytest.fixture(autouse=True)
def runs_env(trained_runs, feature_cache, monkeypatch):
    root = trained_runs["bt"].path.parent
    monkeypatch.setenv("NORMBT_VIZ_RUNS", str(root))
    monkeypatch.setenv("NORMBT_VIZ_CACHE", str(feature_cache))
    return root


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown) + "\n".join(p.proto.text for p in at.get("progress"))


def test_whole_app_routes_to_every_page(trained_runs):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert any(b.label == "Start BT vs NormBT on the demo data" for b in at.button)
    for script in ("pages/3_Runs.py", "pages/4_Gradients.py", "pages/6_Pairs.py", "pages/8_Learn.py", "pages/7_Audit.py"):
        at.switch_page(script)
        at.run()
        assert not at.exception, (script, [e.value for e in at.exception])
        assert not at.error, (script, [e.value for e in at.error])


def test_train_page_lists_both_runs(trained_runs):
    at = page("1_Train.py")
    text = markdown_text(at)
    for run in trained_runs.values():
        assert run.name in text
    assert text.count("· done ·") >= 2
    assert [b.label for b in at.button if b.proto.type == "primary"] == ["Start BT vs NormBT on the demo data"]


def test_quick_start_launches_bt_and_normbt(tmp_path, monkeypatch):
    launched = []

    def fake_launch(specs, runs_root, processes=1):
        launched.extend(specs)
        return [new_run_dir(runs_root, spec) for spec in specs]

    monkeypatch.setattr("normbt_viz.runs.launcher.launch", fake_launch)
    at = AppTest.from_file(str(ROOT / "pages" / "1_Train.py"), default_timeout=TIMEOUT)
    at.session_state["runs_root"] = str(tmp_path)
    at.run()
    at.button(key="quick_start").click().run()
    assert not at.exception
    assert [s.arm for s in launched] == ["bt", "normbt"]
    assert {s.seed for s in launched} == {0} and all(s.dataset == "demo" for s in launched)
    assert at.success and "Started 2 run(s)" in at.success[0].value
    assert "queued" in markdown_text(at)


def test_custom_launch_uses_small_settings(tmp_path, monkeypatch):
    launched = []
    monkeypatch.setattr("normbt_viz.runs.launcher.launch", lambda specs, root, processes=1: launched.extend(specs) or [new_run_dir(root, s) for s in specs])
    at = AppTest.from_file(str(ROOT / "pages" / "1_Train.py"), default_timeout=TIMEOUT)
    at.session_state["runs_root"] = str(tmp_path)
    at.run()
    at.number_input(key="demo_size").set_value(200)
    at.number_input(key="max_steps").set_value(20)
    at.number_input(key="seeds").set_value(2)
    at.button(key="launch_custom").click().run()
    assert not at.exception and not at.error
    assert [(s.arm, s.seed) for s in launched] == [("bt", 0), ("normbt", 0), ("bt", 1), ("normbt", 1)]
    assert all(s.demo_size == 200 and s.max_steps == 20 for s in launched)


def test_data_page_shows_pairs_and_distances():
    at = AppTest.from_file(str(ROOT / "pages" / "2_Data.py"), default_timeout=TIMEOUT)
    at.session_state["demo_size"] = 200
    at.run()
    assert not at.exception and not at.error
    assert "200 pairs" in at.success[0].value
    assert len(at.dataframe) >= 2
    assert len(at.get("plotly_chart")) == 2  # pairs per category, answer lengths
    at.button(key="compute_distances").click().run()
    assert not at.exception and not at.error
    assert len(at.get("plotly_chart")) == 3
    # The demo's "answer in lowercase" pairs are one input for the uncased MiniLM: the page says so.
    assert any("same input for minilm" in w.value for w in at.warning)


def test_data_page_reports_a_bad_path_in_one_line(tmp_path):
    at = AppTest.from_file(str(ROOT / "pages" / "2_Data.py"), default_timeout=TIMEOUT)
    at.session_state["source_kind"] = "Local path"
    at.session_state["local_path"] = str(tmp_path / "missing.jsonl")
    at.run()
    assert not at.exception
    assert len(at.error) == 1 and "missing.jsonl" in at.error[0].value and "\n" not in at.error[0].value


def test_runs_page_curves_and_comparison(trained_runs):
    at = page("3_Runs.py")
    assert len(at.get("plotly_chart")) == 7  # five curves, accuracy per category and per bin
    assert len(at.dataframe) >= 3
    assert at.get("download_button")


def test_runs_page_shows_benchmark_scores_side_by_side_with_paired_differences(trained_runs, tmp_path):
    import shutil
    import zlib

    import pandas as pd

    from normbt_viz.evals.scoring import score_benchmark, write_scores
    from normbt_viz.runs.rundir import RunDir

    rows = pd.DataFrame(
        {"pair_id": [f"p{i}" for i in range(40)], "prompt": ["q"] * 40, "chosen": [f"good {i}" for i in range(40)],
         "rejected": [f"bad {i}" for i in range(40)], "subset": ["alpacaeval-easy", "math-prm"] * 20}
    )
    for arm, run in trained_runs.items():
        copy = RunDir(tmp_path / run.name)
        shutil.copytree(run.path, copy.path)
        shift = 0.5 if arm == "normbt" else 0.0  # NormBT gets more pairs right
        scorer = lambda prompts, texts, shift=shift: [(zlib.crc32(t.encode()) % 7) / 7 + (shift if t.startswith("good") else 0.0) for t in texts]
        write_scores(copy.score_path("rewardbench"), *score_benchmark("rewardbench", rows, scorer))
    at = AppTest.from_file(str(ROOT / "pages" / "3_Runs.py"), default_timeout=TIMEOUT)
    at.session_state["runs_root"] = str(tmp_path)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.exception]
    assert "Benchmark scores" in [h.value for h in at.subheader]
    frames = [frame.value for frame in at.dataframe]
    scores = next(f for f in frames if "section" in f.columns and "benchmark" in f.columns and "diff" not in f.columns)
    assert {trained_runs["bt"].name, trained_runs["normbt"].name} <= set(scores.columns)
    assert set(scores["section"]) >= {"Chat", "Reasoning", "score", "score_with_prior_sets"}
    diffs = next(f for f in frames if "diff" in f.columns and "benchmark" in f.columns)
    assert set(diffs["run"]) == {trained_runs["normbt"].name}
    # Chat Hard and Safety have no data: 0 in both runs (upstream's rule), so no interval.
    assert diffs.loc[diffs["low"].isna(), "section"].tolist() == ["Chat Hard", "Safety"]
    bootstrapped = diffs.dropna(subset=["low"])
    assert (bootstrapped["low"] <= bootstrapped["diff"]).all() and (bootstrapped["diff"] <= bootstrapped["high"]).all()


def test_gradients_page_renders_side_by_side_charts(trained_runs):
    at = page("4_Gradients.py")
    assert at.selectbox(key="grad_run_a").value == trained_runs["bt"].name
    assert at.selectbox(key="grad_run_b").value == trained_runs["normbt"].name
    assert len(at.get("plotly_chart")) == 6  # two scatters, update shares, histogram, proxy, proxy over training
    at.radio(key="grad_split").set_value("train").run()
    assert not at.exception and len(at.get("plotly_chart")) == 6


def test_gradients_page_shows_the_backbone_share_for_runs_that_train_blocks(tmp_path, monkeypatch):
    from normbt_viz.runs.launcher import train_inline
    from normbt_viz.spec import RunSpec

    for arm in ("bt", "normbt"):
        _, status = train_inline(RunSpec(scope="top-k", top_k=1, demo_size=80, max_steps=4, eval_every=4, batch_size=16,
                                         full_grad_sample=12).with_arm(arm), tmp_path)
        assert status["state"] == "done"
    monkeypatch.setenv("NORMBT_VIZ_RUNS", str(tmp_path))
    at = page("4_Gradients.py")
    assert at.radio(key="grad_share_part").options == ["head", "backbone (exact, sampled pairs)"]
    at.radio(key="grad_share_part").set_value("backbone (exact, sampled pairs)").run()
    assert not at.exception and not at.error
    assert any("Backbone: ‖∇_blocks ℓ‖" in c.value for c in at.caption)


def test_embeddings_page_maps_pairs(trained_runs):
    at = page("5_Embeddings.py")
    assert len(at.get("plotly_chart")) == 1
    assert (trained_runs["bt"].path / "projections").is_dir()
    at.radio(key="projection_what").set_value("chosen and rejected, joined").run()
    assert not at.exception and len(at.get("plotly_chart")) == 1


def test_pairs_page_tabs(trained_runs):
    at = page("6_Pairs.py")
    assert len(at.tabs) == 4
    assert len(at.dataframe) >= 3
    final = trained_runs["bt"].pairs()
    has_flips = bool(final.loc[final["split"] == "eval", "flipped"].any())
    assert any(m.label == "Injected flips found" for m in at.metric) == has_flips
    assert any(m.label == "corr(reward diff, length diff)" for m in at.metric)


def test_learn_page_has_live_toy():
    at = page("8_Learn.py")
    assert len(at.slider) >= 7
    before = at.metric[2].value
    at.slider(key="toy_hr_x").set_value(0.95).run()
    at.slider(key="toy_hr_y").set_value(0.55).run()
    assert at.metric[2].value != before
    assert len(at.get("plotly_chart")) == 2


@pytest.fixture(scope="module")
def top_k_runs(tmp_path_factory, feature_cache):
    """A BT and a NormBT run that train MiniLM's top block, so their h moves and is recorded at each evaluation."""
    from normbt_viz.runs.launcher import train_inline
    from normbt_viz.spec import RunSpec

    root = tmp_path_factory.mktemp("top_k_runs")
    base = RunSpec(scope="top-k", top_k=1, demo_size=80, max_steps=4, eval_every=2, batch_size=8, lr=1e-3)
    runs = {}
    for arm in ("bt", "normbt"):
        run, status = train_inline(base.with_arm(arm), root)
        assert status["state"] == "done", status
        runs[arm] = run
    return runs


def test_embeddings_page_maps_bt_and_normbt_as_training_moves_them(top_k_runs, monkeypatch):
    from normbt_viz.analysis.projection import shared_projection

    monkeypatch.setenv("NORMBT_VIZ_RUNS", str(top_k_runs["bt"].path.parent))
    assert top_k_runs["bt"].representation_steps() == [0, 2, 4]
    at = page("5_Embeddings.py")
    assert len(at.get("plotly_chart")) == 2  # BT and NormBT side by side
    at.select_slider(key="emb_step").set_value(0).run()
    assert not at.exception and not at.error and len(at.get("plotly_chart")) == 2
    runs = [top_k_runs["bt"], top_k_runs["normbt"]]
    start, end = shared_projection(runs, 0, "pca"), shared_projection(runs, 4, "pca")
    # Both runs start from the same backbone: identical h at step 0, then training moves them apart.
    first, second = (start[start["run"] == r.name][["x", "y"]].to_numpy() for r in runs)
    assert first == pytest.approx(second, abs=1e-4)
    first, second = (end[end["run"] == r.name][["x", "y"]].to_numpy() for r in runs)
    assert abs(first - second).max() > 1e-3


def test_pairs_page_shows_a_trained_pairs_history_from_the_record_stream(trained_runs):
    at = page("6_Pairs.py")
    at.radio(key="pairs_split").set_value("train").run()
    assert not at.exception and not at.error
    options = at.selectbox(key="pairs_inspect").options
    trained = set(trained_runs["bt"].records(columns=["pair_id"])["pair_id"])
    pair_id = next(p for p in options if p in trained)  # the near-identical ones listed first were never trained
    at.selectbox(key="pairs_inspect").set_value(pair_id).run()
    assert not at.exception and len(trained_runs["bt"].records([pair_id])) >= 1
    assert any(c.proto.spec and "This pair during training" in c.proto.spec for c in at.get("plotly_chart"))


def frame_with(at: AppTest, column: str):
    """The one dataframe on the page with `column`."""
    (frame,) = [d.value for d in at.dataframe if column in d.value.columns]
    return frame


def test_data_page_lists_skipped_rows_and_strict_refuses(tmp_path):
    path = tmp_path / "hh.jsonl"
    good = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello there!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}
    path.write_text("\n".join([json.dumps(good), '{"chosen": "broken', json.dumps({**good, "chosen": "\n\nHuman: Hi\n\nAssistant:"}),
                               json.dumps({**good, "rejected": "\n\nHuman: Hi\n\nAssistant: Bye."})]) + "\n")
    at = AppTest.from_file(str(ROOT / "pages" / "2_Data.py"), default_timeout=TIMEOUT)
    at.session_state["source_kind"] = "Local path"
    at.session_state["local_path"] = str(path)
    at.run()
    assert not at.exception and not at.error
    assert "2 pairs" in at.success[0].value
    skipped = frame_with(at, "reason")
    assert skipped["row"].tolist() == [2, 3] and skipped["column"].tolist() == ["", "chosen"]
    at.checkbox(key="strict").check().run()
    assert len(at.error) == 1 and at.error[0].value.startswith("hh.jsonl line 2: malformed JSON")


@pytest.fixture(scope="module")
def finished_audit(tmp_path_factory, feature_cache):
    from normbt_viz.audit.auditdir import audits_root
    from normbt_viz.audit.run import run_audit
    from normbt_viz.audit.spec import AuditConfig

    root = tmp_path_factory.mktemp("audit_runs")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NORMBT_VIZ_CACHE", str(feature_cache))
        # MiniLM: these tests read the page, not the backbone (SmolLM2, the default, is audited in test_browser and
        # test_audit; here it took 29 s of the suite).
        run_audit(AuditConfig(dataset="demo", demo_size=40, demo_noise=0.2, folds=4, seeds=2, max_length=64, backbone="minilm"),
                  audits_root(root) / "demo40")
    return root


def test_audit_page_without_audits_explains_how_to_start(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr("normbt_viz.audit.run.launch_audit", lambda config, folder: started.append(config))
    at = AppTest.from_file(str(ROOT / "pages" / "7_Audit.py"), default_timeout=TIMEOUT)
    at.session_state["runs_root"] = str(tmp_path)
    at.run()
    assert not at.exception and not at.error
    assert at.info and "No audits yet" in at.info[0].value
    at.button(key="start_audit").click().run()
    assert not at.exception
    assert started and started[0].dataset == "demo" and started[0].folds == 5 and started[0].demo_size == 1000
    assert started[0].judge == ""  # no judge unless one is named
    # A judge path that holds no model is refused on the form, before any audit folder exists.
    at.text_input(key="audit_judge").set_value("  runs/my-run/model/sequence_classification ").run()
    at.button(key="start_audit").click().run()
    assert not at.exception and len(started) == 1
    assert "is not a model folder" in at.error[0].value and not (tmp_path / "_audits").exists()
    judge = tmp_path / "judge"
    judge.mkdir()
    (judge / "config.json").write_text("{}")
    at.text_input(key="audit_judge").set_value(str(judge)).run()
    at.button(key="start_audit").click().run()
    assert not at.exception and started[-1].judge == str(judge)


def test_audit_page_shows_flagged_pairs_side_by_side(finished_audit):
    from normbt_viz.audit.auditdir import audits_root, list_audits

    audit = list_audits(audits_root(finished_audit))[0].frame()
    at = AppTest.from_file(str(ROOT / "pages" / "7_Audit.py"), default_timeout=TIMEOUT)
    at.session_state["runs_root"] = str(finished_audit)
    at.run()
    assert not at.exception and not at.error
    assert at.metric[0].value == "40"
    trust = [m.value for m in at.markdown if m.value.startswith("Self-check:")]
    assert trust and "| length rule |" in trust[0] and "Verdict:" in trust[0]
    at.multiselect(key="audit_flags").set_value([]).run()  # no flag filter: every pair
    table = frame_with(at, "chosen (as labelled)")
    assert len(table) == 40 and table["score"].is_monotonic_decreasing
    assert table["rejected (as labelled)"].str.len().gt(0).all() and table["prompt (end)"].str.len().gt(0).all()
    flagged = table[audit.set_index("pair_id").loc[table["pair_id"], "flag_label_issue"].to_numpy()]
    assert flagged["reason"].str.startswith("scored against its label out of fold").all()
    assert at.get("download_button")
    at.selectbox(key="audit_sort").set_value("representation distance (smallest first)").run()
    order = frame_with(at, "chosen (as labelled)")["pair_id"]
    assert not at.exception and audit.set_index("pair_id").loc[order, "rep_distance"].is_monotonic_increasing
    at.multiselect(key="audit_reasons").set_value(["scored against its label"]).run()
    assert len(frame_with(at, "chosen (as labelled)")) == int(audit["flag_label_issue"].sum())


def test_train_page_offers_resume_for_a_cancelled_run_with_a_checkpoint(tmp_path, monkeypatch):
    from normbt_viz.spec import RunSpec

    monkeypatch.setenv("NORMBT_VIZ_RUNS", str(tmp_path))
    run = new_run_dir(tmp_path, RunSpec(demo_size=60, max_steps=4, save_every=2))
    run.write_status(state="cancelled", step=2)
    run.checkpoint_path(2).mkdir(parents=True)
    resumed = []
    monkeypatch.setattr("normbt_viz.runs.launcher.resume", lambda r: resumed.append(r.name))
    at = page("1_Train.py")
    at.button(key=f"resume_{run.name}").click().run()
    assert not at.exception and resumed == [run.name]


def test_train_page_shows_the_commands_for_a_cluster():
    at = page("1_Train.py")
    codes = [c.value for c in at.code]
    assert any("accelerate launch --config_file configs/accelerate/multi_gpu_ddp.yaml" in c for c in codes)
    assert any('"scope": "head"' in c for c in codes)
    # Every selected arm and seed, on the number of GPUs the user gives.
    at.number_input(key="seeds").set_value(2).run()
    at.number_input(key="remote_gpus").set_value(4).run()
    codes = [c.value for c in at.code]
    assert any(c.startswith("python -m normbt_viz compare --spec run.json") and c.endswith("--losses bt,normbt --seeds 0,1") for c in codes)
    assert any("--num_processes 4 -m normbt_viz compare" in c for c in codes)
    assert not any("--num_processes 8" in c or "--gpus-per-node 8" in c for c in codes)


def test_train_page_estimates_a_launch_from_runs_measured_here(trained_runs, monkeypatch):
    monkeypatch.setattr("normbt_viz.runs.estimate.os.getloadavg", lambda: (0.0, 0.0, 0.0))  # whatever else runs
    at = page("1_Train.py")
    estimates = [c.value for c in at.caption if c.value.startswith(":material/schedule:")]
    assert len(estimates) == 2  # the quick start and the custom launch
    assert all("Estimated time: **about" in e and "finished run(s) of minilm / head on this machine" in e for e in estimates)
    # A backbone never run here has no figure, and says why.
    at.selectbox(key="backbone").set_value("smollm2").run()
    assert any("no estimate yet: the first run of smollm2 / head" in c.value for c in at.caption)
    assert "minilm" in at.selectbox(key="backbone").options


def test_train_page_shows_a_queued_run_as_an_empty_bar(tmp_path, monkeypatch):
    from normbt_viz.spec import RunSpec

    monkeypatch.setenv("NORMBT_VIZ_RUNS", str(tmp_path))
    queued = new_run_dir(tmp_path, RunSpec(demo_size=60))
    queued.write_status(pid=999_999_999, host="elsewhere")  # another machine's worker: it stays queued here
    at = page("1_Train.py")
    (bar,) = at.get("progress")
    assert bar.proto.value == 0 and "waiting to start" in bar.proto.text and "nan" not in bar.proto.text


@pytest.fixture
def two_experiments(trained_runs, tmp_path):
    """The fixture's BT and NormBT runs, plus a newer experiment on other data (copies with another fingerprint)."""
    import shutil
    import time

    from normbt_viz.runs.rundir import RunDir

    copies = {}
    for arm, run in trained_runs.items():
        copies[arm] = RunDir(tmp_path / run.name)
        shutil.copytree(run.path, copies[arm].path)
    for arm, run in trained_runs.items():
        other = RunDir(tmp_path / f"other-{run.name}")
        shutil.copytree(run.path, other.path)
        spec = json.loads(other.spec_path.read_text())
        other.spec_path.write_text(json.dumps({**spec, "dataset_fingerprint": "other data", "demo_size": 300}))
        other.write_status(created_at=time.time() + 60)
        copies[f"other-{arm}"] = other
    return tmp_path, copies


def test_comparison_pages_open_on_comparable_runs_and_partners(two_experiments):
    root, runs = two_experiments
    at = AppTest.from_file(str(ROOT / "pages" / "3_Runs.py"), default_timeout=TIMEOUT)
    at.session_state["runs_root"] = str(root)
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]  # no "cannot compare … differ in dataset"
    assert sorted(at.multiselect[0].value) == sorted([runs["other-bt"].name, runs["other-normbt"].name])
    assert len(at.selectbox(key="runs_group").options) == 2
    at.selectbox(key="runs_group").set_value(at.selectbox(key="runs_group").options[1]).run()
    assert not at.exception and not at.error
    assert sorted(at.multiselect[-1].value) == sorted([runs["bt"].name, runs["normbt"].name])

    # The older BT run's partner is its own NormBT run, not the newest NormBT run of the other experiment.
    at = AppTest.from_file(str(ROOT / "pages" / "6_Pairs.py"), default_timeout=TIMEOUT)
    at.session_state["runs_root"] = str(root)
    at.run()
    assert at.selectbox(key="pairs_other").value == runs["other-normbt"].name
    at.selectbox(key="pairs_run").set_value(runs["bt"].name).run()
    assert not at.exception and not at.error
    assert at.selectbox(key="pairs_other").value == runs["normbt"].name
    assert not [i.value for i in at.info if "has no diagnostics" in i.value]
    at = AppTest.from_file(str(ROOT / "pages" / "4_Gradients.py"), default_timeout=TIMEOUT)
    at.session_state["runs_root"] = str(root)
    at.run()
    at.selectbox(key="grad_run_a").set_value(runs["bt"].name).run()
    assert not at.exception and at.selectbox(key="grad_run_b").value == runs["normbt"].name
    assert at.select_slider(key="grad_step").value == 0  # opens before training, where the flaw is clearest


def test_each_arm_keeps_its_colour_on_every_page(trained_runs):
    from normbt_viz.ui.figures import arm_color

    colours = {}  # arm -> colours of the traces that name one of its runs or the arm
    for script in ("3_Runs.py", "4_Gradients.py"):
        at = page(script)
        for chart in at.get("plotly_chart"):
            for trace in json.loads(chart.proto.spec)["data"]:
                name = trace.get("name") or ""
                colour = (trace.get("line") or {}).get("color") or (trace.get("marker") or {}).get("color")
                for arm, run in trained_runs.items():
                    if isinstance(colour, str) and (run.name in name or name.split(" ")[0] == arm):
                        colours.setdefault(arm, set()).add(colour)
    assert colours == {"bt": {arm_color("bt")}, "normbt": {arm_color("normbt")}}
