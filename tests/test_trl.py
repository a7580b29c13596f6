"""NormBT inside TRL's RewardTrainer: the same numbers as the project's trainer, and a run directory the app opens.

Both tests use real TRL (`requirements-dev.txt`) on embedded backbones: SmolLM2 for the equivalence (a decoder's
`AutoModelForSequenceClassification` reads the same h as the project's reward model), MiniLM for the app run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("trl")

from normbt_viz.data.run_data import load_run_data  # noqa: E402
from normbt_viz.model.backbones import load_backbone, resolve_backbone  # noqa: E402
from normbt_viz.model.features import tokenize_pairs  # noqa: E402
from normbt_viz.model.reward_model import ScoreHead  # noqa: E402
from normbt_viz.runs.rundir import RunDir  # noqa: E402
from normbt_viz.spec import RunSpec  # noqa: E402
from normbt_viz.train.loop import run_training  # noqa: E402
from normbt_viz.train.state import batch_order  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STEPS = 3


def tokenized_dataset(frame, backbone, max_length: int, order=None):
    """A TRL 'processed' preference dataset (chosen_ids / rejected_ids) from the project's own tokenization,
    with the texts, categories and ids the run directory shows."""
    import datasets

    tokenized = tokenize_pairs(backbone, frame, max_length)
    order = np.arange(len(frame)) if order is None else order
    return datasets.Dataset.from_dict({
        "chosen_ids": [tokenized.chosen[i].input_ids for i in order],
        "rejected_ids": [tokenized.rejected[i].input_ids for i in order],
        "prompt": frame["prompt"].to_numpy()[order].tolist(),
        "chosen": frame["chosen"].to_numpy()[order].tolist(),
        "rejected": frame["rejected"].to_numpy()[order].tolist(),
        "category": frame["category"].to_numpy()[order].tolist(),
        "id": frame["pair_id"].to_numpy()[order].tolist(),
    }), tokenized


def reward_config(tmp_path, **overrides):
    from trl import RewardConfig

    settings = dict(output_dir=str(tmp_path / "trl_out"), per_device_train_batch_size=2, max_steps=STEPS, learning_rate=1e-4,
                    lr_scheduler_type="linear", warmup_steps=0, weight_decay=0.0, max_grad_norm=0.0, optim="adamw_torch_fused",
                    bf16=False, fp16=False, use_cpu=True, seed=0, logging_steps=1, save_strategy="no", report_to=[],
                    max_length=None, disable_tqdm=True)
    settings.update(overrides)
    return RewardConfig(**settings)


def test_trl_normbt_gives_the_engines_loss_and_mu(tmp_path, small_decoder):
    """fp32, CPU, a two-block SmolLM2 fully fine-tuned for 3 steps of 2 pairs: the per-step loss and μ of TRL's
    trainer with this project's NormBT equal the project's trainer's to 1e-5, given the same model, head, pairs
    and order."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from normbt_viz.integrations.trl import NormBTRewardTrainer
    from normbt_viz.runs.launcher import new_run_dir

    spec = RunSpec(backbone=str(small_decoder), scope="full", loss="normbt", demo_size=24, batch_size=2, max_steps=STEPS,
                   warmup_ratio=0.0, lr=1e-5, diagnostics="off", max_length=64, seed=0, full_grad_sample=0).resolve()
    engine_run = new_run_dir(tmp_path / "runs", spec)
    assert run_training(engine_run.spec(), engine_run)["state"] == "done"
    engine = engine_run.metrics().dropna(subset=["loss"]).set_index("step")
    # A decoder's run exports as AutoModelForSequenceClassification; `export` refreshes its card from the run.
    from normbt_viz.cli import main

    assert main(["export", str(engine_run.path)]) == 0
    card = (engine_run.model_path / "sequence_classification" / "README.md").read_text()
    assert f"final μ | {engine_run.metrics()['normbt_mu'].dropna().iloc[-1]:.6g}" in card and "library_name: transformers" in card

    # The engine's pairs in the engine's order: its train split, identical-input pairs left out, one seeded permutation.
    train, *_ = load_run_data(spec)
    backbone = load_backbone(spec.backbone)
    _, tokenized = tokenized_dataset(train, backbone, spec.max_length)
    trainable = np.flatnonzero([c.input_ids != r.input_ids for c, r in zip(tokenized.chosen, tokenized.rejected)])
    order = trainable[batch_order(len(trainable), STEPS * spec.batch_size, spec.seed)]
    dataset, _ = tokenized_dataset(train, backbone, spec.max_length, order)

    model = AutoModelForSequenceClassification.from_pretrained(small_decoder, num_labels=1, dtype=torch.float32)
    torch.manual_seed(spec.seed)  # the engine's head: same seed, same initialisation, bias 0 (a decoder's score has none)
    head = ScoreHead(model.config.hidden_size)
    with torch.no_grad():
        model.score.weight.copy_(head.score.weight)
    # The engine's pad token (<|im_end|>): every sequence ends in a newline after it, so TRL's last non-pad token
    # is the engine's last real token, and both sides see the same padded batches.
    tokenizer = AutoTokenizer.from_pretrained(small_decoder)
    tokenizer.pad_token = backbone.tokenizer.pad_token
    trainer = NormBTRewardTrainer(model=model, args=reward_config(tmp_path, train_sampling_strategy="sequential", learning_rate=spec.lr),
                                  train_dataset=dataset, processing_class=tokenizer, arm="normbt", run_dir=tmp_path / "trl_run")
    trainer.train()
    trl = RunDir(tmp_path / "trl_run").metrics().dropna(subset=["loss"]).set_index("step")

    assert list(trl.index) == list(engine.index) == list(range(1, STEPS + 1))
    loss_gap = float((trl["loss"] - engine["loss"]).abs().max())
    mu_gap = float((trl["normbt_mu"] - engine["normbt_mu"]).abs().max())
    print(f"max |loss difference| {loss_gap:.2e}, max |mu difference| {mu_gap:.2e} over {STEPS} steps")
    assert loss_gap < 1e-5 and mu_gap < 1e-5
    assert engine["loss"].nunique() == STEPS and engine["normbt_mu"].iloc[-1] != engine["normbt_mu"].iloc[0]


