"""Pairs of plain text: an explicit prompt column beside chosen and rejected, or whole transcripts
(HH-RLHF's "\\n\\nHuman: ... \\n\\nAssistant: ...") whose shared start is the prompt."""

from __future__ import annotations

import math

import pandas as pd

from normbt_viz.data.formats.common import plain, show
from normbt_viz.data.formats.mapping import Unreachable
from normbt_viz.errors import DataError

HH_ASSISTANT_MARKER = "\n\nAssistant:"


def text(value, where: str) -> str:
    value = plain(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Unreachable):
        raise DataError(f"{where}: {value.reason}")
    if isinstance(value, float) and math.isnan(value):
        raise DataError(f"{where}: NaN or missing (expected text)")
    if value is None or value is pd.NA:
        raise DataError(f"{where}: expected text, got None")
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        raise DataError(f"{where}: a list of {len(value)} texts where one answer was expected; map the layout with "
                        "--column-mapping (ranked for a ranking, or chosen/rejected lists with variant_pairs)")
    if isinstance(value, dict):
        field = next((k for k, v in value.items() if isinstance(v, str)), "<field>")
        raise DataError(f"{where}: expected text, got dict {show(value)}; read one of its fields with a dotted "
                        f"path in --column-mapping, e.g. <column>.{field}")
    raise DataError(f"{where}: expected text, got {type(value).__name__} {show(value)}")


def prompt_text(value, where: str) -> str:
    """A prompt's text; a null prompt is an empty prompt (a null answer stays an error)."""
    value = plain(value)
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return text(value, where)


def check_response(answer: str, where: str, context: str = "") -> None:
    if not answer.strip():
        raise DataError(f"{where}: empty or whitespace-only response{context}")


def split_implicit_prompt(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two full transcripts into (prompt, chosen, rejected) at the end of their common prefix, cut
    back to a turn boundary: the last "\\n\\nAssistant:" marker (kept in the prompt) in HH-RLHF-style
    text, else the last whitespace so no word is split. Responses lose leading whitespace only."""
    common = chosen[:common_prefix_length(chosen, rejected)]
    marker = common.rfind(HH_ASSISTANT_MARKER)
    if marker >= 0:
        cut = marker + len(HH_ASSISTANT_MARKER)
    else:
        cut = next((i for i in range(len(common) - 1, -1, -1) if common[i].isspace()), 0)
    return chosen[:cut], chosen[cut:].lstrip(), rejected[cut:].lstrip()


def common_prefix_length(first: str, second: str) -> int:
    """Binary search over slice comparisons: C-speed string compares instead of a per-character loop,
    which matters for 100k+ long transcripts."""
    low, high = 0, min(len(first), len(second))
    while low < high:
        middle = (low + high + 1) // 2
        if first[:middle] == second[:middle]:
            low = middle
        else:
            high = middle - 1
    return low
