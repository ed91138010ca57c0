"""Argument checks shared by the JAX and PyTorch losses and metrics, framework-neutral.

Each framework describes its arrays as ``ArrayInfo`` (shape, dtype name, kind) and its
concrete values as NumPy where it can; the rules and the error messages live here once, so
both packages refuse the same arguments with the same words. Every error is a
``ValueError`` naming the argument, what was expected and what was found.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

REDUCTIONS = ("none", "sum", "mean")
PAIR_NAMES = ("list_index", "i_index", "j_index")


class ArrayInfo(NamedTuple):
    """What the checks need to know of an array, whatever framework holds it."""

    shape: tuple[int, ...]
    dtype: str  # as the framework prints it
    kind: str  # "float", "int", "bool" or "other"

    def describe(self) -> str:
        return f"shape {self.shape} and dtype {self.dtype}"


def check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")


def is_number(value) -> bool:
    """Whether ``value`` is a real number given as one: a Python or NumPy int or float, not a
    bool (nor a string, None or an array).

    Example:
      >>> [is_number(v) for v in (0.5, 3, "0.5", True, None)]
      [True, True, False, False, False]
    """
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def not_an_array(name: str, value) -> ValueError:
    """The error for an argument no framework can make an array of (a string, an object,
    lists of unequal lengths), naming it.

    Example:
      >>> str(not_an_array("tie_break", "random"))
      "tie_break must be an array (or nested lists) of numbers, got str 'random'"
    """
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return ValueError(
        f"{name} must be an array (or nested lists) of numbers, got {type(value).__name__} {shown}"
    )


def as_number(value):
    """A NumPy scalar or 0-d array, or a concrete 0-d JAX array, of a real number, as the
    Python number it holds; anything else as it is, for a check to judge. A traced JAX
    value stays an array (a number taken from it would lose what it carries), and so does
    a PyTorch tensor: ``torch_ltr`` takes the number out of one first where that loses
    nothing (``torch_ltr._utils.as_option``).

    Example:
      >>> as_number(np.array(0.5)), as_number(np.float32(0.25)), as_number(np.array([0.5]))
      (0.5, 0.25, array([0.5]))
    """
    if hasattr(value, "requires_grad") or tuple(getattr(value, "shape", (None,))) != ():
        return value  # a PyTorch tensor, or no 0-d array
    if getattr(getattr(value, "dtype", None), "kind", None) == "O":
        return value  # np.array(None) is no number
    try:
        return value.item()
    except (AttributeError, TypeError):  # a JAX tracer raises a TypeError here
        return value


def _is_count(value) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 1


def check_k(k, name: str = "k") -> None:
    if k is not None and not _is_count(k):
        raise ValueError(f"{name} must be an integer >= 1 or None, got {k!r}")


def check_cutoffs(ks, name: str) -> tuple[int, ...]:
    """Metric cut-offs such as ``ranking_metrics``' ``top_k``: a sequence of integers >= 1.

    Example:
      >>> check_cutoffs([5, 10], "top_k")
      (5, 10)
    """
    sequence = isinstance(ks, Sequence | np.ndarray) and not isinstance(ks, str | bytes)
    if not (sequence and all(_is_count(k) for k in ks)):
        raise ValueError(f"{name} must be a sequence of integers >= 1, got {ks!r}")
    return tuple(int(k) for k in ks)


def check_weight(value, name: str) -> float:
    """A mixing weight such as the hybrid's ``alpha``: a number in [0, 1] (or a 0-d array
    holding one); returns that number."""
    value = as_number(value)
    if not (is_number(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return value


def check_relevance_threshold(threshold) -> float:
    """The metrics' ``relevance_threshold``: a finite number (a label at or above it is
    relevant), or a 0-d array holding one; returns that number."""
    threshold = as_number(threshold)
    if not (is_number(threshold) and math.isfinite(threshold)):
        raise ValueError(f"relevance_threshold must be a finite number{_fixed(threshold)}, got {threshold!r}")
    return threshold


def check_arrays(
    scores: ArrayInfo, labels: ArrayInfo, where: ArrayInfo | None, tie_break: ArrayInfo | None = None
) -> None:
    """The shapes and kinds of a loss's or metric's array arguments (``where`` None = all valid)."""
    if scores.kind != "float":
        raise ValueError(f"scores must be a floating-point array, got {scores.describe()}")
    if len(scores.shape) < 1:
        raise ValueError(f"scores must have a list axis (at least 1-D), got {scores.describe()}")
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.describe()} does not match scores {scores.describe()}")
    if labels.kind not in ("float", "int"):
        raise ValueError(f"labels must be a numeric array, got {labels.describe()}")
    if where is not None:
        if where.kind != "bool":
            raise ValueError(f"where must be a boolean mask, got {where.describe()}")
        if where.shape != scores.shape:
            raise ValueError(f"where {where.describe()} does not match scores {scores.describe()}")
    if tie_break is not None and (tie_break.kind != "float" or tie_break.shape != scores.shape):
        raise ValueError(
            f"tie_break must be a floating array shaped like scores {scores.shape}, "
            f"got {tie_break.describe()}"
        )


def check_suffix_arrays(x: ArrayInfo, where: ArrayInfo | None) -> None:
    """``suffix_logsumexp``'s arguments: a floating ``x`` with a list axis, ``where`` None or
    a boolean mask of its shape."""
    if x.kind != "float" or len(x.shape) < 1:
        raise ValueError(
            f"x must be a floating-point array with a list axis (at least 1-D), got {x.describe()}"
        )
    if where is not None and (where.kind != "bool" or where.shape != x.shape):
        raise ValueError(f"where must be a boolean mask shaped like x {x.shape}, got {where.describe()}")


def non_finite_label_error(value: float, index: tuple[int, ...]) -> ValueError:
    return ValueError(f"labels must be finite where valid; found {value} at index {index}")


def check_finite_labels(labels: np.ndarray, where: np.ndarray) -> None:
    """Concrete labels (NumPy) must be finite wherever ``where`` is True."""
    bad = np.asarray(where) & ~np.isfinite(labels)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise non_finite_label_error(labels[index], index)


def check_ids(ids, count: int, name: str) -> None:
    """Concrete ids (NumPy or a framework's array) that index an embedding table of ``count``
    rows: integers in [0, ``count``). JAX reads an id past the end as NaN and a negative one
    from the table's end; PyTorch raises an ``IndexError`` that names neither."""
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{name} must be integer ids, got dtype {ids.dtype}")
    bad = (ids < 0) | (ids >= count)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must lie in [0, {count}), found {ids[index]} at index {index}")


# The largest label a gain ``2^y - 1`` is taken of (NDCG, ApproxNDCG, LambdaLoss's gain-based
# weights). Gains up to 2^64 keep a list's DCG, summed over any list shorter than 2^62 items,
# below 2^126: float32 holds it, and so does its reciprocal, which XLA on CPU divides by (a
# reciprocal below float32's smallest normal number, 2^-126, is flushed to 0 there). A label of
# 128 already overflows the gain to inf. Ratings, grades and binary labels lie far below.
GAIN_LABEL_MAX = 64.0
GAIN_RANGE = (0.0, GAIN_LABEL_MAX)

_RANGE_REASONS = {  # what the message adds, by the range's upper end
    1.0: "(or give threshold=)",
    GAIN_LABEL_MAX: "(the gain 2^y - 1 of a larger label nears float32's largest number)",
}


def check_label_range(labels: np.ndarray, where: np.ndarray, *, high: float | None = None) -> None:
    """Labels that weigh a distribution (softmax) must be >= 0 where valid; labels that set a
    gain ``2^y - 1`` (``high=GAIN_LABEL_MAX``) must lie in [0, 64]; a logistic loss's targets
    without a threshold (``high=1``) must lie in [0, 1]."""
    labels = np.asarray(labels)
    bad = np.asarray(where, bool) & ((labels < 0) | (labels > (np.inf if high is None else high)))
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        if high is None:
            raise ValueError(
                f"labels must be >= 0 at valid positions, found {labels[index]} at index {index}"
            )
        raise ValueError(
            f"labels must lie in [0, {high:g}] at valid positions {_RANGE_REASONS[high]}, "
            f"found {labels[index]} at index {index}"
        )


_FLOAT32 = np.finfo(np.float32)
# ApproxNDCG scales score differences by 1 / temperature, which must be a normal float32
# number: past float32's largest one it is inf (and the item's own difference, 0, times it
# NaN), below its smallest normal one XLA on CPU flushes it to 0 where PyTorch keeps it.
TEMPERATURE_RANGE = (1.0 / float(_FLOAT32.max), 1.0 / float(_FLOAT32.tiny))


def _fixed(value) -> str:
    """What an error adds for a traced JAX value (a concrete JAX array is a number by now)."""
    return " (fixed when the function is compiled: not a traced value)" if hasattr(value, "aval") else ""


def check_temperature(temperature) -> float:
    """ApproxNDCG's ``temperature``, a number whose reciprocal is a normal float32 number
    (``TEMPERATURE_RANGE``: about [2.9e-39, 8.5e37]); returns that reciprocal.

    Example:
      >>> check_temperature(0.5)
      2.0
    """
    low, high = TEMPERATURE_RANGE
    temperature = as_number(temperature)
    if not (is_number(temperature) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a finite number > 0{_fixed(temperature)}, got {temperature!r}")
    if not low <= temperature <= high:
        raise ValueError(
            f"temperature must be a finite number in [{low:.4g}, {high:.4g}] (its reciprocal a "
            f"normal float32 number), got {temperature!r}"
        )
    return 1.0 / float(temperature)


def check_threshold(threshold) -> float | None:
    """A label threshold: None or a finite number (or a 0-d array holding one); returns it."""
    threshold = as_number(threshold)
    if threshold is not None and not (is_number(threshold) and math.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number or None{_fixed(threshold)}, got {threshold!r}")
    return threshold


LAMBDA_WEIGHTINGS = ("ndcg_loss2++", "ndcg_loss2", "dcg", "label_diff")


def check_lambda_options(weighting, mu, normalize) -> float:
    """LambdaLoss's options: a known ``weighting``, ``mu`` finite and >= 0 (or a 0-d array
    holding it), ``normalize`` a bool; returns ``mu`` as a number."""
    if weighting not in LAMBDA_WEIGHTINGS:
        raise ValueError(f"weighting must be one of {', '.join(LAMBDA_WEIGHTINGS)}, got {weighting!r}")
    mu = as_number(mu)
    if not (is_number(mu) and math.isfinite(mu) and mu >= 0):
        raise ValueError(f"mu must be a finite number >= 0{_fixed(mu)}, got {mu!r}")
    if not isinstance(normalize, bool | np.bool_):
        raise ValueError(f"normalize must be True or False, got {normalize!r}")
    return mu


def check_levels(levels) -> tuple[float, ...] | None:
    """``levels`` as an ascending tuple of distinct finite numbers, or None.

    Example:
      >>> check_levels([5, 1, 3])
      (1.0, 3.0, 5.0)
    """
    if levels is None:
        return None
    values = number_sequence(levels)
    if values is None:
        raise ValueError(f"levels must be a sequence of numbers, got {levels!r}")
    values = tuple(float(v) for v in values)
    if not values or not all(math.isfinite(v) for v in values) or len(set(values)) != len(values):
        raise ValueError(f"levels must be distinct finite numbers, at least one, got {levels!r}")
    return tuple(sorted(values))


def number_sequence(values) -> np.ndarray | None:
    """``values`` as a 1-D float64 array when it is a sequence of numbers (a list, tuple or
    array of ints and floats; not a string, nor bools); None otherwise.

    Example:
      >>> number_sequence((1, 2.5)).tolist(), number_sequence("12"), number_sequence([True])
      ([1.0, 2.5], None, None)
    """
    if isinstance(values, str | bytes):
        return None
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):  # ragged
        return None
    if array.ndim != 1 or (array.size and array.dtype.kind not in "iuf"):
        return None
    return array.astype(np.float64)


def outside_levels_error(levels: tuple[float, ...], value: float, index: tuple[int, ...]) -> ValueError:
    return ValueError(f"labels must be one of levels {levels} where valid; found {value} at index {index}")


def check_labels_in_levels(labels: np.ndarray, where: np.ndarray, levels: tuple[float, ...]) -> None:
    """Concrete labels (NumPy) must be one of ``levels`` wherever ``where`` is True."""
    outside = np.asarray(where) & ~np.isin(labels, np.asarray(levels, labels.dtype))
    if outside.any():
        index = tuple(int(i) for i in np.argwhere(outside)[0])
        raise outside_levels_error(levels, float(labels[index]), index)


def check_pairs(pairs, infos: Sequence[ArrayInfo] | None, shape: tuple[int, ...]) -> None:
    """Explicit pairs ``(list_index, i_index, j_index)``: three 1-D integer arrays of one length.

    ``infos`` describes the three arrays (None when ``pairs`` is not a 3-sequence).
    """
    if not isinstance(pairs, tuple | list) or len(pairs) != 3 or infos is None:
        raise ValueError("pairs must be a tuple (list_index, i_index, j_index) of integer arrays")
    for name, info in zip(PAIR_NAMES, infos, strict=True):
        if info.kind != "int" or len(info.shape) != 1 or info.shape != infos[0].shape:
            raise ValueError(
                f"pairs: {name} must be a 1-D integer array shaped like list_index "
                f"{infos[0].shape}, got shape {info.shape} and dtype {info.dtype}"
            )


def pair_bounds(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """Exclusive upper bounds of ``(list_index, i_index, j_index)`` for scores of ``shape``."""
    return math.prod(shape[:-1]), shape[-1], shape[-1]


def check_pair_ranges(ranges: Sequence[tuple[int, int] | None], shape: tuple[int, ...]) -> None:
    """Each concrete pair index array's ``(min, max)`` (None: unknown or empty) within its axis."""
    for name, found, bound in zip(PAIR_NAMES, ranges, pair_bounds(shape), strict=True):
        if found is not None and (found[0] < 0 or found[1] >= bound):
            raise ValueError(f"pairs: {name} must lie in [0, {bound}), found [{found[0]}, {found[1]}]")


def check_retrieval(scores: ArrayInfo, relevant: ArrayInfo, exclude: ArrayInfo | None, ks) -> None:
    """``retrieval_metrics``' arguments: [U, I] float scores, bool masks of the same shape."""
    if scores.kind != "float" or len(scores.shape) != 2:
        raise ValueError(f"scores must be a [users, items] floating-point array, got {scores.describe()}")
    for name, info in (("relevant", relevant), ("exclude", exclude)):
        if info is not None and (info.kind != "bool" or info.shape != scores.shape):
            raise ValueError(
                f"{name} must be a boolean mask shaped like scores {scores.shape}, got {info.describe()}"
            )
    if not check_cutoffs(ks, "ks"):
        raise ValueError("ks must hold at least one cut-off")
