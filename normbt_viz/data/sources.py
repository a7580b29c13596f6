"""Preference data in: read pairs from a file, a folder of shards, a DataFrame, a Hugging Face dataset or the
demo generator, recognise their layout, validate them and return one canonical table of (prompt, chosen,
rejected) pairs with stable ids, and the story of the load (`PairTable.report`).

The layouts live in `normbt_viz.data.formats` (one module per family: plain text, conversations, judgments,
lists of answers; the mapping language; file reading); this module decides which applies and converts rows.
Writing pairs out (`export`) and splitting them (`splits`) have their own modules; their functions are
importable from here too, as callers have always imported them.

Validation happens here, once, at the boundary: every problem is one line naming the source, the row (the
line for JSON lines), the column and the value, so nothing downstream re-checks. Loading is lenient by
default: a row that fails validation (or a JSON line that does not parse) is skipped and listed in
`PairTable.skipped`; `strict=True` raises the first such problem as a `DataError` instead. Problems with the
file as a whole (unknown format, missing column, an ambiguous verdict, no valid row at all) are always errors.

Every assumption the load makes (a recognised judgment convention, ties dropped, a nested field read, which
pairs a ranking gives) is one note line with counts, in `PairTable.notes` and the report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from normbt_viz.data.export import write_like_source, write_trl_pairs
from normbt_viz.data.formats.common import (
    DEFAULT_CATEGORY, SKIPPED_COLUMNS, Origin, Skips, columns_text, first_present, plain, show,
)
from normbt_viz.data.formats.files import FILE_FORMATS, is_file_like, is_glob, read_local, read_shards, shard_files
from normbt_viz.data.formats.judgments import arena_one_hot, judge, judgment_mapping, number
from normbt_viz.data.formats.lists import expand_ranking, expand_variants, text_list
from normbt_viz.data.formats.mapping import (
    ANSWER_FIELDS, CHOSEN_ALIASES, MAPPING_KEYS, REJECTED_ALIASES, SCORE_ALIASES, ColumnMapping,
    check_mapped_columns, first_value, materialise_paths, mapping_help, resolve_mapping,
)
from normbt_viz.data.formats.messages import conversation_pair, is_messages, render_messages, uses_sharegpt_keys
from normbt_viz.data.formats.text import check_response, prompt_text, split_implicit_prompt, text
from normbt_viz.data.load_report import LoadReport
from normbt_viz.data.splits import sample_pairs, split_pairs
from normbt_viz.errors import DataError, SpecError, first_line

__all__ = ["CANONICAL_COLUMNS", "FILE_FORMATS", "MAPPING_KEYS", "ColumnMapping", "LoadReport", "PairTable",
           "check_hub_repo", "load_pairs", "mapping_help", "render_messages", "sample_pairs", "split_pairs",
           "write_like_source", "write_trl_pairs"]

CANONICAL_COLUMNS = (
    "pair_id", "prompt", "chosen", "rejected", "category", "margin", "source_row", "identical", "prompt_messages",
)
_FINGERPRINT_COLUMNS = ("pair_id", "prompt", "chosen", "rejected", "category", "margin")
_DEMO_COLUMNS = ("pair_id", "prompt", "chosen", "rejected", "category", "flipped")


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
    report: LoadReport | None = None
    one_pair_per_row: bool = True  # False for rankings and variant lists: a source row gives several pairs

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


# ---------------------------------------------------------------------------------------------------------
# Sources


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

    `source` is "demo"; a local file (.jsonl/.json/.csv/.tsv/.parquet, the text formats optionally compressed
    as .gz/.bz2/.xz/.zst); a folder or glob of shards of one format; a directory written by
    `datasets.Dataset.save_to_disk`; a pandas DataFrame; or else a Hugging Face dataset id loaded with
    `datasets.load_dataset(source, config, split=split)`. The layout is recognised from the columns and
    values unless `mapping` names them. `chat_template_tokenizer` only changes how conversational prompts
    are rendered into the `prompt` column."""
    if isinstance(mapping, dict):
        mapping = ColumnMapping.from_dict(mapping)
    elif mapping is not None and not isinstance(mapping, ColumnMapping):
        raise SpecError(f"mapping must be a ColumnMapping, a dict or None, got {type(mapping).__name__}")
    given = mapping or ColumnMapping()

    if isinstance(source, pd.DataFrame):
        raw = source.reset_index(drop=True)
        raw.index = range(1, len(raw) + 1)
        return _build(raw, Origin("uploaded table"), "uploaded table", given, chat_template_tokenizer, Skips(strict))
    if isinstance(source, str) and source == "demo":
        return _load_demo(demo_size, demo_noise, demo_seed, given)
    if isinstance(source, Path) or (isinstance(source, str) and _looks_local(source)):
        path = Path(source).expanduser()
        skips = Skips(strict)
        shards = shard_files(source, split)
        if shards is not None:
            label = str(source) if is_glob(str(source)) else path.name
            raw, row_word, read_notes = read_shards(shards, label, skips)
            return _build(raw, Origin(label, row_word), f"{len(shards)} shard(s) of {source}", given,
                          chat_template_tokenizer, skips, read_notes)
        if path.is_dir():
            raw, origin = _load_from_disk(path, split)
            return _build(raw, origin, f"local dataset {str(path)!r} (split {split!r})", given, chat_template_tokenizer,
                          skips)
        raw, row_word, read_notes = read_local(path, skips)
        table = _build(raw, Origin(path.name, row_word), str(path), given, chat_template_tokenizer, skips, read_notes)
        table.source_path = str(path)
        return table
    if isinstance(source, str):
        raw = _load_hub(source, config, split)
        return _build(raw, Origin(f"{source}[{split}]"),
                      f"Hugging Face dataset {source!r} ({_hub_where(config, split)})", given, chat_template_tokenizer,
                      Skips(strict))
    raise DataError(f"unsupported data source of type {type(source).__name__}: expected a path, a dataset id, "
                    "'demo' or a DataFrame")


