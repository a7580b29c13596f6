"""Reading local files into one raw table: JSON lines, JSON, CSV, TSV and Parquet, compressed by suffix
(.gz, .bz2, .xz, and .zst where `zstandard` is installed), a JSON object that wraps its rows under one key,
and a folder or glob of shards of one format read as one dataset in file-name order.

Every entry point (the `data` command, `train`, `audit`, the Data page) reads through `read_local`, so a
file loads the same everywhere. Rows are numbered as a user sees them: the line of a JSON lines file, the item
of a JSON list, the data row of a CSV (header not counted), the row of a Parquet file; shards continue the
count from one file to the next, in the order the load report lists.
"""

from __future__ import annotations

import bz2
import glob
import gzip
import io
import json
import lzma
from pathlib import Path

import pandas as pd

from normbt_viz.data.formats.common import Origin, Skips, show
from normbt_viz.errors import DataError, first_line

FILE_FORMATS = (".jsonl", ".json", ".csv", ".tsv", ".parquet")
COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
# Extensions that are clearly files, so a missing "data.xlsx" is reported as a file, not tried on the hub.
OTHER_FILE_EXTENSIONS = (".xlsx", ".xls", ".txt", ".arrow", ".feather", ".pkl", ".zip")
# Shard names that say which split they hold (hub repositories: data/train-00000-of-00003.parquet).
_SPLIT_WORDS = ("train", "test", "validation", "valid", "dev", "eval")


def file_format(path: Path) -> tuple[str, str]:
    """(format suffix, compression suffix or '') from a file name: 'pairs.jsonl.gz' -> ('.jsonl', '.gz')."""
    suffixes = [s.lower() for s in path.suffixes]
    compression = suffixes[-1] if suffixes and suffixes[-1] in COMPRESSIONS else ""
    inner = suffixes[-2] if compression and len(suffixes) >= 2 else (suffixes[-1] if suffixes and not compression else "")
    return inner, compression


def is_file_like(source: str) -> bool:
    inner, compression = file_format(Path(source))
    return bool(compression) or inner in FILE_FORMATS or inner in OTHER_FILE_EXTENSIONS


def is_glob(source: str) -> bool:
    return any(char in source for char in "*?[")


def shard_files(source: str | Path, split: str) -> list[Path] | None:
    """The shard files a folder (not written by save_to_disk) or a glob names, in a stable order; None when
    `source` is neither. Shards of several formats are an error; so is a folder or glob with none."""
    text = str(source)
    if is_glob(text):
        files = sorted(Path(p) for p in glob.glob(str(Path(text).expanduser()), recursive=True) if Path(p).is_file())
        label = text
    else:
        folder = Path(text).expanduser()
        if not folder.is_dir() or (folder / "dataset_info.json").is_file() or (folder / "dataset_dict.json").is_file():
            return None
        files = sorted(p for p in folder.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))
        label = folder.name
    files = [p for p in files if file_format(p)[0] in FILE_FORMATS]
    if not files:
        saved = "not a dataset saved with save_to_disk, and " if not is_glob(text) else ""
        raise DataError(f"{label}: {saved}no data files in it (expected {', '.join(FILE_FORMATS)} files, optionally "
                        "compressed)")
    formats = sorted({file_format(p)[0] for p in files})
    if len(formats) > 1:
        raise DataError(f"{label}: shards of several formats ({', '.join(formats)}); point at one format, "
                        f"e.g. {label}/*{formats[0]}")
    # A folder holding train and test shards is two datasets: read the requested split's shards.
    by_split = {word: [p for p in files if _split_word(p) == word] for word in _SPLIT_WORDS}
    if sum(1 for members in by_split.values() if members) > 1 or (by_split.get(split) and len(by_split[split]) < len(files)):
        if not by_split.get(split):
            present = [word for word, members in by_split.items() if members]
            raise DataError(f"{label}: no shards for split {split!r} (found: {', '.join(present)})")
        files = by_split[split]
    return files


def _split_word(path: Path) -> str | None:
    name = path.name.lower()
    for word in _SPLIT_WORDS:
        if name.startswith(word) or f"/{word}/" in path.as_posix().lower() or f"-{word}-" in name or f"_{word}." in name:
            return word
    return None


def read_local(path: Path, skips: Skips) -> tuple[pd.DataFrame, str, list[str]]:
    """(the table, the word its rows are counted in, notes on how it was read) for one local file. JSON lines
    that do not parse and JSON items that are not objects go to `skips` (a strict collector raises)."""
    inner, compression = file_format(path)
    name = path.name
    if inner not in FILE_FORMATS:
        shown = "".join(path.suffixes[-2:]) if compression else path.suffix
        raise DataError(f"{name}: unknown format {shown!r} (expected .jsonl, .json, .csv, .tsv or .parquet, "
                        "optionally compressed as .gz, .bz2, .xz or .zst)")
    if not path.is_file():
        raise DataError(f"no such file: {path}")
    notes: list[str] = []
    if inner == ".parquet":
        if compression:
            raise DataError(f"{name}: a compressed Parquet file; Parquet compresses its own columns, decompress it first")
        table, row_word = _read_parquet(path), "row"
    else:
        raw = _decompressed(path, compression)
        if inner in (".jsonl", ".json"):
            table, row_word, notes = _read_json(raw, name, inner, skips)
        else:
            table, row_word = _read_csv(raw, name, "\t" if inner == ".tsv" else ","), "row"
    if len(table) == 0:
        if skips.records:
            raise DataError(f"{skips.records[0]['message']} (and no valid row in the file: "
                            f"{len(skips.records)} skipped)")
        raise DataError(f"{name}: empty file, no rows")
    return table, row_word, notes


