"""Export a trained reward model as an AutoModelForSequenceClassification folder, where that is faithful.

A decoder's sequence-classification head reads the last non-pad token, the same h our head reads, so the
export scores exactly as the run did and TRL or RewardBench tooling can load it. An encoder's classification
head reads a pooler output (dense + tanh over [CLS]), and a LayerNorm before the head has no counterpart;
there the export folder only holds a README that says why, rather than a model that scores differently.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file

from normbt_viz.model.card import model_card
from normbt_viz.model.lora import ADAPTER_MARK, attach_lora, load_adapter_tensors

EXPORT_DIR = "sequence_classification"


def export_blocker(backbone, spec) -> str | None:
    """Why this reward model cannot be exported faithfully, or None when it can."""
    if not backbone.is_decoder:
        return (
            f"backbone {spec.backbone!r} is an encoder pooled with {backbone.pooling!r}; "
            "AutoModelForSequenceClassification for encoders scores a pooler output (dense + tanh over the first token), "
            "not this representation, so it would score differently"
        )
    if backbone.pooling != "last":
        return f"pooling {backbone.pooling!r} differs from the classification head's last-token read"
    if spec.head_layernorm:
        return "the LayerNorm before the score head has no counterpart in AutoModelForSequenceClassification"
    return None


def export_sequence_classifier(model_folder: Path, backbone, head, spec, load_report: dict | None = None,
                               final_mu: float | None = None) -> Path:
    """Write `<model_folder>/sequence_classification/` (a loadable model or a card saying why not), with its
    model card (model/card.py; `load_report` is the run's status, `final_mu` NormBT's last μ)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    target = model_folder / EXPORT_DIR
    target.mkdir(parents=True, exist_ok=True)
    reason = export_blocker(backbone, spec)
    if reason:
        (target / "README.md").write_text(model_card(spec, exported=False, blocker=reason, load_report=load_report, final_mu=final_mu))
        return target
    tokenizer = AutoTokenizer.from_pretrained(backbone.path)
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        # The classification head finds the last token by skipping pad ids; when pad == eos a response ending
        # in eos would be read one token early. Pad with another special token that is never content.
        spare = next(
            (t for t in ("<|endoftext|>", tokenizer.unk_token, tokenizer.bos_token) if t and t != tokenizer.eos_token and t in tokenizer.get_vocab()),
            None,
        )
        if spare is None:
            (target / "README.md").write_text(model_card(spec, exported=False, blocker="no pad token distinct from eos exists",
                                                         load_report=load_report, final_mu=final_mu))
            return target
        tokenizer.pad_token = spare
    model = AutoModelForSequenceClassification.from_pretrained(backbone.path, num_labels=1, dtype=torch.float32)
    trained = model_folder / "backbone_trained.safetensors"
    if backbone.lora:
        # Attach the run's adapters to the classifier's transformer, then fold each B·A·alpha/r into its weight
        # and put the plain layers back: the export is an ordinary model that needs no peft to load.
        adapted = attach_lora(model.base_model, backbone.lora)
        load_adapter_tensors(model.base_model, load_file(str(trained)), f"export: {trained}")
        adapted.merge_and_unload()
        leftover = [name for name, _ in model.named_parameters() if ADAPTER_MARK in name]
        if leftover:
            raise ValueError(f"export: adapters left after merging: {', '.join(leftover[:3])}")
    elif trained.is_file():
        unexpected = model.base_model.load_state_dict(load_file(str(trained)), strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"export: trained tensors not in the classification model: {', '.join(unexpected[:3])}")
    if float(head.score.bias.detach().abs().max()) > 0:
        raise ValueError("export: the score bias moved from 0, which the classification head cannot represent")
    classifier = next(m for m in (getattr(model, "score", None), getattr(model, "classifier", None)) if m is not None)
    with torch.no_grad():
        classifier.weight.copy_(head.score.weight.detach().cpu())
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    (target / "README.md").write_text(model_card(spec, exported=True, load_report=load_report, final_mu=final_mu))
    return target
