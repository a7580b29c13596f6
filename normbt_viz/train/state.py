"""What the trainer holds besides its model: the pairs it trains and evaluates on (`TrainingData`), the plan of
its steps (`StepPlan`), and the state a checkpoint carries from one step to the next (`TrainingState`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from normbt_viz.data.load_report import LoadReport
from normbt_viz.spec import RunSpec
from normbt_viz.train.batching import length_grouped_order, pair_lengths
from normbt_viz.train.diagnostics import evaluation_steps
from normbt_viz.train.losses import PairLoss


GRAD_SAMPLE_BUDGET = 0.05  # share of a backbone run's training compute that the exact-norm samples may take
GRAD_SAMPLE_RANGE = (8, 32)  # fewer pairs make the proxy correlation meaningless; more cost without telling more


@dataclass
class TrainingData:
    """The run's pairs, train rows first then eval rows (`pairs["split"]`), and what tokenisation found."""

    pairs: pd.DataFrame
    n_train: int
    identical_input: np.ndarray  # per pair: both sides tokenize identically, so it cannot train
    token_lengths: tuple[np.ndarray, np.ndarray]  # chosen, rejected
    target_margin: torch.Tensor  # the dataset's margin column (NaN where there is none), on the model's device
    n_truncated: int = 0
    load_report: LoadReport | None = None  # the load's story (skipped rows, ties, truncation); None without a load
    eval_index: list[int] = field(init=False)
    trainable_index: np.ndarray = field(init=False)  # the train pairs that can train (not identical inputs)

    def __post_init__(self):
        self.eval_index = list(range(self.n_train, len(self.pairs)))
        self.trainable_index = np.flatnonzero(~self.identical_input[: self.n_train])


def total_steps_for(spec: RunSpec, n_train: int) -> int:
    if spec.max_steps:
        return spec.max_steps
    return max(1, math.ceil(spec.epochs * n_train / (spec.batch_size * spec.grad_accum)))


def batch_order(n_train: int, pairs_needed: int, seed: int) -> np.ndarray:
    """The training pair indices in visiting order: one seeded permutation per epoch, concatenated."""
    rng = np.random.default_rng(seed)
    epochs = math.ceil(pairs_needed / n_train)
    return np.concatenate([rng.permutation(n_train) for _ in range(epochs)])[:pairs_needed]


def lr_factor(step: int, total: int, warmup: int) -> float:
    """Linear warm-up, then linear decay to zero (TRL's default schedule)."""
    if step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


@dataclass
class StepPlan:
    """How many steps, which pairs each step visits, when to evaluate, and which pairs to diagnose."""

    total_steps: int
    warmup: int
    order: np.ndarray  # pair indices in visiting order, batch_size * grad_accum per step
    eval_steps: set[int]
    diag_train_index: list[int]  # train pairs re-scored at each evaluation
    grad_sample_index: list[int]  # eval pairs whose exact gradient norm is computed at each evaluation
    initial_grad_sample_index: list[int]  # the same at step 0

    @classmethod
    def for_run(cls, spec: RunSpec, data: TrainingData) -> "StepPlan":
        trainable = data.trainable_index
        eval_index = data.eval_index
        total_steps = total_steps_for(spec, len(trainable))
        per_step = spec.batch_size * spec.grad_accum
        order = trainable[batch_order(len(trainable), total_steps * per_step, spec.seed)]
        if spec.group_by_length:
            order = length_grouped_order(order, pair_lengths(data.token_lengths), spec.batch_size, spec.seed)
        if spec.diagnostics == "off":
            eval_steps = {0, total_steps}
        else:
            # Under the head scope an evaluation reads cached features: nearly free, so the schedule may be dense.
            budget = 1.0 if spec.scope == "head" else 0.1
            n_grad = min(spec.full_grad_sample or GRAD_SAMPLE_RANGE[1], len(eval_index)) if spec.diagnostics == "full" and spec.scope != "head" else 0
            eval_steps = set(evaluation_steps(total_steps, per_step, len(eval_index), spec.eval_every, budget, n_grad_pairs=n_grad))
        watch_all = spec.diagnostics == "full"
        rng = np.random.default_rng(spec.seed + 1)
        n_sample = spec.diagnose_train_pairs if watch_all else 0
        n_grad = spec.full_grad_sample
        if n_grad is None:
            n_grad = GRAD_SAMPLE_RANGE[1]
            if spec.scope != "head":
                # Each exact-norm pair costs a forward and a backward, as a trained pair does: the sample gets its
                # share of the training compute, spread over the evaluations, within the range.
                affordable = GRAD_SAMPLE_BUDGET * total_steps * per_step / len(eval_steps)
                n_grad = int(min(GRAD_SAMPLE_RANGE[1], max(GRAD_SAMPLE_RANGE[0], affordable)))
        initial = n_grad if spec.initial_grad_sample is None else spec.initial_grad_sample
        return cls(
            total_steps=total_steps,
            warmup=int(spec.warmup_ratio * total_steps),
            order=order,
            eval_steps=eval_steps,
            diag_train_index=sorted(rng.permutation(data.n_train)[:n_sample].tolist()),
            grad_sample_index=eval_index[:n_grad] if watch_all else [],
            initial_grad_sample_index=eval_index[:initial] if watch_all else [],
        )

    def micro_batches(self, batch_size: int) -> list[np.ndarray]:
        """Every micro-batch of the run, in order (global pair indices)."""
        return [self.order[i : i + batch_size] for i in range(0, len(self.order), batch_size)]

    def step_indices(self, step: int, batch_size: int, grad_accum: int) -> list[list[int]]:
        """The micro-batches of optimizer step `step` (global pair indices)."""
        per_step = batch_size * grad_accum
        chunk = self.order[step * per_step : (step + 1) * per_step].tolist()
        return [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]


@dataclass
class TrainingState:
    """What carries from one step to the next and a checkpoint keeps besides the weights: the steps done, the
    optimizer, the loss's own state (NormBT's mu), and what the first evaluation fixed: the distance-bin edges
    and each pair's initial distance."""

    optimizer: torch.optim.Optimizer
    loss: PairLoss
    step: int = 0
    bin_edges: np.ndarray | None = None
    initial_distance: np.ndarray | None = field(default=None, repr=False)

    def loop_state(self) -> dict:
        """The JSON part of a checkpoint (the optimizer's tensors go through Accelerate's save_state)."""
        return {"step": self.step, "loss": self.loss.state_dict(), "bin_edges": self.bin_edges.tolist()}

    def restore(self, loop_state: dict, initial_distance: np.ndarray) -> None:
        self.step = int(loop_state["step"])
        self.loss.load_state_dict(loop_state["loss"])
        self.bin_edges = np.array(loop_state["bin_edges"])
        self.initial_distance = initial_distance
