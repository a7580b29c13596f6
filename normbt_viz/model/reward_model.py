"""The reward model r = wᵀh + b and the three training scopes that produce h.

- `head`: the backbone is frozen; h is read from the feature cache and only (w, b) train.
- `top-k`: the top k blocks and the head train; the frozen lower blocks' output is cached per sequence and
  injected at the first trainable block, while the lower blocks are replaced by pass-throughs.
- `full`: everything trains; h comes from a full forward.
- `lora`: low-rank adapters (peft) in the blocks' linear layers train; the pretrained weights stay frozen; h
  comes from a full forward.

The bias b gets an exactly-zero gradient under every pairwise loss (it cancels in Δ), so it stays at its
initial 0; that is what lets a decoder's reward model export as AutoModelForSequenceClassification, whose
score layer has no bias.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from normbt_viz.model.backbones import Backbone, load_backbone
from normbt_viz.model.features import Sequence, collate, find_blocks, to_device
from normbt_viz.model.lora import adapter_names, attach_lora, load_adapter_tensors, lora_config, resolve_target_modules, set_adapter_dropout


class ScoreHead(torch.nn.Module):
    def __init__(self, hidden_size: int, layernorm: bool = False):
        super().__init__()
        self.norm = torch.nn.LayerNorm(hidden_size, elementwise_affine=False) if layernorm else None
        self.score = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.normal_(self.score.weight, std=hidden_size**-0.5)
        torch.nn.init.zeros_(self.score.bias)

    def head_input(self, h: torch.Tensor) -> torch.Tensor:
        """The vector the linear score reads (h, or LayerNorm(h) for the LayerNorm arm)."""
        return self.norm(h) if self.norm is not None else h

    def forward(self, head_input: torch.Tensor) -> torch.Tensor:
        return self.score(head_input).squeeze(-1)


class HeadScope:
    """Frozen backbone: h from cached features, nothing to run."""

    def __init__(self, h_chosen: torch.Tensor, h_rejected: torch.Tensor, device: torch.device):
        self.h_chosen, self.h_rejected = h_chosen.to(device), h_rejected.to(device)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return []

    def represent(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.h_chosen[indices], self.h_rejected[indices]


class _PassThrough(torch.nn.Module):
    """Stands in for a frozen lower block whose output is already cached."""

    def __init__(self, returns_tuple: bool):
        super().__init__()
        self.returns_tuple = returns_tuple

    def forward(self, hidden_states, *args, **kwargs):
        return (hidden_states,) if self.returns_tuple else hidden_states


class TopKScope:
    """Top k blocks train on cached inputs to block L-k; the lower blocks are skipped."""

    def __init__(self, backbone: Backbone, k: int, block_inputs_chosen: list[torch.Tensor], block_inputs_rejected: list[torch.Tensor]):
        self.backbone = backbone
        blocks = find_blocks(backbone.model)
        if k > len(blocks):
            raise ValueError(f"top_k={k} exceeds the backbone's {len(blocks)} blocks")
        self.first_trainable = len(blocks) - k
        self.inputs_chosen, self.inputs_rejected = block_inputs_chosen, block_inputs_rejected
        returns_tuple = self._block_returns_tuple(blocks)
        for i in range(self.first_trainable):
            blocks[i] = _PassThrough(returns_tuple)
        self.trainable = [p for block in list(blocks)[self.first_trainable :] for p in block.parameters()]
        for p in backbone.model.parameters():
            p.requires_grad_(False)
        for p in self.trainable:
            p.requires_grad_(True)
        self._inject: torch.Tensor | None = None
        blocks[self.first_trainable].register_forward_pre_hook(self._inject_hook, with_kwargs=True)

    def _block_returns_tuple(self, blocks) -> bool:
        seen = {}

        def record(_module, _args, output):
            seen["tuple"] = isinstance(output, tuple)  # returns None: a hook's return value would replace the output

        handle = blocks[0].register_forward_hook(record)
        with torch.no_grad():
            ids = torch.tensor([[self.backbone.tokenizer.pad_token_id or 0] * 2], device=self.backbone.device)
            self.backbone.forward_hidden(ids, torch.ones_like(ids))
        handle.remove()
        return seen["tuple"]

    def _inject_hook(self, _module, args, kwargs):
        if self._inject is None:
            return None
        if args:
            return (self._inject, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": self._inject}

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.trainable

    def _run(self, pieces: list[torch.Tensor]) -> torch.Tensor:
        device = self.backbone.device
        width = max(p.shape[0] for p in pieces)
        hidden = torch.zeros(len(pieces), width, pieces[0].shape[1], dtype=self.backbone.dtype, device=device)
        mask = torch.zeros(len(pieces), width, dtype=torch.long, device=device)
        for row, piece in enumerate(pieces):
            hidden[row, : piece.shape[0]] = piece.to(device=device, dtype=self.backbone.dtype)
            mask[row, : piece.shape[0]] = 1
        self._inject = hidden
        try:
            # Token ids only feed the (discarded) embeddings of the skipped blocks; zeros cost nothing.
            return self.backbone.represent(torch.zeros_like(mask), mask)
        finally:
            self._inject = None

    def represent(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        both = self._run([self.inputs_chosen[i] for i in indices] + [self.inputs_rejected[i] for i in indices])
        return both[: len(indices)], both[len(indices) :]


class FullScope:
    """The whole backbone trains; h from a full forward of the tokens."""

    pad_multiple = 1  # sequences are padded to a multiple of this (8 under a compiled forward)

    def __init__(self, backbone: Backbone, chosen: list[Sequence], rejected: list[Sequence]):
        self.backbone, self.chosen, self.rejected = backbone, chosen, rejected
        for p in backbone.model.parameters():
            p.requires_grad_(True)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return list(self.backbone.model.parameters())

    def represent(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        sequences = [self.chosen[i] for i in indices] + [self.rejected[i] for i in indices]
        batch = to_device(collate(sequences, self.backbone.tokenizer.pad_token_id, pad_multiple=self.pad_multiple), self.backbone.device)
        both = self.backbone.represent(**batch)
        return both[: len(indices)], both[len(indices) :]


class LoraScope(FullScope):
    """LoRA adapters in the backbone's linear layers train; the pretrained weights stay frozen; h from a full forward.

    The adapters are injected into `backbone.model` in place (it stays the same transformer, with `lora_A`/`lora_B`
    beside each targeted weight) and their config is recorded on `backbone.lora` for saving and export. The
    adapters' dropout, when set, acts only in forwards that build a graph outside `deterministic()`: the training
    step's; evaluations and the exact per-pair gradient norms see the model without it."""

    def __init__(self, backbone: Backbone, chosen: list[Sequence], rejected: list[Sequence], *, r: int, alpha: float,
                 dropout: float = 0.0, target_modules: str | None = None):
        self.backbone, self.chosen, self.rejected = backbone, chosen, rejected
        targets = resolve_target_modules(backbone.model, target_modules, backbone.name)
        backbone.lora = lora_config(r, alpha, dropout, targets)
        self.peft_model = attach_lora(backbone.model, backbone.lora)
        names = set(adapter_names(backbone.model))
        self.trainable = [p for n, p in backbone.model.named_parameters() if n in names]
        self.dropout = dropout
        self._exact = False

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return self.trainable

    @contextmanager
    def deterministic(self):
        """Forwards inside see no adapter dropout even when they build a graph (exact gradient norms)."""
        self._exact, before = True, self._exact
        try:
            yield
        finally:
            self._exact = before

    def represent(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        if self.dropout:
            set_adapter_dropout(self.backbone.model, torch.is_grad_enabled() and not self._exact)
        return super().represent(indices)


class PairScorer(torch.nn.Module):
    """The trainable model as one module: pair indices in, (head input chosen, rejected, r_c, r_r) out.

    Exists so Accelerate can `prepare` one module holding every trainable parameter (the head, and the backbone
    whose blocks train), which data parallelism wraps and mixed precision autocasts. The scope stays a plain
    object: it owns the data (cached features or token ids), not parameters."""

    def __init__(self, scope, head: ScoreHead):
        super().__init__()
        self.head = head
        self.backbone = scope.backbone.model if scope.trainable_parameters() else None
        self.scope = scope

    def forward(self, indices: list[int]):
        h_chosen, h_rejected = self.scope.represent(indices)
        in_chosen, in_rejected = self.head.head_input(h_chosen.float()), self.head.head_input(h_rejected.float())
        return in_chosen, in_rejected, self.head(in_chosen).float(), self.head(in_rejected).float()


# -- saving and loading ------------------------------------------------------------------------------


def save_reward_model(folder: Path, spec, backbone: Backbone, head: ScoreHead, trainable_names: list[str]) -> None:
    """Write the head, the trained backbone tensors (none for `head`) and how to rebuild the model.

    For `lora` the trained tensors are the adapters alone (megabytes, not the backbone's gigabytes), with their
    config under "lora"; loading attaches the same adapters to the pretrained backbone, which computes exactly
    what the run computed. Merging them into the weights is left to the export, where rounding of W + BA is
    the price of a plain model."""
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}, str(folder / "head.safetensors"))
    if trainable_names:
        state = backbone.model.state_dict()
        save_file({n: state[n].detach().cpu().contiguous() for n in trainable_names}, str(folder / "backbone_trained.safetensors"))
    meta = {
        "backbone": spec.backbone,
        "pooling": backbone.pooling,
        "max_length": spec.max_length,
        "dtype": spec.dtype,
        "scope": spec.scope,
        "top_k": spec.top_k,
        "head_layernorm": spec.head_layernorm,
        "hidden_size": backbone.hidden_size,
        "trust_remote_code": spec.trust_remote_code,
        "lora": backbone.lora,
    }
    (folder / "reward_model.json").write_text(json.dumps(meta, indent=2))


