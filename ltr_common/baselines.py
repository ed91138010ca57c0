"""Baselines a recommender practitioner tries first, fit on the training lists only.

Random order; item popularity (training ratings per item); the item mean rating shrunk toward
the global mean (``(sum + prior * mean) / (count + prior)``, the prior chosen on validation);
rating matrix factorisation (biased MF fit to the ratings by alternating least squares, in
NumPy); and the strongest peers of a next-items retrieval model, each fit on which items
each user rated (implicit feedback) and scoring a user from the history the evaluation shows
(``FromHistory``) — so at test they see the validation ratings, as a sequence model does:

- EASE (Steck 2019): the closed-form item-item ridge regression with a zero diagonal, ``B =
  -P / diag(P)``, ``P = (X'X + l2 I)^-1``; a user's scores are their history row times ``B``.
  Three lines of NumPy; no maintained package offers it for a CPU-only install.
- implicit-feedback ALS (Hu, Koren & Volinsky 2008) from the ``implicit`` package; a user's
  factors are solved from the history shown (``recalculate_user``, fold-in) against the
  fitted item factors.
- BPR (Rendle et al. 2009) from ``implicit``, which has no fold-in for it: its user factors
  are the training fit's in both history columns.
- item-kNN: cosine similarity of the items' user columns, shrunk (``x_i . x_j / (|x_i| |x_j|
  + shrinkage)``), each item's ``neighbours`` most similar kept; a user's score for an item
  is the sum of its similarities to the user's history. ``implicit``'s item-item
  recommenders have no shrinkage, so this is NumPy.

Each is a ``ScoreScorer``: a NumPy score function measured with a framework's metric
functions, so a task evaluates a baseline exactly as it evaluates a trained model — same
lists, same metric code.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from ltr_common.batching import Batch
from ltr_common.evaluation import catalog_reports, list_reports
from ltr_common.lists import Lists

BASELINES = ("random", "popularity", "item_mean", "rating_mf", "ease", "als", "bpr", "item_knn")
PEERS = ("ease", "als", "bpr", "item_knn")  # the history-reading retrieval peers (``FromHistory``)
PRIORS = (0.0, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)  # shrinkage of the item mean, chosen on validation

# (user ids [...], item ids [...]) -> scores, broadcast together
ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclasses.dataclass(frozen=True)
class FromHistory:
    """A score function of the users' histories: ``score(users [U], history: Lists)`` -> the
    scores of every item [U, num_items], ``history`` one list per user (``Split.history``)."""

    score: Callable[[np.ndarray, Lists], np.ndarray]


class ScoreScorer:
    """A task's ``Scorer`` from a NumPy score function (``ScoreFn``, or ``FromHistory``),
    measured by ``metrics``: a framework module with ``ranking_metrics`` and
    ``retrieval_metrics`` (``jax_ltr`` or ``torch_ltr``); a rerank list's item is relevant to
    MRR, MAP and recall from ``relevance_threshold`` on."""

    def __init__(
        self,
        score: ScoreFn | FromHistory,
        metrics,
        *,
        top_k,
        num_items: int,
        relevance_threshold: float = 4.0,
    ):
        self.score, self.metrics, self.top_k, self.num_items = score, metrics, tuple(top_k), num_items
        self.relevance_threshold = relevance_threshold

    def batch_metrics(self, batch: Batch, history=None):
        if isinstance(self.score, FromHistory):
            raise ValueError(
                "a history-reading baseline scores the catalog (--task retrieve), not rerank lists"
            )
        scores = np.asarray(self.score(batch.user_ids[:, None], batch.item_ids), np.float32)
        return list_reports(
            self.metrics.ranking_metrics,
            scores,
            batch,
            top_k=self.top_k,
            relevance_threshold=self.relevance_threshold,
        )

    def catalog_metrics(self, users, reports, exclude, history=None):
        if isinstance(self.score, FromHistory):
            scores = np.asarray(self.score.score(users, history), np.float32)
        else:
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


def interactions(lists: Lists, num_users: int, num_items: int):
    """Sparse [num_users, num_items] float32 (CSR): 1 where the user's list holds the item."""
    return _sparse(lists, num_users, num_items)


