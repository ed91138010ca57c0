"""The ``levels`` argument of the ListMLE losses in both frameworks: a few known label values."""

from __future__ import annotations

import math


def check_levels(levels) -> tuple[float, ...] | None:
    """``levels`` as an ascending tuple of distinct finite numbers, or None.

    Example:
      >>> check_levels([5, 1, 3])
      (1.0, 3.0, 5.0)
    """
    if levels is None:
        return None
    try:
        values = tuple(float(v) for v in levels)
    except (TypeError, ValueError):
        raise ValueError(f"levels must be a sequence of numbers, got {levels!r}") from None
    if not values or not all(math.isfinite(v) for v in values) or len(set(values)) != len(values):
        raise ValueError(f"levels must be distinct finite numbers, at least one, got {levels!r}")
    return tuple(sorted(values))


def outside_levels_error(levels: tuple[float, ...], value: float, index: tuple[int, ...]) -> ValueError:
    return ValueError(f"labels must be one of levels {levels} where valid; found {value} at index {index}")
