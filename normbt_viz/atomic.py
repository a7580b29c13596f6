"""Atomic file writes: the one way this package writes a file that another process may be reading.

The content goes to a temporary file in the target's folder, is flushed to disk, then renamed over the target,
so a reader sees the old file or the new one and a process killed mid-write leaves no half-written file.
Sits at the bottom of the package: anything may import it.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp_path)` to produce the file, then move it into place at `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def json_safe(value):
    """`value` with what JSON cannot hold made plain: NaN and infinities become null, numpy scalars Python
    numbers, tuples lists, and mapping keys text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item"):
        return json_safe(value.item())
    return value


def atomic_write_json(path: str | Path, payload, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(json_safe(payload), indent=indent))
