"""Judgments: two responses and a verdict (or two ratings) instead of chosen and rejected.

A verdict is placed on a side only by a recognised layout's documented convention, by text whose meaning is
unambiguous ("model_a", "B>A", "tie"), or by the values the user gave (`a_wins`, `b_wins`, `tie`). Numbers
mean different sides in different datasets (0/1/2 is "first, second, tie" in one and "tie, first, second" in
another), so a numeric verdict with no convention and no values stops the load with each value's count and the
mapping to write. Every placement is said in the load's note with counts per value.
"""

from __future__ import annotations

import dataclasses
import json
import numbers

import numpy as np
import pandas as pd

from normbt_viz.data.formats.common import Origin, columns_text, is_missing, plain, show
from normbt_viz.data.formats.messages import literal_value
from normbt_viz.data.formats.mapping import (
    CHOSEN_ALIASES, REJECTED_ALIASES, ColumnMapping, resolve_mapping,
)
from normbt_viz.errors import DataError


@dataclasses.dataclass(frozen=True)
class Convention:
    """A public judgment layout: the columns that identify it and the mapping (with verdict values) it implies."""

    name: str
    needs: tuple[str, ...]
    implies: dict
    other_verdicts: tuple[str, ...] = ()  # further verdict columns the layout documents with the same values


# Checked in order; the first whose columns are all present applies unless the user's mapping says otherwise.
CONVENTIONS = (
    Convention("AlpacaEval annotations", ("output_1", "output_2", "preference"),
               dict(response_a="output_1", response_b="output_2", winner="preference", a_wins=[1], b_wins=[2],
                    tie=[0, 1.5], prompt="instruction")),
    Convention("Chatbot Arena / MT-Bench judgments", ("conversation_a", "conversation_b"),
               dict(response_a="conversation_a", response_b="conversation_b", winner="winner", a_wins=["model_a"],
                    b_wins=["model_b"], tie=["tie", "tie (bothbad)"], turn="turn")),
    Convention("PKU-SafeRLHF", ("response_0", "response_1", "better_response_id"),
               dict(response_a="response_0", response_b="response_1", winner="better_response_id", a_wins=[0],
                    b_wins=[1]), other_verdicts=("safer_response_id",)),
    Convention("SHP", ("human_ref_A", "human_ref_B", "labels"),
               dict(response_a="human_ref_A", response_b="human_ref_B", winner="labels", a_wins=[1], b_wins=[0],
                    prompt="history", category="domain")),
    Convention("HelpSteer2 preferences", ("response_1", "response_2", "preference_strength"),
               dict(response_a="response_1", response_b="response_2", winner="preference_strength", a_wins="<0",
                    b_wins=">0", tie=[0])),
    Convention("Unified-Feedback ratings", ("conv_A", "conv_B", "conv_A_rating", "conv_B_rating"),
               dict(response_a="conv_A", response_b="conv_B", rating_a="conv_A_rating", rating_b="conv_B_rating")),
    Convention("JudgeBench labels", ("response_A", "response_B", "label"),
               dict(response_a="response_A", response_b="response_B", winner="label", a_wins=["A>B"],
                    b_wins=["B>A"], tie=["A=B"])),
    Convention("Auto-J pairwise (label 0 = response 1, 1 = response 2, 2 = tie)", ("response 1", "response 2", "label"),
               dict(response_a="response 1", response_b="response 2", winner="label", a_wins=[0], b_wins=[1],
                    tie=[2])),
    Convention("generic judgment", ("response_a", "response_b", "winner"),
               dict(response_a="response_a", response_b="response_b", winner="winner")),
)
# Text verdicts whose side is plain from the words alone; tried when a winner has no values.
_SPELLINGS = (("model_a", "model_b"), ("a", "b"), ("response_a", "response_b"), ("first", "second"),
              ("left", "right"), ("a>b", "b>a"), ("b<a", "a<b"), ("a>>b", "b>>a"))
