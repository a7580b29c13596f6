"""The run spec: the one object that crosses from the app or the CLI into a training process.

A `RunSpec` is a flat dataclass serialised to `spec.json` in the run directory. Everything a training
process needs is in it; validation happens here, at the boundary, so nothing deeper re-checks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from normbt_viz.errors import SpecError

SCHEMA_VERSION = 1
SCOPES = ("head", "top-k", "full")
# A linear head on frozen features tolerates a large step; transformer blocks need a fine-tuning rate.
DEFAULT_LR = {"head": 5e-3, "top-k": 1e-4, "full": 2e-5}
DISTANCES = ("l2", "cosine")
# The losses registered in train/losses.py (a test keeps the two in step; the spec sits below the trainer).
LOSS_NAMES = ("bt", "normbt", "bt_smooth", "bt_margin")

# Comparison arms: named presets over the spec's loss and training options, so that each question the
# paper's reviewers asked is one selectable arm rather than a hand-assembled config.
ARMS: dict[str, dict[str, Any]] = {
    "bt": {"loss": "bt"},
    "normbt": {"loss": "normbt"},
    "normbt_clip": {"loss": "normbt", "normbt_weight_clip": 3.0},
    "bt_gradclip": {"loss": "bt", "max_grad_norm": 0.1},
    "bt_layernorm": {"loss": "bt", "head_layernorm": True},
    "bt_smooth": {"loss": "bt_smooth", "label_smoothing": 0.1},
    "bt_margin": {"loss": "bt_margin"},
    "normbt_cosine": {"loss": "normbt", "normbt_distance": "cosine"},
}
ARM_DESCRIPTIONS = {
    "bt": "plain Bradley-Terry",
    "normbt": "NormBT as in the paper (weight mu/(d+eps), L2 distance)",
    "normbt_clip": "NormBT with its weights clipped at 3",
    "bt_gradclip": "BT with global gradient-norm clipping",
    "bt_layernorm": "BT with a LayerNorm (no affine) before the score head",
    "bt_smooth": "BT with label smoothing (target 1 - alpha)",
    "bt_margin": "BT with the dataset's margin column: -log sigmoid(delta - m)",
    "normbt_cosine": "NormBT with cosine distance instead of L2",
}


@dataclass
class RunSpec:
    # data
    dataset: str = "demo"
    dataset_config: str | None = None
    dataset_split: str = "train"
    column_mapping: dict | None = None
    demo_size: int = 1000
    demo_noise: float = 0.0
    demo_seed: int = 0
    limit: int | None = None
    eval_fraction: float = 0.2
    split_seed: int = 0
    strict: bool = False  # False: rows that fail validation are skipped and counted; True: the first one is an error
    # backbone
    backbone: str = "minilm"
    pooling: str = "auto"
    max_length: int = 128
    dtype: str = "float32"
    device: str = "auto"
    trust_remote_code: bool = False
    # what trains
    scope: str = "head"
    top_k: int = 1
    # loss (see losses.py) and comparison arm
    arm: str | None = None
    loss: str = "bt"
    normbt_beta: float = 0.9
    normbt_eps: float = 1e-6
    normbt_weight_clip: float | None = None
    normbt_distance: str = "l2"
    label_smoothing: float = 0.0
    head_layernorm: bool = False
    # optimisation
    lr: float | None = None  # None: DEFAULT_LR for the scope, filled in by resolve()
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    batch_size: int = 32
    grad_accum: int = 1
    epochs: float = 3.0
    max_steps: int | None = None
    max_grad_norm: float | None = None
    seed: int = 0
    # diagnostics
    eval_every: int | None = None
    full_grad_sample: int = 32
    n_distance_bins: int = 5
    diagnose_train_pairs: int = 256
    feature_batch_size: int = 32
    num_threads: int | None = None
    # bookkeeping
    name: str = ""
    schema_version: int = SCHEMA_VERSION
    created_at: float = field(default_factory=time.time)
    package_versions: dict = field(default_factory=dict)
    dataset_fingerprint: str = ""

    def with_arm(self, arm: str) -> "RunSpec":
        """A copy with the arm's preset applied (and the arm's name recorded)."""
        if arm not in ARMS:
            raise SpecError(f"arm {arm!r} is not one of {', '.join(ARMS)}")
        return dataclasses.replace(self, arm=arm, **ARMS[arm])

    @property
    def arm_name(self) -> str:
        return self.arm or self.loss

    def resolve(self) -> "RunSpec":
        """Fill defaults that depend on other fields, then validate; the result is what spec.json records."""
        if self.lr is None and self.scope in DEFAULT_LR:
            self.lr = DEFAULT_LR[self.scope]
        if not self.name:
            self.name = f"{self.arm_name}-s{self.seed}"
        return self.validate()

    def validate(self) -> "RunSpec":
        def need(condition: bool, name: str, expected: str) -> None:
            if not condition:
                raise SpecError(f"{name}={getattr(self, name)!r} is invalid: expected {expected}")

        need(self.loss in LOSS_NAMES, "loss", f"one of {', '.join(LOSS_NAMES)}")
        need(self.scope in SCOPES, "scope", f"one of {', '.join(SCOPES)}")
        need(self.normbt_distance in DISTANCES, "normbt_distance", f"one of {', '.join(DISTANCES)}")
        need(isinstance(self.top_k, int) and self.top_k >= 1, "top_k", "an integer >= 1")
        need(self.lr is None or (self.lr > 0 and math.isfinite(self.lr)), "lr", "a positive number")
        need(0 <= self.warmup_ratio < 1, "warmup_ratio", "a number in [0, 1)")
        need(self.weight_decay >= 0, "weight_decay", "a number >= 0")
        need(self.batch_size >= 1, "batch_size", "an integer >= 1")
        need(self.grad_accum >= 1, "grad_accum", "an integer >= 1")
        need(self.epochs > 0, "epochs", "a positive number")
        need(self.max_steps is None or self.max_steps >= 1, "max_steps", "an integer >= 1 or none")
        need(self.max_grad_norm is None or self.max_grad_norm > 0, "max_grad_norm", "a positive number or none")
        need(self.max_length >= 8, "max_length", "an integer >= 8")
        need(self.limit is None or self.limit >= 2, "limit", "an integer >= 2 or none")
        need(0 < self.eval_fraction < 0.9, "eval_fraction", "a number in (0, 0.9)")
        need(0 <= self.demo_noise <= 0.5, "demo_noise", "a number in [0, 0.5]")
        need(self.demo_size >= 2, "demo_size", "an integer >= 2")
        need(0 < self.normbt_beta < 1, "normbt_beta", "a number in (0, 1)")
        need(self.normbt_eps > 0, "normbt_eps", "a positive number")
        need(self.normbt_weight_clip is None or self.normbt_weight_clip > 0, "normbt_weight_clip", "a positive number or none")
        need(0 <= self.label_smoothing < 0.5, "label_smoothing", "a number in [0, 0.5)")
        need(self.eval_every is None or self.eval_every >= 1, "eval_every", "an integer >= 1 or none")
        need(self.full_grad_sample >= 0, "full_grad_sample", "an integer >= 0")
        need(2 <= self.n_distance_bins <= 20, "n_distance_bins", "an integer in [2, 20]")
        need(self.arm is None or self.arm in ARMS, "arm", f"one of {', '.join(ARMS)} or none")
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict) -> "RunSpec":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"run spec has unknown field(s): {', '.join(unknown)}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            raise SpecError(f"run spec schema_version {version} is newer than this tool's {SCHEMA_VERSION}")
        return cls(**data)

    @classmethod
    def load(cls, path: str | Path) -> "RunSpec":
        path = Path(path)
        if not path.is_file():
            raise SpecError(f"no such spec file: {path}")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise SpecError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise SpecError(f"{path}: expected a JSON object")
        return cls.from_dict(data)


def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("normbt-viz", "torch", "transformers", "datasets", "numpy", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    from normbt_viz import __version__

    out["normbt_viz"] = __version__
    return out
