"""The pairs one run trains and evaluates on: the dataset the spec names, sampled and split as the spec says.

Lives in `data/` because the trainer, the projection and the analysis all need the same selection, and none of
them may import another for it.
"""

from __future__ import annotations

from typing import NamedTuple

import pandas as pd

from normbt_viz.data.sources import load_pairs, sample_pairs, split_pairs
from normbt_viz.errors import SpecError
from normbt_viz.spec import RunSpec


class RunData(NamedTuple):
    train_pairs: pd.DataFrame
    eval_pairs: pd.DataFrame
    fingerprint: str  # of the loaded dataset, recorded in spec.json
    n_skipped_rows: int  # source rows the (lenient) load skipped, recorded in status.json


def load_run_data(spec: RunSpec) -> RunData:
    """The train and eval pairs exactly as the spec selects them, with what the load found."""
    table = load_pairs(spec.dataset, **spec.load_options())
    pairs = sample_pairs(table.pairs, spec.limit, spec.split_seed)
    if len(pairs) < 2:
        raise SpecError(f"dataset {spec.dataset!r} has {len(pairs)} pair(s); training needs at least 2")
    if spec.loss == "bt_margin" and pairs["margin"].isna().any():
        raise SpecError(f"loss 'bt_margin' needs a margin for every pair; dataset {spec.dataset!r} has {int(pairs['margin'].isna().sum())} without one")
    train_pairs, eval_pairs = split_pairs(pairs, spec.eval_fraction, spec.split_seed)
    return RunData(train_pairs.reset_index(drop=True), eval_pairs.reset_index(drop=True), table.fingerprint(), table.n_skipped)
