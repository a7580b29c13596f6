"""The BT head gradient on toy 2-D representations, in plain numpy, for the Learn page.

Everything here is the head-only algebra of NORMBT.md: r = w·h, Δ = r_c - r_r, ‖∂ℓ/∂w‖ = σ(-Δ)·‖h_c - h_r‖,
and NormBT's detached weight μ/(d + ε). No backbone, no torch: the point is to watch the formula move.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=float)))


def head_gradient(h_chosen, h_rejected, w, mu: float = 1.0, eps: float = 1e-6) -> dict:
    """BT and NormBT head gradients of pairs (rows of h_chosen / h_rejected, or single vectors).

    Returns arrays (scalars for single vectors): margin Δ, pred_error σ(-Δ), rep_distance ‖h_c - h_r‖,
    bt_grad (the vector ∂ℓ/∂w = -σ(-Δ)(h_c - h_r)), bt_norm, normbt_weight μ/(d + ε), normbt_norm
    (weight × bt_norm, which is ≈ μ·σ(-Δ): the distance cancels)."""
    h_chosen, h_rejected, w = (np.asarray(v, dtype=float) for v in (h_chosen, h_rejected, w))
    diff = h_chosen - h_rejected
    margin = diff @ w
    pred_error = sigmoid(-margin)
    rep_distance = np.linalg.norm(diff, axis=-1)
    bt_grad = -np.expand_dims(pred_error, -1) * diff
    weight = mu / (rep_distance + eps)
    bt_norm = pred_error * rep_distance
    return {
        "margin": margin,
        "pred_error": pred_error,
        "rep_distance": rep_distance,
        "bt_grad": bt_grad,
        "bt_norm": bt_norm,
        "normbt_weight": weight,
        "normbt_norm": weight * bt_norm,
    }


def synthetic_pairs(n_pairs: int = 200, seed: int = 0, dim: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Random pairs whose distances span two orders of magnitude (log-uniform), as (h_chosen, h_rejected)."""
    rng = np.random.default_rng(seed)
    h_rejected = rng.normal(size=(n_pairs, dim))
    direction = rng.normal(size=(n_pairs, dim))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    distance = np.exp(rng.uniform(np.log(0.02), np.log(4.0), size=n_pairs))
    return h_rejected + direction * distance[:, None], h_rejected
