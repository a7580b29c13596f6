"""From preference pairs to token ids and cached representations.

Tokenization keeps the end of every response: a sequence longer than `max_length` loses tokens from the
prompt's start (leading special tokens such as [CLS] are kept), and the number of truncated pairs is
reported. Frozen computations are cached on disk keyed by backbone, pair content, max length, pooling and
dtype, so repeated runs of the `head` scope never touch the backbone, and `top-k` runs skip the frozen
lower blocks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from normbt_viz.atomic import atomic_write
from normbt_viz.model.backbones import Backbone, cache_root
from normbt_viz.data.sources import render_messages

TOKENIZATION_VERSION = 1
ProgressFn = Callable[[int, int], None]


@dataclass
class Sequence:
    input_ids: list[int]
    token_type_ids: list[int] | None


@dataclass
class TokenizedPairs:
    chosen: list[Sequence]
    rejected: list[Sequence]
    n_truncated: int  # pairs where either side lost tokens


def _conversation(prompt: str, prompt_messages: str, response: str) -> list[dict]:
    messages = json.loads(prompt_messages) if prompt_messages else ([{"role": "user", "content": prompt}] if prompt else [])
    return messages + [{"role": "assistant", "content": response}]


def join_prompt_response(prompt: str, response: str) -> str:
    """Plain-text join for decoders without a chat template. An HH-style prompt already ends in its turn
    marker ("...Assistant:"), so the response follows it as in the original transcript."""
    if not prompt:
        return response
    return f"{prompt} {response}" if prompt.rstrip().endswith(":") else f"{prompt}\n\n{response}"


def encode_response(backbone: Backbone, prompt: str, response: str, prompt_messages: str = "") -> Sequence:
    """Token ids for one (prompt, response) as the model should read them, untruncated.

    Decoders with a chat template read the rendered conversation; encoders read (prompt, response) as a
    sentence pair so the segment embedding separates them."""
    tokenizer = backbone.tokenizer
    if backbone.is_decoder:
        if getattr(tokenizer, "chat_template", None):
            text = render_messages(_conversation(prompt, prompt_messages, response), tokenizer)
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = tokenizer(join_prompt_response(prompt, response))["input_ids"]
        return Sequence(list(ids), None)
    encoded = tokenizer(prompt, response) if prompt else tokenizer(response)
    return Sequence(list(encoded["input_ids"]), list(encoded["token_type_ids"]) if "token_type_ids" in encoded else None)


def truncate_from_start(sequence: Sequence, max_length: int, special_ids: set[int]) -> tuple[Sequence, bool]:
    """Keep the last tokens so each response's end survives; a leading special token ([CLS], <s>) stays."""
    ids = sequence.input_ids
    if len(ids) <= max_length:
        return sequence, False
    keep_lead = 1 if ids and ids[0] in special_ids else 0
    tail = max_length - keep_lead
    new_ids = ids[:keep_lead] + ids[-tail:]
    new_types = None
    if sequence.token_type_ids is not None:
        new_types = sequence.token_type_ids[:keep_lead] + sequence.token_type_ids[-tail:]
    return Sequence(new_ids, new_types), True


def tokenize_pairs(backbone: Backbone, pairs: pd.DataFrame, max_length: int) -> TokenizedPairs:
    special_ids = set(backbone.tokenizer.all_special_ids)
    chosen, rejected, n_truncated = [], [], 0
    messages = pairs["prompt_messages"] if "prompt_messages" in pairs else [""] * len(pairs)
    for prompt, chosen_text, rejected_text, prompt_messages in zip(pairs["prompt"], pairs["chosen"], pairs["rejected"], messages):
        seq_c, cut_c = truncate_from_start(encode_response(backbone, prompt, chosen_text, prompt_messages), max_length, special_ids)
        seq_r, cut_r = truncate_from_start(encode_response(backbone, prompt, rejected_text, prompt_messages), max_length, special_ids)
        chosen.append(seq_c)
        rejected.append(seq_r)
        n_truncated += int(cut_c or cut_r)
    return TokenizedPairs(chosen, rejected, n_truncated)


