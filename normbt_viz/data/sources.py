"""Preference data: read pairs from a file, a DataFrame, a Hugging Face dataset or the demo generator,
detect their format (explicit prompt, implicit prompt, conversational, ShareGPT), validate them and
return one canonical table of (prompt, chosen, rejected) pairs with stable ids.

Validation happens here, once, at the boundary: every problem is one line naming the source, the row (the
line for JSON lines), the column and the value, so nothing downstream re-checks. Loading is lenient by
default: a row that fails validation (or a JSON line that does not parse) is skipped and listed in
`PairTable.skipped`; `strict=True` raises the first such problem as a `DataError` instead. Problems with the
file as a whole (unknown format, missing column, no valid row at all) are always errors.

Row numbers count data rows from 1 as a user sees them: the line number in a JSONL file, the item in a
JSON list, the data row of a CSV (header not counted), the row of a Parquet file, table or dataset.

Column mappings: a field left `None` is auto-detected; the empty string `""` means "this dataset has no
such column" (for example `pair_id=""` to ignore an id column and generate ids instead).

Judgment files (two responses and a verdict, as in AlpacaEval, Chatbot Arena, MT-Bench, PKU-SafeRLHF, SHP,
HelpSteer2 or Unified-Feedback) become pairs through `response_a`, `response_b` and `winner` (with the values
`a_wins` and `b_wins` that mean each side won), or `rating_a`/`rating_b` (the higher rating wins). The
conventions of those datasets are recognised from their column names; the load says in one line what it
assumed (`PairTable.notes`). Ties and other verdicts are dropped and counted there.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from normbt_viz.errors import DataError, SpecError, first_line

CANONICAL_COLUMNS = (
    "pair_id", "prompt", "chosen", "rejected", "category", "margin", "source_row", "identical", "prompt_messages",
)

FILE_FORMATS = (".jsonl", ".json", ".csv", ".parquet")
# Extensions that are clearly files, so a missing "data.xlsx" is reported as a file, not tried on the hub.
_OTHER_FILE_EXTENSIONS = (".xlsx", ".xls", ".tsv", ".txt", ".arrow", ".feather", ".pkl", ".gz", ".zip")

_PROMPT_ALIASES = ("prompt", "question", "instruction")
_CHOSEN_ALIASES = ("chosen", "response_chosen", "chosen_response")
_REJECTED_ALIASES = ("rejected", "response_rejected", "rejected_response")
_SHAREGPT_PROMPT = "conversations"
_CATEGORY_ALIASES = ("category", "subset")
_MARGIN_ALIASES = ("margin",)
# "pair_id" first: when a table has both, it is the more specific name.
_ID_ALIASES = ("pair_id", "id", "prompt_id")

_SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system"}
_PLAIN_LABELS = {"user": "User", "assistant": "Assistant", "system": "System"}
_HH_ASSISTANT_MARKER = "\n\nAssistant:"
_DEFAULT_CATEGORY = "all"
_FINGERPRINT_COLUMNS = ("pair_id", "prompt", "chosen", "rejected", "category", "margin")
SKIPPED_COLUMNS = ("file", "row", "column", "value", "reason", "message")


@dataclass
class ColumnMapping:
    """Which source column plays which role. `None` = auto-detect; `""` = the dataset has no such column."""

    prompt: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    category: str | None = None
    margin: str | None = None
    pair_id: str | None = None
    # Judgments: two responses and a verdict column, or two rating columns.
    response_a: str | None = None
    response_b: str | None = None
    winner: str | None = None
    a_wins: str | int | float | list | None = None  # value(s) of `winner` meaning response_a won; "<0"/">0" = by sign
    b_wins: str | int | float | list | None = None
    rating_a: str | None = None
    rating_b: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def is_judgment(self) -> bool:
        return bool(self.response_a and self.response_b)

    @classmethod
    def from_dict(cls, d) -> ColumnMapping:
        names = [field.name for field in dataclasses.fields(cls)]
        for key, value in dict(d).items():
            if key not in names:
                raise SpecError(f"column mapping: unknown key {key!r} (expected {', '.join(names)})")
            if key in ("a_wins", "b_wins"):
                values = value if isinstance(value, list) else [value]
                if value is not None and not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                                                 for v in values):
                    raise SpecError(f"column mapping: {key} must be a value or a list of values, got {_show(value)}")
            elif value is not None and not isinstance(value, str):
                raise SpecError(f"column mapping: {key} must be a column name or None, got {_show(value)}")
        return cls(**dict(d))


@dataclass
class PairTable:
    """Validated preference pairs in canonical columns, and how they were read."""

    pairs: pd.DataFrame
    format: str
    mapping: ColumnMapping
    source: str
    n_identical: int
    # Rows that failed validation and were left out (lenient loading): one row each with file, row, column,
    # value, reason and the full one-line message.
    skipped: pd.DataFrame = dataclasses.field(default_factory=lambda: pd.DataFrame(columns=list(SKIPPED_COLUMNS)))
    # One-line notes on what the load assumed (a recognised judgment convention, rows dropped as ties).
    notes: list = dataclasses.field(default_factory=list)
    source_path: str | None = None  # the local file the pairs came from, for writing a cleaned copy like it

    @property
    def n_skipped(self) -> int:
        return len(self.skipped)

    def skipped_summary(self, n: int = 3) -> list[str]:
        """One line per skipped row for the first `n`, then a count of the rest: what a CLI prints."""
        lines = self.skipped["message"].head(n).tolist()
        if self.n_skipped > n:
            lines.append(f"... and {self.n_skipped - n} more skipped row(s)")
        return lines

    def fingerprint(self) -> str:
        """First 16 hex chars of a sha256 over the pairs' ids, texts, categories and margins: the same data
        gives the same fingerprint in any process, any text change gives a new one."""
        digest = hashlib.sha256()
        for pair_id, prompt, chosen, rejected, category, margin in self.pairs[list(_FINGERPRINT_COLUMNS)].itertuples(
            index=False
        ):
            margin_value = None if pd.isna(margin) else float(margin)
            row = [pair_id, prompt, chosen, rejected, category, margin_value]
            digest.update(json.dumps(row, ensure_ascii=False).encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class _Origin:
    """Where rows come from, for error messages: 'pairs.jsonl line 7, column 'chosen': ...'."""

    name: str
    row_word: str = "row"

    def at(self, row: int | None = None, column: str | None = None) -> str:
        place = self.name if row is None else f"{self.name} {self.row_word} {row}"
        return place if column is None else f"{place}, column {column!r}"


class _Skips:
    """Collects the rows a lenient load leaves out; a strict load raises the first one instead."""

    def __init__(self, strict: bool):
        self.strict = strict
        self.records: list[dict] = []
        self.rows: set[int] = set()

    def add(self, origin: _Origin, row: int | None, column: str | None, value, reason: str) -> None:
        message = f"{origin.at(row, column)}: {reason}"
        if self.strict:
            raise DataError(message)
        self.records.append({"file": origin.name, "row": row, "column": column or "", "value": value,
                             "reason": reason, "message": message})
        if row is not None:
            self.rows.add(row)

    def add_error(self, origin: _Origin, row: int, exc: DataError, raw: pd.DataFrame, columns) -> None:
        """Record a row's DataError, recovering the column it names (one of `columns`) and that cell's value."""
        if self.strict:
            raise exc
        message = str(exc)
        column, rest = None, message[len(origin.at(row)):]
        for candidate in columns:
            if candidate and rest.startswith(f", column {candidate!r}"):
                column = candidate
                break
        reason = message.split(": ", 1)[1] if ": " in message else message
        if column is not None:
            where = message[len(origin.at(row, column)):]
            reason = where[2:] if where.startswith(": ") else where.lstrip(", ")
        value = _show(_plain(raw.at[row, column])) if column is not None and row in raw.index else ""
        self.records.append({"file": origin.name, "row": row, "column": column or "", "value": value,
                             "reason": reason, "message": message})
        self.rows.add(row)

    def frame(self) -> pd.DataFrame:
        records = sorted(self.records, key=lambda record: -1 if record["row"] is None else record["row"])
        frame = pd.DataFrame(records, columns=list(SKIPPED_COLUMNS))
        frame["row"] = frame["row"].astype("Int64")
        return frame


def _show(value) -> str:
    """Short single-line repr of an offending value."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= 40 else text[:37] + "..."