def _looks_local(source: str) -> bool:
    """A local path rather than a hub id: it exists, has a file extension, is a glob, or is written as a path.
    Hub ids may contain dots ("org/name-v0.2"), so an unknown suffix alone does not make a path."""
    return (
        Path(source).expanduser().exists()
        or is_file_like(source)
        or is_glob(source)
        or source.startswith(("/", "./", "../", "~"))
    )


def _load_demo(demo_size: int, demo_noise: float, demo_seed: int, given: ColumnMapping) -> PairTable:
    from normbt_viz.data.demo import generate_demo_pairs

    named = {key: value for key, value in given.given().items() if isinstance(value, str) and value}
    unknown = {key: value for key, value in named.items() if value not in _DEMO_COLUMNS}
    if unknown:
        key, value = next(iter(unknown.items()))
        raise DataError(f"demo data: mapped column {value!r} for {key} not found (found columns: "
                        f"{columns_text(_DEMO_COLUMNS)}); the demo needs no column mapping")
    raw = generate_demo_pairs(n_pairs=demo_size, noise_rate=demo_noise, seed=demo_seed).reset_index(drop=True)
    raw.index = range(1, len(raw) + 1)
    source = f"demo ({demo_size} pairs, noise {demo_noise}, seed {demo_seed})"
    demo_mapping = ColumnMapping(prompt="prompt", chosen="chosen", rejected="rejected", category="category",
                                 margin="", pair_id="pair_id")
    table = _build(raw, Origin("demo data"), source, demo_mapping, None, Skips(strict=True))
    table.pairs["flipped"] = raw["flipped"].to_numpy(dtype=bool)
    table.format = "demo"
    table.report.layout = "demo"
    return table


def _load_from_disk(path: Path, split: str) -> tuple[pd.DataFrame, Origin]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises FileNotFoundError, ValueError, ... for a foreign directory
        raise DataError(f"{path.name}: not a dataset saved with save_to_disk ({first_line(exc)})") from None
    origin = Origin(path.name)
    if isinstance(loaded, datasets.DatasetDict):
        if split not in loaded:
            raise DataError(f"{path.name}: no split {split!r} (available: {columns_text(loaded.keys())})")
        loaded = loaded[split]
        origin = Origin(f"{path.name}[{split}]")
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
# Layout: which columns become which pairs


