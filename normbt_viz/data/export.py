"""Writing pairs out: a cleaned copy in the source's own layout (the audit's), and the pairs in TRL's
explicit-prompt layout (the `data` command's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from normbt_viz.data.formats.common import DEFAULT_CATEGORY, Skips
from normbt_viz.data.formats.files import file_format, is_json_lines, read_local
from normbt_viz.data.formats.judgments import as_keys, number, verdict_key
from normbt_viz.data.formats.mapping import ColumnMapping

if TYPE_CHECKING:
    from normbt_viz.data.sources import PairTable

def write_like_source(table: PairTable, keep_rows, flip_rows, stem: str | Path, like_source: bool = True) -> Path:
    """Write the pairs from source rows `keep_rows`, with the labels of `flip_rows` reversed, to `stem` plus
    an extension. `like_source` with a local file source: the file's own layout and extension, every column
    kept (the preferred side swapped for a pair table; the verdict, or the ratings, swapped for judgments).
    Otherwise, or for other sources: JSON lines with prompt (a message list for chat data), chosen,
    rejected, category, pair_id and margin. Rows the load skipped are never written."""
    keep_rows, flip_rows = set(int(r) for r in keep_rows), set(int(r) for r in flip_rows)
    stem = Path(stem)
    if like_source and table.source_path and table.one_pair_per_row and _flat_mapping(table.mapping):
        source = Path(table.source_path)
        raw, _, _ = read_local(source, Skips(strict=False))
        raw = raw.rename(columns=str)
        raw = raw[raw.index.isin(list(keep_rows))].copy()
        flip = raw.index.isin(list(flip_rows))
        if flip.any():
            _flip_raw(raw, flip, table.mapping)
        # A compressed source is written uncompressed, in its inner format.
        path = stem.with_suffix(file_format(source)[0])
        if path.suffix == ".csv":
            raw.to_csv(path, index=False)
        elif path.suffix == ".parquet":
            raw.reset_index(drop=True).to_parquet(path, index=False)
        elif path.suffix == ".json" and not is_json_lines(source):
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


def _flat_mapping(mapping: ColumnMapping) -> bool:
    """Whether every mapped role is a top-level column, so a copy can be written in the source's own columns."""
    return not any(isinstance(v, str) and ("." in v or "[" in v) for v in mapping.to_dict().values())


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
        raw.loc[flip, mapping.winner] = [-number(v) for v in raw.loc[flip, mapping.winner]]
    else:
        a_keys, b_keys = as_keys(mapping.a_wins), as_keys(mapping.b_wins)
        # Write the other side's verdict as the file spells it (7 stays a number, "model_b" stays text).
        spelled = {}
        for value in raw[mapping.winner].tolist():
            key = verdict_key(value)
            for keys, side in ((a_keys, "a"), (b_keys, "b")):
                if key in keys:
                    spelled.setdefault(side, value)
        spelled.setdefault("a", (mapping.a_wins if isinstance(mapping.a_wins, list) else [mapping.a_wins])[0])
        spelled.setdefault("b", (mapping.b_wins if isinstance(mapping.b_wins, list) else [mapping.b_wins])[0])
        raw[mapping.winner] = raw[mapping.winner].astype(object)
        raw.loc[flip, mapping.winner] = [spelled["b"] if verdict_key(v) in a_keys else spelled["a"]
                                         for v in raw.loc[flip, mapping.winner]]


def write_trl_pairs(table: PairTable, path: str | Path) -> Path:
    """The pairs as JSON lines in TRL's explicit-prompt layout: `prompt`, `chosen`, `rejected` (text, or message
    lists for conversational data), plus `pair_id`, `category` and `margin` when present."""
    path = Path(path)
    conversational = table.format in ("conversational", "sharegpt")
    with open(path, "w", encoding="utf-8") as handle:
        for row in table.pairs.itertuples(index=False):
            if conversational:
                record = {"prompt": json.loads(row.prompt_messages) if row.prompt_messages else [],
                          "chosen": [{"role": "assistant", "content": row.chosen}],
                          "rejected": [{"role": "assistant", "content": row.rejected}]}
            else:
                record = {"prompt": row.prompt, "chosen": row.chosen, "rejected": row.rejected}
            record["pair_id"] = row.pair_id
            if row.category != DEFAULT_CATEGORY:
                record["category"] = row.category
            if not pd.isna(row.margin):
                record["margin"] = float(row.margin)
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
