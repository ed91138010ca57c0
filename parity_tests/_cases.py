"""The JAX-vs-PyTorch parity table, shared by the pytest suite and ``scripts/check_parity.py``.

Each row is a ``Case``: a function and its options, the JAX and PyTorch callables and the
magnitude bound its tolerances come from (``parity_tests._bounds``). Inputs are built once in
NumPy from a seeded generator and a real MovieLens batch, then fed to both frameworks;
values and gradients with respect to the scores are compared entry by entry, for every
reduction. JAX runs jitted (one compiled function returns every reduction's value and
gradient) and eagerly (reduction "none", which carries every list's value and gradient).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jax_ltr
import torch_ltr
from ltr_common import LOSSES, Batch, Split, bucket_length, make_batch, sample_pairs
from parity_tests import _bounds

PAIRS_PER_LIST = 16
RATING_LEVELS = (1, 2, 3, 4, 5)
REDUCTIONS = ("none", "sum", "mean")
MODES = {"jit": REDUCTIONS, "eager": ("none",)}  # mode -> the reductions it compares


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
    """``count`` batches of randomly chosen training lists, each with fully masked padding rows.

    All batches share one width (the bucket of the longest list drawn), so a compiled runner
    serves every batch: shorter lists simply get more padding.
    """
    lists = split.train
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(len(lists), size=lists_per_batch, replace=False) for _ in range(count)]
    longest = max(int(lists.lengths[ids].max()) for ids in chosen)
    width = bucket_length(longest, max_length=int(lists.lengths.max()))
    return [make_batch(lists, ids, batch_size=lists_per_batch + padding_rows, width=width) for ids in chosen]


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
    jax_fn: Callable  # (scores, labels, where, tie_break, pairs, reduction) -> value
    torch_fn: Callable
    # (inputs, reduction) -> float64 magnitudes (value, gradient or None): see _bounds.
    magnitude: Callable
    differentiable: bool

    @property
    def id(self) -> str:
        return f"{self.function}[{self.variant}]"


def _options(options: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in options.items()) or "default"


# The rows of each registered loss (ltr_common.losses.LOSSES), by its function: option sets in
# words. Options the inputs supply are named by how: tie_break "random" (the inputs' random tie
# order) or "position" (none), pairs "sampled16" (the inputs' sampled pairs) or "all" (none),
# levels "1..5" (ratings). Options only JAX has are listed in JAX_ONLY. A registered loss
# without rows here fails test_table_covers_the_api.
LOSS_ROWS = {
    "listmle_loss": [
        {"method": method, "tie_break": tie, **levels}
        for method in jax_ltr.LISTMLE_METHODS
        # levels: the counting-sort order; with a random tie order the sort serves.
        for tie, levels in (("position", {}), ("random", {}), ("position", {"levels": "1..5"}))
    ],
    "pairwise_pl_loss": [{"pairs": "all"}, {"pairs": f"sampled{PAIRS_PER_LIST}"}],
    "hybrid_loss": [{"alpha": 0.7, "pairs": "all"}, {"alpha": 0.7, "pairs": f"sampled{PAIRS_PER_LIST}"}],
    "pointwise_mse_loss": [{}],
    "softmax_loss": [{}],
    "topk_listmle_loss": [
        {"k": 5, "tie_break": "random"},
        {"k": 1, "tie_break": "position", "levels": "1..5"},
        {"k": 10, "tie_break": "position"},  # the default call: only the first k places ordered
    ],
    "position_listmle_loss": [
        {"weights": "dcg", "tie_break": "random"},
        {"weights": (3.0, 2.0, 1.0), "tie_break": "position"},
    ],
    "sigmoid_cross_entropy_loss": [{"threshold": 4.0}],
    "approx_ndcg_loss": [{}, {"temperature": 0.25}],
    # NDCG-Loss2++ computes both discount terms; each weighting alone is checked against its
    # definition and against Rax (test_references, test_rax_references).
    "lambda_loss": [{"weighting": "ndcg_loss2++"}, {"weighting": "label_diff"}],
}
JAX_ONLY = {"method"}
# options that change a loss's rounding bound
BOUND_OPTIONS = {"k", "weights", "threshold", "temperature", "weighting", "mu", "normalize"}


def _resolve(options: dict, tie_break, pairs, *, jax: bool) -> dict:
    """Option words → a function's keyword arguments (the inputs' arrays where they are named)."""
    inputs = {"random": tie_break, "position": None, "all": None, f"sampled{PAIRS_PER_LIST}": pairs}
    out = {}
    for key, value in options.items():
        if key in JAX_ONLY and not jax:
            continue
        if key == "levels":
            out[key] = RATING_LEVELS
        elif isinstance(value, str) and value in inputs:
            out[key] = inputs[value]
        else:
            out[key] = value
    return out


def _loss_magnitude(inputs: Inputs, reduction: str, *, function: str, options: dict):
    tie_break = inputs.tie_break if options.get("tie_break") == "random" else None
    pairs = inputs.pairs if str(options.get("pairs", "")).startswith("sampled") else None
    return _bounds.loss_magnitude(
        function,
        inputs.scores,
        inputs.labels,
        inputs.where,
        inputs.cotangent,
        reduction,
        tie_break=tie_break,
        pairs=pairs,
        alpha=options.get("alpha"),
        **{k: v for k, v in options.items() if k in BOUND_OPTIONS},
    )


def _metric_magnitude(inputs: Inputs, reduction: str):
    return _bounds.reduce(_bounds.metric(inputs.scores, inputs.labels, inputs.where), None, reduction)


def _loss_cases() -> list[Case]:
    cases = []
    for loss in LOSSES.values():
        for options in LOSS_ROWS.get(loss.function, ()):

            def jax_fn(s, y, w, tb, p, reduction, function=loss.function, options=options):
                kwargs = _resolve(options, tb, p, jax=True)
                return getattr(jax_ltr, function)(s, y, where=w, reduction=reduction, **kwargs)

            def torch_fn(s, y, w, tb, p, reduction, function=loss.function, options=options):
                kwargs = _resolve(options, tb, p, jax=False)
                return getattr(torch_ltr, function)(s, y, where=w, reduction=reduction, **kwargs)

            magnitude = functools.partial(_loss_magnitude, function=loss.function, options=options)
            cases.append(Case(loss.function, _options(options), jax_fn, torch_fn, magnitude, True))
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
    for name, options in metrics:

        def jax_fn(s, y, w, tb, p, reduction, name=name, options=options):
            return getattr(jax_ltr, name)(s, y, where=w, reduction=reduction, **options)

        def torch_fn(s, y, w, tb, p, reduction, name=name, options=options):
            return getattr(torch_ltr, name)(s, y, where=w, reduction=reduction, **options)

        cases.append(Case(name, _options(options), jax_fn, torch_fn, _metric_magnitude, False))
    return cases


@functools.cache
def build_cases() -> tuple[Case, ...]:
    return tuple(_loss_cases() + _metric_cases())


@functools.cache
def _jax_runner(case: Case, mode: str) -> Callable:
    """All of ``mode``'s reductions at once: ``{reduction: (value, vjp with the cotangent)}``."""

    def run(s, y, w, tb, p, ct):
        out = {}
        for reduction in MODES[mode]:
            fn = functools.partial(case.jax_fn, y=y, w=w, tb=tb, p=p, reduction=reduction)
            if not case.differentiable:
                out[reduction] = (fn(s), None)
                continue
            value, vjp = jax.vjp(fn, s)
            cotangent = ct if reduction == "none" else jnp.ones((), value.dtype)
            out[reduction] = (value, vjp(cotangent)[0])
        return out

    return jax.jit(run) if mode == "jit" else run


