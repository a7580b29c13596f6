"""The column-mapping language: which source column (or nested field) plays which role, and how columns
are recognised when no mapping names them.

A role's value is a column name, or a dotted path into a nested value: `chosen.answer` reads the `answer`
field of each row's `chosen` object, `metadata.score_chosen` a score one level down, `output.0` (or
`output[0]`) the first item of a list. A cell holding a JSON or Python literal as text (CSV exports) is parsed
first. `None` means auto-detect; the empty string `""` means "this dataset has no such column" (for example
`pair_id=""` to ignore an id column and generate ids instead).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import pandas as pd

from normbt_viz.data.formats.common import Origin, columns_text, is_missing, parse_literal, plain, show
from normbt_viz.errors import DataError, SpecError

RANKING_PAIRS = ("best", "adjacent", "all")
VARIANT_PAIRS = ("matched", "all")
# Every pair i < j of a ranking grows quadratically; a 10-answer ranking gives 45, which is where we stop.
MAX_RANKING_PAIRS = 45

# What each mapping key means: `--help`, the spec field's help and "unknown key" errors all come from here.
MAPPING_KEYS = {
    "prompt": "column of the prompt: text, or a message list (leave out for whole transcripts in chosen/rejected)",
    "chosen": "column of the preferred answer: text, a message list, or a list of answer variants",
    "rejected": "column of the other answer, in the same shape as chosen",
    "category": "column that groups pairs (reports and the eval split are per category)",
    "margin": "column of a number saying how much better chosen is (the bt_margin loss reads it)",
    "pair_id": "column of unique row ids ('' generates ids from the texts); 'id' is accepted as this key",
    "score_chosen": "column of chosen's score: equal scores are ties (dropped), the gap is the margin",
    "score_rejected": "column of rejected's score",
    "response_a": "judgments: column of the first answer",
    "response_b": "judgments: column of the second answer",
    "winner": "judgments: column of the verdict (give a_wins/b_wins unless the layout is recognised)",
    "a_wins": "judgments: the verdict value(s) meaning response_a won, or '<0' / '>0' for a signed strength",
    "b_wins": "judgments: the verdict value(s) meaning response_b won",
    "tie": "judgments: the verdict value(s) meaning a tie (dropped and counted)",
    "rating_a": "judgments: column of response_a's rating (the higher rating wins; equal ratings are ties)",
    "rating_b": "judgments: column of response_b's rating",
    "turn": "judgments of conversations: column saying which turn (1-based) was judged; later turns are cut",
    "ranked": "column of a list of answers, best first (a ranking: several pairs per row)",
    "ranking_pairs": f"which pairs a ranking gives: best (best vs each, default), adjacent, or all (i < j, at most {MAX_RANKING_PAIRS} per row)",
    "variant_pairs": "lists of answer variants in chosen and rejected: matched (same position, default when the lengths agree) or all",
}
_VALUE_KEYS = ("a_wins", "b_wins", "tie")
_CHOICE_KEYS = {"ranking_pairs": RANKING_PAIRS, "variant_pairs": VARIANT_PAIRS}
_KEY_ALIASES = {"id": "pair_id"}

PROMPT_ALIASES = ("prompt", "question", "instruction", "conversation_input")
CHOSEN_ALIASES = ("chosen", "response_chosen", "chosen_response", "chosen_messages")
REJECTED_ALIASES = ("rejected", "reject", "response_rejected", "rejected_response", "rejected_messages")
SHAREGPT_PROMPT = "conversations"
CATEGORY_ALIASES = ("category", "subset", "domain", "category_path", "scenario")
MARGIN_ALIASES = ("margin",)
# "pair_id" first: when a table has both, it is the more specific name.
ID_ALIASES = ("pair_id", "id", "prompt_id", "pair_uid")
SCORE_ALIASES = (("score_chosen", "score_rejected"), ("chosen-rating", "rejected-rating"),
                 ("chosen_rating", "rejected_rating"), ("chosen_score", "rejected_score"))
# Fields that hold the answer when an answer is an object ({"llm_name": ..., "answer": ...}).
ANSWER_FIELDS = ("answer", "response", "output", "completion", "text")


@dataclass
class ColumnMapping:
    """Which source column plays which role (see MAPPING_KEYS). `None` = auto-detect; `""` = no such column."""

    prompt: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    category: str | None = None
    margin: str | None = None
    pair_id: str | None = None
    score_chosen: str | None = None
    score_rejected: str | None = None
    response_a: str | None = None
    response_b: str | None = None
    winner: str | None = None
    a_wins: str | int | float | list | None = None
    b_wins: str | int | float | list | None = None
    tie: str | int | float | list | None = None
    rating_a: str | None = None
    rating_b: str | None = None
    turn: str | None = None
    ranked: str | None = None
    ranking_pairs: str | None = None
    variant_pairs: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def given(self) -> dict:
        """Only the keys that are set: what a user would write."""
        return {key: value for key, value in self.to_dict().items() if value is not None}

    @property
    def is_judgment(self) -> bool:
        return bool(self.response_a and self.response_b)

    @classmethod
    def from_dict(cls, d) -> ColumnMapping:
        values = {}
        for key, value in dict(d).items():
            key = _KEY_ALIASES.get(key, key)
            if key not in MAPPING_KEYS:
                raise SpecError(f"column mapping: unknown key {key!r} (valid keys: {', '.join(MAPPING_KEYS)})")
            if key in _VALUE_KEYS:
                listed = value if isinstance(value, list) else [value]
                if value is not None and not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                                 for v in listed):
                    raise SpecError(f"column mapping: {key} must be a value or a list of values, got {show(value)}")
            elif key in _CHOICE_KEYS:
                if value is not None and value not in _CHOICE_KEYS[key]:
                    raise SpecError(f"column mapping: {key} must be one of {', '.join(_CHOICE_KEYS[key])}, got {show(value)}")
            elif value is not None and not isinstance(value, str):
                raise SpecError(f"column mapping: {key} must be a column name or None, got {show(value)}")
            values[key] = value
        return cls(**values)


def mapping_help() -> str:
    """One line per key, for --help and the spec field."""
    return "; ".join(f"{key}: {text}" for key, text in MAPPING_KEYS.items())


class Unreachable:
    """A dotted path that does not lead to a value in this row; converting it names what was missing."""

    def __init__(self, reason: str):
        self.reason = reason

    def __repr__(self) -> str:
        return f"<{self.reason}>"


_INDEX = re.compile(r"\[(\d+)\]")


def path_parts(path: str) -> list[str]:
    return [part for part in _INDEX.sub(r".\1", path).split(".") if part != ""]


def follow(value, parts: list[str]):
    """The value `parts` lead to inside `value` (objects by key, lists by position), parsing text literals
    on the way; an `Unreachable` naming the first step that fails."""
    for part in parts:
        value = plain(value)
        if isinstance(value, str):
            parsed = parse_literal(value)
            value = parsed if parsed is not None else value
        if isinstance(value, dict):
            if part not in value:
                return Unreachable(f"no {part!r} in {show(value)}")
            value = value[part]
        elif isinstance(value, (list, tuple)) and part.lstrip("-").isdigit():
            position = int(part)
            if not -len(value) <= position < len(value):
                return Unreachable(f"no item {position} in a list of {len(value)}")
            value = value[position]
        elif is_missing(value):
            return Unreachable(f"no {part!r}: the value is missing")
        else:
            return Unreachable(f"no {part!r} in {show(value)}")
    return plain(value)


def materialise_paths(raw: pd.DataFrame, mapping: ColumnMapping, origin: Origin) -> pd.DataFrame:
    """`raw` with a column for every mapped dotted path (named by the path), so the rest of the load reads
    nested fields like any column. A name that is a column as written stays a column."""
    columns = set(raw.columns)
    added = {}
    for key, value in mapping.to_dict().items():
        if key in _VALUE_KEYS or key in _CHOICE_KEYS or not value or value in columns or value in added:
            continue
        parts = path_parts(value)
        head = next((".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in columns), None)
        if head is None or len(parts) == 1:
            continue  # reported as a missing column by whoever needs it
        rest = parts[len(path_parts(head)):]
        added[value] = [follow(cell, rest) for cell in raw[head].tolist()]
    if not added:
        return raw
    return raw.assign(**{name: pd.Series(values, index=raw.index, dtype=object) for name, values in added.items()})


def check_mapped_columns(raw: pd.DataFrame, mapping: ColumnMapping, origin: Origin) -> None:
    """Every column a mapping names must exist (after dotted paths are read): never ignored silently."""
    for key, value in mapping.to_dict().items():
        if key in _VALUE_KEYS or key in _CHOICE_KEYS or not value:
            continue
        if value not in raw.columns:
            raise DataError(f"{origin.name}: mapped column {value!r} for {key} not found "
                            f"(found columns: {columns_text(raw.columns)})")


def resolve_mapping(raw: pd.DataFrame, given: ColumnMapping, origin: Origin) -> ColumnMapping:
    """The columns of a chosen/rejected layout: those the user named, else the first alias present."""
    columns = list(raw.columns)

    def pick(role: str, aliases: tuple[str, ...]) -> str | None:
        named = getattr(given, role)
        if named == "":
            return None
        if named is not None:
            return named
        present = [alias for alias in aliases if alias in columns]
        if len(present) > 1 and role in ("prompt", "chosen", "rejected"):
            raise DataError(f"{origin.name}: ambiguous columns for {role} ({columns_text(present)}); "
                            f"give a column mapping with {role} (--column-mapping, or the spec's column_mapping)")
        return present[0] if present else None

    chosen = pick("chosen", CHOSEN_ALIASES)
    rejected = pick("rejected", REJECTED_ALIASES)
    if chosen is None and rejected is None:
        raise DataError(unrecognised(raw, origin))
    for role, column in (("chosen", chosen), ("rejected", rejected)):
        if column is None:
            raise DataError(f"{origin.name}: missing column {role!r} (found columns: {columns_text(columns)})")
    if chosen == rejected:
        raise DataError(f"{origin.name}: column {chosen!r} is mapped to both chosen and rejected")
    prompt = pick("prompt", PROMPT_ALIASES)
    if prompt is None and given.prompt is None and SHAREGPT_PROMPT in columns:
        prompt = SHAREGPT_PROMPT
    score_chosen, score_rejected = given.score_chosen, given.score_rejected
    if score_chosen is None and score_rejected is None:
        score_chosen, score_rejected = next(((a, b) for a, b in SCORE_ALIASES if a in columns and b in columns),
                                            (None, None))
    return dataclasses.replace(
        given,
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        category=pick("category", CATEGORY_ALIASES),
        margin=pick("margin", MARGIN_ALIASES),
        pair_id=pick("pair_id", ID_ALIASES),
        score_chosen=score_chosen or None,
        score_rejected=score_rejected or None,
    )


_ANSWER_WORDS = ("response", "output", "answer", "completion", "conv", "conversation", "ref", "generation")
_VERDICT_WORDS = ("winner", "label", "labels", "preference", "choice", "verdict", "better", "preferred", "judgment")


def unrecognised(raw: pd.DataFrame, origin: Origin) -> str:
    """'Cannot recognise the format', with the columns seen and the mapping this shape most likely needs."""
    columns = [str(c) for c in raw.columns]
    answers = [c for c in columns if any(word in c.lower() for word in _ANSWER_WORDS)]
    verdicts = [c for c in columns if c.lower() in _VERDICT_WORDS or any(c.lower().startswith(w) for w in _VERDICT_WORDS)]
    listed = [c for c in columns if _is_text_list(first_value(raw[c]))]
    prompt = next((c for c in columns if c.lower() in ("prompt", "question", "instruction", "query", "input", "history")), None)
    proposal: dict = {}
    first, second = _sibling_pair(answers)
    if first and verdicts:
        proposal = {"response_a": first, "response_b": second, "winner": verdicts[0],
                    "a_wins": "<value>", "b_wins": "<value>"}
    elif first:
        proposal = {"chosen": first, "rejected": second}
    elif listed:
        proposal = {"ranked": listed[0], "ranking_pairs": "best"}
    if proposal and prompt:
        proposal = {"prompt": prompt, **proposal}
    text = f"{origin.name}: cannot recognise the format (columns: {columns_text(columns)}); "
    if proposal:
        import json

        text += f"this looks like {'judgments' if 'winner' in proposal else 'a ranking' if 'ranked' in proposal else 'pairs'}: try --column-mapping '{json.dumps(proposal)}'"
    else:
        text += 'map the roles with --column-mapping \'{"prompt": ..., "chosen": ..., "rejected": ...}\''
    return text + " (the spec's column_mapping field)"


_SIDE_MARKS = (("a", "b"), ("A", "B"), ("1", "2"), ("0", "1"), ("x", "y"))


def _sibling_pair(columns: list[str]) -> tuple[str | None, str | None]:
    """Two columns whose names differ only in a side mark (response_a / response_b, output_1 / output_2), so a
    proposed mapping never pairs conversation_a_x with conversation_a_y; else the first two."""
    for first in columns:
        for mark_a, mark_b in _SIDE_MARKS:
            for at in range(len(first)):
                if first[at] == mark_a and not (first[at - 1:at].isalnum() and first[at + 1:at + 2].isalnum()):
                    second = first[:at] + mark_b + first[at + 1:]
                    if second in columns:
                        return first, second
    return (columns[0], columns[1]) if len(columns) >= 2 else (None, None)


def first_value(column: pd.Series):
    for value in column.tolist():
        if not is_missing(value):
            value = plain(value)
            if isinstance(value, str):
                parsed = parse_literal(value)
                return parsed if parsed is not None else value
            return value
    return None


def _is_text_list(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) >= 2 and all(isinstance(v, str) for v in value)
