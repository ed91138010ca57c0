"""Call any public loss or metric of either framework on NumPy inputs; NumPy comes back."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch

import jax_ltr
import torch_ltr

FRAMEWORKS = ("jax", "torch")
LOSSES = ("listmle_loss", "pairwise_pl_loss", "hybrid_loss")
METRICS = ("ndcg_at_k", "mrr", "average_precision", "recall_at_k")


def evaluate(framework: str, name: str, scores, labels, *, grad: bool = True, **kwargs):
    """``(value, d sum(value) / d scores)`` as NumPy (gradient None when ``grad`` is False).

    Array keyword arguments (``where``, ``tie_break``, ``pairs``) are converted too. JAX runs
    in float64 when the scores are float64.
    """
    scores = np.asarray(scores)
    if framework == "jax":
        with jax.enable_x64(scores.dtype == np.float64):
            kw = {k: _to_jax(v) for k, v in kwargs.items()}
            fn = getattr(jax_ltr, name)
            if not grad:
                return np.asarray(fn(jnp.asarray(scores), jnp.asarray(labels), **kw)), None
            value, vjp = jax.vjp(lambda s: fn(s, jnp.asarray(labels), **kw), jnp.asarray(scores))
            return np.asarray(value), np.asarray(vjp(jnp.ones_like(value))[0])
    kw = {k: _to_torch(v) for k, v in kwargs.items()}
    s = torch.tensor(scores, requires_grad=grad)
    value = getattr(torch_ltr, name)(s, torch.as_tensor(np.asarray(labels)), **kw)
    if not grad:
        return value.detach().numpy(), None
    value.sum().backward()
    return value.detach().numpy(), s.grad.numpy()


def _to_jax(v):
    if isinstance(v, np.ndarray):
        return jnp.asarray(v)
    if isinstance(v, tuple):
        return tuple(_to_jax(x) for x in v)
    return v


def _to_torch(v):
    if isinstance(v, np.ndarray):
        return torch.from_numpy(v)
    if isinstance(v, tuple):
        return tuple(_to_torch(x) for x in v)
    return v
