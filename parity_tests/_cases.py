"""The JAX-vs-PyTorch parity table, shared by the pytest suite and ``scripts/check_parity.py``.

Each row is a ``Case``: a function and variant (options, reduction, jit or not), the JAX and
PyTorch callables, and per-dtype tolerances. Inputs are built once in NumPy from a seeded
generator and a real MovieLens batch, then fed to both frameworks; values and gradients
with respect to the scores are compared.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jax_ltr
import torch_ltr
from ltr_common import Batch, Split, bucket_length, make_batch, sample_pairs

# (rtol, atol) per dtype and per compared leaf; rows override where the numerics demand it.
TOLERANCES = {
    "float64": {"value": (1e-12, 1e-12), "grad": (1e-12, 1e-12)},
    "float32": {"value": (1e-5, 1e-6), "grad": (1e-5, 1e-6)},
}
# All-pairs gradients under "sum"/"none": an item's gradient adds up to L - 1 pair terms of
# size up to 1, so it carries the rounding of a sum of magnitude ~L; one float32 ulp there
# is 1.9e-6 (at 16..32), and PyTorch's own float32 result is up to ~6e-6 from the float64
# value on such items. Below that, agreement is a matter of summation order, not of math.
PAIRWISE_SUM_GRAD_FLOAT32 = (1e-5, 1e-5)
PAIRS_PER_LIST = 16
RATING_LEVELS = (1, 2, 3, 4, 5)


@dataclasses.dataclass(frozen=True)
class Inputs:
    """One batch's NumPy inputs: masked positions hold NaN in scores and labels on purpose."""

    scores: np.ndarray
    labels: np.ndarray
    where: np.ndarray
    tie_break: np.ndarray
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray]
    cotangent: np.ndarray  # [B] weights for per-list outputs, |w| in [0.5, 1]


def real_batches(split: Split, *, count: int, lists_per_batch: int, padding_rows: int, seed: int):
    """``count`` batches of randomly chosen training lists, each with fully masked padding rows."""
    lists = split.train
    rng = np.random.default_rng(seed)
    max_length = int(lists.lengths.max())
    batches = []
    for _ in range(count):
        ids = rng.choice(len(lists), size=lists_per_batch, replace=False)
        width = bucket_length(int(lists.lengths[ids].max()), max_length=max_length)
        batches.append(make_batch(lists, ids, batch_size=lists_per_batch + padding_rows, width=width))
    return batches


def make_inputs(batch: Batch, rng: np.random.Generator, dtype: str) -> Inputs:
    """Scores on a grid of 0.25 (so ties in scores occur), NaN wherever the mask is False."""
    where = batch.mask
    scores = np.round(rng.normal(0.0, 2.0, where.shape) * 4.0) / 4.0
    scores = np.where(where, scores, np.nan).astype(dtype)
    labels = np.where(where, batch.labels, np.nan).astype(dtype)
    tie_break = rng.random(where.shape).astype(dtype)
    pairs = sample_pairs(batch.labels, where, pairs_per_list=PAIRS_PER_LIST, rng=rng)
    # Distinct per-list weights of unit scale, so a gradient row landing on the wrong list
    # shows, and the tolerances keep their per-unit-cotangent meaning.
    shape = where.shape[:-1]
    cotangent = (rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 1.0, size=shape)).astype(dtype)
    return Inputs(scores, labels, where, tie_break, pairs, cotangent)


@dataclasses.dataclass(frozen=True, eq=False)  # hashed by identity: cached jitted runners
class Case:
    function: str
    variant: str
    jax_fn: Callable  # (scores, labels, where, tie_break, pairs) -> value
    torch_fn: Callable
    differentiable: bool
    jit: bool
    reduction: str
    tolerances: dict = dataclasses.field(default_factory=lambda: TOLERANCES)

    @property
    def id(self) -> str:
        return f"{self.function}[{self.variant}]"


def _variant(options: dict, reduction: str, jit: bool) -> str:
    parts = [f"{k}={v}" for k, v in options.items()] + [f"reduction={reduction}", "jit" if jit else "eager"]
    return ",".join(parts)


