"""The data source: which pairs a command reads, declared once for the run spec, the audit, the CLI and the app.

`RunSpec` and the audit's `AuditConfig` extend `DataSource`, so its fields (and their flags, help and ranges)
are the same everywhere and a spec.json stays one flat object. It is a declaration only (it imports no loader,
so the base `spec` module may build on it): `load_options()` gives the keyword arguments of
`data.sources.load_pairs`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from normbt_viz.params import param


@dataclass
class DataSource:
    dataset: str = param("demo", "'demo', a local .jsonl/.json/.csv/.parquet file or save_to_disk folder, or a Hugging Face dataset id", group="data")
    dataset_config: str | None = param(None, "the Hugging Face dataset's configuration name", group="data")
    dataset_split: str = param("train", "the split to read (Hugging Face ids and save_to_disk folders)", group="data")
    column_mapping: dict | None = param(None, "JSON object mapping roles (prompt, chosen, rejected, category, margin, id; response_a, response_b, winner, a_wins, b_wins for judgment files) to column names", group="data")
    demo_size: int = param(1000, "pairs in the synthetic demo dataset", low=2, group="data")
    demo_noise: float = param(0.0, "share of demo pairs whose labels are flipped (recorded in a 'flipped' column)", low=0.0, high=0.5, group="data")
    demo_seed: int = param(0, "seed of the demo generator", low=0, group="data")
    limit: int | None = param(None, "use at most this many pairs (a seeded sample)", low=2, group="data")
    strict: bool = param(False, "fail on the first row that does not validate (default: skip such rows, count and list them)", group="data")
    max_length: int = param(128, "tokens per sequence; longer ones lose tokens from the prompt's start", low=8, group="backbone")

    @property
    def source(self) -> "DataSource":
        """The data source alone (a `RunSpec` or an `AuditConfig` without their other fields)."""
        return DataSource(**{f.name: getattr(self, f.name) for f in dataclasses.fields(DataSource)})

    def load_options(self) -> dict:
        """Keyword arguments of `load_pairs(self.dataset, ...)`: everything that selects the rows, before --limit's
        sample and tokenisation (which are the caller's)."""
        return {"config": self.dataset_config, "split": self.dataset_split, "mapping": self.column_mapping,
                "demo_size": self.demo_size, "demo_noise": self.demo_noise, "demo_seed": self.demo_seed, "strict": self.strict}

    def describe(self) -> str:
        """One line for a page or a log: what will be read."""
        if self.dataset == "demo":
            return f"demo data ({self.demo_size} pairs, label noise {self.demo_noise:.0%})"
        return self.dataset or "(no data source chosen yet: see the Data page)"
