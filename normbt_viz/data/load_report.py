"""The story of one load: what layout was read, with which mapping, what was assumed, and what was left out.

Every load returns one (`PairTable.report`). `train`, `compare`, `report`, `audit` and the `data` command print
its `lines()`; the Data page shows them before anything trains; each run directory keeps it as JSON so a run
can say later what data it saw.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass
class LoadReport:
    source: str
    layout: str  # the format read (explicit, implicit, conversational, sharegpt, demo) and what it was read as
    mapping: dict  # the mapping used: only the roles that are set
    notes: list = field(default_factory=list)  # what was assumed, with counts
    rows_read: int = 0
    pairs_formed: int = 0
    rows_skipped: int = 0
    skip_reasons: dict = field(default_factory=dict)  # reason -> rows
    ties_dropped: int = 0
    exact_duplicates: int = 0  # pairs whose prompt, chosen and rejected repeat an earlier pair's
    identical_answers: int = 0  # pairs whose chosen and rejected texts are the same
    max_length: int | None = None  # the max length the truncation count below is for
    truncated: int | None = None  # pairs that lose tokens at max_length (None: not surveyed)

    def lines(self) -> list[str]:
        """A few plain lines for a terminal or a page."""
        lines = [f"data: {self.pairs_formed} pair(s) from {self.rows_read} row(s) of {self.source} ({self.layout})"]
        if self.mapping and self.layout != "demo":  # the demo's columns are the project's own
            lines.append("mapping: " + ", ".join(f"{k}={v!r}" for k, v in self.mapping.items()))
        lines += [f"note: {note}" for note in self.notes]
        if self.rows_skipped:
            reasons = "; ".join(f"{reason} ({count})" for reason, count in list(self.skip_reasons.items())[:4])
            more = f"; ... ({len(self.skip_reasons) - 4} more reasons)" if len(self.skip_reasons) > 4 else ""
            lines.append(f"skipped: {self.rows_skipped} row(s): {reasons}{more} (the data command and the Data page list "
                         "them; --strict fails on the first invalid row)")
        if self.ties_dropped:
            lines.append(f"ties: {self.ties_dropped} row(s) with no winner dropped")
        if self.exact_duplicates:
            lines.append(f"duplicates: {self.exact_duplicates} pair(s) repeat an earlier pair exactly (kept)")
        if self.identical_answers:
            lines.append(f"identical: {self.identical_answers} pair(s) with chosen identical to rejected (evaluated, not trained on)")
        if self.truncated is not None:
            lines.append(f"truncation: {self.truncated} of {self.pairs_formed} pair(s) exceed max length {self.max_length} "
                         "tokens and lose tokens from the prompt's start")
        return lines

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> LoadReport:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})
