"""The loss registry: every loss a trainer can train with, by its ``--loss`` name.

An entry names the public function that ``jax_ltr`` and ``torch_ltr`` both export under the
same name (the shared contract ``fn(scores, labels, *, where=None, ..., reduction="mean")``)
and what a trainer hands it besides scores, labels and the mask. The trainers, the parity
table and the benchmark all read this one table, so a new loss is one function per framework,
one entry here and one parity-table bound (``parity_tests/_bounds.py``).

A training objective is a weighted sum of registered losses (``objective_terms``): the
hybrid is ``alpha`` of ListMLE and ``1 - alpha`` of pairwise PL. ``weighted_sum`` is the one
place such a combination is written, for the trainers and (through ``mix``) both
``hybrid_loss`` functions.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ltr_common.checks import check_k, number_sequence


@dataclasses.dataclass(frozen=True)
class Loss:
    """One registered loss."""

    name: str  # the --loss value
    function: str  # the function of this name in jax_ltr and torch_ltr
    summary: str
    takes_pairs: bool = False  # trained on sampled pairs (``pairs=``)
    random_order: bool = False  # trained on lists in a random order: ties broken at random
    takes_order: bool = False  # takes the label order as ``order=`` (the JAX trainer's, from the host)
    parts: tuple[str, ...] = ()  # a weighted combination of these losses (trained term by term)
    ranking: bool = True  # depends on the scores only through their order's likelihood: a
    # constant added to a list's scores changes nothing, and each list's gradient sums to 0
    # keyword -> the TrainConfig field a trainer passes as it (e.g. top-k ListMLE's ``k``)
    config_options: tuple[tuple[str, str], ...] = ()


LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss(
            "listmle",
            "listmle_loss",
            "Plackett-Luce likelihood of the label order",
            random_order=True,
            takes_order=True,
        ),
        Loss(
            "pairwise_pl",
            "pairwise_pl_loss",
            "-log sigma(s_i - s_j) over pairs with y_i > y_j",
            takes_pairs=True,
        ),
        Loss(
            "hybrid",
            "hybrid_loss",
            "alpha * listmle + (1 - alpha) * pairwise_pl",
            parts=("listmle", "pairwise_pl"),
            takes_order=True,
        ),
        Loss("pointwise_mse", "pointwise_mse_loss", "squared error against the labels", ranking=False),
        Loss(
            "softmax",
            "softmax_loss",
            "ListNet top-one: cross-entropy of softmax(scores) against labels / sum(labels)",
        ),
        Loss(
            "topk_listmle",
            "topk_listmle_loss",
            "ListMLE over the first --listmle_k places of the label order",
            random_order=True,
            takes_order=True,
            config_options=(("k", "listmle_k"),),
        ),
        Loss(
            "position_listmle",
            "position_listmle_loss",
            "ListMLE with place i weighted 1 / log2(i + 2) (position-aware ListMLE)",
            random_order=True,
            takes_order=True,
        ),
        Loss(
            "approx_ndcg",
            "approx_ndcg_loss",
            "1 - NDCG with smooth ranks 1 + sum_j sigma(s_j - s_i) (ApproxNDCG, temperature 1)",
        ),
        Loss(
            "sigmoid_ce",
            "sigmoid_cross_entropy_loss",
            "pointwise logistic loss, relevant = label >= --relevance_threshold",
            ranking=False,
            config_options=(("threshold", "relevance_threshold"),),
        ),
        Loss(
            "lambdaloss",
            "lambda_loss",
            "pairwise logistic loss weighted by NDCG-Loss2++ (LambdaLoss, mu 10)",
        ),
    )
}


def mix(alpha, first, second):
    """``alpha * first + (1 - alpha) * second``, for arrays of any framework.

    Example:
      >>> mix(0.25, 4.0, 8.0)
      7.0
    """
    return weighted_sum(((alpha, first), (1.0 - alpha, second)))


def objective_terms(
    loss: str, *, hybrid_alpha: float, pointwise_weight: float = 0.0
) -> tuple[tuple[str, float], ...]:
    """The training objective as ``((registered loss, weight), ...)``; zero weights left out.

    ``loss`` with weight 1 (the hybrid: its two parts, ``alpha`` and ``1 - alpha``), plus
    ``pointwise_weight`` of the pointwise squared error when that is positive.

    Example:
      >>> objective_terms("hybrid", hybrid_alpha=0.75, pointwise_weight=0.1)
      (('listmle', 0.75), ('pairwise_pl', 0.25), ('pointwise_mse', 0.1))
    """
    spec = LOSSES[loss]
    if spec.parts:
        first, second = spec.parts
        terms = [(first, hybrid_alpha), (second, 1.0 - hybrid_alpha)]
    else:
        terms = [(loss, 1.0)]
    if pointwise_weight > 0:
        terms.append(("pointwise_mse", pointwise_weight))
    return tuple((name, weight) for name, weight in terms if weight > 0)


def weighted_sum(terms):
    """``w_1 * v_1 + w_2 * v_2 + ...`` over ``((weight, value), ...)``, in order.

    Example:
      >>> weighted_sum([(0.5, 2.0), (2.0, 3.0)])
      7.0
    """
    (weight, value), *rest = terms
    total = weight * value
    for weight, value in rest:
        total = total + weight * value
    return total


def training_objective(functions, scores, labels, where, pairs, terms, config=None, order=None):
    """``(total, {loss name: value})`` of a weighted objective, the losses taken from ``functions``.

    ``functions`` is a framework's module of loss functions (``jax_ltr._losses``,
    ``torch_ltr._losses``), ``terms`` an objective's ``((registered loss, weight), ...)``; each
    loss gets the sampled ``pairs`` when it trains with them, the label ``order`` when one is
    given and it takes one (``jax_ltr.label_order``), and
    its ``config_options`` from ``config`` (a ``TrainConfig``; without one, the defaults).
    """
    values = {}
    for name, _ in terms:
        spec = LOSSES[name]
        options = {}
        if config is not None:
            options.update({keyword: getattr(config, field) for keyword, field in spec.config_options})
        if spec.takes_pairs:
            options["pairs"] = pairs
        if spec.takes_order and order is not None:
            options["order"] = order
        values[name] = getattr(functions, spec.function)(scores, labels, where=where, **options)
    return weighted_sum([(weight, values[name]) for name, weight in terms]), values


def takes_order(terms) -> bool:
    """Whether any loss of an objective's ``((registered loss, weight), ...)`` takes ``order=``."""
    return any(LOSSES[name].takes_order for name, _ in terms)