@dataclass
class _Candidates:
    """The pairs a layout proposes before row validation: per pair its source row, its position within the row
    (rankings and variant lists give several), the raw values and the columns they came from (for errors)."""

    rows: list
    subs: list
    prompt: list
    chosen: list
    rejected: list
    chosen_columns: list
    rejected_columns: list
    turns: list | None = None
    margins: list | None = None


def _build(raw: pd.DataFrame, origin: Origin, source: str, given: ColumnMapping, tokenizer, skips: Skips,
           read_notes=()) -> PairTable:
    raw = raw.rename(columns=str)
    if len(raw) == 0:
        raise DataError(f"{origin.name}: no rows")
    rows_read = len(raw) + len(skips.rows)
    notes: list[str] = list(read_notes)
    raw = materialise_paths(raw, given, origin)
    check_mapped_columns(raw, given, origin)
    raw, given = _nested_fields(raw, given, notes)
    raw = arena_one_hot(raw, given, notes)
    ties, dropped = 0, {}
    one_pair_per_row, kind = True, ""
    judgment = judgment_mapping(raw, given, origin)
    if judgment is not None:
        mapping, convention = judgment
        explicit = given.a_wins is not None and given.b_wins is not None  # the user placed both sides
        verdicts = judge(raw, mapping, convention, origin, explicit)
        notes.append(verdicts.note)
        ties, dropped = verdicts.ties, verdicts.dropped
        keep = verdicts.sides != 0
        kept, sides = raw[keep], verdicts.sides[keep]
        a_values, b_values = kept[mapping.response_a].tolist(), kept[mapping.response_b].tolist()
        prompt_values = _prompt_values(kept, mapping, notes)
        candidates = _Candidates(
            rows=[int(r) for r in kept.index], subs=[0] * len(kept), prompt=prompt_values,
            chosen=[x if s > 0 else y for x, y, s in zip(a_values, b_values, sides)],
            rejected=[y if s > 0 else x for x, y, s in zip(a_values, b_values, sides)],
            chosen_columns=[mapping.response_a if s > 0 else mapping.response_b for s in sides],
            rejected_columns=[mapping.response_b if s > 0 else mapping.response_a for s in sides],
            turns=kept[mapping.turn].tolist() if mapping.turn else None)
        if mapping.turn:
            notes.append(f"column {mapping.turn!r} names the judged turn: each conversation is cut after it")
        frame, kind = kept, "judgments"
    elif given.ranked or _looks_ranked(raw, given):
        mapping = _ranking_mapping(raw, given, origin)
        expanded, note = expand_ranking([int(r) for r in raw.index], raw[mapping.ranked].tolist(),
                                        mapping.ranking_pairs or "best")
        notes.append(f"column {mapping.ranked!r} read as {note}")
        for row in expanded.short_rows:
            skips.add(origin, row, mapping.ranked, "", "a ranking needs at least two answers")
        prompts = dict(zip([int(r) for r in raw.index], _prompt_values(raw, mapping, notes)))
        candidates = _Candidates(rows=expanded.rows, subs=expanded.subs, prompt=[prompts[r] for r in expanded.rows],
                                 chosen=expanded.chosen, rejected=expanded.rejected,
                                 chosen_columns=[mapping.ranked] * len(expanded.rows),
                                 rejected_columns=[mapping.ranked] * len(expanded.rows))
        one_pair_per_row, frame, kind = False, raw, "a ranking"
    else:
        mapping = resolve_mapping(raw, given, origin)
        frame = raw
        if mapping.score_chosen and mapping.score_rejected:
            frame, ties = _score_ties(raw, mapping, notes)
        rows = [int(r) for r in frame.index]
        chosen, rejected = frame[mapping.chosen].tolist(), frame[mapping.rejected].tolist()
        prompt_values = _prompt_values(frame, mapping, notes)
        margins = _score_margins(frame, mapping) if mapping.score_chosen and not mapping.margin else None
        if text_list(first_present(chosen)) is not None and text_list(first_present(rejected)) is not None:
            expanded, note = expand_variants(rows, chosen, rejected, mapping.variant_pairs or "matched")
            notes.append(f"{mapping.chosen}/{mapping.rejected} read as {note}")
            by_row = dict(zip(rows, prompt_values))
            margin_by_row = dict(zip(rows, margins)) if margins is not None else None
            candidates = _Candidates(rows=expanded.rows, subs=expanded.subs, prompt=[by_row[r] for r in expanded.rows],
                                     chosen=expanded.chosen, rejected=expanded.rejected,
                                     chosen_columns=[mapping.chosen] * len(expanded.rows),
                                     rejected_columns=[mapping.rejected] * len(expanded.rows),
                                     margins=[margin_by_row[r] for r in expanded.rows] if margin_by_row else None)
            one_pair_per_row, kind = False, "answer variants"
        else:
            candidates = _Candidates(rows=rows, subs=[0] * len(rows), prompt=prompt_values, chosen=chosen,
                                     rejected=rejected, chosen_columns=[mapping.chosen] * len(rows),
                                     rejected_columns=[mapping.rejected] * len(rows), margins=margins)
    fmt = _format_of(candidates, mapping)
    pairs = _convert(frame, candidates, mapping, fmt, origin, tokenizer, skips)
    if len(pairs) == 0:
        first = skips.frame()["message"].iloc[0] if skips.records else f"{origin.name}: no rows"
        raise DataError(f"{first} (and no valid row in {origin.name}: all {len(skips.records)} skipped)")
    skipped = skips.frame()
    if len(skipped):
        notes.append(f"skipped {len(skipped)} invalid row(s) of {origin.name}")
    duplicates = int(pairs.duplicated(subset=["prompt", "chosen", "rejected"]).sum())
    reasons = {**skipped["reason"].map(_reason_kind).value_counts().to_dict(), **dropped}
    report = LoadReport(
        source=source, layout=f"{fmt}, {kind}" if kind else fmt, mapping=_mapping_given(mapping),
        notes=[n for n in notes if not n.startswith("skipped ")], rows_read=rows_read, pairs_formed=len(pairs),
        rows_skipped=len(skipped) + sum(dropped.values()), skip_reasons=reasons, ties_dropped=ties,
        exact_duplicates=duplicates, identical_answers=int(pairs["identical"].sum()))
    return PairTable(pairs=pairs, format=fmt, mapping=mapping, source=source, n_identical=int(pairs["identical"].sum()),
                     skipped=skipped, notes=notes, report=report, one_pair_per_row=one_pair_per_row)