def read_shards(files: list[Path], label: str, skips: Skips) -> tuple[pd.DataFrame, str, list[str]]:
    """Shards read one by one and stacked, rows numbered on from one shard to the next."""
    tables, notes, offset, row_word = [], [], 0, "row"
    for path in files:
        shard_skips = Skips(skips.strict)
        table, row_word, shard_notes = read_local(path, shard_skips)
        for record in shard_skips.records:
            skips.add(Origin(label, row_word), None if record["row"] is None else record["row"] + offset,
                      record["column"] or None, record["value"], f"{path.name}: {record['reason']}")
        table.index = [int(i) + offset for i in table.index]
        offset = max(offset + 1, int(table.index.max()) + 1) if len(table) else offset
        tables.append(table)
        notes += shard_notes
    notes.insert(0, f"read {len(files)} shard(s) in this order: {', '.join(p.name for p in files[:4])}"
                    + (f", ... ({len(files) - 4} more)" if len(files) > 4 else ""))
    return pd.concat(tables, axis=0), row_word, notes


def _decompressed(path: Path, compression: str) -> bytes:
    raw = path.read_bytes()
    if not compression:
        return raw
    try:
        if compression == ".gz":
            return gzip.decompress(raw)
        if compression == ".bz2":
            return bz2.decompress(raw)
        if compression == ".xz":
            return lzma.decompress(raw)
        try:
            import zstandard
        except ImportError:
            raise DataError(f"{path.name}: reading .zst needs the zstandard package (pip install zstandard)") from None
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw)).read()
    except DataError:
        raise
    except Exception as exc:  # gzip.BadGzipFile, OSError, EOFError, lzma.LZMAError, zstd errors: all one answer
        raise DataError(f"{path.name}: corrupt or truncated {compression[1:]} file ({first_line(exc)})") from None


def _read_json(raw: bytes, name: str, suffix: str, skips: Skips) -> tuple[pd.DataFrame, str, list[str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{name} line {line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    stripped = text.lstrip()
    # A file that starts with a list or object may be JSON whatever its name; else (or on "Extra data" after a
    # first complete value) it holds JSON lines.
    if suffix == ".json" or stripped[:1] == "[":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":
                if suffix == ".json" or "\n" not in stripped.rstrip():
                    raise DataError(f"{name} line {exc.lineno}: malformed JSON ({exc.msg})") from None
            else:
                data = None
        else:
            notes: list[str] = []
            if isinstance(data, dict):
                data, notes = _unwrapped(data, name)
            if not isinstance(data, list):
                raise DataError(f"{name}: expected a list of JSON objects or JSON lines, got {type(data).__name__}")
            if suffix == ".json" or len(data) != 1 or isinstance(data[0], dict):
                return _object_rows(enumerate(data, start=1), Origin(name), skips), "row", notes
    origin = Origin(name, "line")
    return _object_rows(_json_lines(text, origin, skips), origin, skips), "line", []


def _unwrapped(data: dict, name: str) -> tuple[list, list[str]]:
    """The rows of a JSON object that wraps them ({"data": [...]}, {"train": [...]}); a single row otherwise.
    Message lists are not row lists, so one conversational record still reads as one row."""
    row_lists = [key for key, value in data.items()
                 if isinstance(value, list) and value and all(isinstance(item, dict) for item in value)
                 and not any(k in value[0] for k in ("role", "from"))]
    if len(row_lists) > 1:
        raise DataError(f"{name}: the JSON object holds several lists of rows ({', '.join(map(repr, row_lists))}); "
                        "keep one, or save each as its own file")
    if row_lists:
        key = row_lists[0]
        return data[key], [f"read the rows under the JSON object's key {key!r} ({len(data[key])} rows)"]
    return [data], []


def _json_lines(text: str, origin: Origin, skips: Skips):
    """(line number, parsed value) of each non-blank line; a malformed line is skipped and listed."""
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            skips.add(origin, number, None, show(line), f"malformed JSON ({exc.msg})")


def _object_rows(numbered, origin: Origin, skips: Skips) -> pd.DataFrame:
    """The JSON objects among (number, value) as a table indexed by number; any other value is skipped and listed."""
    records, rows = [], []
    for number, record in numbered:
        if not isinstance(record, dict):
            skips.add(origin, number, None, show(record), f"expected a JSON object, got {show(record)}")
            continue
        records.append(record)
        rows.append(number)
    return pd.DataFrame(records, index=rows, dtype=object)


def _read_csv(raw: bytes, name: str, separator: str) -> pd.DataFrame:
    kind = "TSV" if separator == "\t" else "CSV"
    try:
        table = pd.read_csv(io.BytesIO(raw), sep=separator, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: empty file, no rows") from None
    except ValueError as exc:  # pandas' ParserError and UnicodeDecodeError are both ValueErrors
        raise DataError(f"{name}: cannot parse {kind} ({first_line(exc)})") from None
    table.index = range(1, len(table) + 1)
    return table


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise DataError(f"{path.name}: cannot read Parquet ({first_line(exc)})") from None
    table.index = range(1, len(table) + 1)
    return table


def is_json_lines(path: Path) -> bool:
    inner, compression = file_format(path)
    return _decompressed(path, compression).decode("utf-8-sig").lstrip()[:1] != "["