def _loss_cases() -> list[Case]:
    cases = []
    reductions, jits = ("none", "sum", "mean"), (False, True)
    # levels: the counting-sort order (ratings 1..5); with a random tie order the sort serves.
    orders = ((False, None), (True, None), (False, RATING_LEVELS))
    for method, (tie, levels), reduction, jit in itertools.product(
        jax_ltr.LISTMLE_METHODS, orders, reductions, jits
    ):

        def jax_fn(s, y, w, tb, p, method=method, tie=tie, levels=levels, reduction=reduction):
            return jax_ltr.listmle_loss(
                s,
                y,
                where=w,
                tie_break=tb if tie else None,
                levels=levels,
                method=method,
                reduction=reduction,
            )

        def torch_fn(s, y, w, tb, p, tie=tie, levels=levels, reduction=reduction):
            return torch_ltr.listmle_loss(
                s, y, where=w, tie_break=tb if tie else None, levels=levels, reduction=reduction
            )

        options = {"method": method, "tie_break": "random" if tie else "position"}
        if levels is not None:
            options["levels"] = "1..5"
        cases.append(
            Case("listmle_loss", _variant(options, reduction, jit), jax_fn, torch_fn, True, jit, reduction)
        )
    for sampled, reduction, jit in itertools.product((False, True), reductions, jits):
        for name in ("pairwise_pl_loss", "hybrid_loss"):
            extra = {"alpha": 0.7} if name == "hybrid_loss" else {}

            def jax_fn(s, y, w, tb, p, name=name, sampled=sampled, reduction=reduction, extra=extra):
                return getattr(jax_ltr, name)(
                    s, y, where=w, pairs=p if sampled else None, reduction=reduction, **extra
                )

            def torch_fn(s, y, w, tb, p, name=name, sampled=sampled, reduction=reduction, extra=extra):
                return getattr(torch_ltr, name)(
                    s, y, where=w, pairs=p if sampled else None, reduction=reduction, **extra
                )

            options = {**extra, "pairs": f"sampled{PAIRS_PER_LIST}" if sampled else "all"}
            tolerances = TOLERANCES
            if not sampled and reduction != "mean":
                float32 = {**TOLERANCES["float32"], "grad": PAIRWISE_SUM_GRAD_FLOAT32}
                tolerances = {**TOLERANCES, "float32": float32}
            cases.append(
                Case(
                    name,
                    _variant(options, reduction, jit),
                    jax_fn,
                    torch_fn,
                    True,
                    jit,
                    reduction,
                    tolerances,
                )
            )
    return cases


def _metric_cases() -> list[Case]:
    cases = []
    metrics = [
        ("ndcg_at_k", {"k": 5}),
        ("ndcg_at_k", {"k": 10}),
        ("ndcg_at_k", {"k": None}),
        ("mrr", {}),
        ("average_precision", {}),
        ("recall_at_k", {"k": 10}),
    ]
    for (name, options), reduction, jit in itertools.product(metrics, ("none", "sum", "mean"), (False, True)):

        def jax_fn(s, y, w, tb, p, name=name, options=options, reduction=reduction):
            return getattr(jax_ltr, name)(s, y, where=w, reduction=reduction, **options)

        def torch_fn(s, y, w, tb, p, name=name, options=options, reduction=reduction):
            return getattr(torch_ltr, name)(s, y, where=w, reduction=reduction, **options)

        cases.append(Case(name, _variant(options, reduction, jit), jax_fn, torch_fn, False, jit, reduction))
    return cases


@functools.cache
def build_cases() -> tuple[Case, ...]:
    return tuple(_loss_cases() + _metric_cases())


@functools.cache
def _jax_runner(case: Case) -> Callable:
    def value_and_grad(s, y, w, tb, p, ct):
        if not case.differentiable:
            return case.jax_fn(s, y, w, tb, p), None
        value, vjp = jax.vjp(lambda s: case.jax_fn(s, y, w, tb, p), s)
        cotangent = ct if case.reduction == "none" else jnp.ones((), value.dtype)
        return value, vjp(cotangent)[0]

    return jax.jit(value_and_grad) if case.jit else value_and_grad


