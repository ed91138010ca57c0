"""Paired comparisons of two scorers on the same lists."""

from __future__ import annotations

import numpy as np


def paired_difference(ours, theirs) -> tuple[float, float, int]:
    """``(mean, standard error, n)`` of the per-list differences ``ours - theirs``.

    Only lists where both values are finite count (NaN marks a list left out, such as a user
    with nothing relevant). The standard error is ``std(d, ddof=1) / sqrt(n)``: a difference
    within two of them is not a result.

    Example:
      >>> paired_difference([0.5, 0.7, 0.9], [0.4, 0.7, 0.6])
      (0.13333333333333333, 0.0881917103688197, 3)
    """
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        raise ValueError(f"paired lists must match: {ours.shape} vs {theirs.shape}")
    diff = (ours - theirs)[np.isfinite(ours) & np.isfinite(theirs)]
    if diff.size < 2:
        return float(diff.mean()) if diff.size else float("nan"), float("nan"), int(diff.size)
    return float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(diff.size)), int(diff.size)


def format_difference(mean: float, se: float) -> str:
    """``+0.0123 ± 0.0045``."""
    return f"{mean:+.4f} ± {se:.4f}"