class RewardModel:
    """A trained reward model loaded back from a run's `model/` folder, able to score new pairs."""

    def __init__(self, backbone: Backbone, head: ScoreHead, max_length: int):
        self.backbone, self.head, self.max_length = backbone, head, max_length

    @classmethod
    def load(cls, folder: str | Path, device: str = "auto") -> "RewardModel":
        folder = Path(folder)
        meta = json.loads((folder / "reward_model.json").read_text())
        backbone = load_backbone(
            meta["backbone"], pooling=meta["pooling"], device=device, dtype=meta["dtype"], trust_remote_code=meta["trust_remote_code"]
        )
        trained = folder / "backbone_trained.safetensors"
        if meta.get("lora"):
            backbone.lora = meta["lora"]
            attach_lora(backbone.model, backbone.lora)
            load_adapter_tensors(backbone.model, load_file(str(trained)), str(trained))
        elif trained.is_file():
            missing = backbone.model.load_state_dict(load_file(str(trained)), strict=False).unexpected_keys
            if missing:
                raise ValueError(f"{trained}: tensors not in the backbone: {', '.join(missing[:3])}")
        head = ScoreHead(meta["hidden_size"], meta["head_layernorm"])
        head.load_state_dict(load_file(str(folder / "head.safetensors")))
        head.to(backbone.device).eval()
        return cls(backbone, head, meta["max_length"])

    @torch.no_grad()
    def score(self, prompts: list[str], responses: list[str], batch_size: int = 16) -> list[float]:
        """Rewards for (prompt, response) pairs, tokenized exactly as in training."""
        import pandas as pd

        from normbt_viz.model.features import compute_representations, tokenize_pairs

        frame = pd.DataFrame({"pair_id": range(len(prompts)), "prompt": prompts, "chosen": responses, "rejected": responses})
        tokenized = tokenize_pairs(self.backbone, frame, self.max_length)
        h = compute_representations(self.backbone, tokenized.chosen, batch_size).to(self.backbone.device)
        return self.head(self.head.head_input(h)).cpu().tolist()