TIE_WORDS = ("tie", "tie (bothbad)", "draw", "equal", "a=b", "b=a", "same", "both", "neither", "none", "both bad",
             "both good")
JUDGMENT_FIELDS = ("response_a", "response_b", "winner", "a_wins", "b_wins", "tie", "rating_a", "rating_b", "turn")


_ONE_HOT = ("winner_model_a", "winner_model_b", "winner_tie")


def arena_one_hot(raw: pd.DataFrame, given: ColumnMapping, notes: list) -> pd.DataFrame:
    """LMSYS arena-human-preference exports: one-hot verdict columns (winner_model_a / winner_model_b /
    winner_tie) and prompt / response_a / response_b holding JSON lists of turns. Read as Arena judgments: a
    `winner` column of model_a / model_b / tie, and conversation_a / conversation_b of alternating turns."""
    if not set(_ONE_HOT[:2]) <= set(raw.columns) or "winner" in raw.columns or given.winner or given.response_a:
        return raw
    flags = {name: [number(v) == 1 for v in raw[name].tolist()] if name in raw.columns else [False] * len(raw)
             for name in _ONE_HOT}
    winners = []
    for a_won, b_won, tied in zip(*flags.values()):
        winners.append(None if a_won + b_won + tied != 1 else "model_a" if a_won else "model_b" if b_won else "tie")
    raw = raw.assign(winner=winners)
    turns_note = ""
    if {"prompt", "response_a", "response_b"} <= set(raw.columns):
        raw = raw.assign(conversation_a=[_turns(p, r) for p, r in zip(raw["prompt"], raw["response_a"])],
                         conversation_b=[_turns(p, r) for p, r in zip(raw["prompt"], raw["response_b"])])
        raw = raw.drop(columns=["prompt", "response_a", "response_b"])
        turns_note = "; prompt and response_a/response_b lists read as alternating turns"
    unclear = sum(1 for w in winners if w is None)
    notes.append("one-hot verdict columns winner_model_a / winner_model_b / winner_tie read as winner model_a / "
                 f"model_b / tie{turns_note}" + (f"; {unclear} row(s) without exactly one flag have no verdict" if unclear else ""))
    return raw


def _turns(prompts, responses):
    prompts, responses = literal_value(prompts), literal_value(responses)
    if isinstance(prompts, str):
        prompts = [prompts]
    if isinstance(responses, str):
        responses = [responses]
    if not isinstance(prompts, list) or not isinstance(responses, list) or len(prompts) != len(responses):
        return None
    messages = []
    for asked, answered in zip(prompts, responses):
        messages += [{"role": "user", "content": asked if isinstance(asked, str) else ""},
                     {"role": "assistant", "content": answered if isinstance(answered, str) else ""}]
    return messages


