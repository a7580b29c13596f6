"""A judge for the audit: any sequence-classification reward model (a local folder, a hub id, or the
`model/sequence_classification` folder this project exports from a decoder run) scoring both answers of every
pair. Its score gap r(chosen) - r(rejected) is antisymmetric like h_c - h_r, so it enters the out-of-fold model
as one more pair feature (the combination: the fit learns how far to trust it on this dataset) and is also
scored alone in the self-check, so a practitioner with a good reward model sees what it adds.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from normbt_viz.model.features import cached_chunks, canonical_pairs, content_fingerprint, join_prompt_response


def _model_fingerprint(model_id: str) -> str:
    """A local folder by its files' names, sizes and times (a re-export is another judge); a hub id by its name."""
    folder = Path(model_id).expanduser()
    if not folder.is_dir():
        return model_id
    return json.dumps(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in folder.iterdir() if f.is_file()))


def judge_margins(model_id: str, pairs: pd.DataFrame, max_length: int, batch_size: int = 16,
                  progress: Callable[[int, int], None] | None = None, device: str = "cpu",
                  dtype: str = "float32", chunk_size: int = 2048) -> tuple[np.ndarray, bool]:
    """(r(chosen) - r(rejected) per pair from the reward model at `model_id` (first logit), whether every chunk
    came from the cache). Each answer is read after its prompt, as plain text, cut from the start so the answer's
    end survives `max_length`. Each answer's reward is cached in chunks like the backbone's features
    (`model.features.cached_chunks`): an interrupted audit resumes, and a rerun or the self-check's flipped copy
    scores nothing again."""
    judge = _model_fingerprint(model_id)
    loaded: list = []  # the model and tokenizer, loaded at the first chunk that is not cached

    def key(chunk: pd.DataFrame) -> str:
        description = {"judge": judge, "pairs": content_fingerprint(canonical_pairs(chunk)), "max_length": max_length,
                       "dtype": dtype, "what": "judge rewards"}
        return hashlib.sha256(json.dumps(description, sort_keys=True).encode()).hexdigest()[:24]

    def compute(chunk: pd.DataFrame, within) -> dict[str, torch.Tensor]:
        if not loaded:
            loaded.extend(_load(model_id, device, dtype))
        rewards = _rewards(*loaded, chunk, max_length, batch_size, within, device)
        return {"chosen": rewards[: len(chunk)], "rejected": rewards[len(chunk) :]}

    chunk_progress = (lambda done, total, _hit: progress(done, total)) if progress else None
    tensors, hits = cached_chunks(pairs, chunk_size, key, compute, chunk_progress)
    if not tensors:
        return np.zeros(0), True
    return (tensors["chosen"] - tensors["rejected"]).numpy(), hits == math.ceil(len(pairs) / chunk_size)


def _load(model_id: str, device: str, dtype: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_id)
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # In the audit's dtype (bf16 where the device has native kernels: 2.5x faster on this CPU, see inference_dtype).
    model = AutoModelForSequenceClassification.from_pretrained(model_id, dtype=getattr(torch, dtype)).to(device).eval()
    model.config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def _rewards(model, tokenizer, pairs: pd.DataFrame, max_length: int, batch_size: int,
             progress: Callable[[int, int], None] | None, device: str) -> torch.Tensor:
    """Each answer's reward, the chosen answers' first, then the rejected ones', in float64."""
    texts = [join_prompt_response(p, a) for p, a in zip(pairs["prompt"], pairs["chosen"])]
    texts += [join_prompt_response(p, a) for p, a in zip(pairs["prompt"], pairs["rejected"])]
    order = np.argsort([len(t) for t in texts], kind="stable")  # length-sorted batches pad least
    rewards = torch.zeros(len(texts), dtype=torch.float64)
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in index], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt").to(device)
            rewards[torch.from_numpy(index)] = model(**batch).logits[:, 0].double().cpu()
            if progress:
                progress(min(start + batch_size, len(texts)) // 2, len(pairs))
    return rewards