def _columns_text(columns) -> str:
    return ", ".join(str(column) for column in columns) or "none"


# ---------------------------------------------------------------------------------------------------------
# Reading local files


def _read_file(path: Path, skips: _Skips | None = None) -> tuple[pd.DataFrame, str]:
    """The table and the word its rows are counted in ("line" for JSON lines, else "row"). JSON lines that
    do not parse, and JSON items that are not objects, go to `skips` (a strict collector raises)."""
    skips = skips if skips is not None else _Skips(strict=True)
    suffix = path.suffix.lower()
    name = path.name
    if suffix not in FILE_FORMATS:
        raise DataError(f"{name}: unknown format {path.suffix!r} (expected .jsonl, .json, .csv or .parquet)")
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    if suffix in (".jsonl", ".json"):
        table, row_word = _read_json(path, suffix, skips)
    elif suffix == ".csv":
        table, row_word = _read_csv(path), "row"
    else:
        table, row_word = _read_parquet(path), "row"
    if len(table) == 0:
        if skips.records:
            raise DataError(f"{skips.records[0]['message']} (and no valid row in the file: "
                            f"{len(skips.records)} skipped)")
        raise DataError(f"{name}: empty file, no rows")
    return table, row_word


def _read_json(path: Path, suffix: str, skips: _Skips) -> tuple[pd.DataFrame, str]:
    name = path.name
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{name} line {line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            # "Extra data" after a first complete value means the file holds JSON lines.
            if exc.msg != "Extra data":
                raise DataError(f"{name} line {exc.lineno}: malformed JSON ({exc.msg})") from None
        else:
            if isinstance(data, dict):
                data = [data]
            if not isinstance(data, list):
                raise DataError(f"{name}: expected a list of JSON objects or JSON lines, got {type(data).__name__}")
            return _object_rows(enumerate(data, start=1), _Origin(name), skips), "row"
    return _object_rows(_json_lines(text, _Origin(name, "line"), skips), _Origin(name, "line"), skips), "line"


def _json_lines(text: str, origin: "_Origin", skips):
    """(line number, parsed value) of each non-blank line; a malformed line is skipped and listed."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            skips.add(origin, number, None, _show(line), f"malformed JSON ({exc.msg})")


def _object_rows(numbered, origin: "_Origin", skips) -> pd.DataFrame:
    """The JSON objects among (number, value) as a table indexed by number; any other value is skipped and listed."""
    records, rows = [], []
    for number, record in numbered:
        if not isinstance(record, dict):
            skips.add(origin, number, None, _show(record), f"expected a JSON object, got {_show(record)}")
            continue
        records.append(record)
        rows.append(number)
    return pd.DataFrame(records, index=rows, dtype=object)


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(f"{path.name}: empty file, no rows") from None
    except ValueError as exc:  # pandas' ParserError and UnicodeDecodeError are both ValueErrors
        raise DataError(f"{path.name}: cannot parse CSV ({first_line(exc)})") from None
    table.index = range(1, len(table) + 1)
    return table


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path.name}: cannot read Parquet ({first_line(exc)})") from None
    table.index = range(1, len(table) + 1)
    return table


# ---------------------------------------------------------------------------------------------------------
# Loading


def load_pairs(
    source,
    *,
    config: str | None = None,
    split: str = "train",
    mapping: ColumnMapping | dict | None = None,
    chat_template_tokenizer=None,
    demo_size: int = 1000,
    demo_noise: float = 0.0,
    demo_seed: int = 0,
    strict: bool = False,
) -> PairTable:
    """Load and validate preference pairs.

    `source` is "demo", a local file (.jsonl/.json/.csv/.parquet), a directory written by
    `datasets.Dataset.save_to_disk`, a pandas DataFrame, or else a Hugging Face dataset id loaded with
    `datasets.load_dataset(source, config, split=split)`. The format is detected from the columns and
    values unless `mapping` names the columns. `chat_template_tokenizer` only changes how conversational
    prompts are rendered into the `prompt` column."""
    if isinstance(mapping, dict):
        mapping = ColumnMapping.from_dict(mapping)
    elif mapping is not None and not isinstance(mapping, ColumnMapping):
        raise SpecError(f"mapping must be a ColumnMapping, a dict or None, got {type(mapping).__name__}")
    given = mapping or ColumnMapping()

    if isinstance(source, pd.DataFrame):
        raw = source.reset_index(drop=True)
        raw.index = range(1, len(raw) + 1)
        return _build(raw, _Origin("uploaded table"), "uploaded table", given, chat_template_tokenizer, _Skips(strict))
    if isinstance(source, str) and source == "demo":
        return _load_demo(demo_size, demo_noise, demo_seed)
    if isinstance(source, Path) or (isinstance(source, str) and _looks_local(source)):
        path = Path(source).expanduser()
        if path.is_dir():
            raw, origin = _load_from_disk(path, split)
            return _build(raw, origin, f"local dataset {str(path)!r} (split {split!r})", given, chat_template_tokenizer,
                          _Skips(strict))
        skips = _Skips(strict)
        raw, row_word = _read_file(path, skips)
        table = _build(raw, _Origin(path.name, row_word), str(path), given, chat_template_tokenizer, skips)
        table.source_path = str(path)
        return table
    if isinstance(source, str):
        raw = _load_hub(source, config, split)
        return _build(raw, _Origin(f"{source}[{split}]"),
                      f"Hugging Face dataset {source!r} ({_hub_where(config, split)})", given, chat_template_tokenizer,
                      _Skips(strict))
    raise DataError(f"unsupported data source of type {type(source).__name__}: expected a path, a dataset id, "
                    "'demo' or a DataFrame")


def _looks_local(source: str) -> bool:
    """A local path rather than a hub id: it exists, has a file extension, or is written as a path.
    Hub ids may contain dots ("org/name-v0.2"), so an unknown suffix alone does not make a path."""
    suffix = Path(source).suffix.lower()
    return (
        Path(source).expanduser().exists()
        or suffix in FILE_FORMATS
        or suffix in _OTHER_FILE_EXTENSIONS
        or source.startswith(("/", "./", "../", "~"))
    )


def _load_demo(demo_size: int, demo_noise: float, demo_seed: int) -> PairTable:
    from normbt_viz.data.demo import generate_demo_pairs

    raw = generate_demo_pairs(n_pairs=demo_size, noise_rate=demo_noise, seed=demo_seed).reset_index(drop=True)
    raw.index = range(1, len(raw) + 1)
    source = f"demo ({demo_size} pairs, noise {demo_noise}, seed {demo_seed})"
    demo_mapping = ColumnMapping(prompt="prompt", chosen="chosen", rejected="rejected", category="category",
                                 margin="", pair_id="pair_id")
    table = _build(raw, _Origin("demo data"), source, demo_mapping, None, _Skips(strict=True))
    table.pairs["flipped"] = raw["flipped"].to_numpy(dtype=bool)
    table.format = "demo"
    return table


def _load_from_disk(path: Path, split: str) -> tuple[pd.DataFrame, _Origin]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises FileNotFoundError, ValueError, ... for a foreign directory
        raise DataError(f"{path.name}: not a dataset saved with save_to_disk ({first_line(exc)})") from None
    origin = _Origin(path.name)
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"{path.name}: no split {split!r} (available: {_columns_text(loaded.keys())})")
        loaded = loaded[split]
        origin = _Origin(f"{path.name}[{split}]")
    return _dataset_to_frame(loaded), origin


def check_hub_repo(repo_id: str, repo_type: str, error=DataError) -> None:
    """Fail fast, in one line, on a hub id that does not exist or a hub that cannot be reached.

    `datasets` and `transformers` retry an unreachable hub five times with back-off (about 25 s) and log a
    line per try; one metadata request without retries answers the same question at once. Skipped when
    HF_HUB_OFFLINE is set, so cached copies still load offline."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError

    if constants.HF_HUB_OFFLINE:
        return
    what = "dataset" if repo_type == "dataset" else "model"
    try:
        (HfApi().dataset_info if repo_type == "dataset" else HfApi().model_info)(repo_id, timeout=10)
    except (RepositoryNotFoundError, HFValidationError) as exc:
        raise error(f"Hugging Face {what} {repo_id!r} not found (or private: log in with `hf auth login`): "
                    f"{first_line(exc)}") from None
    except Exception as exc:  # no network, DNS, proxy, timeout: the same answer for the user
        raise error(f"cannot reach the Hugging Face hub for {what} {repo_id!r} ({first_line(exc)}); "
                    "set HF_HUB_OFFLINE=1 to use a cached copy") from None


def _load_hub(dataset_id: str, config: str | None, split: str) -> pd.DataFrame:
    import datasets

    check_hub_repo(dataset_id, "dataset")
    try:
        loaded = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as exc:  # network, auth, missing config or split: all one message for the user
        raise DataError(f"cannot load Hugging Face dataset {dataset_id!r} ({_hub_where(config, split)}): "
                        f"{first_line(exc)}") from None
    return _dataset_to_frame(loaded)


def _hub_where(config: str | None, split: str) -> str:
    return f"split {split!r}" if config is None else f"config {config!r}, split {split!r}"


def _dataset_to_frame(dataset) -> pd.DataFrame:
    frame = dataset.to_pandas()
    frame.index = range(1, len(frame) + 1)
    return frame


# ---------------------------------------------------------------------------------------------------------
# Format detection


def _build(raw: pd.DataFrame, origin: _Origin, source: str, given: ColumnMapping, tokenizer, skips: _Skips) -> PairTable:
    raw = raw.rename(columns=str)
    if len(raw) == 0:
        raise DataError(f"{origin.name}: no rows")
    notes: list[str] = []
    judgment = _judgment_mapping(raw, given, origin)
    if judgment is not None:
        mapping, convention = judgment
        raw, sides, note = _judge(raw, mapping, convention, origin)
        notes.append(note)
    else:
        mapping, sides = _resolve_mapping(raw, given, origin), None
    # The first present value decides the layout, so one broken first row does not misread the whole file.
    first_chosen = _first_present(raw[mapping.response_a if sides is not None else mapping.chosen])
    first_prompt = _first_present(raw[mapping.prompt]) if mapping.prompt else None
    if _is_messages(first_chosen) or _is_messages(first_prompt):
        sharegpt = _uses_sharegpt_keys(first_chosen) or _uses_sharegpt_keys(first_prompt)
        fmt = "sharegpt" if sharegpt else "conversational"
    else:
        fmt = "explicit" if mapping.prompt else "implicit"
    pairs = _convert(raw, mapping, fmt, origin, tokenizer, skips, sides)
    if len(pairs) == 0:
        first = skips.frame()["message"].iloc[0] if skips.records else f"{origin.name}: no rows"
        raise DataError(f"{first} (and no valid row in {origin.name}: all {len(skips.records)} skipped)")
    skipped = skips.frame()
    if len(skipped):
        notes.append(f"skipped {len(skipped)} invalid row(s) of {origin.name}")
    return PairTable(pairs=pairs, format=fmt, mapping=mapping, source=source, n_identical=int(pairs["identical"].sum()),
                     skipped=skipped, notes=notes)


def _first_present(column: pd.Series):
    for value in column.tolist():
        value = _plain(value)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return value
    return None


def _resolve_mapping(raw: pd.DataFrame, given: ColumnMapping, origin: _Origin, judgment: bool = False) -> ColumnMapping:
    """The columns to use: those the user named, else the first alias present; `None` when absent."""
    columns = list(raw.columns)

    def pick(role: str, aliases: tuple[str, ...]) -> str | None:
        named = getattr(given, role)
        if named == "":
            return None
        if named is not None:
            if named not in columns:
                raise DataError(f"{origin.name}: mapped column {named!r} for {role} not found "
                                f"(found columns: {_columns_text(columns)})")
            return named
        present = [alias for alias in aliases if alias in columns]
        if len(present) > 1 and role in ("prompt", "chosen", "rejected"):
            raise DataError(f"{origin.name}: ambiguous columns for {role} ({_columns_text(present)}); "
                            f"give a column mapping with {role}")
        return present[0] if present else None

    chosen = pick("chosen", _CHOSEN_ALIASES)
    rejected = pick("rejected", _REJECTED_ALIASES)
    if judgment:
        pass
    elif chosen is None and rejected is None:
        raise DataError(f"{origin.name}: cannot recognise the format (columns: {_columns_text(columns)}); "
                        "give a column mapping with prompt/chosen/rejected")
    else:
        for role, column in (("chosen", chosen), ("rejected", rejected)):
            if column is None:
                raise DataError(f"{origin.name}: missing column {role!r} (found columns: {_columns_text(columns)})")
        if chosen == rejected:
            raise DataError(f"{origin.name}: column {chosen!r} is mapped to both chosen and rejected")
    prompt = pick("prompt", _PROMPT_ALIASES)
    if prompt is None and given.prompt is None and _SHAREGPT_PROMPT in columns:
        prompt = _SHAREGPT_PROMPT
    return ColumnMapping(
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        category=pick("category", _CATEGORY_ALIASES),
        margin=pick("margin", _MARGIN_ALIASES),
        pair_id=pick("pair_id", _ID_ALIASES),
    )


# Conventions of public judgment datasets: (name, columns that identify it, mapping it implies). Checked in
# order; the first whose columns are all present applies unless the user's mapping says otherwise.
_JUDGMENT_CONVENTIONS = (
    ("AlpacaEval annotations", ("output_1", "output_2", "preference"),
     dict(response_a="output_1", response_b="output_2", winner="preference", a_wins=[1], b_wins=[2])),
    ("Chatbot Arena / MT-Bench judgments", ("conversation_a", "conversation_b", "winner"),
     dict(response_a="conversation_a", response_b="conversation_b", winner="winner", a_wins=["model_a"],
          b_wins=["model_b"])),
    ("PKU-SafeRLHF", ("response_0", "response_1", "better_response_id"),
     dict(response_a="response_0", response_b="response_1", winner="better_response_id", a_wins=[0], b_wins=[1])),
    ("SHP", ("human_ref_A", "human_ref_B", "labels"),
     dict(response_a="human_ref_A", response_b="human_ref_B", winner="labels", a_wins=[1], b_wins=[0],
          prompt="history", category="domain")),
    ("HelpSteer2 preferences", ("response_1", "response_2", "preference_strength"),
     dict(response_a="response_1", response_b="response_2", winner="preference_strength", a_wins="<0", b_wins=">0")),
    ("Unified-Feedback ratings", ("conv_A", "conv_B", "conv_A_rating", "conv_B_rating"),
     dict(response_a="conv_A", response_b="conv_B", rating_a="conv_A_rating", rating_b="conv_B_rating")),
    ("generic judgment", ("response_a", "response_b", "winner"),
     dict(response_a="response_a", response_b="response_b", winner="winner")),
)
# Unambiguous verdict spellings, tried when a winner column is given without a_wins/b_wins.
_WINNER_SPELLINGS = (("model_a", "model_b"), ("a", "b"), ("response_a", "response_b"), ("1", "2"),
                     ("first", "second"), ("left", "right"))
_JUDGMENT_FIELDS = ("response_a", "response_b", "winner", "a_wins", "b_wins", "rating_a", "rating_b")


def _judgment_mapping(raw: pd.DataFrame, given: ColumnMapping, origin: _Origin) -> tuple[ColumnMapping, str] | None:
    """The full mapping and the convention's name when the rows are judgments, else None."""
    columns = set(raw.columns)
    named = {name: getattr(given, name) for name in _JUDGMENT_FIELDS if getattr(given, name) not in (None, "")}
    convention, implied = None, {}
    has_pairs = any(alias in columns for alias in _CHOSEN_ALIASES + _REJECTED_ALIASES)
    if not (given.chosen or given.rejected or has_pairs):  # chosen/rejected columns win over a convention
        for name, needed, defaults in _JUDGMENT_CONVENTIONS:
            if set(needed) <= columns:
                convention, implied = name, defaults
                break
    if not named and convention is None:
        return None
    if named and convention is None:
        convention = "judgment by column mapping"
    merged = {**implied, **named}
    for role in ("prompt", "category", "margin", "pair_id"):
        if getattr(given, role) is not None:  # the user's choice, "" included, beats the convention's
            merged.pop(role, None)
    if not (merged.get("response_a") and merged.get("response_b")):
        raise DataError(f"{origin.name}: a judgment mapping needs both response_a and response_b")
    if not merged.get("winner") and not (merged.get("rating_a") and merged.get("rating_b")):
        raise DataError(f"{origin.name}: a judgment mapping needs winner (or rating_a and rating_b)")
    for role in ("response_a", "response_b", "winner", "rating_a", "rating_b", "prompt", "category"):
        column = merged.get(role)
        if column and column not in columns:
            if role in ("prompt", "category") and role not in named and getattr(given, role) is None:
                merged.pop(role)  # a convention's optional column the file lacks
                continue
            raise DataError(f"{origin.name}: mapped column {column!r} for {role} not found "
                            f"(found columns: {_columns_text(raw.columns)})")
    rest = dataclasses.replace(given, chosen="", rejected="", **{k: v for k, v in merged.items()
                                                                  if k in ("prompt", "category")})
    base = _resolve_mapping(raw, rest, origin, judgment=True)
    judged = {k: v for k, v in merged.items() if k in _JUDGMENT_FIELDS}
    return dataclasses.replace(base, chosen=None, rejected=None, **judged), convention


def _winner_key(value) -> str | None:
    """A verdict as a comparable key: numbers (also numbers stored as text) by value, text case-insensitively."""
    value = _plain(value)
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        text = value.strip()
        try:
            value = float(text)
        except ValueError:
            return text.lower()
    if isinstance(value, numbers.Real):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    return _show(value)


def _as_keys(values) -> set[str]:
    values = values if isinstance(values, list) else [values]
    return {key for key in (_winner_key(v) for v in values) if key is not None}


def _number(value) -> float | None:
    key = _winner_key(value)
    try:
        return None if key is None else float(key)
    except ValueError:
        return None


def _judge(raw: pd.DataFrame, mapping: ColumnMapping, convention: str, origin: _Origin
           ) -> tuple[pd.DataFrame, np.ndarray, str]:
    """(the rows with a winner, +1 where response_a won and -1 where response_b won, a one-line note)."""
    a, b = mapping.response_a, mapping.response_b
    if mapping.winner:
        keys = [_winner_key(v) for v in raw[mapping.winner].tolist()]
        a_wins, b_wins = mapping.a_wins, mapping.b_wins
        if a_wins is None or b_wins is None:
            a_wins, b_wins = _infer_winner_values(set(k for k in keys if k is not None), mapping, origin)
            mapping.a_wins, mapping.b_wins = a_wins, b_wins
        if a_wins in ("<0", ">0") or b_wins in ("<0", ">0"):
            signs = {"<0": -1.0, ">0": 1.0}
            if a_wins not in signs or b_wins not in signs or a_wins == b_wins:
                raise DataError(f"{origin.name}: a_wins and b_wins must be '<0' and '>0' (or the reverse) together")
            values = [_number(v) for v in raw[mapping.winner].tolist()]
            sides = np.array([0 if v is None or v == 0 else (1 if np.sign(v) == signs[a_wins] else -1) for v in values])
            rule = f"{mapping.winner} {a_wins} = {a} wins, {b_wins} = {b} wins"
        else:
            a_keys, b_keys = _as_keys(a_wins), _as_keys(b_wins)
            if a_keys & b_keys:
                raise DataError(f"{origin.name}: value(s) {', '.join(sorted(a_keys & b_keys))} given for both a_wins "
                                "and b_wins")
            sides = np.array([1 if k in a_keys else (-1 if k in b_keys else 0) for k in keys])
            rule = (f"{mapping.winner} {'/'.join(sorted(a_keys))} = {a} wins, "
                    f"{'/'.join(sorted(b_keys))} = {b} wins")
        dropped_values = [("missing" if k is None else k) for k, side in zip(keys, sides) if side == 0]
    else:
        ra = [_number(v) for v in raw[mapping.rating_a].tolist()]
        rb = [_number(v) for v in raw[mapping.rating_b].tolist()]
        sides = np.array([0 if x is None or y is None or x == y else (1 if x > y else -1) for x, y in zip(ra, rb)])
        rule = f"the higher of {mapping.rating_a} and {mapping.rating_b} wins"
        dropped_values = [("missing" if x is None or y is None else "tie") for x, y, side in zip(ra, rb, sides)
                          if side == 0]
    note = f"read as judgments ({convention}): {a} vs {b}, {rule}"
    if dropped_values:
        counts = pd.Series(dropped_values).value_counts()
        shown = ", ".join(f"{value}: {count}" for value, count in counts.head(4).items())
        more = ", ..." if len(counts) > 4 else ""
        note += f"; dropped {len(dropped_values)} row(s) with no winner ({shown}{more})"
    keep = sides != 0
    if not keep.any():
        raise DataError(f"{origin.name}: no row has a winner ({rule}); check a_wins and b_wins in the column mapping")
    return raw[keep], sides[keep], note


def _infer_winner_values(present: set[str], mapping: ColumnMapping, origin: _Origin) -> tuple[list, list]:
    """a_wins/b_wins from the verdicts present: the response columns' own names, else an unambiguous pair of
    spellings. 0/1 alone is ambiguous (an index in PKU-SafeRLHF, "A preferred" in SHP), so it is refused."""
    for a_value, b_value in ((mapping.response_a.lower(), mapping.response_b.lower()), *_WINNER_SPELLINGS):
        if (a_value, b_value) == ("1", "2") and "2" not in present:
            continue  # 0/1 (and 1 alone) could be an index or a flag
        if a_value in present or b_value in present:
            return [a_value], [b_value]
    shown = ", ".join(sorted(present)[:6]) or "none"
    raise DataError(f"{origin.name}: cannot tell which values of column {mapping.winner!r} mean "
                    f"{mapping.response_a} or {mapping.response_b} won (found: {shown}); give a_wins and b_wins "
                    "in the column mapping")


def _plain(value):
    """Arrow-backed tables hand lists over as numpy arrays and numbers as numpy scalars; use Python's."""
    if isinstance(value, np.ndarray):
        return [_plain(item) for item in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _is_messages(value) -> bool:
    return isinstance(value, (list, tuple, dict))


def _uses_sharegpt_keys(value) -> bool:
    first = value[0] if isinstance(value, (list, tuple)) and value else value
    return isinstance(first, dict) and "from" in first and "value" in first


# ---------------------------------------------------------------------------------------------------------
# Row conversion


def _convert(raw: pd.DataFrame, mapping: ColumnMapping, fmt: str, origin: _Origin, tokenizer,
             skips: _Skips, sides: np.ndarray | None = None) -> pd.DataFrame:
    rows = [int(row) for row in raw.index]
    n = len(rows)
    if sides is None:
        chosen_values = raw[mapping.chosen].tolist()
        rejected_values = raw[mapping.rejected].tolist()
        row_mappings = [mapping] * n
    else:  # judgments: the winning side is chosen; errors name the column the text came from
        a_values, b_values = raw[mapping.response_a].tolist(), raw[mapping.response_b].tolist()
        chosen_values = [x if side > 0 else y for x, y, side in zip(a_values, b_values, sides)]
        rejected_values = [y if side > 0 else x for x, y, side in zip(a_values, b_values, sides)]
        a_won = dataclasses.replace(mapping, chosen=mapping.response_a, rejected=mapping.response_b)
        b_won = dataclasses.replace(mapping, chosen=mapping.response_b, rejected=mapping.response_a)
        row_mappings = [a_won if side > 0 else b_won for side in sides]
    prompt_values = raw[mapping.prompt].tolist() if mapping.prompt else [None] * n
    margin_values = raw[mapping.margin].tolist() if mapping.margin else [None] * n
    id_values = raw[mapping.pair_id].tolist() if mapping.pair_id else [None] * n
    row_columns = (mapping.chosen, mapping.rejected, mapping.response_a, mapping.response_b, mapping.prompt,
                   mapping.margin, mapping.pair_id)

    kept, prompts, chosens, rejecteds, prompt_jsons, hash_keys, margins, given_ids = ([] for _ in range(8))
    for i, row in enumerate(rows):
        if row in skips.rows:  # already left out by the reader
            continue
        try:
            prompt, chosen, rejected, prompt_json, hash_key = _convert_row(
                row, prompt_values[i], chosen_values[i], rejected_values[i], row_mappings[i], fmt, origin, tokenizer)
            margin = _margin(margin_values[i], origin.at(row, mapping.margin)) if mapping.margin else math.nan
            pair_id = _given_id(id_values[i], origin.at(row, mapping.pair_id)) if mapping.pair_id else None
        except DataError as exc:
            skips.add_error(origin, row, exc, raw, row_columns)
            continue
        kept.append(i)
        prompts.append(prompt)
        chosens.append(chosen)
        rejecteds.append(rejected)
        prompt_jsons.append(prompt_json)
        hash_keys.append(hash_key)
        margins.append(margin)
        given_ids.append(pair_id)

    kept_rows = [rows[i] for i in kept]
    if mapping.pair_id:
        keep = _unique_ids(given_ids, kept_rows, mapping.pair_id, origin, skips)
        kept = [kept[j] for j in keep]
        kept_rows = [kept_rows[j] for j in keep]
        prompts, chosens, rejecteds, prompt_jsons, margins, pair_ids = (
            [values[j] for j in keep] for values in (prompts, chosens, rejecteds, prompt_jsons, margins, given_ids))
    else:
        pair_ids = _generated_ids(hash_keys, chosens, rejecteds)
    category_values = raw[mapping.category].tolist() if mapping.category else None
    categories = ([_category(category_values[i]) for i in kept] if mapping.category
                  else [_DEFAULT_CATEGORY] * len(kept))
    return pd.DataFrame({
        "pair_id": pair_ids,
        "prompt": prompts,
        "chosen": chosens,
        "rejected": rejecteds,
        "category": categories,
        "margin": np.asarray(margins, dtype=float),
        "source_row": np.asarray(kept_rows, dtype=np.int64),
        "identical": np.asarray([c == r for c, r in zip(chosens, rejecteds)], dtype=bool),
        "prompt_messages": prompt_jsons,
    }, columns=list(CANONICAL_COLUMNS))


def _convert_row(row: int, prompt_value, chosen_value, rejected_value, mapping: ColumnMapping, fmt: str,
                 origin: _Origin, tokenizer) -> tuple[str, str, str, str, str]:
    """(prompt, chosen, rejected, prompt messages as JSON, the text ids hash) for one row, or a DataError."""
    if fmt in ("explicit", "implicit"):
        chosen = _text(chosen_value, origin.at(row, mapping.chosen))
        rejected = _text(rejected_value, origin.at(row, mapping.rejected))
        _check_response(chosen, origin.at(row, mapping.chosen))
        _check_response(rejected, origin.at(row, mapping.rejected))
        if fmt == "explicit":
            prompt = _text(prompt_value, origin.at(row, mapping.prompt))
        else:
            prompt, chosen, rejected = _split_implicit_prompt(chosen, rejected)
            after = " after splitting off the shared prompt"
            _check_response(chosen, origin.at(row, mapping.chosen), after)
            _check_response(rejected, origin.at(row, mapping.rejected), after)
        return prompt, chosen, rejected, "", prompt
    prompt_messages, chosen, rejected = _conversation_pair(row, prompt_value, chosen_value, rejected_value,
                                                           mapping, origin)
    try:
        prompt = render_messages(prompt_messages, tokenizer)
    except Exception as exc:  # a chat template rejecting these roles is a data problem for this row
        raise DataError(f"{origin.at(row, mapping.prompt or mapping.chosen)}: the tokenizer's chat "
                        f"template failed on the prompt ({first_line(exc)})") from None
    prompt_json = json.dumps(prompt_messages, ensure_ascii=False) if prompt_messages else ""
    # Ids hash the messages, not their rendering, so they do not change with the tokenizer.
    return prompt, chosen, rejected, prompt_json, prompt_json


def _text(value, where: str) -> str:
    value = _plain(value)
    if isinstance(value, str):
        return value
    if isinstance(value, float) and math.isnan(value):
        raise DataError(f"{where}: NaN or missing (expected text)")
    if value is None or value is pd.NA:
        raise DataError(f"{where}: expected text, got None")
    raise DataError(f"{where}: expected text, got {type(value).__name__} {_show(value)}")


def _check_response(text: str, where: str, context: str = "") -> None:
    if not text.strip():
        raise DataError(f"{where}: empty or whitespace-only response{context}")


def _split_implicit_prompt(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two full transcripts into (prompt, chosen, rejected) at the end of their common prefix, cut
    back to a turn boundary: the last "\\n\\nAssistant:" marker (kept in the prompt) in HH-RLHF-style
    text, else the last whitespace so no word is split. Responses lose leading whitespace only."""
    common = chosen[:_common_prefix_length(chosen, rejected)]
    marker = common.rfind(_HH_ASSISTANT_MARKER)
    if marker >= 0:
        cut = marker + len(_HH_ASSISTANT_MARKER)
    else:
        cut = next((i for i in range(len(common) - 1, -1, -1) if common[i].isspace()), 0)
    return chosen[:cut], chosen[cut:].lstrip(), rejected[cut:].lstrip()


def _common_prefix_length(first: str, second: str) -> int:
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


def _conversation_pair(row: int, prompt_value, chosen_value, rejected_value, mapping: ColumnMapping,
                       origin: _Origin) -> tuple[list[dict], str, str]:
    """(prompt messages, chosen text, rejected text) for one conversational or ShareGPT row. The prompt is
    the explicit prompt column (a message list, or text taken as one user turn) or else the leading
    messages chosen and rejected share; each response is what follows it."""
    chosen_where = origin.at(row, mapping.chosen)
    rejected_where = origin.at(row, mapping.rejected)
    chosen = _response_messages(chosen_value, chosen_where)
    rejected = _response_messages(rejected_value, rejected_where)
    if mapping.prompt:
        prompt_value = _plain(prompt_value)
        prompt_where = origin.at(row, mapping.prompt)
        if isinstance(prompt_value, str):
            prompt = [{"role": "user", "content": prompt_value}]
        else:
            prompt = _messages(prompt_value, prompt_where)
        # Some datasets (UltraFeedback binarized) repeat the prompt at the start of each response list.
        chosen = _drop_prefix(chosen, prompt)
        rejected = _drop_prefix(rejected, prompt)
    elif isinstance(chosen, list) and isinstance(rejected, list):
        shared = 0
        # Each side keeps at least its last message, so identical conversations still have a response.
        while (shared < min(len(chosen), len(rejected)) - 1) and chosen[shared] == rejected[shared]:
            shared += 1
        prompt, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    else:
        prompt = []
    return prompt, _response_text(chosen, chosen_where), _response_text(rejected, rejected_where)


def _response_messages(value, where: str) -> str | list[dict]:
    """A response given as text stays text; a message or a list of messages becomes a message list."""
    value = _plain(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return _messages([value], where)
    return _messages(value, where)


def _messages(value, where: str) -> list[dict]:
    value = _plain(value)
    if not isinstance(value, (list, tuple)):
        if isinstance(value, float) and math.isnan(value):
            raise DataError(f"{where}: NaN or missing (expected a list of messages)")
        kind = "None" if value is None else f"{type(value).__name__} {_show(value)}"
        raise DataError(f"{where}: expected a list of messages, got {kind}")
    return [_message(message, f"{where}, message {number}") for number, message in enumerate(value, start=1)]


def _message(message, where: str) -> dict:
    if not isinstance(message, dict):
        raise DataError(f"{where}: expected an object with role and content, got {_show(message)}")
    # Arrow gives every message of a column the union of keys, so an absent key can read as None.
    role, speaker = message.get("role"), message.get("from")
    if role is None and isinstance(speaker, str):
        role = _SHAREGPT_ROLES.get(speaker, speaker)
    if role is None:
        raise DataError(f"{where}: no 'role' (or 'from') in {_show(message)}")
    if not isinstance(role, str):
        raise DataError(f"{where}: role must be text, got {_show(role)}")
    content = _plain(message.get("content"))
    if content is None:
        content = message.get("value")
    if isinstance(content, (list, dict)):
        content = _text_parts(content, where)
    return {"role": role, "content": _text(content, where)}


def _text_parts(content, where: str) -> str:
    """OpenAI-style content parts ([{"type": "text", "text": ...}, {"type": "image_url", ...}]) as their text
    parts joined by newlines; other parts (images, audio) carry no text a reward model here could read."""
    parts = content if isinstance(content, list) else [content]
    texts = []
    for part in parts:
        part = _plain(part)
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str) and part.get("type", "text") == "text":
            texts.append(part["text"])
    if not texts:
        raise DataError(f"{where}: no text part in content {_show(content)}")
    return "\n".join(texts)


def _drop_prefix(response: str | list[dict], prompt: list[dict]) -> str | list[dict]:
    if isinstance(response, list) and len(response) > len(prompt) and response[:len(prompt)] == prompt:
        return response[len(prompt):]
    return response


def _response_text(response: str | list[dict], where: str) -> str:
    """A response's text: assistant turns joined by blank lines; any other turn keeps its role label so
    no text is lost."""
    if isinstance(response, str):
        text = response
    elif not response:
        raise DataError(f"{where}: no response message after the prompt")
    elif all(message["role"] == "assistant" for message in response):
        text = "\n\n".join(message["content"] for message in response)
    else:
        text = render_messages(response)
    _check_response(text, where)
    return text


def render_messages(messages: list[dict], tokenizer=None, add_generation_prompt: bool = False) -> str:
    """Render chat messages as text: with the tokenizer's chat template when it has one, else as plain
    "User: ...\\n\\nAssistant: ..." turns (with a trailing "Assistant:" for a generation prompt)."""
    if not messages:
        return ""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    turns = [f"{_PLAIN_LABELS.get(m['role'], m['role'].capitalize())}: {m['content']}" for m in messages]
    if add_generation_prompt:
        turns.append("Assistant:")
    return "\n\n".join(turns)


# ---------------------------------------------------------------------------------------------------------
# Optional columns and ids


def _category(value) -> str:
    """Missing or empty categories fall into the default group rather than failing the load."""
    value = _plain(value)
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        return _DEFAULT_CATEGORY
    return str(value)


def _margin(value, where: str) -> float:
    """A number, or NaN for a missing value; CSV text is parsed."""
    value = _plain(value)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return math.nan
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise DataError(f"{where}: expected a number, got {type(value).__name__} {_show(value)}")


def _given_id(value, where: str) -> str:
    value = _plain(value)
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        raise DataError(f"{where}: missing id {_show(value)}")
    return str(value)


def _unique_ids(ids: list[str], rows: list[int], column: str, origin: _Origin, skips: _Skips) -> list[int]:
    """Positions to keep: a repeated id is an error when strict, else its later rows are skipped."""
    keep: list[int] = []
    first_row: dict[str, int] = {}
    for position, (pair_id, row) in enumerate(zip(ids, rows)):
        if pair_id in first_row:
            if skips.strict:
                raise DataError(f"{origin.name}: duplicate id {_show(pair_id)} in column {column!r} "
                                f"({origin.row_word}s {first_row[pair_id]} and {row}); ids must be unique, "
                                "or map pair_id to '' to generate ids")
            skips.add(origin, row, column, _show(pair_id),
                      f"duplicate id {_show(pair_id)} (first at {origin.row_word} {first_row[pair_id]})")
            continue
        first_row[pair_id] = row
        keep.append(position)
    return keep


def _generated_ids(prompts: list[str], chosens: list[str], rejecteds: list[str]) -> list[str]:
    """'p' + 12 hex chars of sha1 over the texts; exact duplicate pairs get '-2', '-3', ... in order."""
    ids: list[str] = []
    seen: dict[str, int] = {}
    for prompt, chosen, rejected in zip(prompts, chosens, rejecteds):
        key = "\x1f".join((prompt, chosen, rejected))
        base = "p" + hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]
        seen[base] = seen.get(base, 0) + 1
        ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    return ids


# ---------------------------------------------------------------------------------------------------------
# Writing a cleaned copy


def write_like_source(table: PairTable, keep_rows, flip_rows, stem: str | Path, like_source: bool = True) -> Path:
    """Write the pairs from source rows `keep_rows`, with the labels of `flip_rows` reversed, to `stem` plus
    an extension. `like_source` with a local file source: the file's own layout and extension, every column
    kept (the preferred side swapped for a pair table; the verdict, or the ratings, swapped for judgments).
    Otherwise, or for other sources: JSON lines with prompt (a message list for chat data), chosen,
    rejected, category, pair_id and margin. Rows the load skipped are never written."""
    keep_rows, flip_rows = set(int(r) for r in keep_rows), set(int(r) for r in flip_rows)
    stem = Path(stem)
    if like_source and table.source_path:
        source = Path(table.source_path)
        raw, _ = _read_file(source, _Skips(strict=False))
        raw = raw.rename(columns=str)
        raw = raw[raw.index.isin(list(keep_rows))].copy()
        flip = raw.index.isin(list(flip_rows))
        if flip.any():
            _flip_raw(raw, flip, table.mapping)
        path = stem.with_suffix(source.suffix.lower())
        if path.suffix == ".csv":
            raw.to_csv(path, index=False)
        elif path.suffix == ".parquet":
            raw.reset_index(drop=True).to_parquet(path, index=False)
        elif path.suffix == ".json" and not _is_json_lines(source):
            path.write_text(raw.to_json(orient="records", force_ascii=False, indent=1))
        else:
            path.write_text(raw.to_json(orient="records", lines=True, force_ascii=False))
        return path
    pairs = table.pairs[table.pairs["source_row"].isin(list(keep_rows))]
    path = stem.with_suffix(".jsonl")
    with open(path, "w", encoding="utf-8") as handle:
        for row in pairs.itertuples(index=False):
            chosen, rejected = (row.rejected, row.chosen) if int(row.source_row) in flip_rows else (row.chosen, row.rejected)
            record = {"prompt": json.loads(row.prompt_messages) if row.prompt_messages else row.prompt,
                      "chosen": chosen, "rejected": rejected, "category": row.category, "pair_id": row.pair_id}
            if not pd.isna(row.margin):
                record["margin"] = float(row.margin)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def _is_json_lines(path: Path) -> bool:
    return path.read_text(encoding="utf-8-sig").lstrip()[:1] != "["


def _flip_raw(raw: pd.DataFrame, flip: np.ndarray, mapping: ColumnMapping) -> None:
    """Reverse the label of the rows in `flip`, in the source's own columns."""
    def swap(first: str, second: str) -> None:
        a_values, b_values = raw.loc[flip, first].copy(), raw.loc[flip, second].copy()
        raw[first] = raw[first].astype(object)
        raw[second] = raw[second].astype(object)
        raw.loc[flip, first], raw.loc[flip, second] = b_values.to_numpy(), a_values.to_numpy()

    if not mapping.is_judgment:
        swap(mapping.chosen, mapping.rejected)
    elif not mapping.winner:
        swap(mapping.rating_a, mapping.rating_b)
    elif mapping.a_wins in ("<0", ">0"):
        raw[mapping.winner] = raw[mapping.winner].astype(object)
        raw.loc[flip, mapping.winner] = [-_number(v) for v in raw.loc[flip, mapping.winner]]
    else:
        a_keys, b_keys = _as_keys(mapping.a_wins), _as_keys(mapping.b_wins)
        # Write the other side's verdict as the file spells it (7 stays a number, "model_b" stays text).
        spelled = {}
        for value in raw[mapping.winner].tolist():
            key = _winner_key(value)
            for keys, side in ((a_keys, "a"), (b_keys, "b")):
                if key in keys:
                    spelled.setdefault(side, value)
        spelled.setdefault("a", (mapping.a_wins if isinstance(mapping.a_wins, list) else [mapping.a_wins])[0])
        spelled.setdefault("b", (mapping.b_wins if isinstance(mapping.b_wins, list) else [mapping.b_wins])[0])
        raw[mapping.winner] = raw[mapping.winner].astype(object)
        raw.loc[flip, mapping.winner] = [spelled["b"] if _winner_key(v) in a_keys else spelled["a"]
                                         for v in raw.loc[flip, mapping.winner]]


# ---------------------------------------------------------------------------------------------------------
# Splitting and sampling


def split_pairs(pairs: pd.DataFrame, eval_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, eval): a deterministic split from `seed`, stratified by category when there is one.

    Eval gets round(eval_fraction * n) pairs, at least 1 when n >= 2 and the fraction is positive, and
    never all of them. Each category contributes its share (largest remainders get the rounding), taking
    its members in the order of one `default_rng(seed)` permutation. Both parts keep the original order."""
    if not isinstance(eval_fraction, numbers.Real) or isinstance(eval_fraction, bool) or not 0 <= eval_fraction <= 0.9:
        raise SpecError(f"eval_fraction must be a number between 0 and 0.9, got {_show(eval_fraction)}")
    n = len(pairs)
    n_eval = round(eval_fraction * n)
    if eval_fraction > 0 and n >= 2:
        n_eval = min(max(n_eval, 1), n - 1)
    elif n < 2:
        n_eval = 0

    order = np.random.default_rng(seed).permutation(n)
    categories = (pairs["category"].astype(str).to_numpy() if "category" in pairs else np.zeros(n, dtype=int))[order]
    _, group, counts = np.unique(categories, return_inverse=True, return_counts=True)
    quotas = eval_fraction * counts
    per_group = np.floor(quotas).astype(int)
    leftover = n_eval - int(per_group.sum())
    if leftover > 0:
        per_group[np.argsort(-(quotas - per_group), kind="stable")[:leftover]] += 1

    # Rank of each permuted pair within its category: the first per_group[g] of group g go to eval.
    by_group = np.argsort(group, kind="stable")
    starts = np.cumsum(counts) - counts
    rank = np.empty(n, dtype=int)
    rank[by_group] = np.arange(n) - starts[group[by_group]]
    is_eval = rank < per_group[group]
    train_positions = np.sort(order[~is_eval])
    eval_positions = np.sort(order[is_eval])
    return pairs.iloc[train_positions].reset_index(drop=True), pairs.iloc[eval_positions].reset_index(drop=True)


def sample_pairs(pairs: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """A reproducible random subset of `limit` pairs in their original order; all pairs for None or a
    limit of at least len(pairs)."""
    if limit is None:
        return pairs.reset_index(drop=True)
    if not isinstance(limit, numbers.Integral) or isinstance(limit, bool) or limit <= 0:
        raise SpecError(f"limit must be a positive whole number of pairs or None, got {_show(limit)}")
    if limit >= len(pairs):
        return pairs.reset_index(drop=True)
    positions = np.sort(np.random.default_rng(seed).choice(len(pairs), size=int(limit), replace=False))
    return pairs.iloc[positions].reset_index(drop=True)