def judgment_mapping(raw: pd.DataFrame, given: ColumnMapping, origin: Origin) -> tuple[ColumnMapping, str] | None:
    """The full mapping and the convention's name when the rows are judgments, else None."""
    columns = set(raw.columns)
    named = {name: getattr(given, name) for name in JUDGMENT_FIELDS if getattr(given, name) not in (None, "")}
    convention, implied, other_verdicts = None, {}, ()
    has_pairs = any(alias in columns for alias in CHOSEN_ALIASES + REJECTED_ALIASES)
    if not (given.chosen or given.rejected or given.ranked or has_pairs):  # chosen/rejected columns win
        for candidate in CONVENTIONS:
            if set(candidate.needs) <= columns:
                convention, implied = candidate.name, dict(candidate.implies)
                other_verdicts = candidate.other_verdicts
                break
    if not named and convention is None:
        return None
    if named and convention is None:
        convention = "judgment by column mapping"
    if "winner" in named and named["winner"] != implied.get("winner") and named["winner"] not in other_verdicts:
        for key in ("a_wins", "b_wins", "tie"):  # a convention's values describe its own verdict column only
            implied.pop(key, None)
    if implied.get("winner") and implied["winner"] not in columns and "winner" not in named:
        verdicts = sorted(c for c in columns if str(c).startswith(implied["winner"]))
        listed = f" (several: {', '.join(verdicts)})" if verdicts else ""
        raise DataError(f"{origin.name}: {convention} without a {implied['winner']!r} column{listed}; say which "
                        f"verdict to read with --column-mapping '{json.dumps({'winner': verdicts[0] if verdicts else '<column>'})}'")
    merged = {**implied, **named}
    for role in ("prompt", "category", "margin", "pair_id"):
        if getattr(given, role) is not None:  # the user's choice, "" included, beats the convention's
            merged.pop(role, None)
    if not (merged.get("response_a") and merged.get("response_b")):
        raise DataError(f"{origin.name}: a judgment mapping needs both response_a and response_b "
                        f"(found columns: {columns_text(raw.columns)})")
    if not merged.get("winner") and not (merged.get("rating_a") and merged.get("rating_b")):
        raise DataError(f"{origin.name}: a judgment mapping needs winner (or rating_a and rating_b)")
    for role in ("prompt", "category", "turn"):
        column = merged.get(role)
        if column and column not in columns and role not in named:
            merged.pop(role)  # a convention's optional column the file lacks
    rest = dataclasses.replace(given, chosen="", rejected="", **{k: v for k, v in merged.items()
                                                                  if k in ("prompt", "category")})
    base = _resolve_rest(raw, rest, origin)
    judged = {k: v for k, v in merged.items() if k in JUDGMENT_FIELDS}
    return dataclasses.replace(base, chosen=None, rejected=None, **judged), convention


def _resolve_rest(raw: pd.DataFrame, rest: ColumnMapping, origin: Origin) -> ColumnMapping:
    """prompt, category, margin and id for judgments, found as for pairs (chosen/rejected are absent)."""
    stand_in = raw.assign(__a=None, __b=None)
    resolved = resolve_mapping(stand_in, dataclasses.replace(rest, chosen="__a", rejected="__b"), origin)
    return dataclasses.replace(resolved, score_chosen=None, score_rejected=None)


def verdict_key(value) -> str | None:
    """A verdict as a comparable key: numbers (also numbers stored as text) by value, text case-insensitively."""
    value = plain(value)
    if is_missing(value):
        return None
    if isinstance(value, bool):  # a flag column reads as 1 / 0, as Python counts it
        return str(int(value))
    if isinstance(value, str):
        stripped = value.strip()
        try:
            value = float(stripped)
        except ValueError:
            return stripped.lower()
    if isinstance(value, numbers.Real):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return show(value)


def as_keys(values) -> set[str]:
    values = values if isinstance(values, list) else [values]
    return {key for key in (verdict_key(v) for v in values) if key is not None}


def number(value) -> float | None:
    key = verdict_key(value)
    try:
        return None if key is None else float(key)
    except ValueError:
        return None


def _is_number(key: str) -> bool:
    try:
        float(key)
    except ValueError:
        return False
    return True


def _counts_text(keys: list) -> str:
    counts = pd.Series([("missing" if k is None else k) for k in keys]).value_counts()
    return ", ".join(f"{value!s}: {count}" for value, count in counts.items())


@dataclasses.dataclass
class Verdicts:
    """What a judgment load decided, row by row: +1 response_a won, -1 response_b won, 0 no winner."""

    sides: np.ndarray
    note: str
    ties: int
    dropped: dict  # why -> count, for rows dropped for another reason than a tie


