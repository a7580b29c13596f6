"""What the speed options change and what they must not: length-grouped batches (deterministic per seed, the same
for every arm, padding counted in status.json) and the compiled training forward (falls back with a note; the
same numbers as eager on the same batches)."""

import numpy as np
import pandas as pd
import pytest
import torch

from normbt_viz.model.backbones import load_backbone
from normbt_viz.model.compiled import CompiledForward
from normbt_viz.numeric import length_chunks
from normbt_viz.runs.launcher import new_run_dir
from normbt_viz.runs.rundir import RunDir
from normbt_viz.spec import RunSpec
from normbt_viz.train.batching import length_grouped_order, pair_lengths, token_counts
from normbt_viz.train.loop import Trainer, run_training
from normbt_viz.train.state import StepPlan, TrainingData


def ragged_data(n_train=400, n_eval=50, seed=3) -> TrainingData:
    """Token lengths like HH-RLHF's answers: mostly short, a long tail."""
    rng = np.random.default_rng(seed)
    n = n_train + n_eval
    lengths = (np.minimum(rng.lognormal(3.5, 0.8, n), 512).astype(int) + 4, np.minimum(rng.lognormal(3.5, 0.8, n), 512).astype(int) + 4)
    return TrainingData(pairs=pd.DataFrame({"pair_id": [f"p{i}" for i in range(n)]}), n_train=n_train,
                        identical_input=np.zeros(n, dtype=bool), token_lengths=lengths, target_margin=torch.zeros(n))


def plan(data, **fields) -> StepPlan:
    return StepPlan.for_run(RunSpec(**{"scope": "full", "batch_size": 8, "epochs": 2.0, **fields}).resolve(), data)


def test_grouping_is_on_for_backbone_scopes_and_off_for_head():
    assert RunSpec(scope="full").resolve().group_by_length and RunSpec(scope="lora").resolve().group_by_length
    assert not RunSpec(scope="head").resolve().group_by_length
    assert not RunSpec(scope="full", group_by_length=False).resolve().group_by_length


def test_grouped_order_depends_on_the_seed_only_and_visits_each_pair_once_per_epoch():
    data = ragged_data()
    bt, normbt, clipped = plan(data, loss="bt"), plan(data, arm="normbt", loss="normbt"), plan(data).__class__.for_run(
        RunSpec(scope="full", batch_size=8, epochs=2.0).with_arm("normbt_clip").resolve(), data)
    np.testing.assert_array_equal(bt.order, normbt.order)
    np.testing.assert_array_equal(bt.order, clipped.order)
    np.testing.assert_array_equal(bt.order, plan(data, loss="bt").order)  # deterministic
    assert not np.array_equal(bt.order, plan(data, seed=1).order)
    # Regrouping moves pairs only inside a mega-batch of one epoch: each epoch still visits every pair once.
    for epoch in range(2):
        assert sorted(bt.order[epoch * 400 : (epoch + 1) * 400].tolist()) == list(range(400))
    grouped = token_counts(bt.micro_batches(8), data.token_lengths)
    ungrouped = token_counts(plan(data, group_by_length=False).micro_batches(8), data.token_lengths)
    assert grouped["real_tokens"] == ungrouped["real_tokens"]
    assert grouped["padded_tokens"] < 0.75 * ungrouped["padded_tokens"]


def test_short_last_micro_batch_stays_last():
    order = np.arange(21)
    grouped = length_grouped_order(order, pair_lengths((np.arange(21), np.arange(21))), batch_size=4, seed=0, mega_batch=50)
    assert sorted(grouped.tolist()) == list(range(21))
    assert len(grouped[-1:]) == 1 and grouped[-1] == 0  # the shortest pair, alone in the short last batch


def test_scoring_chunks_cover_every_pair_once_within_the_token_budget():
    lengths = pair_lengths(ragged_data(n_train=300, n_eval=0).token_lengths)
    chunks = length_chunks(lengths, most_pairs=128, most_tokens=128 * 64)
    assert sorted(np.concatenate(chunks).tolist()) == list(range(300))
    for chunk in chunks:
        assert len(chunk) <= 128 and (len(chunk) == 1 or len(chunk) * lengths[chunk].max() <= 128 * 64)
    # Against fixed chunks of 128 pairs in the given order, most of the padding is gone.
    fixed = sum(len(c) * lengths[c].max() for c in np.array_split(np.arange(300), 3))
    assert sum(len(c) * lengths[c].max() for c in chunks) < 0.5 * fixed
    assert [len(c) for c in length_chunks(np.zeros(300, int), 128, 128 * 64)] == [128, 128, 44]  # the head scope: no lengths