@pytest.fixture(scope="module")
def trl_run(tmp_path_factory):
    """A short TRL reward training of MiniLM on demo pairs with NormBT, written as a run directory."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from normbt_viz.integrations.trl import NormBTRewardTrainer

    tmp_path = tmp_path_factory.mktemp("trl")
    spec = RunSpec(demo_size=60, demo_noise=0.1).resolve()
    train, evals, *_ = load_run_data(spec)
    backbone = load_backbone("minilm")
    path = resolve_backbone("minilm")
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    args = reward_config(tmp_path, per_device_train_batch_size=4, max_steps=4, eval_strategy="steps", eval_steps=2, max_grad_norm=1.0)
    trainer = NormBTRewardTrainer(model=model, args=args, train_dataset=tokenized_dataset(train, backbone, 64)[0],
                                  eval_dataset=tokenized_dataset(evals, backbone, 64)[0], processing_class=AutoTokenizer.from_pretrained(path),
                                  arm="normbt", run_dir=tmp_path / "runs" / "trl-normbt")
    trainer.train()
    return RunDir(tmp_path / "runs" / "trl-normbt"), trainer


def test_trl_run_directory_holds_every_trained_pair_once_per_step(trl_run):
    run, trainer = trl_run
    status = run.status()
    assert status["state"] == "done" and status["source"] == "trl" and status["step"] == 4
    assert "full_grad_norm (exact per-pair gradient norms)" in status["missing"]["not_provided_by_trl"]
    records = run.records()
    texts = run.pair_texts()
    assert sorted(records["step"].unique()) == [1, 2, 3, 4]
    assert (records.groupby("step").size() == 4).all()  # 4 pairs a step, each once
    assert not records.duplicated(["step", "pair_id"]).any()
    assert set(records["pair_id"]) <= set(texts.loc[texts["split"] == "train", "pair_id"])
    metrics = run.metrics()
    steps = metrics.dropna(subset=["loss"])
    assert list(steps["step"]) == [1, 2, 3, 4] and steps["normbt_mu"].notna().all() and steps["grad_norm"].notna().all()
    assert sorted(metrics.dropna(subset=["eval_accuracy"])["step"]) == [0, 2, 4] == run.pair_steps() == run.representation_steps()
    snapshot = run.pairs(0)
    assert len(snapshot) == len(texts[texts["split"] == "eval"]) and snapshot["rep_distance"].gt(0).all()
    assert snapshot["full_grad_norm"].isna().all()  # TRL cannot give it: missing, not invented
    assert len(run.bin_edges()) == RunSpec().n_distance_bins + 1
    spec = run.spec()
    assert (spec.loss, spec.lr, spec.batch_size, spec.max_steps, spec.scope) == ("normbt", 1e-4, 4, 4, "full")
    assert "spec_fields_at_default" in status["missing"] and "pooler output" in status["h"]
    json.dumps(status)  # plain JSON


def test_trl_resume_continues_mu_from_the_checkpoint(tmp_path):
    """A TRL checkpoint carries μ: a training resumed from step 2 takes step 3 with the μ and loss of the
    uninterrupted one."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from normbt_viz.integrations.trl import LOSS_STATE, NormBTRewardTrainer

    spec = RunSpec(demo_size=30).resolve()
    train, *_ = load_run_data(spec)
    dataset = tokenized_dataset(train, load_backbone("minilm"), 64)[0]
    path = resolve_backbone("minilm")

    def trainer(run_name: str):
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
        args = reward_config(tmp_path, save_strategy="steps", save_steps=2, save_only_model=False)
        return NormBTRewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=AutoTokenizer.from_pretrained(path),
                                   run_dir=tmp_path / run_name)

    trainer("whole").train()
    assert (tmp_path / "trl_out" / "checkpoint-2" / LOSS_STATE).is_file()
    trainer("resumed").train(resume_from_checkpoint=str(tmp_path / "trl_out" / "checkpoint-2"))
    whole = RunDir(tmp_path / "whole").metrics().dropna(subset=["loss"]).set_index("step")
    resumed = RunDir(tmp_path / "resumed").metrics().dropna(subset=["loss"]).set_index("step")
    assert list(resumed.index) == [3]
    assert resumed.loc[3, "normbt_mu"] == pytest.approx(whole.loc[3, "normbt_mu"], abs=1e-6)
    assert resumed.loc[3, "loss"] == pytest.approx(whole.loc[3, "loss"], abs=1e-5)
    assert whole.loc[3, "normbt_mu"] != whole.loc[1, "normbt_mu"]