def _reason_kind(reason: str) -> str:
    """A skip reason without its row-specific details (values, numbers), so the report can count reasons."""
    general = reason.split(" (")[0].split(": ")[0]
    return re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "…", general)[:80]


def _mapping_given(mapping: ColumnMapping) -> dict:
    return {key: value for key, value in mapping.given().items() if value != ""}


def _format_of(candidates: _Candidates, mapping: ColumnMapping) -> str:
    """The first present value decides the format, so one broken first row does not misread the whole file."""
    first_chosen = first_present(candidates.chosen)
    first_prompt = first_present(candidates.prompt)
    if is_messages(first_chosen) or is_messages(first_prompt):
        sharegpt = uses_sharegpt_keys(first_chosen) or uses_sharegpt_keys(first_prompt)
        return "sharegpt" if sharegpt else "conversational"
    return "explicit" if mapping.prompt else "implicit"


def _nested_fields(raw: pd.DataFrame, given: ColumnMapping, notes: list) -> tuple[pd.DataFrame, ColumnMapping]:
    """Answers given as objects ({"llm_name", "answer"}) and scores one level down ({"metadata": {...}}) are
    read from their field when the mapping does not say otherwise; each such reading is noted."""
    changes = {}
    for role, aliases in (("chosen", CHOSEN_ALIASES), ("rejected", REJECTED_ALIASES)):
        if getattr(given, role) is not None:
            continue
        column = next((alias for alias in aliases if alias in raw.columns), None)
        value = first_value(raw[column]) if column else None
        if isinstance(value, dict) and not any(key in value for key in ("role", "from", "content")):
            field = next((name for name in ANSWER_FIELDS if isinstance(value.get(name), str)), None)
            if field:
                changes[role] = f"{column}.{field}"
    if given.score_chosen is None and given.score_rejected is None and not any(
            a in raw.columns and b in raw.columns for a, b in SCORE_ALIASES):
        for column in raw.columns:
            value = first_value(raw[column])
            if isinstance(value, dict):
                pair = next(((a, b) for a, b in SCORE_ALIASES if a in value and b in value), None)
                if pair:
                    changes.update(score_chosen=f"{column}.{pair[0]}", score_rejected=f"{column}.{pair[1]}")
                    break
    if not changes:
        return raw, given
    given = dataclasses.replace(given, **changes)
    notes.append("read nested fields: " + ", ".join(f"{role} from {path!r}" for role, path in changes.items()))
    return materialise_paths(raw, given, Origin("")), given


