"""The pairs one run trains and evaluates on: the dataset the spec names, sampled and split as the spec says.

Lives in `data/` because the trainer, the projection and the analysis all need the same selection, and none of
them may import another for it.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from normbt_viz.data.load_report import LoadReport
from normbt_viz.data.sources import PairTable, load_pairs
from normbt_viz.data.splits import sample_pairs, split_pairs
from normbt_viz.errors import SpecError
from normbt_viz.spec import RunSpec


class RunData(NamedTuple):
    train_pairs: pd.DataFrame
    eval_pairs: pd.DataFrame
    fingerprint: str  # of the loaded dataset, recorded in spec.json
    report: LoadReport  # the load's story (skipped rows among it), with a note when --limit sampled the pairs


def load_run_data(spec: RunSpec) -> RunData:
    """The train and eval pairs exactly as the spec selects them, with the load's report (which the trainer
    keeps in the run directory)."""
    table = load_pairs(spec.dataset, **spec.load_options())
    pairs = sample_table(table, spec.limit, spec.split_seed)
    if len(pairs) < 2:
        raise SpecError(f"dataset {spec.dataset!r} has {len(pairs)} pair(s); training needs at least 2")
    if spec.loss == "bt_margin" and pairs["margin"].isna().any():
        raise SpecError(f"loss 'bt_margin' needs a margin for every pair; dataset {spec.dataset!r} has {int(pairs['margin'].isna().sum())} without one")
    train_pairs, eval_pairs = split_pairs(pairs, spec.eval_fraction, spec.split_seed)
    return RunData(train_pairs.reset_index(drop=True), eval_pairs.reset_index(drop=True), table.fingerprint(), table.report)


def sample_table(table: PairTable, limit: int | None, seed: int) -> pd.DataFrame:
    """The table's pairs, or a seeded sample of `limit` of them; a sample is noted in the table's load report, so
    every command that prints the report says it (the run, the audit and the data command sample alike)."""
    pairs = sample_pairs(table.pairs, limit, seed)
    if len(pairs) < len(table.pairs):
        table.report.notes.append(f"--limit: a seeded sample of {len(pairs)} of the {len(table.pairs)} pairs is used")
    return pairs