@pytest.mark.parametrize("page_file, charts", [("1_Train.py", 0), ("3_Runs.py", 1), ("4_Gradients.py", 1), ("5_Embeddings.py", 1), ("6_Pairs.py", 0)])
def test_trl_run_opens_on_every_page(trl_run, page_file, charts, monkeypatch):
    from streamlit.testing.v1 import AppTest

    run, _ = trl_run
    monkeypatch.setenv("NORMBT_VIZ_RUNS", str(run.path.parent))
    at = AppTest.from_file(str(ROOT / "pages" / page_file), default_timeout=120)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert len(at.get("plotly_chart")) >= charts  # the run's curves, gradient views and map are drawn, not just opened


def test_trl_arms_are_checked_at_the_boundary(tmp_path):
    from normbt_viz.errors import SpecError
    from normbt_viz.integrations.trl import NormBTRewardTrainer, loss_spec

    assert loss_spec("normbt_clip").normbt_weight_clip == 3.0
    assert loss_spec("normbt", {"normbt_beta": 0.5}).normbt_beta == 0.5
    with pytest.raises(SpecError, match="normbt_beta=1.5 is invalid"):
        loss_spec("normbt", {"normbt_beta": 1.5})
    with pytest.raises(SpecError, match="max_grad_norm"):
        loss_spec("bt_gradclip")
    with pytest.raises(SpecError, match="arm='nope' is invalid"):
        loss_spec("nope")
    # Checked before TRL loads anything: an existing run folder is never written into.
    with pytest.raises(SpecError, match=f"run_dir {tmp_path} already exists"):
        NormBTRewardTrainer(model=None, run_dir=tmp_path)


def test_importing_the_project_never_needs_trl(monkeypatch):
    import ast
    import importlib
    import sys

    package = ROOT / "normbt_viz"
    importers = sorted(str(path.relative_to(package)) for path in package.rglob("*.py")
                       if any(isinstance(node, (ast.Import, ast.ImportFrom))
                              and any(name == "trl" or name.startswith("trl.") for name in
                                      ([node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]))
                              for node in ast.walk(ast.parse(path.read_text()))))
    assert importers == ["integrations/trl.py"]
    monkeypatch.setitem(sys.modules, "trl", None)  # as if TRL were not installed
    monkeypatch.delitem(sys.modules, "normbt_viz.integrations.trl", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'normbt-viz\[trl\]'"):
        importlib.import_module("normbt_viz.integrations.trl")
