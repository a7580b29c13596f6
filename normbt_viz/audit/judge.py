"""A judge for the audit: any sequence-classification reward model (a local folder, a hub id, or the
`model/sequence_classification` folder this project exports from a decoder run) scoring both answers of every
pair. Its score gap r(chosen) - r(rejected) is antisymmetric like h_c - h_r, so it enters the out-of-fold model
as one more pair feature (the combination: the fit learns how far to trust it on this dataset) and is also
scored alone in the self-check, so a practitioner with a good reward model sees what it adds.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd
import torch

from normbt_viz.model.features import join_prompt_response


def judge_margins(model_id: str, pairs: pd.DataFrame, max_length: int, batch_size: int = 16,
                  progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """r(chosen) - r(rejected) per pair from the reward model at `model_id` (first logit). Each answer is read
    after its prompt, as plain text, cut from the start so the answer's end survives `max_length`."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_id)
    tokenizer.truncation_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(model_id).eval()
    model.config.pad_token_id = tokenizer.pad_token_id
    texts = [join_prompt_response(p, a) for p, a in zip(pairs["prompt"], pairs["chosen"])]
    texts += [join_prompt_response(p, a) for p, a in zip(pairs["prompt"], pairs["rejected"])]
    order = np.argsort([len(t) for t in texts], kind="stable")  # length-sorted batches pad least
    rewards = np.zeros(len(texts))
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            index = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in index], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt")
            rewards[index] = model(**batch).logits[:, 0].double().numpy()
            if progress:
                progress(min(start + batch_size, len(texts)) // 2, len(pairs))
    return rewards[: len(pairs)] - rewards[len(pairs) :]
