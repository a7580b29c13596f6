"""Which pairs share a micro-batch: length-grouped visiting orders and what they cost in padding.

A backbone forward pads every sequence of a micro-batch (both sides of every pair) to the longest one, so a
batch that mixes a long-tail pair with short ones pays for the long one 2·b times. Grouping sorts pairs by
length inside shuffled mega-batches (as Hugging Face's `LengthGroupedSampler` does), so a micro-batch holds
similar lengths, then shuffles the micro-batches of each mega-batch so steps do not run from long to short.
The result depends on the seeded order and the token lengths only, never on the loss: every arm of a
comparison visits the same micro-batches in the same order.
"""

from __future__ import annotations

import numpy as np

MEGA_BATCH_MICRO_BATCHES = 50  # micro-batches per sorted mega-batch (HF's LengthGroupedSampler default)


def pair_lengths(token_lengths: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Per pair, the longer side's token count: what the pair forces a padded micro-batch to."""
    return np.maximum(token_lengths[0], token_lengths[1])


def length_grouped_order(order: np.ndarray, lengths: np.ndarray, batch_size: int, seed: int,
                         mega_batch: int = MEGA_BATCH_MICRO_BATCHES) -> np.ndarray:
    """`order` (pair indices in visiting order) regrouped so each run of `batch_size` holds similar lengths.

    The same pairs stay in the same mega-batch (so an epoch still visits each pair once and the shuffle's
    randomness survives across mega-batches); inside one, pairs are sorted by length (ties by their place in
    `order`) and cut into micro-batches, whose order is then shuffled with a generator seeded by `seed`."""
    rng = np.random.default_rng([seed, 0x6C656E])  # its own stream: the pair order's generator stays untouched
    span = batch_size * mega_batch
    pieces = []
    for start in range(0, len(order), span):
        chunk = order[start : start + span]
        by_length = chunk[np.argsort(-lengths[chunk], kind="stable")]
        batches = [by_length[i : i + batch_size] for i in range(0, len(by_length), batch_size)]
        # A last, short micro-batch keeps its place at the end: a step's size must not move.
        full = [b for b in batches if len(b) == batch_size]
        rest = [b for b in batches if len(b) != batch_size]
        pieces += [full[i] for i in rng.permutation(len(full))] + rest
    return np.concatenate(pieces) if pieces else order


def padded_width(longest: int, multiple: int = 1) -> int:
    """The padded sequence width of a micro-batch whose longest sequence has `longest` tokens."""
    return -(-longest // multiple) * multiple


def token_counts(micro_batches: list[np.ndarray], token_lengths: tuple[np.ndarray, np.ndarray], multiple: int = 1) -> dict:
    """Real and padded tokens over `micro_batches`, both sides of every pair padded together as one forward."""
    chosen, rejected = token_lengths
    real = padded = 0
    for batch in micro_batches:
        if not len(batch):
            continue
        real += int(chosen[batch].sum() + rejected[batch].sum())
        padded += 2 * len(batch) * padded_width(int(max(chosen[batch].max(), rejected[batch].max())), multiple)
    return {"real_tokens": real, "padded_tokens": padded, "padding_share": round(1 - real / padded, 4) if padded else 0.0}