def judge(raw: pd.DataFrame, mapping: ColumnMapping, convention: str, origin: Origin, explicit: bool) -> Verdicts:
    """Place each row's verdict. `explicit`: the user gave the verdict values, so values they did not list are
    dropped and counted; otherwise every value must be placed by the convention or by unambiguous words."""
    a, b = mapping.response_a, mapping.response_b
    if not mapping.winner:
        ra = [number(v) for v in raw[mapping.rating_a].tolist()]
        rb = [number(v) for v in raw[mapping.rating_b].tolist()]
        sides = np.array([0 if x is None or y is None or x == y else (1 if x > y else -1) for x, y in zip(ra, rb)], dtype=int)
        ties = sum(1 for x, y in zip(ra, rb) if x is not None and y is not None and x == y)
        missing = sum(1 for x, y in zip(ra, rb) if x is None or y is None)
        note = (f"read as judgments ({convention}): the higher of {mapping.rating_a} and {mapping.rating_b} wins "
                f"({int((sides > 0).sum())} {a}, {int((sides < 0).sum())} {b}); equal ratings are ties, dropped ({ties})")
        if missing:
            note += f"; {missing} row(s) without both ratings dropped"
        return Verdicts(sides, note, ties, {"missing rating": missing} if missing else {})
    keys = [verdict_key(v) for v in raw[mapping.winner].tolist()]
    if mapping.a_wins in ("<0", ">0") or mapping.b_wins in ("<0", ">0"):
        return _by_sign(raw, mapping, convention, origin)
    a_keys, b_keys, tie_keys = as_keys(mapping.a_wins), as_keys(mapping.b_wins), as_keys(mapping.tie)
    if mapping.a_wins is None and mapping.b_wins is None:
        a_keys, b_keys, spelled_ties = _spelled(set(k for k in keys if k is not None), mapping, origin, keys)
        tie_keys |= spelled_ties
    elif mapping.a_wins is None or mapping.b_wins is None:
        raise DataError(f"{origin.name}: give both a_wins and b_wins for column {mapping.winner!r} "
                        f"(values: {_counts_text(keys)})")
    overlap = (a_keys & b_keys) | (a_keys & tie_keys) | (b_keys & tie_keys)
    if overlap:
        raise DataError(f"{origin.name}: value(s) {', '.join(sorted(overlap))} given for more than one of a_wins, "
                        "b_wins and tie")
    fractions = 0
    if "1.5" in tie_keys and convention.startswith("AlpacaEval"):
        # AlpacaEval's preference is 1 + P(output_2 better): a fraction strictly between 1 and 2 leans to the
        # nearer side. Anything else outside 0, 1, 1.5, 2 stays unplaced (and refused).
        nearer = [("1" if float(k) < 1.5 else "2") if k is not None and _is_number(k) and 1 < float(k) < 2
                  and k != "1.5" else k for k in keys]
        fractions = sum(1 for old, new in zip(keys, nearer) if old != new)
        keys = nearer
    unplaced = sorted({k for k in keys if k is not None and k not in a_keys | b_keys | tie_keys})
    if unplaced and not explicit:
        raise DataError(_refusal(origin, mapping, keys, f"value(s) {', '.join(unplaced[:6])} of {mapping.winner!r} have no "
                                                        "known side"))
    sides = np.array([1 if k in a_keys else (-1 if k in b_keys else 0) for k in keys], dtype=int)
    placed = []
    for key, count in pd.Series([k for k in keys if k is not None], dtype=object).value_counts().items():
        meaning = (f"{a} wins" if key in a_keys else f"{b} wins" if key in b_keys
                   else "tie, dropped" if key in tie_keys else "not a listed value, dropped")
        placed.append((key, meaning, count))
    placed.sort(key=lambda item: (item[1].endswith("dropped"), str(item[0])))
    shown = ", ".join(f"{key} → {meaning} ({count})" for key, meaning, count in placed)
    note = f"read as judgments ({convention}): {a} vs {b}; {mapping.winner} {shown}"
    if fractions:
        note += f" ({fractions} fractional value(s) between 1 and 2 counted on the nearer side)"
    missing = sum(1 for k in keys if k is None)
    dropped = {}
    if missing:
        note += f"; {missing} row(s) without a verdict dropped"
        dropped["no verdict"] = missing
    other = sum(1 for k in keys if k is not None and k not in a_keys | b_keys | tie_keys)
    if other:
        dropped["verdict not listed in a_wins/b_wins/tie"] = other
    ties = sum(1 for k in keys if k in tie_keys)
    if not (sides != 0).any():
        raise DataError(f"{origin.name}: no row has a winner ({shown}); check a_wins and b_wins in the column mapping")
    return Verdicts(sides, note, ties, dropped)


