"""Token lengths of a dataset's pairs with a backbone's tokenizer alone (no weights loaded): how many pairs
each max length would truncate, and a max length that covers 95% of the pairs, capped by the backbone's limit.

Pairs are measured exactly as training encodes them (`encode_response`), so the counts match what a run with
that max length reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pandas as pd

from normbt_viz.errors import BackboneError, first_line
from normbt_viz.model.backbones import is_decoder_config, resolve_backbone
from normbt_viz.model.features import encode_response

COVERED_SHARE = 0.95
SURVEYED_LENGTHS = (64, 128, 256, 512, 1024)


@dataclass
class LengthSurvey:
    pair_lengths: np.ndarray  # per pair, the token count of its longer sequence (prompt + answer)
    backbone_limit: int  # the backbone's maximum positions

    @property
    def suggested(self) -> int:
        """The 95th percentile of pair lengths rounded up to a multiple of 8, within [8, the backbone's limit]."""
        if len(self.pair_lengths) == 0:
            return min(128, self.backbone_limit)
        covered = float(np.quantile(self.pair_lengths, COVERED_SHARE))
        return int(min(self.backbone_limit, max(8, 8 * math.ceil(covered / 8))))

    def truncated_at(self, max_length: int) -> int:
        return int((self.pair_lengths > max_length).sum())

    def table(self) -> pd.DataFrame:
        """Pairs truncated at a few max lengths (those within the backbone's limit) and at the suggestion."""
        lengths = sorted({n for n in SURVEYED_LENGTHS if n <= self.backbone_limit} | {self.suggested})
        return pd.DataFrame({"max_length": lengths, "pairs_truncated": [self.truncated_at(n) for n in lengths],
                             "share_truncated": [self.truncated_at(n) / max(1, len(self.pair_lengths)) for n in lengths]})

    def line(self) -> str:
        counts = ", ".join(f"{row.max_length}: {row.pairs_truncated}" for row in self.table().itertuples())
        return (f"lengths: median {int(np.median(self.pair_lengths)) if len(self.pair_lengths) else 0} tokens, 95th "
                f"percentile {int(np.quantile(self.pair_lengths, COVERED_SHARE)) if len(self.pair_lengths) else 0}; pairs "
                f"truncated per max length: {counts}; suggested --max-length {self.suggested} (the backbone allows "
                f"{self.backbone_limit})")


def _tokenizer_reader(backbone: str, trust_remote_code: bool) -> tuple[SimpleNamespace, object]:
    """The backbone's tokenizer, wrapped as `encode_response` reads it, and its config; no weights are loaded.
    The tokenizer's own limit is kept as `model_max_length` and lifted on the tokenizer itself: this measures,
    it does not feed a model, so no "longer than the maximum" warnings."""
    from transformers import AutoConfig, AutoTokenizer

    path = resolve_backbone(backbone)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as exc:  # the hub client raises many types; the user needs one line
        raise BackboneError(f"cannot load the tokenizer of backbone {backbone!r}: {first_line(exc)}") from exc
    model_max_length = getattr(tokenizer, "model_max_length", None)
    tokenizer.model_max_length = 1 << 30
    return SimpleNamespace(tokenizer=tokenizer, is_decoder=is_decoder_config(config), model_max_length=model_max_length), config


def survey_lengths(pairs: pd.DataFrame, backbone: str, trust_remote_code: bool = False) -> LengthSurvey:
    reader, config = _tokenizer_reader(backbone, trust_remote_code)
    limit = int(getattr(config, "max_position_embeddings", None) or reader.model_max_length or 512)
    limit = min(limit, 1 << 16)
    messages = pairs["prompt_messages"] if "prompt_messages" in pairs else [""] * len(pairs)
    lengths = [max(len(encode_response(reader, prompt, chosen, prompt_json).input_ids),
                   len(encode_response(reader, prompt, rejected, prompt_json).input_ids))
               for prompt, chosen, rejected, prompt_json in zip(pairs["prompt"], pairs["chosen"], pairs["rejected"], messages)]
    return LengthSurvey(np.asarray(lengths, dtype=np.int64), limit)


def every_input_identical(pairs: pd.DataFrame, backbone: str, max_length: int, trust_remote_code: bool = False) -> bool:
    """Whether every pair's chosen and rejected inputs are the same tokens for this backbone's tokenizer (after
    truncation to max_length, as training reads them): then no model on it can rank a single pair. Stops at the
    first pair that differs, so the usual answer costs one tokenization."""
    from normbt_viz.model.features import truncate_from_start

    texts_differ = (pairs["chosen"] != pairs["rejected"]).to_numpy()
    reader, _ = _tokenizer_reader(backbone, trust_remote_code)
    special = set(reader.tokenizer.all_special_ids)
    messages = pairs["prompt_messages"] if "prompt_messages" in pairs else [""] * len(pairs)
    # Pairs whose texts differ come first: one of them almost always tokenizes differently.
    order = np.argsort(~texts_differ, kind="stable")
    for position in order:
        row = pairs.iloc[int(position)]
        prompt_json = messages.iloc[int(position)] if hasattr(messages, "iloc") else ""
        chosen, _ = truncate_from_start(encode_response(reader, row["prompt"], row["chosen"], prompt_json), max_length, special)
        rejected, _ = truncate_from_start(encode_response(reader, row["prompt"], row["rejected"], prompt_json), max_length, special)
        if chosen.input_ids != rejected.input_ids:
            return False
    return True
