"""LoRA adapters (through peft) in a backbone's linear layers: which layers get them, and how they are attached.

The adapters are injected into the backbone's own modules, so `Backbone.model` stays the transformer it was
(same config, same blocks, same forward) with `lora_A`/`lora_B` beside each targeted weight. A LoRA config is
a plain dict, `{"r", "alpha", "dropout", "target_modules"}`, with the target modules resolved to an explicit
list, so a saved model attaches the very same adapters however peft's defaults change later.
"""

from __future__ import annotations

import torch

from normbt_viz.errors import SpecError

ADAPTER_MARK = "lora_"  # every adapter parameter's name contains it (lora_A, lora_B, lora_embedding_A, ...)


def _adaptable(module: torch.nn.Module) -> bool:
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, (torch.nn.Linear, Conv1D))


def block_linear_names(model: torch.nn.Module) -> list[str]:
    """The full names of the linear layers inside the transformer blocks (embeddings, poolers and heads excluded)."""
    from normbt_viz.model.features import find_blocks

    blocks = find_blocks(model)
    prefix = next(name for name, module in model.named_modules() if module is blocks)
    return [f"{prefix}.{name}" for name, module in blocks.named_modules() if _adaptable(module)]


def resolve_target_modules(model: torch.nn.Module, requested: str | None, backbone_name: str = "") -> list[str]:
    """The module names LoRA targets, as peft matches them (a full name or its trailing dotted part).

    `requested` is the spec's comma-separated list; each name must match at least one linear layer, else a
    one-line SpecError lists a few valid names. None means peft's default for the architecture when peft knows
    it, else every linear layer inside the blocks. Works on a model built on the meta device (no weights)."""
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING

    linear = [name for name, module in model.named_modules() if _adaptable(module)]
    if requested is None:
        known = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(getattr(model.config, "model_type", None))
        return sorted(known) if known else block_linear_names(model)
    names = [name.strip() for name in requested.split(",")]
    unknown = [n for n in names if not any(full == n or full.endswith("." + n) for full in linear)]
    if unknown:
        valid = list(dict.fromkeys(full.rsplit(".", 1)[-1] for full in block_linear_names(model)))
        raise SpecError(
            f"lora_target_modules: {', '.join(map(repr, unknown))} names no linear layer of backbone {backbone_name or type(model).__name__!r}; "
            f"valid names include {', '.join(valid[:8])}"
        )
    return names


def lora_config(r: int, alpha: float, dropout: float, target_modules: list[str]) -> dict:
    return {"r": int(r), "alpha": float(alpha), "dropout": float(dropout), "target_modules": list(target_modules)}


def attach_lora(model: torch.nn.Module, config: dict):
    """Inject LoRA adapters into `model` in place; returns the peft wrapper (for merge_and_unload).

    Afterwards only the adapter parameters require gradients, and `model` is back in eval mode: dropout stays
    off, including the adapters' own, unless a caller switches it on (see `set_adapter_dropout`)."""
    from peft import LoraConfig, TaskType, get_peft_model

    peft_config = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION, r=config["r"], lora_alpha=config["alpha"], lora_dropout=config["dropout"],
        target_modules=list(config["target_modules"]), bias="none",
    )
    wrapper = get_peft_model(model, peft_config)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(ADAPTER_MARK in name)
    model.eval()
    return wrapper


def adapter_names(model: torch.nn.Module) -> list[str]:
    return [name for name, _ in model.named_parameters() if ADAPTER_MARK in name]


def load_adapter_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor], source: str) -> None:
    """Load saved adapter tensors into a model with LoRA attached; every adapter must be among them."""
    missing = sorted(set(adapter_names(model)) - set(tensors))
    unexpected = model.load_state_dict(tensors, strict=False).unexpected_keys
    if missing or unexpected:
        problem = f"adapters missing: {', '.join(missing[:3])}" if missing else f"tensors not in the model: {', '.join(unexpected[:3])}"
        raise ValueError(f"{source}: {problem}")


def set_adapter_dropout(model: torch.nn.Module, active: bool) -> None:
    """Switch the adapters' dropout on or off, leaving the backbone's own dropout modules in eval mode."""
    for name, module in model.named_modules():
        if "lora_dropout" in name and isinstance(module, torch.nn.Dropout):
            module.train(active)