def collate(sequences: list[Sequence], pad_id: int, padding_side: str = "right", pad_multiple: int = 1) -> dict[str, torch.Tensor]:
    """Pad to the longest sequence of the batch (dynamic padding keeps short demo texts cheap), rounded up to
    a multiple of `pad_multiple` (a compiled forward then sees few distinct shapes)."""
    width = -(-max(len(s.input_ids) for s in sequences) // pad_multiple) * pad_multiple
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    types = torch.zeros((len(sequences), width), dtype=torch.long) if sequences[0].token_type_ids is not None else None
    for row, seq in enumerate(sequences):
        n = len(seq.input_ids)
        span = slice(0, n) if padding_side == "right" else slice(width - n, width)
        ids[row, span] = torch.tensor(seq.input_ids)
        mask[row, span] = 1
        if types is not None:
            types[row, span] = torch.tensor(seq.token_type_ids)
    batch = {"input_ids": ids, "attention_mask": mask}
    if types is not None:
        batch["token_type_ids"] = types
    return batch


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in batch.items()}


def _length_sorted_batches(sequences: list[Sequence], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i].input_ids))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def compute_representations(
    backbone: Backbone, sequences: list[Sequence], batch_size: int = 32, progress: ProgressFn | None = None
) -> torch.Tensor:
    """h for every sequence, [n, hidden] fp32 on the CPU; batches are length-sorted to waste little padding."""
    out = torch.empty((len(sequences), backbone.hidden_size), dtype=torch.float32)
    done = 0
    for index in _length_sorted_batches(sequences, batch_size):
        batch = to_device(collate([sequences[i] for i in index], backbone.tokenizer.pad_token_id), backbone.device)
        out[index] = backbone.represent(**batch).cpu()
        done += len(index)
        if progress:
            progress(done, len(sequences))
    return out


def find_blocks(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The transformer blocks: the ModuleList whose length is the configured number of layers."""
    n_layers = int(model.config.num_hidden_layers)
    for module in model.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layers:
            return module
    raise ValueError(f"cannot find the {n_layers} transformer blocks of {type(model).__name__}")


@torch.no_grad()
def compute_block_inputs(
    backbone: Backbone, sequences: list[Sequence], first_trainable: int, batch_size: int = 32, progress: ProgressFn | None = None
) -> list[torch.Tensor]:
    """The hidden states entering block `first_trainable` for every sequence, unpadded ([len_i, hidden] each)."""
    block = find_blocks(backbone.model)[first_trainable]
    captured: dict[str, torch.Tensor] = {}

    def grab(_module, args, kwargs):
        captured["hidden"] = args[0] if args else kwargs["hidden_states"]

    handle = block.register_forward_pre_hook(grab, with_kwargs=True)
    out: list[torch.Tensor | None] = [None] * len(sequences)
    done = 0
    try:
        for index in _length_sorted_batches(sequences, batch_size):
            batch = to_device(collate([sequences[i] for i in index], backbone.tokenizer.pad_token_id), backbone.device)
            backbone.forward_hidden(**batch)
            hidden = captured["hidden"].float().cpu()
            for row, i in enumerate(index):
                out[i] = hidden[row, : len(sequences[i].input_ids)].clone()
            done += len(index)
            if progress:
                progress(done, len(sequences))
    finally:
        handle.remove()
    return out  # type: ignore[return-value]


def content_fingerprint(pairs: pd.DataFrame) -> str:
    """sha256 over the texts that reach the backbone, so a cache entry is never reused for other data."""
    digest = hashlib.sha256()
    for row in pairs[["pair_id", "prompt", "chosen", "rejected"]].itertuples(index=False):
        digest.update("\x1f".join(map(str, row)).encode())
        digest.update(b"\x1e")
    if "prompt_messages" in pairs:
        digest.update("".join(pairs["prompt_messages"].astype(str)).encode())
    return digest.hexdigest()[:16]


def answer_order_swapped(pairs: pd.DataFrame) -> np.ndarray:
    """Per pair, whether its chosen answer sorts after its rejected one.

    The cache stores each pair's two sequences in this canonical (sorted) order, so the same texts with some
    labels flipped (a label-noise study, a cleaned copy that flips label issues) hit the clean data's entry: the
    backbone sees the same two sequences either way (truncation cuts the prompt, which both share)."""
    return (pairs["chosen"].astype(str) > pairs["rejected"].astype(str)).to_numpy()


def canonical_pairs(pairs: pd.DataFrame) -> pd.DataFrame:
    """`pairs` with each pair's answers in the canonical order (see `answer_order_swapped`): a pair and its
    flipped copy read the same, so caches keyed by it serve both."""
    swapped = answer_order_swapped(pairs)
    if not swapped.any():
        return pairs
    canonical = pairs[["pair_id", "prompt", "chosen", "rejected"] + (["prompt_messages"] if "prompt_messages" in pairs else [])].copy()
    canonical.loc[swapped, ["chosen", "rejected"]] = pairs.loc[swapped, ["rejected", "chosen"]].to_numpy()
    return canonical


def _swap_rows(first: torch.Tensor, second: torch.Tensor, swapped: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Exchange the rows of `first` and `second` where `swapped` (to and from the canonical order: an involution)."""
    if not swapped.any():
        return first, second
    mask = torch.from_numpy(swapped.copy()).reshape(-1, *([1] * (first.dim() - 1)))
    return torch.where(mask, second, first), torch.where(mask, first, second)


def cache_key(backbone: Backbone, pairs: pd.DataFrame, max_length: int, what: str) -> str:
    description = {
        "backbone": backbone.path,
        "pairs": content_fingerprint(canonical_pairs(pairs)),
        "max_length": max_length,
        "pooling": backbone.pooling,
        "dtype": str(backbone.dtype),
        "what": what,
        "tokenization": TOKENIZATION_VERSION,
    }
    return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:24]


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    atomic_write(path, lambda tmp: save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp)))


