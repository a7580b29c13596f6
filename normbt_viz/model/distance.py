"""The representation distance ‖h_c − h_r‖ of a pair, and a survey of it over a whole dataset.

The distance is the quantity the BT gradient scales with and NormBT divides out; the survey is what the Data
page shows before any training (and what an audit reads), computed through the on-disk feature cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from normbt_viz.model.backbones import Backbone
from normbt_viz.model.features import ProgressFn, cached_representations, tokenize_pairs


def pair_distance(h_chosen: torch.Tensor, h_rejected: torch.Tensor, metric: str = "l2") -> torch.Tensor:
    """Per-pair representation distance in fp32: L2 ‖h_c - h_r‖₂, or cosine 1 - cos(h_c, h_r)."""
    h_chosen, h_rejected = h_chosen.float(), h_rejected.float()
    if metric == "l2":
        return (h_chosen - h_rejected).norm(dim=-1)
    if metric == "cosine":
        return 1.0 - F.cosine_similarity(h_chosen, h_rejected, dim=-1)
    raise ValueError(f"unknown distance metric {metric!r}")


@dataclass
class DistanceSurvey:
    """Every pair's distance under one backbone, before training."""

    frame: pd.DataFrame  # pair_id, category, rep_distance, identical_input
    n_truncated: int  # pairs that lost prompt tokens to max_length
    n_identical_input: int  # pairs whose two inputs tokenize identically (h_c = h_r, untrainable)


def survey_distances(backbone: Backbone, pairs: pd.DataFrame, max_length: int, batch_size: int = 32,
                     progress: ProgressFn | None = None) -> DistanceSurvey:
    """Tokenize, featurise (through the cache) and measure every pair of `pairs`."""
    tokenized = tokenize_pairs(backbone, pairs, max_length)
    h_chosen, h_rejected, _ = cached_representations(backbone, pairs, tokenized, max_length, batch_size, progress)
    identical = np.array([c.input_ids == r.input_ids for c, r in zip(tokenized.chosen, tokenized.rejected)], dtype=bool)
    frame = pd.DataFrame({
        "pair_id": pairs["pair_id"].to_numpy(),
        "category": pairs["category"].to_numpy(),
        "rep_distance": pair_distance(h_chosen, h_rejected).numpy(),
        "identical_input": identical,
    })
    return DistanceSurvey(frame, tokenized.n_truncated, int(identical.sum()))