def test_padded_and_real_tokens_land_in_status(tmp_path):
    run = new_run_dir(tmp_path, RunSpec(demo_size=30, scope="top-k", top_k=1, max_steps=3, batch_size=8, max_length=48, diagnostics="off"))
    status = run_training(run.spec(), run)
    assert status["state"] == "done" and status["group_by_length"] is True
    tokens = status["training_tokens"]
    assert 0 < tokens["real_tokens"] <= tokens["padded_tokens"] <= tokens["padded_tokens_ungrouped"]
    assert tokens["padding_share"] == pytest.approx(1 - tokens["real_tokens"] / tokens["padded_tokens"], abs=1e-4)


@pytest.fixture(scope="module")
def minilm():
    return load_backbone("minilm", device="cpu")


def _failing_backend(graph_module, example_inputs):
    raise RuntimeError("this backend compiles nothing")


def test_compile_falls_back_to_eager_with_a_note(minilm):
    ids = torch.tensor([[101, 2023, 2003, 102]])
    expected = minilm.forward_hidden(ids, torch.ones_like(ids))
    compiled = CompiledForward(minilm, "full", backend=_failing_backend)
    with compiled.active():
        got = minilm.forward_hidden(ids, torch.ones_like(ids))
    torch.testing.assert_close(got, expected)
    assert not compiled.in_use and "torch.compile failed" in compiled.note and "compiles nothing" in compiled.note
    assert compiled.status() == {"compiled": False, "compile_note": compiled.note}
    assert "forward_hidden" not in vars(minilm)  # the eager method is back outside active()
    assert "no effect" in CompiledForward(minilm, "top-k").note


def test_compiled_step_keeps_the_mu_trajectory_on_the_same_batches(tmp_path):
    """aot_eager traces and runs the graph through AOTAutograd as inductor does, without generating C++ code
    (minutes on 2 cores); padding to a multiple of 8 is on as under --compile. Short sequences, so one shape."""
    trajectories = []
    for compiled in (False, True):
        spec = RunSpec(demo_size=24, scope="full", loss="normbt", max_steps=3, batch_size=4, max_length=24, diagnostics="off",
                       device="cpu", compile=compiled).resolve()
        trainer = Trainer.from_spec(spec, RunDir(tmp_path / f"c{compiled}").create(spec), compile_backend="aot_eager")
        assert trainer.scope.pad_multiple == (8 if compiled else 1)
        trainer.begin()
        trajectories.append([trainer.train_step(step)["normbt_mu"] for step in range(3)] + [trainer.state.loss.scale])
        if compiled:
            assert trainer.compiled.in_use, trainer.compiled.note
    np.testing.assert_allclose(trajectories[1], trajectories[0], rtol=0, atol=1e-4)


def test_exact_norm_sample_is_sized_to_the_evaluation_budget():
    data = ragged_data(n_train=160, n_eval=40)
    short = StepPlan.for_run(RunSpec(scope="full", batch_size=16, max_steps=20).resolve(), data)
    assert len(short.grad_sample_index) == len(short.initial_grad_sample_index) == 8  # 5% of 320 pairs is less than the floor
    longer = StepPlan.for_run(RunSpec(scope="full", batch_size=16, max_steps=2000).resolve(), data)
    assert len(longer.grad_sample_index) == 32
    assert len(StepPlan.for_run(RunSpec(scope="full", batch_size=16, max_steps=20, full_grad_sample=12).resolve(), data).grad_sample_index) == 12
    assert len(StepPlan.for_run(RunSpec(scope="head", batch_size=16, max_steps=20).resolve(), data).grad_sample_index) == 32


def test_a_run_written_before_length_grouping_resumes_in_its_own_order(tmp_path):
    """A spec.json from before `group_by_length` existed reads as ungrouped, whatever the scope's new default."""
    import json

    from normbt_viz.runs.rundir import RunDir
    from normbt_viz.spec import RunSpec

    run = RunDir(tmp_path / "old-run")
    run.path.mkdir()
    saved = RunSpec(scope="full").to_dict()
    saved.pop("group_by_length")
    run.spec_path.write_text(json.dumps(saved))
    assert run.spec().resolve().group_by_length is False
    saved["group_by_length"] = None  # written by this version: the scope's default applies
    run.spec_path.write_text(json.dumps(saved))
    assert run.spec().resolve().group_by_length is True
