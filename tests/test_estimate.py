"""Run-time estimates from the runs measured on this machine: no figure without a measurement, and the
measured rates scale to a new launch."""

from __future__ import annotations

import dataclasses
import json

import pytest

from normbt_viz.runs.estimate import Estimate, estimate_launch, format_duration, total_steps, update_rates
from normbt_viz.spec import RunSpec
from normbt_viz.ui.launch_form import job_progress


def test_no_estimate_before_a_run_of_the_backbone_and_scope_finished_here():
    estimate = estimate_launch([RunSpec().resolve()], 1000, [])
    assert estimate.seconds is None and "first run of minilm / head" in estimate.note


@pytest.fixture(autouse=True)
def idle_machine(monkeypatch):
    """A machine with nothing else running, whatever the CPUs running the tests are doing."""
    monkeypatch.setattr("normbt_viz.runs.estimate.os.getloadavg", lambda: (0.0, 0.0, 0.0))


@pytest.fixture
def own_rates_file(monkeypatch, tmp_path):
    """A rates file of this test's own: the session's cache also holds rates of runs other tests finished."""
    monkeypatch.setattr("normbt_viz.runs.estimate.rates_path", lambda: tmp_path / "run_rates.json")


def test_finished_runs_are_measured_once_and_scale_to_a_new_launch(trained_runs, own_rates_file):
    from normbt_viz.runs.estimate import rates_path

    runs = list(trained_runs.values())
    measured = update_rates(runs)
    assert len(measured) == 2 and rates_path().is_file()
    assert update_rates(runs) == measured  # measured once: nothing added the second time
    assert json.loads(rates_path().read_text())["runs"] == measured
    bt, normbt = sorted(measured, key=lambda m: m["run"] != str(trained_runs["bt"].path))
    assert bt["first"] and bt["start_s"] is not None and bt["setup_s_per_pair"] > 0 and bt["step_s_per_pair"] > 0
    # The same launch on pairs not featurised yet (another demo seed): a cold first run, a warm second one.
    spec = RunSpec(demo_size=200, demo_noise=0.1, max_steps=20, eval_every=5, demo_seed=1)
    again = estimate_launch([spec.with_arm("bt").resolve(), spec.with_arm("normbt").resolve()], 200, measured)
    assert again.seconds == pytest.approx(sum(m["wall_s"] for m in measured), rel=0.5, abs=3.0)
    warm = estimate_launch([dataclasses.replace(spec, demo_seed=0).with_arm("bt").resolve()], 200, measured)
    assert warm.seconds < again.seconds / 2  # the fixture's data is featurised already
    twice_the_steps = estimate_launch([RunSpec(demo_size=200, demo_noise=0.1, max_steps=40).resolve()], 200, measured)
    once = estimate_launch([RunSpec(demo_size=200, demo_noise=0.1, max_steps=20).resolve()], 200, measured)
    assert twice_the_steps.seconds > once.seconds
    assert "2 finished run(s) of minilm / head" in again.note


def test_total_steps_follow_the_trainers_rule():
    assert total_steps(RunSpec(max_steps=7), 1000) == 7
    assert total_steps(RunSpec(epochs=3, batch_size=32), 1000) == 75  # 800 training pairs, 25 batches an epoch
    assert total_steps(RunSpec(epochs=1, batch_size=32, limit=100), 1000) == 3


def test_long_launches_warn_and_durations_read_in_words():
    assert Estimate(601, "").long and not Estimate(599, "").long and not Estimate(None, "").long
    assert format_duration(32) == "about 30 s" and format_duration(300) == "about 5 min"


def test_job_progress_queued_is_empty_and_steps_are_whole_numbers():
    assert job_progress("queued", 0, float("nan")) == (0.0, "waiting to start")
    assert job_progress("done", 72, 72.0) == (1.0, "step 72/72")
    assert job_progress("running", 18.0, 72.0) == (0.25, "step 18/72")
    assert job_progress("running", None, None) == (0.0, "step 0/?")


def test_a_busy_machine_is_allowed_for_when_measured_and_when_estimating(trained_runs, tmp_path, monkeypatch):
    import shutil

    from normbt_viz.runs.estimate import machine_slowdown, measure
    from normbt_viz.runs.rundir import RunDir

    monkeypatch.setattr("normbt_viz.runs.estimate.os.cpu_count", lambda: 2)
    run = RunDir(tmp_path / trained_runs["bt"].name)
    shutil.copytree(trained_runs["bt"].path, run.path)
    alone = measure(run, first=True)
    wall = run.status()["wall_s"]
    run.write_status(cpu_s=2 * wall / 4)  # it had a quarter of the two cores: others kept them busy
    shared = measure(run, first=True)
    assert alone["share"] == 1.0 and shared["share"] == pytest.approx(0.25)
    assert shared["setup_s_per_pair"] == pytest.approx(alone["setup_s_per_pair"] / 4)
    assert machine_slowdown() == (1.0, "")
    monkeypatch.setattr("normbt_viz.runs.estimate.os.getloadavg", lambda: (6.0, 5.0, 4.0))
    slowdown, note = machine_slowdown()
    assert slowdown == 4.0 and "load 6.0 on 2 cores" in note
    spec = RunSpec(demo_size=200, demo_noise=0.1, max_steps=20, eval_every=5, demo_seed=1).resolve()
    busy = estimate_launch([spec], 200, [shared])
    monkeypatch.setattr("normbt_viz.runs.estimate.os.getloadavg", lambda: (0.0, 0.0, 0.0))
    assert busy.seconds == pytest.approx(4 * estimate_launch([spec], 200, [shared]).seconds)


def test_longer_texts_scale_the_estimate_by_their_tokens_per_pair(trained_runs, own_rates_file):
    """HH-RLHF's answers are several times the demo's: the per-pair rates measured on the demo scale with the
    texts' approximate tokens a pair (characters / 4, capped at the max length), and the note says so."""
    import pandas as pd

    from normbt_viz.runs.estimate import tokens_per_pair

    measured = update_rates(list(trained_runs.values()))
    demo_tokens = measured[0]["tokens_per_pair"]
    assert demo_tokens and all(m["tokens_per_pair"] == demo_tokens for m in measured)
    spec = RunSpec(dataset="x.jsonl", max_steps=20).resolve()
    same = estimate_launch([spec], 200, measured, demo_tokens)
    four_times = estimate_launch([spec], 200, measured, 4 * demo_tokens)
    eight_times = estimate_launch([spec], 200, measured, 8 * demo_tokens)
    # setup and steps scale with the tokens; starting the worker and saving the model do not
    assert (eight_times.seconds - four_times.seconds) / (four_times.seconds - same.seconds) == pytest.approx(4 / 3)
    assert four_times.seconds > same.seconds
    assert "scaled 4.0× for texts of" in four_times.note and "scaled" not in same.note
    assert estimate_launch([spec], 200, measured).seconds == pytest.approx(same.seconds)  # unknown texts: unscaled
    long_pairs = pd.DataFrame({"prompt": ["p" * 400], "chosen": ["c" * 4000], "rejected": ["r" * 40]})
    assert tokens_per_pair(long_pairs, 128) == pytest.approx(128 + 110)  # the long side is capped, the short is not
    assert tokens_per_pair(long_pairs.iloc[:0], 128) is None
