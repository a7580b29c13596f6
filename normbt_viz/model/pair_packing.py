"""Both answers of a pair in one row, their shared prompt read once: frozen decoder features at about 60% of the
tokens.

Why: the two sequences of a pair start with the same tokens (the rendered prompt, often most of the text: on
HH-RLHF harmless at 256 tokens the packed rows hold 62% of the separate sequences' tokens), and a causal model's
state at a token depends only on the tokens before it. So one row [prefix, chosen suffix, rejected suffix], with
an attention mask under which each suffix sees the prefix and itself but not the other suffix, and positions
that restart after the prefix for the second suffix, gives each answer the same hidden states as reading it
alone. Encoders attend both ways (the prompt's states would see both answers), so this is for decoders only.

Truncation differs from reading the sides alone in one way: the prompt is cut once for both, to leave room for
the longer suffix, so both answers are judged after the same context. Without truncation the packed states match
the separate ones (`tests/test_pair_packing.py`: 1e-5 in fp32).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from normbt_viz.numeric import length_chunks

PREFIX, CHOSEN, REJECTED, PAD = 0, 1, 2, -1


@dataclass
class PackedPair:
    input_ids: list[int]  # prefix, then the chosen suffix, then the rejected suffix
    prefix: int
    chosen: int  # tokens in the chosen suffix
    rejected: int

    def __len__(self) -> int:
        return len(self.input_ids)


def shared_prefix_length(first: list[int], second: list[int]) -> int:
    """Tokens the two sequences share at their start, leaving each at least one token of its own (the state read
    for an answer is its last token's, and two identical sequences must still give two suffixes)."""
    limit = min(len(first), len(second)) - 1
    k = 0
    while k < limit and first[k] == second[k]:
        k += 1
    return k


def pack_pair(chosen: list[int], rejected: list[int], max_length: int, special_ids: set[int]) -> tuple[PackedPair, bool]:
    """(the packed row, whether either side lost tokens) for two untruncated id lists. Each side reads at most
    `max_length` tokens: the shared prefix loses tokens from its start (a leading special token stays) to leave
    room for the longer suffix, and a suffix longer than that alone loses its own start."""
    k = shared_prefix_length(chosen, rejected)
    prefix, own_c, own_r = chosen[:k], chosen[k:], rejected[k:]
    lead = prefix[:1] if prefix and prefix[0] in special_ids else []
    room = max_length - max(len(own_c), len(own_r))
    truncated = room < len(prefix)
    if truncated and room > len(lead):
        prefix = lead + prefix[len(prefix) - (room - len(lead)):]
    elif truncated:
        prefix = lead
        keep = max_length - len(lead)
        own_c, own_r = own_c[-keep:], own_r[-keep:]
    return PackedPair(prefix + own_c + own_r, len(prefix), len(own_c), len(own_r)), truncated


def packed_batch(rows: list[PackedPair], pad_id: int) -> dict[str, torch.Tensor]:
    """input_ids, position_ids and a [batch, 1, length, length] boolean attention mask (True: may attend) for
    packed rows padded on the right, each token's segment (PREFIX, CHOSEN, REJECTED or PAD), and each row's last
    chosen and last rejected token index."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    segment = torch.full((len(rows), width), PAD, dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    last_chosen, last_rejected = torch.empty(len(rows), dtype=torch.long), torch.empty(len(rows), dtype=torch.long)
    for i, row in enumerate(rows):
        p, a, b = row.prefix, row.chosen, row.rejected
        ids[i, : len(row)] = torch.tensor(row.input_ids)
        segment[i, :p], segment[i, p : p + a], segment[i, p + a : p + a + b] = PREFIX, CHOSEN, REJECTED
        positions[i, : p + a] = torch.arange(p + a)
        positions[i, p + a : p + a + b] = torch.arange(p, p + b)  # the rejected answer starts where the chosen did
        last_chosen[i], last_rejected[i] = p + a - 1, p + a + b - 1
    causal = torch.ones(width, width, dtype=torch.bool).tril()
    query, key = segment[:, :, None], segment[:, None, :]
    mask = causal & (query != PAD) & (key != PAD) & ((key == PREFIX) | (key == query))
    mask |= torch.eye(width, dtype=torch.bool)  # a padding query attends to itself only (no all-masked softmax)
    return {"input_ids": ids, "position_ids": positions, "attention_mask": mask[:, None], "segment": segment,
            "last_chosen": last_chosen, "last_rejected": last_rejected}


def length_sorted_batches(rows: list[PackedPair], token_budget: int, most: int = 64) -> list[list[int]]:
    """Row indices grouped by length, each batch holding at most `token_budget` padded tokens (the attention mask
    grows as length², so long rows come in smaller batches) and at most `most` rows."""
    return [chunk.tolist() for chunk in length_chunks(np.array([len(row) for row in rows]), most, token_budget)]
