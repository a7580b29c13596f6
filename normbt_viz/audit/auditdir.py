"""`AuditDir`: an audit folder, the one object that writes and reads its files (as `RunDir` does for a run).

Files: audit.parquet (one row per pair), audit.json (the meta), summary.md, progress.json (state, phase,
done/total; rewritten atomically so the app never reads half of it), skipped_rows.csv (when the load skipped
rows), cleaned.<ext> (the cleaned copy), audit.log and worker.pid (a background audit started from the app).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from normbt_viz.atomic import atomic_write, atomic_write_json, atomic_write_text

TEXT_COLUMNS = ("prompt", "chosen", "rejected")


@dataclass
class AuditDir:
    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def frame_path(self) -> Path:
        return self.path / "audit.parquet"

    @property
    def meta_path(self) -> Path:
        return self.path / "audit.json"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.md"

    @property
    def progress_path(self) -> Path:
        return self.path / "progress.json"

    @property
    def skipped_path(self) -> Path:
        return self.path / "skipped_rows.csv"

    @property
    def log_path(self) -> Path:
        return self.path / "audit.log"

    @property
    def cleaned_stem(self) -> Path:
        """Where the cleaned copy goes, without its extension (the writer picks the source's)."""
        return self.path / "cleaned"

    # -- writing ---------------------------------------------------------------------------------------
    def create(self) -> "AuditDir":
        self.path.mkdir(parents=True, exist_ok=True)
        return self

    def write_progress(self, **fields) -> None:
        """Merge `fields` into progress.json (atomically: the app polls it while the audit runs)."""
        current = self.progress()
        current.update(fields, updated_at=time.time())
        atomic_write_json(self.progress_path, current, indent=None)

    def write_skipped(self, skipped: pd.DataFrame) -> None:
        atomic_write(self.skipped_path, lambda tmp: skipped.to_csv(tmp, index=False))

    def write_frame(self, frame: pd.DataFrame) -> None:
        atomic_write(self.frame_path, lambda tmp: frame.to_parquet(tmp, index=False))

    def write_summary(self, markdown: str) -> None:
        atomic_write_text(self.summary_path, markdown)

    def write_meta(self, meta: dict) -> None:
        atomic_write_text(self.meta_path, json.dumps(meta, indent=2, default=str))

    def open_log(self):
        """audit.log, opened for appending by a background audit's output."""
        return open(self.log_path, "ab")

    def write_pid(self, pid: int) -> None:
        atomic_write_text(self.path / "worker.pid", str(pid))

    # -- reading ---------------------------------------------------------------------------------------
    def progress(self) -> dict:
        try:
            return json.loads(self.progress_path.read_text())
        except (OSError, json.JSONDecodeError):
            return {}

    def is_finished(self) -> bool:
        """Whether the audit has its table and is not (again) under way."""
        return self.frame_path.is_file() and self.progress().get("state") not in ("queued", "running")

    def frame(self, with_texts: bool = False) -> pd.DataFrame:
        """audit.parquet, without the text columns unless asked (they dominate its size)."""
        import pyarrow.parquet as pq

        columns = [c for c in pq.read_schema(self.frame_path).names if with_texts or c not in TEXT_COLUMNS]
        return pd.read_parquet(self.frame_path, columns=columns)

    def pair_texts(self, pair_id: str) -> dict:
        frame = pd.read_parquet(self.frame_path, columns=["pair_id", *TEXT_COLUMNS], filters=[("pair_id", "==", pair_id)])
        return frame.iloc[0].to_dict() if len(frame) else {}

    def texts_of(self, pair_ids: list[str]) -> pd.DataFrame:
        """pair_id and the text columns of the given pairs only (the page shows a few thousand at most)."""
        if not len(pair_ids):
            return pd.DataFrame(columns=["pair_id", *TEXT_COLUMNS])
        return pd.read_parquet(self.frame_path, columns=["pair_id", *TEXT_COLUMNS],
                               filters=[("pair_id", "in", list(pair_ids))])

    def summary(self) -> str:
        return self.summary_path.read_text() if self.summary_path.is_file() else ""

    def meta(self) -> dict:
        return json.loads(self.meta_path.read_text())

    def has_meta(self) -> bool:
        return self.meta_path.is_file()

    def has_skipped_rows(self) -> bool:
        return self.skipped_path.is_file()

    def cleaned_copy(self) -> tuple[str, bytes] | None:
        """(file name, content) of the cleaned copy, for a download; None when there is none."""
        found = sorted(self.path.glob("cleaned.*"))
        return (found[0].name, found[0].read_bytes()) if found else None


def audits_root(runs_root: str | Path) -> Path:
    """Where the app keeps its audits: `<runs root>/_audits`."""
    return Path(runs_root) / "_audits"


def new_audit_dir(root: str | Path) -> AuditDir:
    """A new audit folder under `root`, named by the time (not yet created)."""
    return AuditDir(Path(root) / time.strftime("%Y%m%d-%H%M%S"))


def list_audits(root: str | Path) -> list[AuditDir]:
    """Audit folders under `root` (those with progress.json or audit.parquet), newest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [AuditDir(p) for p in root.iterdir() if p.is_dir()]
    found = [a for a in found if a.progress_path.is_file() or a.frame_path.is_file()]
    return sorted(found, key=lambda a: a.path.stat().st_mtime, reverse=True)