def _history_rows(num_users: int, num_items: int):
    """``rows(users, history)``: the users' rows of ``interactions(history)``, the matrix of
    the last history shown kept, as a task scores the catalog chunk after chunk of users."""
    last: list = [None, None]

    def rows(users, history):
        if last[0] is not history:
            last[:] = [history, interactions(history, num_users, num_items)]
        return last[1][users]

    return rows


def _item_item(weights: np.ndarray, num_users: int, num_items: int) -> FromHistory:
    rows = _history_rows(num_users, num_items)
    return FromHistory(lambda users, history: np.asarray(rows(users, history) @ weights))


def ease(train: Lists, num_users: int, num_items: int, *, l2: float) -> FromHistory:
    """EASE's item-item weights from the training interactions; scores ``x_history @ B``."""
    x = interactions(train, num_users, num_items)
    gram = (x.T @ x).toarray().astype(np.float64) + l2 * np.eye(num_items)
    inverse = np.linalg.inv(gram)
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return _item_item(weights, num_users, num_items)


def item_knn(
    train: Lists, num_users: int, num_items: int, *, neighbours: int, shrinkage: float
) -> FromHistory:
    """Item-kNN with shrunk cosine similarities (module docstring); ``neighbours`` per item."""
    x = interactions(train, num_users, num_items)
    common = (x.T @ x).toarray().astype(np.float64)
    norms = np.sqrt(np.diag(common))
    similarity = common / (np.outer(norms, norms) + shrinkage + 1e-12)
    np.fill_diagonal(similarity, 0.0)
    if neighbours < num_items - 1:  # keep each item's (column's) most similar items
        cut = np.partition(similarity, num_items - neighbours, axis=0)[num_items - neighbours]
        similarity = np.where(similarity >= cut[None, :], similarity, 0.0)
    return _item_item(similarity, num_users, num_items)


def _sparse(lists: Lists, num_users: int, num_items: int):
    import scipy.sparse

    rows = np.repeat(lists.users, lists.lengths)
    data = np.ones(len(rows), np.float32)
    matrix = scipy.sparse.csr_matrix((data, (rows, lists.items)), shape=(num_users, num_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def _implicit(model_class):
    """``implicit``'s CPU model class (``ltr_train.compare.check_installed`` has checked it
    is there)."""
    import implicit.cpu.als
    import implicit.cpu.bpr

    return {
        "als": implicit.cpu.als.AlternatingLeastSquares,
        "bpr": implicit.cpu.bpr.BayesianPersonalizedRanking,
    }[model_class]


def implicit_als(
    train: Lists,
    num_users: int,
    num_items: int,
    *,
    factors: int,
    regularization: float,
    alpha: float,
    seed: int,
) -> FromHistory:
    """``implicit``'s ALS fit on the training interactions (confidence ``1 + alpha``); a user's
    factors solved from the history shown (fold-in), the item factors kept."""
    from threadpoolctl import threadpool_limits

    model_class = _implicit("als")  # imported first: the limit applies to the BLAS libraries loaded
    with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads inside them oversubscribe
        model = model_class(
            factors=factors, regularization=regularization, alpha=alpha, iterations=15, random_state=seed
        )
        model.fit(_sparse(train, num_users, num_items), show_progress=False)

    history_rows = _history_rows(num_users, num_items)

    def score(users, history):
        rows = history_rows(users, history)
        with threadpool_limits(1, "blas"):
            user_factors = model.recalculate_user(users, rows)
        return np.asarray(user_factors) @ np.asarray(model.item_factors).T

    return FromHistory(score)


def implicit_bpr(
    train: Lists,
    num_users: int,
    num_items: int,
    *,
    factors: int,
    learning_rate: float,
    regularization: float,
    seed: int,
) -> FromHistory:
    """``implicit``'s BPR fit on the training interactions, 100 epochs, on one thread: its
    threads update the factors unsynchronised, so that on two the fit (and test NDCG@10, by
    about 0.003) differs from run to run. Its user factors are the fit's whatever history is
    shown (``implicit`` has no fold-in for BPR)."""
    from threadpoolctl import threadpool_limits

    model_class = _implicit("bpr")
    with threadpool_limits(1, "blas"):
        model = model_class(
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            iterations=100,
            num_threads=1,
            random_state=seed,
        )
        model.fit(_sparse(train, num_users, num_items), show_progress=False)
    users_f, items_f = np.asarray(model.user_factors), np.asarray(model.item_factors)
    return FromHistory(lambda users, history: users_f[users] @ items_f.T)
