"""Per-pair diagnostics: pure functions the training loop calls to describe what each pair did.

Distance bins (fixed per pair from the initial model), and exact per-pair gradient norms over every trainable
parameter. Nothing here writes files or knows where runs live.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F

from normbt_viz.errors import SpecError
from normbt_viz.model.reward_model import ScoreHead
from normbt_viz.numeric import as_finite_array, check_positive_int


def distance_bin_edges(rep_distance, n_bins: int = 5) -> np.ndarray:
    """Quantile edges that split pairs by representation distance ‖h_c - h_r‖ into about equal-count bins.

    Returns a strictly increasing float array of length n_bins + 1 whose first edge is -inf and last is +inf, so
    any later distance (another run, another checkpoint) falls into some bin. Where quantiles tie (many pairs at
    one distance) the repeated edges are dropped, so fewer than n_bins bins can come back; callers should read the
    bin count from the edges, not assume n_bins.
    """
    n_bins = check_positive_int(n_bins, "n_bins")
    distances = as_finite_array(rep_distance, "rep_distance")
    interior = np.unique(np.quantile(distances, np.linspace(0.0, 1.0, n_bins + 1)[1:-1]))
    return np.concatenate([[-np.inf], interior, [np.inf]])


def assign_bins(rep_distance, edges) -> np.ndarray:
    """Bin index (0 .. len(edges) - 2) of each distance, bins closed on the left: [edges[k], edges[k+1]).

    A distance equal to an interior edge goes to the bin above it, as with `np.digitize`; a distance equal to a
    finite last edge goes to the last bin, as with `np.histogram`. Distances outside [edges[0], edges[-1]] raise,
    because silently clipping them would put them in a bin whose label does not describe them.
    """
    distances = as_finite_array(rep_distance, "rep_distance")
    try:
        edges = np.asarray(edges, dtype=float)
    except (TypeError, ValueError):
        raise SpecError(f"edges must be numeric; got {type(edges).__name__}") from None
    if edges.ndim != 1 or edges.size < 2:
        raise SpecError(f"edges must be a 1-D array of at least 2 values; got shape {edges.shape}")
    if np.isnan(edges).any() or not np.all(np.diff(edges) > 0):
        raise SpecError(f"edges must be strictly increasing; got {edges.tolist()}")
    outside = np.flatnonzero((distances < edges[0]) | (distances > edges[-1]))
    if outside.size:
        raise SpecError(
            f"rep_distance[{outside[0]}]={distances[outside[0]]!r} is outside the edges [{edges[0]}, {edges[-1]}]"
        )
    n_bins = edges.size - 1
    bins = np.searchsorted(edges, distances, side="right") - 1
    return np.minimum(bins, n_bins - 1).astype(int)


def per_pair_full_grad_norms(head: ScoreHead, scope, indices: list[int], params: list[torch.nn.Parameter]) -> np.ndarray:
    """Exact ‖∇_θ ℓ_i‖ of the unweighted BT loss over all trainable parameters θ, one value per pair.

    With a frozen backbone the per-pair gradients are computed together with torch.func (vmap of grad);
    when backbone blocks train, HF attention code is not vmappable, so each sampled pair gets one backward."""
    if not indices:
        return np.zeros(0)
    if not scope.trainable_parameters():
        from torch.func import functional_call, grad, vmap

        h_chosen, h_rejected = scope.represent(indices)
        head_params = {name: p.detach() for name, p in head.named_parameters()}

        def pair_loss(p, hc, hr):
            both = functional_call(head, p, (head.head_input(torch.stack([hc, hr])),))
            return -F.logsigmoid(both[0] - both[1])

        grads = vmap(grad(pair_loss), in_dims=(None, 0, 0))(head_params, h_chosen, h_rejected)
        return torch.sqrt(sum(g.reshape(len(indices), -1).pow(2).sum(1) for g in grads.values())).cpu().numpy()
    norms = []
    # A scope with stochastic parts in its training forward (LoRA dropout) turns them off for the exact norm.
    with getattr(scope, "deterministic", nullcontext)():
        for i in indices:
            h_chosen, h_rejected = scope.represent([i])
            margin = head(head.head_input(h_chosen)) - head(head.head_input(h_rejected))
            grads = torch.autograd.grad(-F.logsigmoid(margin).sum(), params, allow_unused=True)
            norms.append(float(torch.sqrt(sum(g.pow(2).sum() for g in grads if g is not None))))
    return np.array(norms)


# A forward without gradient costs about a third of a training step per pair (no backward, no optimizer).
EVAL_COST_PER_PAIR = 1 / 3


def evaluation_steps(total_steps: int, pairs_per_step: int, n_eval_pairs: int, eval_every: int | None = None,
                     budget: float = 0.1, most: int = 10, least: int = 3) -> list[int]:
    """The steps after which the eval slice is diagnosed (always including 0 and the last step).

    With `eval_every` given, every multiple of it. Otherwise as many evaluations as fit in `budget` (a share of
    the training compute, counting an eval pair as EVAL_COST_PER_PAIR of a trained pair), between `least` and
    `most`, spaced on a power curve so they come more often early, where the picture changes fastest.
    """
    if eval_every:
        steps = list(range(eval_every, total_steps + 1, eval_every))
    else:
        affordable = budget * total_steps * pairs_per_step / max(1.0, n_eval_pairs * EVAL_COST_PER_PAIR)
        n = int(min(most, max(least, affordable)))
        steps = [max(1, round(total_steps * (i / n) ** 1.5)) for i in range(1, n + 1)]
    return sorted({0, *steps, total_steps})
