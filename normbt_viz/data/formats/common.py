"""What every layout module shares: where a row came from (for one-line errors), the rows a lenient load
leaves out, and the helpers that make cell values comparable and printable."""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from normbt_viz.errors import DataError

SKIPPED_COLUMNS = ("file", "row", "column", "value", "reason", "message")
DEFAULT_CATEGORY = "all"  # the group of pairs without a category


@dataclass(frozen=True)
class Origin:
    """Where rows come from, for error messages: 'pairs.jsonl line 7, column 'chosen': ...'."""

    name: str
    row_word: str = "row"

    def at(self, row: int | None = None, column: str | None = None) -> str:
        place = self.name if row is None else f"{self.name} {self.row_word} {row}"
        return place if column is None else f"{place}, column {column!r}"


class Skips:
    """Collects the rows a lenient load leaves out; a strict load raises the first one instead."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.records: list[dict] = []
        self.rows: set[int] = set()

    def add(self, origin: Origin, row: int | None, column: str | None, value, reason: str) -> None:
        message = f"{origin.at(row, column)}: {reason}"
        if self.strict:
            raise DataError(message)
        self.records.append({"file": origin.name, "row": row, "column": column or "", "value": value,
                             "reason": reason, "message": message})
        if row is not None:
            self.rows.add(row)

    def add_error(self, origin: Origin, row: int, exc: DataError, cells: dict) -> None:
        """Record a row's DataError, recovering the column it names (a key of `cells`) and that cell's value."""
        if self.strict:
            raise exc
        message = str(exc)
        column, rest = None, message[len(origin.at(row)):]
        for candidate in cells:
            if candidate and rest.startswith(f", column {candidate!r}"):
                column = candidate
                break
        reason = message.split(": ", 1)[1] if ": " in message else message
        if column is not None:
            where = message[len(origin.at(row, column)):]
            reason = where[2:] if where.startswith(": ") else where.lstrip(", ")
        value = show(plain(cells[column])) if column is not None else ""
        self.records.append({"file": origin.name, "row": row, "column": column or "", "value": value,
                             "reason": reason, "message": message})
        self.rows.add(row)

    def frame(self) -> pd.DataFrame:
        records = sorted(self.records, key=lambda record: -1 if record["row"] is None else record["row"])
        frame = pd.DataFrame(records, columns=list(SKIPPED_COLUMNS))
        frame["row"] = frame["row"].astype("Int64")
        return frame


def show(value) -> str:
    """Short single-line repr of an offending value."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."


def columns_text(columns) -> str:
    return ", ".join(str(column) for column in columns) or "none"


def plain(value):
    """Arrow-backed tables hand lists over as numpy arrays and numbers as numpy scalars; use Python's."""
    if isinstance(value, np.ndarray):
        return [plain(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


def is_missing(value) -> bool:
    value = plain(value)
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def first_present(values):
    """The first value that is not missing, so one broken first row does not decide a whole file's layout."""
    for value in values:
        if not is_missing(value):
            return plain(value)
    return None


def parse_literal(text: str):
    """A list or object stored as text (a CSV export of a message list, a Python repr of one) parsed as a
    literal, never evaluated as code: JSON first, then Python literal syntax (tuples, single quotes). None
    when the text is not such a literal."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{(" or stripped[-1] not in "]})":
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        pass
    try:
        return ast.literal_eval(stripped)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