def run_jax(case: Case, inputs: Inputs, mode: str) -> dict:
    """``{reduction: (value, gradient or None)}`` as NumPy."""
    args = (inputs.scores, inputs.labels, inputs.where, inputs.tie_break, inputs.pairs, inputs.cotangent)
    out = _jax_runner(case, mode)(*jax.tree.map(jnp.asarray, args))
    return jax.tree.map(np.asarray, out)


def run_torch(case: Case, inputs: Inputs, reduction: str) -> tuple[np.ndarray, np.ndarray | None]:
    scores = torch.from_numpy(inputs.scores.copy()).requires_grad_(case.differentiable)
    pairs = tuple(torch.from_numpy(p) for p in inputs.pairs)
    value = case.torch_fn(
        scores,
        torch.from_numpy(inputs.labels),
        torch.from_numpy(inputs.where),
        torch.from_numpy(inputs.tie_break),
        pairs,
        reduction,
    )
    if not case.differentiable:
        return value.detach().numpy(), None
    weights = torch.from_numpy(inputs.cotangent) if reduction == "none" else torch.ones(())
    (value * weights).sum().backward()
    return value.detach().numpy(), scores.grad.numpy()


@dataclasses.dataclass(frozen=True)
class Comparison:
    case: Case
    dtype: str
    mode: str
    max_abs: float
    worst_ratio: float  # max |diff| / tolerance over every compared entry: <= 1 passes
    passed: bool
    detail: str


def _ratio(a: np.ndarray, b: np.ndarray, allowed: np.ndarray) -> float:
    """max |a - b| / allowed; equal entries (NaN with NaN too) are 0, whatever is allowed."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return np.inf
    diff = np.abs(a - b)
    diff = np.where((a == b) | (np.isnan(a) & np.isnan(b)), 0.0, diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(diff == 0, 0.0, diff / np.broadcast_to(allowed, diff.shape))
    return float(np.max(ratio, initial=0.0))


def compare(case: Case, inputs: Inputs, dtype: str, mode: str) -> Comparison:
    """Run both frameworks on ``inputs``; compare every reduction's value and gradient."""
    with jax.enable_x64(dtype == "float64"):
        ours = run_jax(case, inputs, mode)
    max_abs = worst = 0.0
    detail = []
    for reduction in MODES[mode]:
        theirs = run_torch(case, inputs, reduction)
        bounds = case.magnitude(inputs, reduction)
        for name, a, b, magnitude in zip(("value", "grad"), ours[reduction], theirs, bounds, strict=True):
            if a is None:
                continue
            ratio = _ratio(a, b, _bounds.tolerance(magnitude, dtype, reference=b))
            finite = bool(np.isfinite(a).all() and np.isfinite(b).all())
            if a.shape == b.shape:
                max_abs = max(max_abs, float(np.max(np.abs(a.astype(np.float64) - b), initial=0.0)))
            worst = max(worst, ratio)
            if ratio > 1 or not finite or a.dtype != np.dtype(dtype):
                detail.append(
                    f"{reduction} {name}: |diff| / tolerance {ratio:.3g}, finite={finite}, dtype={a.dtype}"
                )
    return Comparison(case, dtype, mode, max_abs, worst, not detail, "; ".join(detail))