def _looks_ranked(raw: pd.DataFrame, given: ColumnMapping) -> bool:
    """LLaMA-Factory's ranking layout: no chosen/rejected, an `output` list of answers (best first)."""
    if given.chosen or given.rejected or any(a in raw.columns for a in CHOSEN_ALIASES + REJECTED_ALIASES):
        return False
    return "output" in raw.columns and text_list(first_value(raw["output"])) is not None


def _ranking_mapping(raw: pd.DataFrame, given: ColumnMapping, origin: Origin) -> ColumnMapping:
    ranked = given.ranked or "output"
    stand_in = raw.assign(__c=None, __r=None)
    resolved = resolve_mapping(stand_in, dataclasses.replace(given, chosen="__c", rejected="__r"), origin)
    return dataclasses.replace(resolved, chosen=None, rejected=None, ranked=ranked, score_chosen=None,
                               score_rejected=None)


def _prompt_values(frame: pd.DataFrame, mapping: ColumnMapping, notes: list) -> list:
    """Each row's prompt value. Alpaca-style rows (instruction, input, history) join the instruction and its
    input, and put earlier [user, assistant] turns before them as messages."""
    n = len(frame)
    if not mapping.prompt:
        return [None] * n
    values = frame[mapping.prompt].tolist()
    if mapping.prompt != "instruction" or not ({"input", "history"} & set(frame.columns)):
        return values
    inputs = frame["input"].tolist() if "input" in frame.columns else [None] * n
    histories = frame["history"].tolist() if "history" in frame.columns else [None] * n
    prompts, with_history = [], 0
    for instruction, extra, history in zip(values, inputs, histories):
        extra = plain(extra)
        joined = instruction if not isinstance(extra, str) or not extra.strip() or not isinstance(instruction, str) \
            else f"{instruction}\n{extra}"
        turns = plain(history)
        if isinstance(turns, list) and turns and isinstance(joined, str):
            messages = []
            for turn in turns:
                if isinstance(turn, (list, tuple)) and len(turn) == 2:
                    messages += [{"role": "user", "content": turn[0]}, {"role": "assistant", "content": turn[1]}]
            prompts.append(messages + [{"role": "user", "content": joined}])
            with_history += 1
        else:
            prompts.append(joined)
    note = "Alpaca-style prompt: instruction and input joined by a newline"
    if with_history:
        note += f"; {with_history} row(s) with a history of earlier turns read as a conversation"
    notes.append(note)
    return prompts