def _by_sign(raw, mapping: ColumnMapping, convention: str, origin: Origin) -> Verdicts:
    signs = {"<0": -1.0, ">0": 1.0}
    if mapping.a_wins not in signs or mapping.b_wins not in signs or mapping.a_wins == mapping.b_wins:
        raise DataError(f"{origin.name}: a_wins and b_wins must be '<0' and '>0' (or the reverse) together")
    values = [number(v) for v in raw[mapping.winner].tolist()]
    sides = np.array([0 if v is None or v == 0 else (1 if np.sign(v) == signs[mapping.a_wins] else -1) for v in values],
                     dtype=int)
    ties = sum(1 for v in values if v == 0)
    missing = sum(1 for v in values if v is None)
    note = (f"read as judgments ({convention}): {mapping.response_a} vs {mapping.response_b}; {mapping.winner} "
            f"{mapping.a_wins} → {mapping.response_a} wins ({int((sides > 0).sum())}), {mapping.b_wins} → "
            f"{mapping.response_b} wins ({int((sides < 0).sum())}), 0 → tie, dropped ({ties})")
    if missing:
        note += f"; {missing} row(s) without a number dropped"
    if not (sides != 0).any():
        raise DataError(f"{origin.name}: no row has a winner in column {mapping.winner!r}")
    return Verdicts(sides, note, ties, {"no verdict": missing} if missing else {})


def _spelled(present: set[str], mapping: ColumnMapping, origin: Origin, keys: list) -> tuple[set, set, set]:
    """a_wins/b_wins/tie from verdict words whose side is unambiguous: the response columns' own names, else
    one of the known spellings. Numbers are never placed this way."""
    ties = {k for k in present if k in TIE_WORDS}
    for a_value, b_value in ((mapping.response_a.lower(), mapping.response_b.lower()), *_SPELLINGS):
        if a_value in present or b_value in present:
            a_keys, b_keys = {a_value}, {b_value}
            if (a_value, b_value) in (("a>b", "b>a"), ("b<a", "a<b"), ("a>>b", "b>>a")):  # Arena-Hard also writes A>>B for "much better"
                a_keys, b_keys = {"a>b", "b<a", "a>>b", "b<<a"}, {"b>a", "a<b", "b>>a", "a<<b"}
            return a_keys, b_keys, ties
    why = ("numbers mean different sides in different datasets" if present and all(_is_number(k) for k in present)
           else "no value names a side")
    raise DataError(_refusal(origin, mapping, keys, f"cannot tell which side each value of {mapping.winner!r} means ({why})"))


def _refusal(origin: Origin, mapping: ColumnMapping, keys: list, why: str) -> str:
    present = sorted({k for k in keys if k is not None}, key=str)
    sides = [k for k in present if k not in TIE_WORDS]
    ties = [k for k in present if k in TIE_WORDS] or sides[2:3]
    example = {"response_a": mapping.response_a, "response_b": mapping.response_b, "winner": mapping.winner,
               "a_wins": _spelled_value(sides[0] if sides else "<value>"),
               "b_wins": _spelled_value(sides[1] if len(sides) > 1 else "<value>")}
    if ties:
        example["tie"] = [_spelled_value(k) for k in ties] if len(ties) > 1 else _spelled_value(ties[0])
    return (f"{origin.name}: {why}; values: {_counts_text(keys)}; say what they mean with --column-mapping "
            f"'{json.dumps(example)}' (each of a_wins, b_wins, tie may be a list)")


def _spelled_value(key: str):
    if _is_number(key):
        number_value = float(key)
        return int(number_value) if number_value.is_integer() else number_value
    return key
