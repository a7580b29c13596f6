"""The pairs one run trains and evaluates on: the dataset the spec names, sampled and split as the spec says.

Lives in `data/` because the trainer, the projection and the analysis all need the same selection, and none of
them may import another for it.
"""

from __future__ import annotations

import pandas as pd

from normbt_viz.data.sources import load_pairs, sample_pairs, split_pairs
from normbt_viz.errors import SpecError
from normbt_viz.spec import RunSpec


def load_run_data(spec: RunSpec) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(train pairs, eval pairs, dataset fingerprint) exactly as the spec selects them.

    How many source rows the (lenient) load skipped rides along as `train_pairs.attrs["n_skipped_rows"]`,
    so the trainer can record it without a second load."""
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
    train_pairs = train_pairs.reset_index(drop=True)
    train_pairs.attrs["n_skipped_rows"] = table.n_skipped
    return train_pairs, eval_pairs.reset_index(drop=True), table.fingerprint()
