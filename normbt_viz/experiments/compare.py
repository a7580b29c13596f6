"""The `compare` command's folder: one run per (arm, seed) compared, written as summary.md, one CSV per table and
runs.txt (the run names), each file through the atomic writer."""

from __future__ import annotations

from pathlib import Path

from normbt_viz.analysis.comparison import Comparison, comparison_markdown
from normbt_viz.atomic import atomic_write, atomic_write_text


def write_comparison(comparison: Comparison, folder: str | Path) -> None:
    """The comparison's folder: summary.md, one CSV per table, and runs.txt (the run names compared)."""
    folder = Path(folder)
    atomic_write_text(folder / "summary.md", comparison_markdown(comparison))
    for name in ("overall", "per_category", "per_bin", "paired", "per_seed"):
        table = getattr(comparison, name)
        atomic_write(folder / f"{name}.csv", lambda tmp, table=table: table.to_csv(tmp, index=False))
    atomic_write_text(folder / "runs.txt", "\n".join(comparison.runs) + "\n")
