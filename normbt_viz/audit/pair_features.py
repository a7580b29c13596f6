"""Cheap pair features that sit beside the representation difference in the audit's out-of-fold model.

Why: on real human-labelled data a frozen encoder's h_c - h_r learns less about the raters' preference than
plain answer length does (HH-RLHF harmless: raters prefer the shorter answer in 56% of pairs; other sets prefer
the longer one), so the audit would be beaten by a one-line length rule. With these columns beside h the model
learns whatever share of the preference length, refusals or the data's own scores explain, on this dataset, in
either direction.

Every feature is antisymmetric (a value for the chosen answer minus the same value for the rejected one, or a
log ratio), like h_c - h_r: swapping a pair's answers negates its row, so the bias-free linear BT model stays a
model of "which answer is better" and a flipped label is simply a negated row.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from normbt_viz.audit.scoring import empty_looking, word_count

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# Phrases that open a refusal or a deflection in assistant answers (HH-RLHF, UltraFeedback, Arena); lower case.
_REFUSAL = re.compile(
    r"\b(i'?m sorry|i am sorry|i apologi[sz]e|i can(?:no|')t|i cannot|i won'?t|i will not|i'?m not able|"
    r"i am not able|i'?m unable|i am unable|as an ai|i don'?t think (?:i|that)|i'?m not sure|i don'?t know|"
    r"i do not know|not comfortable|can'?t help|cannot help|it'?s not appropriate|is not appropriate|"
    r"i would not|i wouldn'?t recommend|that'?s illegal|is illegal)\b")

PAIR_FEATURES: dict[str, str] = {
    "log_words_ratio": "log((words in chosen + 1) / (words in rejected + 1))",
    "log_tokens_ratio": "log((backbone tokens in chosen + 1) / (tokens in rejected + 1))",
    "novel_words_diff": "share of the chosen answer's words absent from the rejected one, minus the reverse "
                        "(1 - lexical overlap, per side)",
    "prompt_overlap_diff": "share of the chosen answer's words found in the prompt, minus the same for rejected",
    "refusal_diff": "chosen opens with a refusal or deflection (1/0) minus the same for rejected",
    "empty_diff": "chosen looks empty or a placeholder (1/0) minus the same for rejected",
    "score_diff": "the data's own chosen score minus rejected score (when the source has score columns)",
}


def _word_sets(texts: pd.Series) -> list[set[str]]:
    return [set(_WORD.findall(text.lower())) for text in texts]


def _share_in(words: list[set[str]], others: list[set[str]]) -> np.ndarray:
    return np.array([len(w & o) / len(w) if w else 0.0 for w, o in zip(words, others)])


def refusal_marker(texts: pd.Series) -> np.ndarray:
    """1.0 where an answer's first 200 characters hold a refusal or deflection phrase."""
    return np.array([1.0 if _REFUSAL.search(text[:200].lower()) else 0.0 for text in texts])


def answer_token_counts(tokenizer, texts: pd.Series) -> np.ndarray:
    """Tokens per answer for the backbone's tokenizer (no special tokens, untruncated)."""
    return np.array([len(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]], dtype=np.int64)


def pair_feature_frame(pairs: pd.DataFrame, tokens_chosen: np.ndarray | None = None,
                       tokens_rejected: np.ndarray | None = None) -> pd.DataFrame:
    """One row per pair, one antisymmetric column per entry of PAIR_FEATURES that the data supports: the token
    ratio needs token counts, the score difference needs `score_chosen`/`score_rejected` columns. Columns that
    are constant over the data (no refusals anywhere, say) are dropped: they carry nothing to fit."""
    words_c, words_r = word_count(pairs["chosen"]), word_count(pairs["rejected"])
    sets_c, sets_r = _word_sets(pairs["chosen"]), _word_sets(pairs["rejected"])
    sets_p = _word_sets(pairs["prompt"])
    columns = {"log_words_ratio": np.log1p(words_c) - np.log1p(words_r)}
    if tokens_chosen is not None and tokens_rejected is not None:
        columns["log_tokens_ratio"] = np.log1p(tokens_chosen) - np.log1p(tokens_rejected)
    columns["novel_words_diff"] = (1 - _share_in(sets_c, sets_r)) - (1 - _share_in(sets_r, sets_c))
    columns["prompt_overlap_diff"] = _share_in(sets_c, [sets_p[i] for i in range(len(pairs))]) - _share_in(sets_r, sets_p)
    columns["refusal_diff"] = refusal_marker(pairs["chosen"]) - refusal_marker(pairs["rejected"])
    columns["empty_diff"] = empty_looking(pairs["chosen"]).astype(float) - empty_looking(pairs["rejected"]).astype(float)
    if {"score_chosen", "score_rejected"} <= set(pairs.columns):
        gap = pd.to_numeric(pairs["score_chosen"], errors="coerce") - pd.to_numeric(pairs["score_rejected"], errors="coerce")
        columns["score_diff"] = gap.fillna(0.0).to_numpy(dtype=float)
    frame = pd.DataFrame(columns, index=pairs.index)
    return frame.loc[:, frame.std(ddof=0) > 0]
