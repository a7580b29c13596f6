"""Pairwise losses behind one small registry.

Every loss is a per-pair function of the margin Δ = r_c - r_r times a detached per-pair weight, so the
head gradient of pair i is always (∂ℓ_i/∂Δ) · w_i · (h_c - h_r): the diagnostics compute the update norm
from that, for any registered loss. A new variant is a subclass with `per_pair` (and `weights` when it
reweights), registered in `LOSSES`.

NormBT choices the paper leaves open (see NORMBT.md), decided here:
- ε = 1e-6 by default; the distance is computed in fp32 from the h the head reads.
- μ₀ = the mean distance of the first optimizer step's batch (all its micro-batches), set before that
  step's weights are computed, so the first weights average about 1.
- Weights of step t use μ_t (the EMA before step t); μ is updated after the optimizer step:
  μ_{t+1} = β μ_t + (1 - β) · mean distance over all pairs of step t.
- Under gradient accumulation μ is frozen across the micro-batches of one optimizer step and updated once
  with the mean over all of them, so k micro-batches of b pairs behave exactly like one batch of k·b.
- Data parallel: the batch mean is all-reduced so μ is the same on every rank; the trainer hands the loss a
  `global_mean` that sums and counts over every process (a plain mean in one process).
- Weight clipping is off by default (`weight_clip=None`); when set, w = min(w, clip).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from normbt_viz.model.distance import pair_distance  # noqa: F401 (the losses' distance; re-exported)


class PairLoss:
    """What every pair loss is: a per-pair loss of the margin, a detached per-pair weight (1 unless the loss
    reweights), and state the loop carries across steps (none unless the loss has some)."""

    name = ""

    def __init__(self, spec=None):
        self.spec = spec
        # The mean of a per-pair tensor over every pair of the step: under data parallelism the trainer replaces
        # it with one that all-reduces (sum, count), so state such as NormBT's mu is the same on every rank.
        self.global_mean = lambda values: float(values.mean())

    def per_pair(self, margin: torch.Tensor, target_margin: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def weights(self, h_chosen: torch.Tensor, h_rejected: torch.Tensor) -> torch.Tensor:
        return torch.ones(h_chosen.shape[0], device=h_chosen.device)

    def begin(self, h_chosen: torch.Tensor, h_rejected: torch.Tensor) -> None:
        """Called once with the first optimizer step's representations, before any weight is computed."""

    def end_step(self, h_chosen: torch.Tensor, h_rejected: torch.Tensor) -> None:
        """Called after each optimizer step with all the representations that step saw."""

    @property
    def scale(self) -> float | None:
        return None

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore what state_dict returned (a resumed run continues with the same state)."""


class BT(PairLoss):
    """Plain Bradley-Terry: ℓ = -log σ(Δ), weight 1."""

    name = "bt"

    def per_pair(self, margin, target_margin=None):
        return -F.logsigmoid(margin)


class LabelSmoothedBT(PairLoss):
    """BT towards a soft target 1 - α: ℓ = -(1-α) log σ(Δ) - α log σ(-Δ)."""

    name = "bt_smooth"

    def per_pair(self, margin, target_margin=None):
        alpha = self.spec.label_smoothing
        return -(1.0 - alpha) * F.logsigmoid(margin) - alpha * F.logsigmoid(-margin)


class MarginBT(PairLoss):
    """BT with a per-pair required margin m from the dataset (Llama-2 style): ℓ = -log σ(Δ - m)."""

    name = "bt_margin"

    def per_pair(self, margin, target_margin=None):
        if target_margin is None:
            raise ValueError("loss 'bt_margin' needs the dataset's margin column")
        return -F.logsigmoid(margin - target_margin)


class NormBT(BT):
    """BT with each pair's loss scaled by sg(μ / (d + ε)), μ an EMA of the batch-mean distance."""

    name = "normbt"

    def __init__(self, spec=None):
        super().__init__(spec)
        self.beta = spec.normbt_beta if spec else 0.9
        self.eps = spec.normbt_eps if spec else 1e-6
        self.clip = spec.normbt_weight_clip if spec else None
        self.metric = spec.normbt_distance if spec else "l2"
        self.mu: float | None = None

    def _distance(self, h_chosen, h_rejected):
        return pair_distance(h_chosen.detach(), h_rejected.detach(), self.metric)

    def begin(self, h_chosen, h_rejected):
        self.mu = self.global_mean(self._distance(h_chosen, h_rejected))

    def weights(self, h_chosen, h_rejected):
        if self.mu is None:
            raise RuntimeError("NormBT.begin must be called with the first batch before weights are computed")
        weight = self.mu / (self._distance(h_chosen, h_rejected) + self.eps)
        if self.clip is not None:
            weight = weight.clamp(max=self.clip)
        return weight

    def end_step(self, h_chosen, h_rejected):
        batch_mean = self.global_mean(self._distance(h_chosen, h_rejected))
        self.mu = self.beta * self.mu + (1.0 - self.beta) * batch_mean

    @property
    def scale(self):
        return self.mu

    def state_dict(self):
        return {"mu": self.mu}

    def load_state_dict(self, state: dict) -> None:
        self.mu = state["mu"]


LOSSES: dict[str, type[PairLoss]] = {cls.name: cls for cls in (BT, NormBT, LabelSmoothedBT, MarginBT)}


def build_loss(spec) -> PairLoss:
    return LOSSES[spec.loss](spec)


def weighted_loss(loss: PairLoss, margin, h_chosen, h_rejected, target_margin=None):
    """(per-pair weighted losses, weights). The mean of the first is what the optimizer minimises."""
    weight = loss.weights(h_chosen, h_rejected).detach()
    return weight * loss.per_pair(margin, target_margin), weight
