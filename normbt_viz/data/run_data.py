"""The pairs one run trains and evaluates on: the dataset the spec names, sampled and split as the spec says.

Lives in `data/` because the trainer, the projection and the analysis all need the same selection, and none of
them may import another for it.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from normbt_viz.data.load_report import LoadReport
from normbt_viz.data.sources import load_pairs
from normbt_viz.data.splits import sample_pairs, split_pairs
from normbt_viz.errors import SpecError
from normbt_viz.spec import RunSpec


class RunData(NamedTuple):
    train_pairs: pd.DataFrame
    eval_pairs: pd.DataFrame
    fingerprint: str
    report: LoadReport  # the load's story, with a note when --limit sampled the pairs


def load_run_data(spec: RunSpec) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train pairs, eval pairs, dataset fingerprint) exactly as the spec selects them."""
    return load_run_data_with_report(spec)[:3]


def load_run_data_with_report(spec: RunSpec) -> RunData:
    """The run's pairs as `load_run_data` selects them, and the load's report (which the trainer keeps in the
    run directory)."""
    table = load_pairs(
        spec.dataset,
        config=spec.dataset_config,
        split=spec.dataset_split,
        mapping=spec.column_mapping,
        demo_size=spec.demo_size,
        demo_noise=spec.demo_noise,
        demo_seed=spec.demo_seed,
        strict=spec.strict,
    )
    pairs = sample_pairs(table.pairs, spec.limit, spec.split_seed)
    if len(pairs) < 2:
        raise SpecError(f"dataset {spec.dataset!r} has {len(pairs)} pair(s); training needs at least 2")
    if spec.loss == "bt_margin" and pairs["margin"].isna().any():
        raise SpecError(f"loss 'bt_margin' needs a margin for every pair; dataset {spec.dataset!r} has {int(pairs['margin'].isna().sum())} without one")
    train_pairs, eval_pairs = split_pairs(pairs, spec.eval_fraction, spec.split_seed)
    report = table.report
    if len(pairs) < len(table.pairs):
        report.notes.append(f"--limit: a seeded sample of {len(pairs)} of the {len(table.pairs)} pairs is used")
    return RunData(train_pairs.reset_index(drop=True), eval_pairs.reset_index(drop=True), table.fingerprint(), report)
