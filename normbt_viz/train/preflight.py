"""Checks a spec against what it names (the dataset, the backbone, the device) before any run directory exists.

Everything `RunSpec.validate` cannot see without loading something lives here, so that bad input exits with one
line and leaves nothing behind. Nothing here loads model weights: the config and a look at the folder suffice.
"""

from __future__ import annotations

from pathlib import Path

from normbt_viz.data.run_data import RunData, load_run_data
from normbt_viz.data.sources import check_hub_repo
from normbt_viz.errors import BackboneError, SpecError, first_line
from normbt_viz.spec import RunSpec
from normbt_viz.train.trackers import check_trackers

WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.msgpack", "*.h5", "*.ckpt", "*.gguf")


def preflight(spec: RunSpec) -> RunData:
    """Fail fast on a dataset, backbone or device that cannot be used; raises a one-line NormBTError. Returns the
    run's pairs as it checked them (with the load's report), so a caller need not load them again."""
    from transformers import AutoConfig

    from normbt_viz.model.backbones import resolve_backbone, select_device

    spec.resolve()
    select_device(spec.device)
    check_trackers(spec.trackers)
    run_data = load_run_data(spec)
    train_pairs = run_data.train_pairs
    path = resolve_backbone(spec.backbone)
    if not Path(path).is_dir():
        check_hub_repo(path, "model", BackboneError)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=spec.trust_remote_code)
    except BackboneError:
        raise
    except Exception as exc:
        if not spec.trust_remote_code and "custom code" in str(exc):  # transformers refused to run the model's own code
            raise BackboneError(f"backbone {spec.backbone!r} needs code shipped with it, which was not run; pass "
                                "--trust-remote-code only if you trust its source") from None
        raise BackboneError(f"cannot load backbone {spec.backbone!r}: {first_line(exc)}") from exc
    folder = Path(path)
    if folder.is_dir() and not any(next(folder.rglob(pattern), None) for pattern in WEIGHT_FILES):
        raise BackboneError(f"backbone folder {spec.backbone} has a config but no weights ({', '.join(WEIGHT_FILES)})")
    from normbt_viz.model.lengths import every_input_identical

    # The trainer would stop on this after making the run directory; say it before one exists.
    if every_input_identical(train_pairs, spec.backbone, spec.max_length, spec.trust_remote_code):
        raise SpecError(f"every training pair of {spec.dataset!r} has identical chosen and rejected inputs for backbone "
                        f"{spec.backbone!r}: nothing to train on")
    n_blocks = getattr(config, "num_hidden_layers", None)
    if spec.scope == "top-k" and n_blocks is not None and spec.top_k > n_blocks:
        raise SpecError(f"top_k={spec.top_k} is invalid: backbone {spec.backbone!r} has {n_blocks} blocks")
    if spec.scope == "lora" and spec.lora_target_modules is not None:
        _check_lora_targets(spec, config)
    return run_data


def _check_lora_targets(spec: RunSpec, config) -> None:
    """Every named LoRA target matches a linear layer; the module tree is built on the meta device (no weights)."""
    import torch
    from transformers import AutoModel

    from normbt_viz.model.lora import resolve_target_modules

    try:
        with torch.device("meta"):
            skeleton = AutoModel.from_config(config, trust_remote_code=spec.trust_remote_code)
    except Exception:
        return  # a model class that cannot be built without weights: the trainer reports bad names when it attaches them
    resolve_target_modules(skeleton, spec.lora_target_modules, spec.backbone)