def position_weights(weights, length: int) -> np.ndarray:
    """The [length] float64 weights of the places 0 .. length - 1 of a label order.

    ``weights``: "dcg" (``1 / log2(i + 2)``, the DCG discount: decreasing, as position-aware
    ListMLE asks) or a 1-D sequence of finite numbers >= 0 for the first places; places past
    its end weigh 0 (so ``[1] * k`` is top-k ListMLE). The same in both frameworks.

    Example:
      >>> position_weights("dcg", 3).round(4).tolist()
      [1.0, 0.6309, 0.5]
      >>> position_weights([2.0, 1.0], 3).tolist()
      [2.0, 1.0, 0.0]
    """
    if isinstance(weights, str):
        if weights != "dcg":
            raise ValueError(f"weights must be 'dcg' or a sequence of numbers >= 0, got {weights!r}")
        return 1.0 / np.log2(np.arange(length) + 2.0)
    given = number_sequence(weights)
    if given is None:
        raise ValueError(f"weights must be 'dcg' or a sequence of numbers >= 0, got {weights!r}")
    if not np.isfinite(given).all() or (given < 0).any():
        raise ValueError(f"weights must be a 1-D sequence of finite numbers >= 0, got {weights!r}")
    out = np.zeros(length)
    out[: min(length, len(given))] = given[:length]
    return out


def top_k_weights(k, length: int) -> np.ndarray:
    """Weight 1 for the places before ``k`` (every place for ``k=None``), 0 after.

    Example:
      >>> top_k_weights(2, 4).tolist()
      [1.0, 1.0, 0.0, 0.0]
    """
    check_k(k)
    return (np.arange(length) < (length if k is None else k)).astype(np.float64)
