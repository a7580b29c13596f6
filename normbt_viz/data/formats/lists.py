"""Rows that hold several answers and so give several pairs: a ranking (LLaMA-Factory's `output`, best
first), and lists of answer variants in chosen and rejected (RM-Bench's three styles, RewardBench 2's one
chosen against several rejected).

Which pairs: a ranking gives best vs each other answer by default (`ranking_pairs`: `adjacent` for 1-2, 2-3, ...,
`all` for every i < j up to MAX_RANKING_PAIRS per row). Variant lists of equal length pair by position by
default (the same style on both sides, as RM-Bench's diagonal), `variant_pairs: all` for every combination; lists
of different lengths (RewardBench 2) pair each chosen with each rejected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

from normbt_viz.data.formats.common import is_missing, plain
from normbt_viz.data.formats.mapping import MAX_RANKING_PAIRS
from normbt_viz.data.formats.messages import literal_value

_RANKING_WORDS = {"best": "best vs each other answer", "adjacent": "each answer vs the next one down",
                  "all": f"every higher vs lower answer (at most {MAX_RANKING_PAIRS} per row)"}


def text_list(value) -> list | None:
    """The texts of a list of answers (parsed from text in CSV exports), or None when `value` is not one."""
    value = literal_value(value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(plain(v), str) for v in value):
        return [plain(v) for v in value]
    return None


def ranking_positions(n: int, how: str) -> list[tuple[int, int]]:
    """(better, worse) positions of a ranking of n answers, best first."""
    if how == "adjacent":
        return [(i, i + 1) for i in range(n - 1)]
    if how == "all":
        return list(combinations(range(n), 2))[:MAX_RANKING_PAIRS]
    return [(0, j) for j in range(1, n)]


def variant_positions(n_chosen: int, n_rejected: int, how: str) -> list[tuple[int, int]]:
    if n_chosen == n_rejected and how != "all":
        return [(i, i) for i in range(n_chosen)]
    return [(i, j) for i in range(n_chosen) for j in range(n_rejected)]


@dataclass
class Expanded:
    """Several pairs per source row: for each pair its row, its position in the row, and the values."""

    rows: list = field(default_factory=list)
    subs: list = field(default_factory=list)
    chosen: list = field(default_factory=list)
    rejected: list = field(default_factory=list)
    short_rows: list = field(default_factory=list)  # rows with fewer than two answers (no pair)

    def add(self, row: int, sub: int, chosen, rejected) -> None:
        self.rows.append(row)
        self.subs.append(sub)
        self.chosen.append(chosen)
        self.rejected.append(rejected)


def expand_ranking(rows: list[int], ranked: list, how: str) -> tuple[Expanded, str]:
    out = Expanded()
    for row, value in zip(rows, ranked):
        answers = text_list(value) if not is_missing(value) else None
        if not answers or len(answers) < 2:
            out.short_rows.append(row)
            continue
        for sub, (better, worse) in enumerate(ranking_positions(len(answers), how)):
            out.add(row, sub, answers[better], answers[worse])
    return out, f"a ranking, best first: pairs are {_RANKING_WORDS[how]} (ranking_pairs: {how})"


def expand_variants(rows: list[int], chosen: list, rejected: list, how: str) -> tuple[Expanded, str]:
    out = Expanded()
    shapes = set()
    for row, chosen_value, rejected_value in zip(rows, chosen, rejected):
        chosen_list, rejected_list = text_list(chosen_value), text_list(rejected_value)
        if chosen_list is None or rejected_list is None:
            out.add(row, 0, chosen_value, rejected_value)  # not lists: converted (and refused) as a single pair
            continue
        positions = variant_positions(len(chosen_list), len(rejected_list), how)
        shapes.add("matched" if len(chosen_list) == len(rejected_list) and how != "all" else "all")
        for sub, (i, j) in enumerate(positions):
            out.add(row, sub, chosen_list[i], rejected_list[j])
    words = []
    if "matched" in shapes:
        words.append("lists of equal length pair by position (the same style on both sides; variant_pairs: all for every combination)")
    if "all" in shapes:
        words.append("each chosen answer against each rejected one")
    return out, "answers given as lists of variants: " + "; ".join(words)
