"""The run spec: the one object that crosses from the app or the CLI into a training process.

A `RunSpec` is a flat dataclass serialised to `spec.json` in the run directory: a `DataSource`'s fields (declared
once, in data/source.py) and everything that trains on them. Everything a training process needs is in it;
validation happens here, at the boundary, so nothing deeper re-checks. Every field is declared with `param()`
(params.py), from which the CLI's flags and the app's widget limits are generated.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from normbt_viz.data.source import DataSource
from normbt_viz.errors import SpecError
from normbt_viz.params import check_fields, field_named, param

SCHEMA_VERSION = 1
SCOPES = ("head", "top-k", "full", "lora")
# A linear head on frozen features tolerates a large step; transformer blocks need a fine-tuning rate; low-rank
# adapters start at zero and take the larger step usual for LoRA.
DEFAULT_LR = {"head": 5e-3, "top-k": 1e-4, "full": 2e-5, "lora": 1e-4}
DISTANCES = ("l2", "cosine")
DIAGNOSTICS = ("full", "eval", "off")
MIXED_PRECISIONS = ("no", "bf16", "fp16")
# The losses registered in train/losses.py (a test keeps the two in step; the spec sits below the trainer).
LOSS_NAMES = ("bt", "normbt", "bt_smooth", "bt_margin")
DEVICE_PATTERN = re.compile(r"auto|cpu|mps|cuda(:\d+)?")
# Experiment trackers a run can also report to, through Accelerate's tracker classes (train/trackers.py).
TRACKERS = ("tensorboard", "wandb", "trackio", "mlflow")

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


# Fields that record how and when a run was made, not what it trains: two specs equal but for these describe
# the same experiment.
BOOKKEEPING_FIELDS = ("name", "created_at", "package_versions", "dataset_fingerprint", "schema_version")
POOLINGS = ("auto", "last", "first", "mean")
DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class RunSpec(DataSource):
    """A data source (its fields come first, see data/source.py) and everything that trains on it."""

    # data (the source's own fields come from DataSource)
    eval_fraction: float = param(0.2, "share of pairs held out for evaluation", low=0.0, high=0.9, low_open=True, high_open=True, group="data")
    split_seed: int = param(0, "seed of the train/eval split and of --limit's sample", low=0, group="data")
    # backbone
    backbone: str = param("minilm", "'minilm' or 'smollm2' (embedded), a local model folder, or a Hugging Face id", group="backbone")
    pooling: str = param("auto", "how h is read: last token (decoders), first token or mean (encoders); auto picks per backbone", choices=POOLINGS, group="backbone")
    dtype: str = param("float32", "backbone weights' dtype (keep float32 and use --mixed-precision to train in bf16/fp16)", choices=DTYPES, group="backbone")
    mixed_precision: str = param("no", "autocast compute dtype through Accelerate, fp32 master weights; the distance and the loss stay fp32", choices=MIXED_PRECISIONS, group="backbone")
    gradient_checkpointing: bool = param(False, "recompute block activations in the backward (less memory, ~30% more compute; top-k/full/lora)", group="backbone")
    device: str = param("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps", group="backbone")
    trust_remote_code: bool = param(False, "run code shipped with a hub model (off unless you pass it)", group="backbone")
    # what trains
    scope: str = param("head", "head: frozen backbone, score head only; top-k: the last k blocks too; full: everything; lora: low-rank adapters in the blocks' linear layers (peft)", choices=SCOPES, group="what trains")
    top_k: int = param(1, "blocks that train with --scope top-k", low=1, group="what trains")
    lora_r: int = param(16, "--scope lora: the adapters' rank r", low=1, group="what trains")
    lora_alpha: float = param(32.0, "--scope lora: alpha; the adapter's update is scaled by alpha / r", low=0.0, low_open=True, group="what trains")
    lora_dropout: float = param(0.0, "--scope lora: dropout on the adapters' input in training steps (off by default so runs are deterministic)", low=0.0, high=1.0, high_open=True, group="what trains")
    lora_target_modules: str | None = param(None, "--scope lora: comma-separated names of the linear layers that get adapters, e.g. q_proj,v_proj (default: peft's choice for known architectures, else every linear layer inside the blocks)", group="what trains")
    # loss (see train/losses.py) and comparison arm
    arm: str | None = param(None, "a named preset over the loss options (see ARMS); sets the fields it names", choices=tuple(ARMS), group="loss")
    loss: str = param("bt", "the pair loss", choices=LOSS_NAMES, group="loss")
    normbt_beta: float = param(0.9, "NormBT: EMA factor of the running mean distance mu", low=0.0, high=1.0, low_open=True, high_open=True, group="loss")
    normbt_eps: float = param(1e-6, "NormBT: epsilon in mu / (d + eps)", low=0.0, low_open=True, group="loss")
    normbt_weight_clip: float | None = param(None, "NormBT: clip each pair's weight at this value", low=0.0, low_open=True, group="loss")
    normbt_distance: str = param("l2", "NormBT: the distance d between h_c and h_r", choices=DISTANCES, group="loss")
    label_smoothing: float = param(0.0, "bt_smooth: target 1 - alpha", low=0.0, high=0.5, high_open=True, group="loss")
    head_layernorm: bool = param(False, "a LayerNorm without affine before the score head", group="loss")
    # optimisation
    lr: float | None = param(None, "learning rate (default per scope: head 5e-3, top-k 1e-4, full 2e-5, lora 1e-4)", low=0.0, low_open=True, group="optimisation")
    warmup_ratio: float = param(0.1, "share of steps with linear warm-up", low=0.0, high=1.0, high_open=True, group="optimisation")
    weight_decay: float = param(0.0, "AdamW weight decay (matrices only)", low=0.0, group="optimisation")
    batch_size: int = param(32, "pairs per micro-batch", low=1, group="optimisation")
    grad_accum: int = param(1, "micro-batches per optimizer step", low=1, group="optimisation")
    epochs: float = param(3.0, "passes over the training pairs (unless --max-steps)", low=0.0, low_open=True, group="optimisation")
    max_steps: int | None = param(None, "optimizer steps (overrides --epochs)", low=1, group="optimisation")
    max_grad_norm: float | None = param(None, "clip the global gradient norm at this value", low=0.0, low_open=True, group="optimisation")
    seed: int = param(0, "seed of the head's initialisation and the pair order", low=0, group="optimisation")
    save_every: int | None = param(None, "write a checkpoint (model, optimizer, mu, step) every N steps; resume with --resume RUN_DIR", low=1, group="optimisation")
    group_by_length: bool | None = param(None, "sort pairs by length inside shuffled mega-batches so a micro-batch pads little; the order depends on the seed only, so every arm sees the same batches (default: on for top-k/full/lora, off for head, which pads nothing)", group="optimisation")
    compile: bool = param(False, "torch.compile the training forward (CPU and CUDA), padding to a multiple of 8 so shapes repeat; falls back to eager with a note in status.json when the backbone does not compile (full/lora)", group="optimisation")
    save_total_limit: int = param(2, "checkpoints kept (the oldest are deleted)", low=1, group="optimisation")
    # diagnostics
    diagnostics: str = param("full", "what the run watches: full (eval slice, train sample, exact gradient norms, per-pair records of every step), eval (eval slice and records), off (eval slice at the start and the end only)", choices=DIAGNOSTICS, group="diagnostics")
    eval_every: int | None = param(None, "steps between evaluations (default: a schedule denser early, whose cost stays a small share of training)", low=1, group="diagnostics")
    full_grad_sample: int | None = param(None, "eval pairs whose exact full gradient norm is computed at each evaluation (default: sized so these forwards and backwards cost about 5% of training, between 8 and 32 pairs; 32 under the head scope, where they are nearly free)", low=0, group="diagnostics")
    initial_grad_sample: int | None = param(None, "eval pairs whose exact gradient norm is computed at step 0, where the update share per distance decile is read (default: --full-grad-sample)", low=0, group="diagnostics")
    n_distance_bins: int = param(5, "distance bins (quantiles of the initial eval distances)", low=2, high=20, group="diagnostics")
    diagnose_train_pairs: int | None = param(None, "train pairs re-scored at each evaluation (default 256 for head, 0 for backbone scopes, whose trained pairs are recorded from the training forward)", low=0, group="diagnostics")
    feature_batch_size: int = param(32, "sequences per forward when computing representations", low=1, group="diagnostics")
    num_threads: int | None = param(None, "torch CPU threads (default: torch's choice)", low=1, group="diagnostics")
    report_to: str = param("", "comma-separated experiment trackers that get metrics.jsonl's scalars and the spec as config: tensorboard (event files in <run>/trackers), wandb, trackio, mlflow (each with its own settings, e.g. WANDB_MODE=offline); none by default", group="diagnostics")
    # bookkeeping
    name: str = param("", "run name (default <arm>-s<seed>)", group="bookkeeping")
    schema_version: int = param(SCHEMA_VERSION, flag=False, group="bookkeeping")
    created_at: float = param(default_factory=time.time, flag=False, group="bookkeeping")
    package_versions: dict = param(default_factory=dict, flag=False, group="bookkeeping")
    dataset_fingerprint: str = param("", flag=False, group="bookkeeping")

    def with_arm(self, arm: str) -> "RunSpec":
        """A copy with the arm's preset applied (and the arm's name recorded)."""
        if arm not in ARMS:
            raise SpecError(f"arm {arm!r} is not one of {', '.join(ARMS)}")
        return dataclasses.replace(self, arm=arm, **ARMS[arm])

    @property
    def trackers(self) -> list[str]:
        """The names in `report_to`, in order, without blanks."""
        return [name.strip() for name in self.report_to.split(",") if name.strip()]

    @property
    def arm_name(self) -> str:
        return self.arm or self.loss

    def resolve(self) -> "RunSpec":
        """Fill defaults that depend on other fields, then validate; the result is what spec.json records."""
        if self.lr is None and self.scope in DEFAULT_LR:
            self.lr = DEFAULT_LR[self.scope]
        if self.diagnose_train_pairs is None:
            # With a frozen backbone re-scoring is nearly free; otherwise it is a second forward over pairs the
            # loop already scored, and the per-pair record stream covers them.
            self.diagnose_train_pairs = 256 if self.scope == "head" else 0
        if self.group_by_length is None:
            self.group_by_length = self.scope != "head"
        if not self.name:
            self.name = f"{self.arm_name}-s{self.seed}"
        return self.validate()

    def validate(self) -> "RunSpec":
        """Check every field against its type, choices and range, then the rules that join two fields."""
        check_fields(self)
        if not DEVICE_PATTERN.fullmatch(self.device):
            raise SpecError(f"device={self.device!r} is invalid: expected auto, cpu, cuda, cuda:N or mps")
        if self.lora_target_modules is not None and not all(n.strip() for n in self.lora_target_modules.split(",")):
            raise SpecError(f"lora_target_modules={self.lora_target_modules!r} is invalid: expected comma-separated module names")
        unknown = [name for name in self.trackers if name not in TRACKERS]
        if unknown:
            raise SpecError(f"report_to={self.report_to!r} is invalid: {', '.join(unknown)} is not one of {', '.join(TRACKERS)}")
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


def spec_field(name: str) -> dataclasses.Field:
    """The RunSpec field called `name` (for the app's widget limits)."""
    return field_named(RunSpec, name)
