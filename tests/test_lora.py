"""The lora scope: peft adapters train with the head while the pretrained weights stay put; the saved model
reloads and scores as the run did; the decoder export merges the adapters; bad target names fail before a run."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from normbt_viz.errors import SpecError
from normbt_viz.runs.launcher import train_inline
from normbt_viz.spec import RunSpec
from normbt_viz.train.checkpoint import Checkpointer

REPO = Path(__file__).resolve().parents[1]
# Evaluations at the start and the end only, with a few exact gradient norms: the slow per-pair loop is the cost.
LORA = dict(scope="lora", demo_size=60, max_steps=4, eval_every=4, max_length=64, batch_size=8, full_grad_sample=4, lora_r=4, lr=1e-3)


def train_keeping_trainer(tmp_path_factory, **overrides):
    """Train in this process; return the run and the Trainer as it was when the model was saved."""
    seen = {}
    original = Checkpointer.save_model

    def spy(self):
        seen["trainer"] = self.trainer
        return original(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Checkpointer, "save_model", spy)
        run, status = train_inline(RunSpec(**{**LORA, **overrides}), tmp_path_factory.mktemp("lora_runs"))
    assert status["state"] == "done", status
    return run, seen["trainer"]


def reload_scores(run, step):
    from normbt_viz.model.reward_model import RewardModel

    recorded = run.pairs(step).query("split == 'eval'")
    texts = pd.read_parquet(run.path / "pair_texts.parquet").set_index("pair_id").loc[recorded["pair_id"]]
    scores = RewardModel.load(run.path / "model", device="cpu").score(texts["prompt"].tolist(), texts["chosen"].tolist())
    return np.array(scores), recorded


@pytest.fixture(scope="module")
def minilm_lora(tmp_path_factory):
    return train_keeping_trainer(tmp_path_factory)


def test_lora_trains_only_adapters_and_head(minilm_lora):
    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.model.reward_model import ScoreHead

    run, trainer = minilm_lora
    model = trainer.backbone.model
    adapters = {n for n, _ in model.named_parameters() if "lora_" in n}
    assert adapters and all(".query." in n or ".value." in n for n in adapters)  # peft's default for BERT
    trained_ids = {id(p) for p in trainer.params}
    assert trained_ids == {id(p) for p in trainer.head.parameters()} | {id(p) for n, p in model.named_parameters() if n in adapters}
    # lora_B starts at zero: nonzero now means the adapters moved.
    assert all(p.abs().max() > 0 for n, p in model.named_parameters() if "lora_B" in n)
    torch.manual_seed(trainer.spec.seed)
    initial_head = ScoreHead(trainer.backbone.hidden_size)
    assert not torch.equal(initial_head.score.weight, trainer.head.score.weight.cpu())
    # Every pretrained weight is bit-identical to a fresh load (peft moves targeted weights under `.base_layer`).
    pretrained = dict(load_backbone("minilm", device="cpu").model.named_parameters())
    frozen = {n.replace(".base_layer", ""): p for n, p in model.named_parameters() if n not in adapters}
    assert set(frozen) == set(pretrained)
    assert all(not p.requires_grad and torch.equal(p.detach().cpu(), pretrained[n].detach()) for n, p in frozen.items())
    saved = load_file(str(run.path / "model" / "backbone_trained.safetensors"))
    assert set(saved) == adapters
    meta = json.loads((run.path / "model" / "reward_model.json").read_text())
    assert meta["scope"] == "lora" and meta["lora"] == {"r": 4, "alpha": 32.0, "dropout": 0.0, "target_modules": ["query", "value"]}


def test_lora_run_records_exact_gradient_norms_over_the_adapters(minilm_lora):
    run, _ = minilm_lora
    graded = run.pairs(4).query("split == 'eval'").dropna(subset=["full_grad_norm"])
    assert len(graded) == 4
    assert (graded["full_grad_norm"] > graded["head_grad_norm"]).all()


def test_saved_lora_model_reloads_and_scores_as_the_run(minilm_lora):
    run, _ = minilm_lora
    scores, recorded = reload_scores(run, 4)
    np.testing.assert_allclose(scores, recorded["reward_chosen"].to_numpy(), atol=1e-4)
    # ...and the adapters matter: the run's rewards moved from the initial model's.
    assert not np.allclose(recorded["reward_chosen"], run.pairs(0).query("split == 'eval'")["reward_chosen"], atol=1e-4)


def test_smollm2_lora_export_merges_the_adapters(tmp_path_factory, small_decoder):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.model.features import collate, tokenize_pairs

    # Evaluations at the start and the end only (diagnostics off): the export check needs the final rewards alone.
    # SmolLM2's first two blocks (real weights): the same Llama modules and export path as the whole model.
    run, _ = train_keeping_trainer(tmp_path_factory, backbone=str(small_decoder), demo_size=30, max_steps=2, eval_every=None,
                                   diagnostics="off", lora_target_modules="q_proj,v_proj")
    export = run.path / "model" / "sequence_classification"
    model = AutoModelForSequenceClassification.from_pretrained(export).eval()
    assert not [n for n in model.state_dict() if "lora_" in n or "base_layer" in n]
    pretrained = load_backbone(str(small_decoder), device="cpu")
    merged_q = model.base_model.layers[0].self_attn.q_proj.weight
    assert not torch.equal(merged_q, pretrained.model.layers[0].self_attn.q_proj.weight)  # the adapter is in the weight
    assert torch.equal(model.base_model.layers[0].self_attn.k_proj.weight, pretrained.model.layers[0].self_attn.k_proj.weight)
    tokenizer = AutoTokenizer.from_pretrained(export)
    recorded = run.pairs(2).query("split == 'eval'")
    texts = pd.read_parquet(run.path / "pair_texts.parquet").set_index("pair_id")
    sequences = tokenize_pairs(pretrained, texts.loc[recorded["pair_id"]].reset_index(), 64).chosen
    batch = collate(sequences, tokenizer.pad_token_id, "right")
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, 0]
    np.testing.assert_allclose(logits.numpy(), recorded["reward_chosen"].to_numpy(), atol=1e-3)
    scores, _ = reload_scores(run, 2)
    np.testing.assert_allclose(scores, recorded["reward_chosen"].to_numpy(), atol=1e-4)


def test_a_bad_lora_target_module_is_a_one_line_error_before_any_run(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "normbt_viz", "train", "--scope", "lora", "--lora-target-modules", "query,q_proj", "--demo-size", "60",
         "--runs", str(tmp_path / "runs")],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "'q_proj'" in result.stderr and "query" in result.stderr and "value" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_lora_fields_are_validated_and_lora_defaults_its_learning_rate():
    assert RunSpec(scope="lora").resolve().lr == 1e-4
    for field, value in (("lora_r", 0), ("lora_alpha", 0.0), ("lora_dropout", 1.0), ("lora_target_modules", "q_proj,,v_proj")):
        with pytest.raises(SpecError, match=f"{field}="):
            dataclasses.replace(RunSpec(scope="lora"), **{field: value}).validate()


def test_lora_dropout_acts_in_training_forwards_only():
    from normbt_viz.model.backbones import load_backbone
    from normbt_viz.model.features import tokenize_pairs
    from normbt_viz.model.reward_model import LoraScope

    backbone = load_backbone("minilm", device="cpu")
    frame = pd.DataFrame({"prompt": ["Name a fruit.", "Add 2 and 3."], "chosen": ["An apple.", "Five."], "rejected": ["A car.", "Six."]})
    tokenized = tokenize_pairs(backbone, frame, 64)
    scope = LoraScope(backbone, tokenized.chosen, tokenized.rejected, r=4, alpha=8.0, dropout=0.5, target_modules=None)
    for p in scope.trainable_parameters():  # lora_B starts at zero, which would hide the adapters' dropout
        torch.nn.init.normal_(p, std=0.1)
    with torch.no_grad():
        plain = scope.represent([0, 1])[0]
        assert torch.equal(plain, scope.represent([0, 1])[0])
    with scope.deterministic():
        assert torch.equal(plain, scope.represent([0, 1])[0].detach())
    first, second = scope.represent([0, 1])[0].detach(), scope.represent([0, 1])[0].detach()
    assert not torch.equal(first, plain) and not torch.equal(first, second)
    assert not backbone.model.training and not any(m.training for n, m in backbone.model.named_modules() if "lora_dropout" not in n)
