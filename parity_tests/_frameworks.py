"""Call any public loss or metric of either framework on NumPy inputs; NumPy comes back."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jax_ltr
import torch_ltr
from ltr_common.losses import LOSSES as REGISTRY

FRAMEWORKS = ("jax", "torch")
LOSSES = tuple(loss.function for loss in REGISTRY.values())  # every registered loss
# those that see the scores only through their order's likelihood (``Loss.ranking``)
RANKING_LOSSES = tuple(loss.function for loss in REGISTRY.values() if loss.ranking)
METRICS = ("ndcg_at_k", "mrr", "average_precision", "recall_at_k")
# Options a function needs on these tests' graded labels (1..5) unless a test gives its own:
# the logistic loss's targets are labels >= 4 (ratings "liked"), not the labels themselves.
NEEDED_OPTIONS = {"sigmoid_cross_entropy_loss": {"threshold": 4.0}}


def evaluate(framework: str, name: str, scores, labels, *, grad: bool = True, jit: bool = True, **kwargs):
    """``(value, d sum(value) / d scores)`` as NumPy (gradient None when ``grad`` is False).

    Array keyword arguments (``where``, ``tie_break``, ``pairs``) are converted too; the
    others (``reduction``, ``k``, ``levels``, ...) are options. JAX runs in float64 when the
    scores are float64, jitted unless ``jit=False`` (argument checks that look at values,
    such as non-finite labels, only raise outside jit).
    """
    scores, arrays, options = _arguments(name, scores, kwargs)
    if framework == "jax":
        return _run_jax(name, scores, labels, arrays, options, grad, jit, None)
    kw = {**{k: _to_torch(v) for k, v in arrays.items()}, **dict(options)}
    s = torch.tensor(scores, requires_grad=grad)
    value = getattr(torch_ltr, name)(s, torch.as_tensor(np.asarray(labels)), **kw)
    if not grad:
        return value.detach().numpy(), None
    value.sum().backward()
    return value.detach().numpy(), s.grad.numpy()


def _is_array(v) -> bool:
    return isinstance(v, np.ndarray) or (isinstance(v, tuple) and all(isinstance(x, np.ndarray) for x in v))


def evaluate_each(framework: str, name: str, scores, labels, *, reductions, grad: bool = True, **kwargs):
    """``{reduction: evaluate(..., reduction=reduction)}`` for each of ``reductions``; in JAX
    from one compiled function (one compilation, not one per reduction)."""
    if framework == "torch":
        return {
            r: evaluate(framework, name, scores, labels, grad=grad, reduction=r, **kwargs) for r in reductions
        }
    scores, arrays, options = _arguments(name, scores, kwargs)
    outs = _run_jax(name, scores, labels, arrays, options, grad, True, tuple(reductions))
    return dict(zip(reductions, outs, strict=True))


def _arguments(name: str, scores, kwargs: dict):
    """``(scores, arrays, options)``: the scores as NumPy, the array keyword arguments, and the
    others (with the options the function needs here) as a sorted tuple, hashable."""
    kwargs = {**NEEDED_OPTIONS.get(name, {}), **kwargs}
    arrays = {k: v for k, v in kwargs.items() if _is_array(v)}
    return np.asarray(scores), arrays, tuple(sorted((k, v) for k, v in kwargs.items() if not _is_array(v)))


def _run_jax(name, scores, labels, arrays, options, grad, jit, each):
    with jax.enable_x64(scores.dtype == np.float64):
        fn = _jax_function(name, options, grad, jit, each)
        out = fn(jnp.asarray(scores), jnp.asarray(labels), jax.tree.map(jnp.asarray, arrays))
        return jax.tree.map(np.asarray, out)


@functools.cache
def _jax_function(name: str, options: tuple, grad: bool, jit: bool, each: tuple | None):
    """The jitted call; with ``each``, one output per reduction in it."""
    fn = functools.partial(getattr(jax_ltr, name), **dict(options))

    def one(scores, labels, arrays, reduction):
        given = {} if reduction is None else {"reduction": reduction}
        if not grad:
            return fn(scores, labels, **arrays, **given), None
        value, vjp = jax.vjp(lambda s: fn(s, labels, **arrays, **given), scores)
        return value, vjp(jnp.ones_like(value))[0]

    def run(scores, labels, arrays):
        if each is None:
            return one(scores, labels, arrays, None)
        return tuple(one(scores, labels, arrays, reduction) for reduction in each)

    return jax.jit(run) if jit else run


def _to_torch(v):
    if isinstance(v, np.ndarray):
        return torch.from_numpy(v)
    if isinstance(v, tuple):
        return tuple(_to_torch(x) for x in v)
    return v
