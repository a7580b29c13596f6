"""Small numeric checks and statistics shared by the training diagnostics and the analysis.

Sits at the bottom of the package with `errors` and `spec`: anything may import it, it imports nothing above.
"""

from __future__ import annotations

import numpy as np

from normbt_viz.errors import SpecError


def check_positive_int(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise SpecError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def as_finite_array(values, name: str, ndim: int = 1) -> np.ndarray:
    """`values` as a float array of the given rank, non-empty and finite, or a SpecError naming `name`."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise SpecError(f"{name} must be numeric; got {type(values).__name__}") from None
    if array.ndim != ndim:
        raise SpecError(f"{name} must be a {ndim}-D array; got shape {array.shape}")
    if array.size == 0:
        raise SpecError(f"{name} must not be empty; got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array.ravel()))
    if bad.size:
        position = np.unravel_index(bad[0], array.shape)
        index = position[0] if ndim == 1 else tuple(int(i) for i in position)
        raise SpecError(f"{name} has a non-finite value {array.ravel()[bad[0]]!r} at index {index}")
    return array


def pearson_r(x, y, min_n: int = 3) -> float | None:
    """Pearson correlation of two equal-length arrays, or None when it is undefined.

    Undefined means fewer than `min_n` finite pairs or a constant side (np.corrcoef would return NaN and warn).
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if x.size < min_n or x.std() == 0 or y.std() == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def length_chunks(lengths: np.ndarray, most_pairs: int, most_tokens: int) -> list[np.ndarray]:
    """Positions of `lengths` in chunks of similar length for forwards without a graph (the trainer's evaluation,
    the audit's packed read): shortest first, each chunk as many items as fit in `most_tokens` padded tokens
    (items × the chunk's longest), at most `most_pairs` and at least one. Every position appears once."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    chunks, start = [], 0
    while start < len(order):
        end = start + 1
        # Sorted ascending, so the chunk's longest is its last pair's length.
        while end < len(order) and end - start < most_pairs and (end + 1 - start) * max(int(lengths[order[end]]), 1) <= most_tokens:
            end += 1
        chunks.append(order[start:end])
        start = end
    return chunks