def cached_representations(
    backbone: Backbone,
    pairs: pd.DataFrame,
    tokenized: TokenizedPairs,
    max_length: int,
    batch_size: int = 32,
    progress: ProgressFn | None = None,
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(h_chosen, h_rejected, cache_hit) for the frozen backbone, from the disk cache when present."""
    path = cache_root() / "features" / f"{cache_key(backbone, pairs, max_length, 'pooled')}.safetensors"
    swapped = answer_order_swapped(pairs)
    if path.is_file():
        stored = load_file(str(path))
        return (*_swap_rows(stored["chosen"], stored["rejected"], swapped), True)
    both = compute_representations(backbone, tokenized.chosen + tokenized.rejected, batch_size, progress)
    h_chosen, h_rejected = both[: len(pairs)], both[len(pairs) :]
    stored_first, stored_second = _swap_rows(h_chosen, h_rejected, swapped)
    _atomic_save({"chosen": stored_first, "rejected": stored_second}, path)
    return h_chosen, h_rejected, False


def cached_block_inputs(
    backbone: Backbone,
    pairs: pd.DataFrame,
    tokenized: TokenizedPairs,
    max_length: int,
    first_trainable: int,
    batch_size: int = 32,
    progress: ProgressFn | None = None,
) -> tuple[list[torch.Tensor], list[torch.Tensor], bool]:
    """Per-sequence hidden states entering the first trainable block, cached like the pooled features."""
    key = cache_key(backbone, pairs, max_length, f"block{first_trainable}")
    path = cache_root() / "features" / f"{key}.safetensors"
    n = len(pairs)
    swapped = answer_order_swapped(pairs)

    def exchange(pieces: list) -> list:  # to and from the canonical order (see `answer_order_swapped`)
        first, second = list(pieces[:n]), list(pieces[n:])
        for i in np.flatnonzero(swapped):
            first[i], second[i] = second[i], first[i]
        return first + second

    if path.is_file():
        stored = load_file(str(path))
        pieces = exchange(torch.split(stored["hidden"], stored["lengths"].tolist()))
        return pieces[:n], pieces[n:], True
    pieces = compute_block_inputs(backbone, tokenized.chosen + tokenized.rejected, first_trainable, batch_size, progress)
    canonical = exchange(pieces)
    lengths = torch.tensor([p.shape[0] for p in canonical])
    _atomic_save({"hidden": torch.cat(canonical), "lengths": lengths}, path)
    return pieces[:n], pieces[n:], False


def packs_prompt(backbone: Backbone) -> bool:
    """Whether the pair-packed path (`model/pair_packing.py`) applies: a causal decoder read at each answer's
    last token, whose packed h is the h of reading each side alone."""
    return backbone.is_decoder and backbone.pooling == "last"


# Padded tokens per packed forward: 16 rows of 512 on a CPU; the attention mask costs length² booleans a row.
PACKED_BATCH_TOKENS = 8192
# The answer block is read this deep into the decoder: on HH-RLHF harmless (SmolLM2, 256 tokens, 10% injected
# flips, out-of-fold linear BT) the answer's mean state after block 20 of 30 found the flips at AUROC 0.731,
# after block 15 0.725, the final layer's 0.716, and the last token's final state 0.694. Middle layers of a
# language model hold more linearly readable content than the last, which is shaped for predicting a token.
ANSWER_DEPTH = 2 / 3


def answer_layer(backbone: Backbone) -> int:
    """Index into the model's hidden states (0: embeddings, i: after block i) that the answer block reads."""
    return max(1, round(ANSWER_DEPTH * backbone.num_layers))


@torch.no_grad()
def packed_representations(backbone: Backbone, pairs: pd.DataFrame, max_length: int,
                           batch_tokens: int = PACKED_BATCH_TOKENS, progress: ProgressFn | None = None
                           ) -> tuple[dict[str, torch.Tensor], int]:
    """({"chosen", "rejected": the last token's final state h; "answer_chosen", "answer_rejected": the mean state
    of the answer's own tokens at `answer_layer`}, pairs truncated) for a causal decoder, both answers of a pair
    in one row after their shared prompt (`model/pair_packing.py`), rows length-sorted into batches of
    `batch_tokens`. An answer's own tokens are those after the prefix it shares with the other answer."""
    from normbt_viz.model.pair_packing import CHOSEN, REJECTED, length_sorted_batches, pack_pair, packed_batch

    special_ids = set(backbone.tokenizer.all_special_ids)
    messages = pairs["prompt_messages"] if "prompt_messages" in pairs else [""] * len(pairs)
    rows, n_truncated = [], 0
    for prompt, chosen_text, rejected_text, prompt_messages in zip(pairs["prompt"], pairs["chosen"], pairs["rejected"], messages):
        row, cut = pack_pair(encode_response(backbone, prompt, chosen_text, prompt_messages).input_ids,
                             encode_response(backbone, prompt, rejected_text, prompt_messages).input_ids,
                             max_length, special_ids)
        rows.append(row)
        n_truncated += int(cut)
    n, width = len(rows), backbone.hidden_size
    out = {name: torch.empty((n, width), dtype=torch.float32)
           for name in ("chosen", "rejected", "answer_chosen", "answer_rejected")}
    layer, done = answer_layer(backbone), 0
    for index in length_sorted_batches(rows, batch_tokens):
        batch = packed_batch([rows[i] for i in index], backbone.tokenizer.pad_token_id)
        result = backbone.model(input_ids=batch["input_ids"].to(backbone.device),
                                attention_mask=batch["attention_mask"].to(backbone.device),
                                position_ids=batch["position_ids"].to(backbone.device), output_hidden_states=True)
        final, middle = result.last_hidden_state, result.hidden_states[layer]
        at = torch.arange(len(index), device=final.device)
        out["chosen"][index] = final[at, batch["last_chosen"].to(final.device)].float().cpu()
        out["rejected"][index] = final[at, batch["last_rejected"].to(final.device)].float().cpu()
        for side, code in (("chosen", CHOSEN), ("rejected", REJECTED)):  # each answer's own span, as 0/1 weights
            weight = (batch["segment"] == code).to(middle.device, torch.float32)
            mean = (middle.float() * weight[..., None]).sum(1) / weight.sum(1, keepdim=True).clamp_min(1.0)
            out[f"answer_{side}"][index] = mean.cpu()
        done += len(index)
        if progress:
            progress(done, n)
    return out, n_truncated


ChunkProgressFn = Callable[[int, int, bool | None], None]  # hit None: a batch inside a chunk being computed


def cached_chunks(pairs: pd.DataFrame, chunk_size: int, key: Callable[[pd.DataFrame], str],
                  compute: Callable[[pd.DataFrame, ProgressFn | None], dict[str, torch.Tensor]],
                  progress: ChunkProgressFn | None) -> tuple[dict[str, torch.Tensor], int]:
    """Per-pair tensors {name: [n, ...]} for any number of pairs, computed in chunks of `chunk_size` pairs that
    are each cached on disk (at `key(chunk)`) as soon as they are done, in the canonical answer order: names
    ending in "chosen"/"rejected" are exchanged where `answer_order_swapped`. Returns them and the chunks found."""
    n, parts, hits = len(pairs), [], 0
    for start in range(0, n, chunk_size):
        chunk = pairs.iloc[start : start + chunk_size]
        path = cache_root() / "features" / f"{key(chunk)}.safetensors"
        swapped = answer_order_swapped(chunk)
        hit = path.is_file()
        if hit:
            tensors = _exchange_sides(load_file(str(path)), swapped)
        else:
            # Progress per batch inside the chunk too: a cold chunk of 2,048 pairs takes minutes on a CPU.
            within = (lambda done, total, start=start, size=len(chunk): progress(start + done * size // total, n, None)
                      ) if progress else None
            tensors = compute(chunk, within)
            _atomic_save(_exchange_sides(tensors, swapped), path)
        parts.append(tensors)
        hits += int(hit)
        if progress:
            progress(start + len(chunk), n, hit)
    if not parts:
        return {}, 0
    return {name: torch.cat([part[name] for part in parts]) for name in parts[0]}, hits


def _exchange_sides(tensors: dict[str, torch.Tensor], swapped: np.ndarray) -> dict[str, torch.Tensor]:
    """Swap each chosen/rejected-named pair of tensors' rows where `swapped` (to and from the canonical order)."""
    out = dict(tensors)
    for name in tensors:
        if name.endswith("chosen"):
            other = name[: -len("chosen")] + "rejected"
            out[name], out[other] = _swap_rows(tensors[name], tensors[other], swapped)
    return out


def chunked_representations(
    backbone: Backbone,
    pairs: pd.DataFrame,
    max_length: int,
    chunk_size: int = 2048,
    batch_size: int = 32,
    progress: ChunkProgressFn | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(h_chosen, h_rejected, chunks found in the cache) for any number of pairs, featurised in chunks of
    `chunk_size` pairs that are each cached on disk as soon as they are done.

    Each chunk is keyed by its own content, so an interrupted run (Ctrl-C, a killed worker) loses at most
    the chunk in progress and the next run continues where it stopped; tokenization, too, happens per
    chunk and only for chunks not yet cached, so memory stays bounded by one chunk's token ids plus the
    pooled features. `progress(pairs_done, total_pairs, from_cache)` is called after every chunk, and with
    from_cache None after every batch of a chunk being computed."""
    def compute(chunk, within):
        tokenized = tokenize_pairs(backbone, chunk, max_length)
        both = compute_representations(backbone, tokenized.chosen + tokenized.rejected, batch_size, within)
        return {"chosen": both[: len(chunk)], "rejected": both[len(chunk) :]}

    tensors, hits = cached_chunks(pairs, chunk_size, lambda chunk: cache_key(backbone, chunk, max_length, "pooled"), compute, progress)
    if not tensors:
        empty = torch.empty((0, backbone.hidden_size))
        return empty, empty.clone(), 0
    return tensors["chosen"], tensors["rejected"], hits


def chunked_packed_features(backbone: Backbone, pairs: pd.DataFrame, max_length: int, chunk_size: int = 2048,
                            progress: ChunkProgressFn | None = None) -> tuple[dict[str, torch.Tensor], int]:
    """`packed_representations` for any number of pairs, in chunks cached on disk like `chunked_representations`
    (a packed chunk is keyed apart from a separately read one, as its truncation differs)."""
    if not packs_prompt(backbone):
        raise ValueError(f"{backbone.name}: packed features need a decoder read at its last token")
    key = lambda chunk: cache_key(backbone, chunk, max_length, f"packed-answer{answer_layer(backbone)}")  # noqa: E731
    return cached_chunks(pairs, chunk_size, key, lambda chunk, within: packed_representations(backbone, chunk, max_length, progress=within)[0],
                    progress)
