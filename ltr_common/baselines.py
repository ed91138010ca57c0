"""Baselines a recommender practitioner tries first, fit on the training lists only.

Random order; item popularity (training ratings per item); the item mean rating shrunk toward
the global mean (``(sum + prior * mean) / (count + prior)``, the prior chosen on validation);
and rating matrix factorisation (biased MF fit to the ratings by alternating least squares,
in NumPy). Each is a ``ScoreScorer``: a NumPy score function measured with a framework's
metric functions, so a task evaluates a baseline exactly as it evaluates a trained model —
same lists, same metric code.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ltr_common.batching import Batch
from ltr_common.evaluation import catalog_reports
from ltr_common.lists import Lists

BASELINES = ("random", "popularity", "item_mean", "rating_mf")
PRIORS = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)  # shrinkage of the item mean, chosen on validation

# (user ids [...], item ids [...]) -> scores, broadcast together
ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


class ScoreScorer:
    """A task's ``Scorer`` from a NumPy score function, measured by ``metrics``: a framework
    module with ``ranking_metrics`` and ``retrieval_metrics`` (``jax_ltr`` or ``torch_ltr``)."""

    def __init__(self, score: ScoreFn, metrics, *, top_k, num_items: int):
        self.score, self.metrics, self.top_k, self.num_items = score, metrics, tuple(top_k), num_items

    def batch_metrics(self, batch: Batch):
        scores = np.asarray(self.score(batch.user_ids[:, None], batch.item_ids), np.float32)
        return self.metrics.ranking_metrics(scores, batch.labels, where=batch.mask, top_k=self.top_k)

    def catalog_metrics(self, users, reports, exclude):
        scores = np.asarray(self.score(users[:, None], np.arange(self.num_items)[None, :]), np.float32)
        return catalog_reports(
            self.metrics.retrieval_metrics, scores, reports, exclude=exclude, ks=self.top_k
        )


def random_scores(seed: int) -> ScoreFn:
    """Uniform scores, a fresh draw for every call: a random order of every list."""
    rng = np.random.default_rng(seed)
    return lambda users, items: rng.random(np.broadcast(users, items).shape)


def item_scores(table: np.ndarray) -> ScoreFn:
    return lambda users, items: np.broadcast_to(table[items], np.broadcast(users, items).shape)


def popularity(train: Lists, num_items: int) -> np.ndarray:
    """Training ratings per item."""
    return np.bincount(train.items, minlength=num_items).astype(np.float64)


def item_mean(train: Lists, num_items: int, *, prior: float) -> np.ndarray:
    """Each item's mean training rating shrunk toward the global mean by ``prior`` ratings of it
    (an item never rated in training gets the global mean)."""
    counts = popularity(train, num_items)
    sums = np.bincount(train.items, weights=train.labels, minlength=num_items)
    global_mean = float(train.labels.mean())
    with np.errstate(invalid="ignore", divide="ignore"):
        shrunk = (sums + prior * global_mean) / (counts + prior)
    return np.where(counts + prior > 0, shrunk, global_mean)


def rating_mf(
    train: Lists,
    num_users: int,
    num_items: int,
    *,
    dim: int = 64,
    reg: float = 10.0,
    iterations: int = 15,
    seed: int = 0,
) -> ScoreFn:
    """Biased matrix factorisation of the training ratings by alternating least squares.

    Minimises ``sum (r - mu - b_u - b_i - p_u . q_i)^2 + reg (|p|^2 + |q|^2 + b^2)`` over the
    rated (user, item) pairs, solving each user's ``(b_u, p_u)`` and each item's ``(b_i, q_i)``
    as a ridge regression in turn. Scores are ``b_i + p_u . q_i`` (``mu`` and ``b_u`` order no
    user's items).
    """
    users = np.repeat(train.users, train.lengths).astype(np.int64)
    items, ratings = train.items.astype(np.int64), train.labels.astype(np.float64)
    mu = float(ratings.mean())
    rng = np.random.default_rng(seed)
    p = rng.normal(0.0, 0.1, (num_users, dim))
    q = rng.normal(0.0, 0.1, (num_items, dim))
    bu, bi = np.zeros(num_users), np.zeros(num_items)

    def solve(rows, cols, other_factors, other_bias, count):
        """Per row entity: ridge regression of the residual on ``[1, other factor]``."""
        factors, biases = np.zeros((count, dim)), np.zeros(count)
        order = np.argsort(rows, kind="stable")
        bounds = np.searchsorted(rows[order], np.arange(count + 1))
        eye = reg * np.eye(dim + 1)
        for entity in range(count):
            chosen = order[bounds[entity] : bounds[entity + 1]]
            if chosen.size == 0:
                continue
            x = np.hstack([np.ones((chosen.size, 1)), other_factors[cols[chosen]]])
            target = ratings[chosen] - mu - other_bias[cols[chosen]]
            solution = np.linalg.solve(x.T @ x + eye, x.T @ target)
            biases[entity], factors[entity] = solution[0], solution[1:]
        return factors, biases

    for _ in range(iterations):
        p, bu = solve(users, items, q, bi, num_users)
        q, bi = solve(items, users, p, bu, num_items)

    def score(u, i):
        u, i = np.asarray(u), np.asarray(i)
        if u.ndim == 2 and u.shape[1] == 1 and i.ndim == 2 and i.shape[0] == 1:  # a catalog: one product
            return p[u[:, 0]] @ q[i[0]].T + bi[i]
        return bi[i] + np.einsum("...d,...d->...", p[u], q[i])

    return score