def _score_ties(raw: pd.DataFrame, mapping: ColumnMapping, notes: list) -> tuple[pd.DataFrame, int]:
    """Rows whose chosen and rejected scores are equal are ties (dropped); rows scored the other way round
    keep their labels, counted in the note."""
    chosen = [number(v) for v in raw[mapping.score_chosen].tolist()]
    rejected = [number(v) for v in raw[mapping.score_rejected].tolist()]
    tie = np.array([c is not None and r is not None and c == r for c, r in zip(chosen, rejected)])
    lower = sum(1 for c, r in zip(chosen, rejected) if c is not None and r is not None and c < r)
    note = (f"scores {mapping.score_chosen!r} and {mapping.score_rejected!r}: equal scores are ties, dropped "
            f"({int(tie.sum())})")
    if not mapping.margin:
        note += "; the score gap is each pair's margin"
    if lower:
        note += f"; {lower} pair(s) score chosen below rejected (kept as labelled)"
    notes.append(note)
    if tie.all():
        raise DataError(f"every row has equal {mapping.score_chosen!r} and {mapping.score_rejected!r}: all ties, no pair")
    return raw[~tie], int(tie.sum())


def _score_margins(frame: pd.DataFrame, mapping: ColumnMapping) -> list:
    chosen = [number(v) for v in frame[mapping.score_chosen].tolist()]
    rejected = [number(v) for v in frame[mapping.score_rejected].tolist()]
    return [math.nan if c is None or r is None else c - r for c, r in zip(chosen, rejected)]


# ---------------------------------------------------------------------------------------------------------
# Row conversion


def _convert(frame: pd.DataFrame, candidates: _Candidates, mapping: ColumnMapping, fmt: str, origin: Origin,
             tokenizer, skips: Skips) -> pd.DataFrame:
    by_row = {int(r): position for position, r in enumerate(frame.index)}
    margin_values = frame[mapping.margin].tolist() if mapping.margin else None
    id_values = frame[mapping.pair_id].tolist() if mapping.pair_id else None
    category_values = frame[mapping.category].tolist() if mapping.category else None
    several = any(candidates.subs)

    kept, prompts, chosens, rejecteds, prompt_jsons, hash_keys, margins, given_ids = ([] for _ in range(8))
    for k, row in enumerate(candidates.rows):
        if row in skips.rows:  # already left out by the reader (or an earlier pair of the same row)
            continue
        position = by_row[row]
        chosen_column, rejected_column = candidates.chosen_columns[k], candidates.rejected_columns[k]
        cells = {chosen_column: candidates.chosen[k], rejected_column: candidates.rejected[k],
                 mapping.prompt: candidates.prompt[k]}
        try:
            turn = _turn(candidates.turns[k], origin.at(row, mapping.turn)) if candidates.turns else None
            where = {"chosen": origin.at(row, chosen_column), "rejected": origin.at(row, rejected_column),
                     "prompt": origin.at(row, mapping.prompt) if mapping.prompt else None}
            prompt, chosen, rejected, prompt_json, hash_key = _convert_row(
                candidates.prompt[k], candidates.chosen[k], candidates.rejected[k], where, fmt, tokenizer, turn)
            if mapping.margin:
                cells[mapping.margin] = margin_values[position]
                margin = _margin(margin_values[position], origin.at(row, mapping.margin))
            else:
                margin = candidates.margins[k] if candidates.margins is not None else math.nan
            pair_id = None
            if mapping.pair_id:
                cells[mapping.pair_id] = id_values[position]
                pair_id = _given_id(id_values[position], origin.at(row, mapping.pair_id))
                pair_id = f"{pair_id}:{candidates.subs[k]}" if several else pair_id
        except DataError as exc:
            skips.add_error(origin, row, exc, cells)
            continue
        kept.append(k)
        prompts.append(prompt)
        chosens.append(chosen)
        rejecteds.append(rejected)
        prompt_jsons.append(prompt_json)
        hash_keys.append(hash_key)
        margins.append(margin)
        given_ids.append(pair_id)

    # A row that failed in one of its pairs is left out whole, so a ranking is never half read.
    whole = [j for j, k in enumerate(kept) if candidates.rows[k] not in skips.rows]
    kept, prompts, chosens, rejecteds, prompt_jsons, hash_keys, margins, given_ids = (
        [values[j] for j in whole] for values in (kept, prompts, chosens, rejecteds, prompt_jsons, hash_keys, margins,
                                                  given_ids))
    kept_rows = [candidates.rows[k] for k in kept]
    if mapping.pair_id:
        keep = _unique_ids(given_ids, kept_rows, mapping.pair_id, origin, skips)
        kept, kept_rows = [kept[j] for j in keep], [kept_rows[j] for j in keep]
        prompts, chosens, rejecteds, prompt_jsons, margins, pair_ids = (
            [values[j] for j in keep] for values in (prompts, chosens, rejecteds, prompt_jsons, margins, given_ids))
    else:
        pair_ids = _generated_ids(hash_keys, chosens, rejecteds)
    categories = ([_category(category_values[by_row[row]]) for row in kept_rows] if mapping.category
                  else [DEFAULT_CATEGORY] * len(kept))
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


