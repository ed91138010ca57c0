"""What the loss grid times: every registered loss in each framework, and its peers.

An ``Impl`` is one implementation of one loss, called as ``fn(scores, labels, where)`` (the
trainer's call adds the sampled pairs). ``implementations()`` lists them all, from the loss
registry (``ltr_common.losses.LOSSES``) plus JAX's other ListMLE methods, the per-row Python
loop and Rax; the command line's help, the grid and the accelerator suite all read it.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import torch

import jax_ltr
import torch_ltr
from ltr_common.config import TrainConfig
from ltr_common.losses import LOSSES, objective_terms, training_objective

LOSS_NAMES = tuple(LOSSES)  # every loss the trainers train
MODES = ("forward", "forward+backward")
DTYPES = ("float32", "bfloat16")
LABELS = ("ratings", "continuous")  # graded 1..5 (many ties); |standard normal| (no ties)
LEVELS = (1, 2, 3, 4, 5)
# torch_ltr's all-pairs forms build [B, L, L] arrays
TORCH_DENSE = {"pairwise_pl", "hybrid", "approx_ndcg", "lambdaloss"}
TRAINER_DEFAULTS = TrainConfig()  # options a loss takes from the configuration: the trainer's


@dataclasses.dataclass(frozen=True)
class Impl:
    name: str
    loss: str
    framework: str  # "jax" | "torch"
    fn: Callable  # (scores, labels, where) -> scalar loss
    compiled: bool = True
    dense: bool = False  # materialises [B, L, L]
    loop: bool = False  # the per-row Python loop
    dtypes: tuple[str, ...] = DTYPES
    trainer: bool = False  # the trainer's call: fn(scores, labels, where, pairs)

    @property
    def call(self) -> str:
        return "trainer" if self.trainer else "default"


def implementations() -> list[Impl]:
    """Every registered loss as ``jax`` (jax_ltr's default call), ``torch eager`` and
    ``torch.compile``, and where the trainer adds sampled pairs, the same three as the trainer
    calls it (``... trainer``); then other JAX methods, Rax's version of a loss, the original
    loop."""
    impls = []
    for loss in LOSSES.values():
        dense = loss.name in TORCH_DENSE
        impls += [
            Impl("jax", loss.name, "jax", _default_call(jax_ltr, loss)),
            Impl("torch eager", loss.name, "torch", _default_call(torch_ltr, loss), False, dense),
            Impl("torch.compile", loss.name, "torch", _default_call(torch_ltr, loss), True, dense),
        ]
        if trains_with_random_inputs(loss):
            # sampled pairs, never all pairs: no [B, L, L] in either framework
            impls += [
                Impl("jax trainer", loss.name, "jax", _trainer_call(jax_ltr, loss), trainer=True),
                Impl(
                    "torch eager trainer",
                    loss.name,
                    "torch",
                    _trainer_call(torch_ltr, loss),
                    False,
                    trainer=True,
                ),
                Impl(
                    "torch.compile trainer", loss.name, "torch", _trainer_call(torch_ltr, loss), trainer=True
                ),
            ]
    for method in jax_ltr.LISTMLE_METHODS:
        impls.append(
            Impl(
                f"jax {method}",
                "listmle",
                "jax",
                lambda s, y, w, m=method: jax_ltr.listmle_loss(s, y, where=w, method=m),
            )
        )
    for method in jax_ltr.LISTMLE_METHODS:
        impls.append(
            Impl(
                f"jax {method} levels",
                "listmle",
                "jax",
                lambda s, y, w, m=method: jax_ltr.listmle_loss(s, y, where=w, levels=LEVELS, method=m),
            )
        )
    impls += [
        Impl("original loop", "listmle", "torch", original_listmle, False, loop=True, dtypes=("float32",)),
    ]
    try:
        import rax
    except ImportError:
        return impls
    return impls + _rax_implementations(rax)


def implementation_names() -> list[str]:
    """Each implementation's name once, in ``implementations()``' order."""
    return list(dict.fromkeys(impl.name for impl in implementations()))


def original_listmle(scores, labels, where):
    """The original design's ListMLE: a Python loop over lists and over positions."""
    losses = []
    for row in range(scores.shape[0]):
        valid = where[row]
        s, y = scores[row][valid], labels[row][valid]
        if s.shape[0] < 2:
            continue
        ranked = s[torch.argsort(y, descending=True, stable=True)]
        running = ranked[-1]
        total = running - ranked[-1]
        for i in range(ranked.shape[0] - 2, -1, -1):
            running = torch.logaddexp(running, ranked[i])
            total = total + (running - ranked[i])
        losses.append(total)
    return torch.stack(losses).mean()


def trains_with_random_inputs(loss) -> bool:
    """Whether the trainer calls ``loss`` with sampled pairs, so that its call differs from the
    default call. (A random tie order costs the trainer's call nothing: the trainers shuffle
    each list on the host, ``ltr_common.tasks.host_inputs``, and the loss breaks ties by
    position, as in the default call; the inputs here are random already.)"""
    return any(LOSSES[n].takes_pairs for n, _ in _trainer_terms(loss))


def _default_call(module, loss):
    """``module``'s function of registered ``loss`` with its default options and those it
    takes from the configuration (``Loss.config_options``) at their defaults (top-k ListMLE's
    ``k``, the sigmoid loss's relevance ``threshold``), but without the random inputs a
    trainer adds (``_trainer_call``)."""
    fn = getattr(module, loss.function)
    options = {keyword: getattr(TRAINER_DEFAULTS, field) for keyword, field in loss.config_options}
    return lambda s, y, w: fn(s, y, where=w, **options)


def _trainer_terms(loss) -> tuple[tuple[str, float], ...]:
    return objective_terms(loss.name, hybrid_alpha=TRAINER_DEFAULTS.hybrid_alpha)


def _trainer_call(module, loss):
    """``module``'s ``loss`` exactly as the trainers call it (``training_objective``): the
    configuration's options and the batch's sampled pairs (``pairs_per_list`` per list)."""
    terms = _trainer_terms(loss)
    return lambda s, y, w, p: training_objective(module, s, y, w, p, terms, TRAINER_DEFAULTS)[0]


def _rax_implementations(rax) -> list[Impl]:
    """Rax's version of each loss it has, called so that its value compares with ours."""
    return [
        Impl("rax", "listmle", "jax", lambda s, y, w: rax.listmle_loss(s, y, where=w)),
        Impl(
            "rax", "pairwise_pl", "jax", lambda s, y, w: rax.pairwise_logistic_loss(s, y, where=w), dense=True
        ),
        Impl(
            "rax",
            "softmax",
            "jax",
            lambda s, y, w: rax.softmax_loss(s, y, where=w, label_fn=rax.utils.normalize_probabilities),
        ),
        Impl("rax", "approx_ndcg", "jax", rax_approx_ndcg(rax), dense=True),
        Impl("rax", "lambdaloss", "jax", rax_lambdaloss(rax), dense=True),
        Impl(
            "rax",
            "sigmoid_ce",
            "jax",
            lambda s, y, w: rax.pointwise_sigmoid_loss(
                s, (y >= TRAINER_DEFAULTS.relevance_threshold).astype(s.dtype), where=w
            ),
        ),
    ]


def rax_lambdaloss(rax, mu: float = 10.0):
    """LambdaLoss with NDCG-Loss2++ weights in Rax: ``pairwise_logistic_loss`` with
    ``dcg_lambdaweight + mu * dcg2_lambdaweight``, both normalised. Rax scales those weights by
    the padded width, ``lambda_loss`` by each list's valid items: the weights are rescaled to
    the valid count (a [B, 1] multiply) so that the values compare."""

    def lambdaweight(scores, labels, *, where, **kwargs):
        both = (
            functools.partial(rax.dcg_lambdaweight, normalize=True),
            functools.partial(rax.dcg2_lambdaweight, normalize=True),
        )
        weights = both[0](scores, labels, where=where, **kwargs) + mu * both[1](
            scores, labels, where=where, **kwargs
        )
        valid = jnp.sum(where, axis=-1, keepdims=True).astype(weights.dtype)  # Rax's pairs: [B, L * L]
        return weights * valid / scores.shape[-1]

    return lambda s, y, w: rax.pairwise_logistic_loss(s, y, where=w, lambdaweight_fn=lambdaweight)


def rax_approx_ndcg(rax):
    """``rax.approx_t12n(rax.ndcg_metric)`` plus 1 (Rax's loss is ``-NDCG``, ours ``1 - NDCG``,
    so that the values compare), called through ``ndcg_metric`` with approximate ranks:
    ``approx_t12n`` itself needs ``jax.util.wraps``, which JAX 0.10 no longer has."""
    step = jax.nn.sigmoid  # temperature 1
    rank_fn = functools.partial(rax.utils.approx_ranks, step_fn=step)
    cutoff_fn = functools.partial(rax.utils.approx_cutoff, step_fn=step)
    return lambda s, y, w: 1.0 - rax.ndcg_metric(s, y, where=w, rank_fn=rank_fn, cutoff_fn=cutoff_fn)
