"""`--report-to`: a run's metrics.jsonl scalars and its spec reach the trackers (TensorBoard read back here)."""

from __future__ import annotations

import importlib.util

import pytest

from normbt_viz.cli import main
from normbt_viz.errors import SpecError
from normbt_viz.runs.rundir import list_runs
from normbt_viz.spec import RunSpec


def test_tensorboard_event_files_hold_the_logged_scalars(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    code = main(["train", "--dataset", "demo", "--demo-size", "60", "--max-steps", "4", "--eval-every", "2", "--loss", "normbt",
                 "--report-to", "tensorboard", "--runs", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    (run,) = list_runs(tmp_path)
    events = [p for p in (run.path / "trackers").rglob("events.out.tfevents.*")]
    assert events
    scalars = {}
    for event_file in events:
        accumulator = EventAccumulator(str(event_file), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            scalars[tag] = {event.step: event.value for event in accumulator.Scalars(tag)}
    metrics = run.metrics()
    expected_tags = {"loss", "accuracy", "normbt_mu", "grad_norm", "eval_accuracy", "eval_loss", "eval_accuracy_bin_0"}
    assert expected_tags <= set(scalars), sorted(scalars)
    for tag in expected_tags:
        # A step with a training row and an evaluation row (μ before and after the step) shows the later one.
        last = metrics.dropna(subset=[tag]).groupby("step")[tag].last()
        assert set(scalars[tag]) == set(last.index), tag
        for step, value in last.items():
            assert scalars[tag][int(step)] == pytest.approx(value, rel=1e-6), (tag, step)
    hparams = list((run.path / "trackers").rglob("hparams.yml"))
    assert hparams and "loss: normbt" in hparams[0].read_text()


def test_report_to_names_are_checked():
    with pytest.raises(SpecError, match="report_to='tensorboard,comet' is invalid: comet is not one of"):
        RunSpec(report_to="tensorboard,comet").validate()
    assert RunSpec(report_to=" tensorboard , wandb ").trackers == ["tensorboard", "wandb"]
    assert RunSpec().trackers == []


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_a_tracker_without_its_package_is_one_line_before_any_run(tmp_path, capsys):
    code = main(["train", "--dataset", "demo", "--demo-size", "20", "--report-to", "wandb", "--runs", str(tmp_path)])
    assert code == 2
    assert "report_to='wandb' needs the package wandb" in capsys.readouterr().err
    assert list_runs(tmp_path) == []
