"""A judge for the audit: any sequence-classification reward model (a local folder, a hub id, or the
`model/sequence_classification` folder this project exports from a decoder run) scoring both answers of every
pair. Its score gap r(chosen) - r(rejected) is antisymmetric like h_c - h_r, so it enters the out-of-fold model
as one more pair feature (the combination: the fit learns how far to trust it on this dataset) and is also
scored alone in the self-check, so a practitioner with a good reward model sees what it adds.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from normbt_viz.atomic import atomic_write
from normbt_viz.model.backbones import cache_root
from normbt_viz.model.features import answer_order_swapped, canonical_pairs, content_fingerprint, join_prompt_response


def _model_fingerprint(model_id: str) -> str:
    """A local folder by its files' names, sizes and times (a re-export is another judge); a hub id by its name."""
    folder = Path(model_id).expanduser()
    if not folder.is_dir():
        return model_id
    return json.dumps(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in folder.iterdir() if f.is_file()))


def judge_margins(model_id: str, pairs: pd.DataFrame, max_length: int, batch_size: int = 16,
                  progress: Callable[[int, int], None] | None = None, device: str = "cpu",
                  dtype: str = "float32") -> tuple[np.ndarray, bool]:
    """(r(chosen) - r(rejected) per pair from the reward model at `model_id` (first logit), whether they came
    from the cache). Each answer is read after its prompt, as plain text, cut from the start so the answer's end
    survives `max_length`. The margins are cached on disk like the backbone's features, in the canonical answer
    order, so the self-check's flipped copy and a rerun score nothing again."""
    swapped = answer_order_swapped(pairs)
    sign = np.where(swapped, -1.0, 1.0)
    key = hashlib.sha256(json.dumps({"judge": _model_fingerprint(model_id), "pairs": content_fingerprint(canonical_pairs(pairs)),
                                     "max_length": max_length, "dtype": dtype}, sort_keys=True).encode()).hexdigest()[:24]
    path = cache_root() / "judge" / f"{key}.safetensors"
    if path.is_file():
        return load_file(str(path))["margins"].numpy() * sign, True
    margins = _score(model_id, pairs, max_length, batch_size, progress, device, dtype)
    atomic_write(path, lambda tmp: save_file({"margins": torch.from_numpy(margins * sign)}, str(tmp)))
    return margins, False


def _score(model_id: str, pairs: pd.DataFrame, max_length: int, batch_size: int,
           progress: Callable[[int, int], None] | None, device: str, dtype: str) -> np.ndarray:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_id)
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    # In the audit's dtype (bf16 where the device has native kernels: 2.5x faster on this CPU, see inference_dtype).
    model = AutoModelForSequenceClassification.from_pretrained(model_id, dtype=getattr(torch, dtype)).to(device).eval()
    model.config.pad_token_id = tokenizer.pad_token_id
    texts = [join_prompt_response(p, a) for p, a in zip(pairs["prompt"], pairs["chosen"])]
    texts += [join_prompt_response(p, a) for p, a in zip(pairs["prompt"], pairs["rejected"])]
    order = np.argsort([len(t) for t in texts], kind="stable")  # length-sorted batches pad least
    rewards = np.zeros(len(texts))
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in index], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt").to(device)
            rewards[index] = model(**batch).logits[:, 0].double().cpu().numpy()
            if progress:
                progress(min(start + batch_size, len(texts)) // 2, len(pairs))
    return rewards[: len(pairs)] - rewards[len(pairs) :]