def _turn(value, where: str) -> int | None:
    number_value = number(value)
    if number_value is None:
        return None
    if not float(number_value).is_integer() or number_value < 1:
        raise DataError(f"{where}: a judged turn must be a whole number from 1, got {show(plain(value))}")
    return int(number_value)


def _convert_row(prompt_value, chosen_value, rejected_value, where: dict, fmt: str, tokenizer, turn: int | None
                 ) -> tuple[str, str, str, str, str]:
    """(prompt, chosen, rejected, prompt messages as JSON, the text ids hash) for one pair, or a DataError."""
    if fmt in ("explicit", "implicit"):
        chosen = text(chosen_value, where["chosen"])
        rejected = text(rejected_value, where["rejected"])
        check_response(chosen, where["chosen"])
        check_response(rejected, where["rejected"])
        if fmt == "explicit":
            prompt = prompt_text(prompt_value, where["prompt"])
        else:
            prompt, chosen, rejected = split_implicit_prompt(chosen, rejected)
            after = " after splitting off the shared prompt"
            check_response(chosen, where["chosen"], after)
            check_response(rejected, where["rejected"], after)
        return prompt, chosen, rejected, "", prompt
    prompt_messages, chosen, rejected = conversation_pair(prompt_value, chosen_value, rejected_value, where, turn)
    try:
        prompt = render_messages(prompt_messages, tokenizer)
    except Exception as exc:  # a chat template rejecting these roles is a data problem for this row
        raise DataError(f"{where['prompt'] or where['chosen']}: the tokenizer's chat "
                        f"template failed on the prompt ({first_line(exc)})") from None
    prompt_json = json.dumps(prompt_messages, ensure_ascii=False) if prompt_messages else ""
    # Ids hash the messages, not their rendering, so they do not change with the tokenizer.
    return prompt, chosen, rejected, prompt_json, prompt_json


# ---------------------------------------------------------------------------------------------------------
# Optional columns and ids


def _category(value) -> str:
    """Missing or empty categories fall into the default group rather than failing the load."""
    value = plain(value)
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        return DEFAULT_CATEGORY
    return str(value)


def _margin(value, where: str) -> float:
    """A number, or NaN for a missing value; CSV text is parsed."""
    value = plain(value)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return math.nan
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise DataError(f"{where}: expected a number, got {type(value).__name__} {show(value)}")


def _given_id(value, where: str) -> str:
    value = plain(value)
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value).strip() == "":
        raise DataError(f"{where}: missing id {show(value)}")
    return str(value)


def _unique_ids(ids: list[str], rows: list[int], column: str, origin: Origin, skips: Skips) -> list[int]:
    """Positions to keep: a repeated id is an error when strict, else its later rows are skipped."""
    keep: list[int] = []
    first_row: dict[str, int] = {}
    for position, (pair_id, row) in enumerate(zip(ids, rows)):
        if pair_id in first_row:
            if skips.strict:
                raise DataError(f"{origin.name}: duplicate id {show(pair_id)} in column {column!r} "
                                f"({origin.row_word}s {first_row[pair_id]} and {row}); ids must be unique, "
                                "or map pair_id to '' to generate ids")
            skips.add(origin, row, column, show(pair_id),
                      f"duplicate id {show(pair_id)} (first at {origin.row_word} {first_row[pair_id]})")
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