def run_jax(case: Case, inputs: Inputs) -> tuple[np.ndarray, np.ndarray | None]:
    """Value and (for losses) the vector-Jacobian product with the cotangent, as NumPy."""
    fn = _jax_runner(case)
    args = (inputs.scores, inputs.labels, inputs.where, inputs.tie_break, inputs.pairs, inputs.cotangent)
    value, grad = fn(*jax.tree.map(jnp.asarray, args))
    return np.asarray(value), None if grad is None else np.asarray(grad)


def run_torch(case: Case, inputs: Inputs) -> tuple[np.ndarray, np.ndarray | None]:
    scores = torch.from_numpy(inputs.scores.copy()).requires_grad_(case.differentiable)
    pairs = tuple(torch.from_numpy(p) for p in inputs.pairs)
    value = case.torch_fn(
        scores,
        torch.from_numpy(inputs.labels),
        torch.from_numpy(inputs.where),
        torch.from_numpy(inputs.tie_break),
        pairs,
    )
    if not case.differentiable:
        return value.detach().numpy(), None
    weights = torch.from_numpy(inputs.cotangent) if case.reduction == "none" else torch.ones(())
    (value * weights).sum().backward()
    return value.detach().numpy(), scores.grad.numpy()


@dataclasses.dataclass(frozen=True)
class Comparison:
    case: Case
    dtype: str
    max_abs: float
    max_rel: float
    worst_ratio: float  # max |diff| / (atol + rtol |reference|): < 1 passes
    passed: bool
    detail: str


def _diffs(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> tuple[float, float, float, bool]:
    """(max abs diff, max rel diff where |reference| > atol, worst diff / tolerance, passed)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return np.inf, np.inf, np.inf, False
    diff = np.abs(a - b)
    diff = np.where(np.isnan(a) & np.isnan(b), 0.0, diff)  # equal NaNs are equal
    allowed = atol + rtol * np.abs(b)
    ok = bool(np.all(diff <= allowed))
    # Relative differences only where the reference is above the absolute tolerance: near
    # zero (a gradient that is 0 in one framework and 1e-17 in the other) they mean nothing.
    big = np.abs(b) > atol
    rel = np.where(big, diff / np.where(big, np.abs(b), 1.0), 0.0)
    return (
        float(np.max(diff, initial=0.0)),
        float(np.max(rel, initial=0.0)),
        float(np.max(diff / allowed, initial=0.0)),
        ok,
    )


def compare(case: Case, inputs: Inputs, dtype: str) -> Comparison:
    """Run both frameworks on ``inputs`` and compare value and gradient leaf by leaf."""
    context = jax.enable_x64(True) if dtype == "float64" else jax.enable_x64(False)
    with context:
        jax_value, jax_grad = run_jax(case, inputs)
    torch_value, torch_grad = run_torch(case, inputs)
    parts = [("value", jax_value, torch_value)]
    if case.differentiable:
        parts.append(("grad", jax_grad, torch_grad))
    max_abs = max_rel = worst = 0.0
    passed, detail = True, []
    for name, a, b in parts:
        finite = np.isfinite(a).all() and np.isfinite(b).all()
        d_abs, d_rel, d_worst, ok = _diffs(a, b, *case.tolerances[dtype][name])
        ok = ok and finite and a.dtype == np.dtype(dtype)
        max_abs, max_rel, worst = max(max_abs, d_abs), max(max_rel, d_rel), max(worst, d_worst)
        passed = passed and ok
        if not ok:
            detail.append(
                f"{name}: max abs {d_abs:.3g}, max rel {d_rel:.3g}, finite={finite}, dtype={a.dtype}"
            )
    return Comparison(case, dtype, max_abs, max_rel, worst, passed, "; ".join(detail))
