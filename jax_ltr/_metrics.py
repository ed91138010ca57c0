"""Ranking metrics in JAX: NDCG@k, MRR, average precision, recall@k.

Same contract as the losses (``[..., L]`` scores and labels, ``where`` mask, ``reduction``);
"mean" averages over lists with at least one valid item; a list of no items scores 0. Items
are ranked by descending score, ties by position; invalid items are never ranked.
"""

from __future__ import annotations

import functools
import sys

import jax
import jax.numpy as jnp
from jax import lax

from jax_ltr._label_order import descending_order, positive_zero, sorting_network, take
from jax_ltr._utils import (
    array_info,
    as_array,
    as_labels,
    check_inputs,
    check_label_range,
    nan_for_bad_labels,
    safe_reduce,
)
from ltr_common import checks
from ltr_common.checks import GAIN_LABEL_MAX, GAIN_RANGE, check_k, check_reduction
from ltr_common.evaluation import metric_order, ranking_metric_set


def _ranked(scores, labels, where):
    """Labels and validity in descending-score order (XLA's sort: a metric's program runs a
    few times an evaluation, where the sorting network's compilation would not pay off)."""
    with sorting_network(False):
        order = descending_order(scores, where)
    return take(labels, order), take(where, order)


def _top_k(length: int, k: int | None, dtype):
    return (jnp.arange(length) < (length if k is None else k)).astype(dtype)


def _prepare(scores, labels, where, reduction, k=None):
    check_reduction(reduction)
    check_k(k)
    return check_inputs(scores, labels, where)[:3]


def _finish(per_list, labels, where, reduction, in_range=None):
    per_list = nan_for_bad_labels(per_list, labels, where, in_range=in_range)
    return safe_reduce(per_list, jnp.any(where, axis=-1), reduction)


def ndcg_at_k(scores, labels, *, where=None, k: int | None = None, reduction: str = "mean"):
    """Normalised discounted cumulative gain at cut-off ``k``.

    ``DCG@k = sum_{rank r <= k} (2^{y_r} - 1) / log2(r + 1)``, divided by the DCG@k of the
    label-sorted list; 0 where that ideal DCG is 0. Labels must lie in [0, 64]
    (``ltr_common.checks.GAIN_LABEL_MAX``: larger gains approach float32's limit); a valid
    label outside is a ``ValueError`` outside ``jit`` and makes that list NaN under ``jit``.

    Args:
      scores: [..., L] float array.
      labels: [..., L] graded relevance in [0, 64].
      where: [..., L] bool array, True = valid item.
      k: cut-off (None = whole list).
      reduction: "none" → [...]; "sum"; "mean" over lists with a valid item.

    Example:
      >>> import jax.numpy as jnp
      >>> float(ndcg_at_k(jnp.array([2.0, 1.0]), jnp.array([1.0, 0.0])))
      1.0
    """
    scores, labels, where = _prepare(scores, labels, where, reduction, k)
    check_label_range(labels, where, high=GAIN_LABEL_MAX)
    length = scores.shape[-1]
    discount = _top_k(length, k, scores.dtype) / jnp.log2(jnp.arange(length, dtype=scores.dtype) + 2.0)

    def dcg(ranked_labels, ranked_valid):
        gains = jnp.where(ranked_valid, jnp.exp2(ranked_labels) - 1.0, 0.0)
        return jnp.sum(gains * discount, axis=-1)

    actual = dcg(*_ranked(scores, labels, where))
    ideal = dcg(*_ranked(labels, labels, where))
    per_list = jnp.where(ideal > 0, actual / jnp.where(ideal > 0, ideal, 1.0), 0.0)
    return _finish(per_list, labels, where, reduction, in_range=GAIN_RANGE)


def _relevant_ranked(scores, labels, where, relevance_threshold):
    ranked_labels, ranked_valid = _ranked(scores, labels, where)
    return ranked_valid & (ranked_labels >= relevance_threshold)


def mrr(scores, labels, *, where=None, relevance_threshold: float = 4.0, reduction: str = "mean"):
    """Mean reciprocal rank of the first relevant item (label >= ``relevance_threshold``, a
    finite number).

    A list with no relevant item scores 0.

    Example:
      >>> import jax.numpy as jnp
      >>> float(mrr(jnp.array([3.0, 2.0, 1.0]), jnp.array([1.0, 5.0, 4.0])))
      0.5
    """
    relevance_threshold = checks.check_relevance_threshold(relevance_threshold)
    scores, labels, where = _prepare(scores, labels, where, reduction)
    relevant = _relevant_ranked(scores, labels, where, relevance_threshold)
    # the first relevant item, taken by a sum: argmax is undefined on empty lists
    first = relevant & (jnp.cumsum(relevant, axis=-1) == 1)
    ranks = jnp.arange(1, scores.shape[-1] + 1, dtype=scores.dtype)
    per_list = jnp.sum(jnp.where(first, 1.0 / ranks, 0.0), axis=-1)
    return _finish(per_list, labels, where, reduction)


def average_precision(
    scores, labels, *, where=None, relevance_threshold: float = 4.0, reduction: str = "mean"
):
    """Average precision: the mean of precision@rank over the ranks of the relevant items.

    ``AP = (1 / R) sum_{relevant r} (#relevant at rank <= r) / r``; 0 with no relevant item.

    Example:
      >>> import jax.numpy as jnp
      >>> round(float(average_precision(jnp.array([3.0, 2.0, 1.0]), jnp.array([1.0, 5.0, 4.0]))), 4)
      0.5833
    """
    relevance_threshold = checks.check_relevance_threshold(relevance_threshold)
    scores, labels, where = _prepare(scores, labels, where, reduction)
    relevant = _relevant_ranked(scores, labels, where, relevance_threshold).astype(scores.dtype)
    ranks = jnp.arange(1, scores.shape[-1] + 1, dtype=scores.dtype)
    precision = jnp.cumsum(relevant, axis=-1) / ranks
    total = jnp.sum(relevant, axis=-1)
    per_list = jnp.sum(precision * relevant, axis=-1) / jnp.maximum(total, 1.0)
    return _finish(per_list, labels, where, reduction)


def recall_at_k(
    scores,
    labels,
    *,
    where=None,
    k: int | None = None,
    relevance_threshold: float = 4.0,
    reduction: str = "mean",
):
    """Share of the relevant items (label >= ``relevance_threshold``) ranked in the top ``k``.

    0 for a list with no relevant item.

    Example:
      >>> import jax.numpy as jnp
      >>> float(recall_at_k(jnp.array([3.0, 2.0, 1.0]), jnp.array([1.0, 5.0, 4.0]), k=2))
      0.5
    """
    relevance_threshold = checks.check_relevance_threshold(relevance_threshold)
    scores, labels, where = _prepare(scores, labels, where, reduction, k)
    relevant = _relevant_ranked(scores, labels, where, relevance_threshold).astype(scores.dtype)
    hits = jnp.sum(relevant * _top_k(scores.shape[-1], k, scores.dtype), axis=-1)
    per_list = hits / jnp.maximum(jnp.sum(relevant, axis=-1), 1.0)
    return _finish(per_list, labels, where, reduction)


def ranking_metrics(
    scores, labels, *, where=None, top_k=(5, 10, 20), recall_k=(10,), relevance_threshold: float = 4.0
) -> dict:
    """The evaluation set, per list: ``ndcg@k`` for ``k`` in ``top_k``, ``mrr``, ``map`` and
    ``recall@k`` for ``k`` in ``recall_k`` (``ltr_common.evaluation.ranking_metric_set``).
    Arguments as the functions' (with ``top_k`` given, labels in [0, 64]: see ``ndcg_at_k``).

    Example:
      >>> import jax.numpy as jnp
      >>> m = ranking_metrics(jnp.array([[3.0, 2.0, 1.0]]), jnp.array([[1.0, 5.0, 4.0]]), top_k=(2,))
      >>> {k: round(float(v[0]), 4) for k, v in m.items()}
      {'ndcg@2': 0.5081, 'mrr': 0.5, 'map': 0.5833, 'recall@10': 1.0}
    """
    scores, labels = as_array(scores, "scores"), as_labels(labels)
    where = None if where is None else as_array(where, "where")
    top_k, recall_k = checks.check_cutoffs(top_k, "top_k"), checks.check_cutoffs(recall_k, "recall_k")
    relevance_threshold = checks.check_relevance_threshold(relevance_threshold)
    _, checked_labels, valid, _ = check_inputs(scores, labels, where)  # outside jit: value checks too
    if top_k:
        check_label_range(checked_labels, valid, high=GAIN_LABEL_MAX)
    args = (scores, labels, where, top_k, recall_k, float(relevance_threshold))
    global _ranking_metrics_quick
    quick = _ranking_metrics_quick is not None and scores.size <= QUICK_METRICS_MAX
    if quick and jax.default_backend() == "cpu" and not _tracing():
        try:
            return _in_metric_order(_ranking_metrics_quick(*args))
        except Exception:
            # An error of these inputs is raised again by XLA's defaults; if they compile, the
            # options were the trouble (an XLA without them): XLA's defaults from now on.
            result = _in_metric_order(_ranking_metrics(*args))
            _ranking_metrics_quick = None
            return result
    return _in_metric_order(_ranking_metrics(*args))


def _in_metric_order(out: dict) -> dict:
    """A compiled function's dict comes back with its keys sorted as strings."""
    return dict(sorted(out.items(), key=lambda item: metric_order(item[0])))


# One compiled program per shape for callers outside jit (the baselines score batches in
# NumPy): op by op, the set is hundreds of dispatches. Under an outer jit it is inlined.
def _metric_set(scores, labels, where, top_k, recall_k, relevance_threshold):
    return ranking_metric_set(
        sys.modules[__name__],
        scores,
        labels,
        where=where,
        top_k=top_k,
        recall_k=recall_k,
        relevance_threshold=relevance_threshold,
    )


_ranking_metrics = jax.jit(_metric_set, static_argnums=(3, 4, 5))
# On a CPU, inputs of at most this many scores (an evaluation's lists: ML-100K's 943 x 10)
# are measured by a program compiled at LLVM's -O1 without XLA's newer fusion emitters:
# measured on a 2-core CPU at (1024, 10), 0.32 s of compilation against 0.50 s with XLA's
# defaults, and 0.59 ms a call against 0.55-0.68 ms. At -O0 it compiles in 0.15 s but takes
# 1.5 ms a call, which a trainer's steady epoch pays at each evaluation.
QUICK_METRICS_MAX = 2**16


def _tracing() -> bool:
    """Whether a trace is under way (an outer jit, grad or vmap), where a jit takes no
    compiler options of its own. Read from JAX's internals; a JAX without them says yes,
    and the set is compiled with XLA's defaults."""
    try:
        from jax._src.core import trace_state_clean
    except ImportError:
        return True
    return not trace_state_clean()


QUICK_OPTIONS = {"xla_backend_optimization_level": 1, "xla_cpu_use_fusion_emitters": False}
try:  # a JAX before 0.4.36 takes no compiler options: XLA's defaults serve every call
    _ranking_metrics_quick = jax.jit(_metric_set, static_argnums=(3, 4, 5), compiler_options=QUICK_OPTIONS)
except TypeError:
    _ranking_metrics_quick = None


def retrieval_metrics(scores, relevant, *, exclude=None, ks=(10, 20)) -> dict:
    """Full-catalog retrieval metrics per user, the catalog ranked by score.

    Items where ``exclude`` is True are never ranked (a user's earlier ratings), so never a
    hit, though ``R`` counts a relevant one, and ranked after every other item; ties go to the
    lower item index, and a NaN score ranks as ``-inf`` (after every finite score, as in
    ``ranking_metrics``). With ``R`` the user's relevant items
    and ``hits@k`` how many of them the top ``k`` holds: ``recall@k = hits@k / R``,
    ``hr@k = [hits@k > 0]``, and ``ndcg@k = sum_{rank r <= k, relevant} 1/log2(r + 1)`` over
    its ideal, the first ``min(k, R)`` ranks filled. A user with no relevant item gets NaN
    (left out of means).

    Args:
      scores: [U, I] float array.
      relevant: [U, I] bool array.
      exclude: [U, I] bool array or None.
      ks: cut-offs.

    Returns:
      ``{"recall@k", "ndcg@k", "hr@k" for k in ks}``, each [U].

    Example:
      >>> import jax.numpy as jnp
      >>> m = retrieval_metrics(jnp.array([[0.1, 0.9, 0.5]]), jnp.array([[True, False, False]]),
      ...                       exclude=jnp.array([[False, True, False]]), ks=(1, 2))
      >>> {k: round(float(v[0]), 6) for k, v in m.items()}
      {'ndcg@1': 0.0, 'ndcg@2': 0.63093, 'recall@1': 0.0, 'recall@2': 1.0, 'hr@1': 0.0, 'hr@2': 1.0}
    """
    scores, relevant = as_array(scores, "scores"), as_array(relevant, "relevant")
    exclude = None if exclude is None else as_array(exclude, "exclude")
    checks.check_retrieval(*(None if x is None else array_info(x) for x in (scores, relevant, exclude)), ks)
    return _in_metric_order(_retrieval_metrics(scores, relevant, exclude, tuple(ks)))


@functools.partial(jax.jit, static_argnums=3)  # one program per shape (see _ranking_metrics)
def _retrieval_metrics(scores, relevant, exclude, ks):
    dtype = jnp.promote_types(scores.dtype, jnp.float32)
    ranked = scores.astype(dtype)
    # a NaN score ranks with the lowest (-inf), not first as top_k would take it; both take
    # the lowest finite number, so that excluded items, at -inf, come after every one
    lowest = (jnp.isnan(ranked) | (ranked == -jnp.inf)) & (True if exclude is None else ~exclude)
    ranked = jnp.where(lowest, jnp.finfo(dtype).min, ranked)
    if exclude is not None:
        ranked = jnp.where(exclude, -jnp.inf, ranked)
    # top_k orders -0.0 below +0.0; they must tie (lower index first). (top_k on an integer
    # key would be exact for subnormals too, but XLA's CPU top_k is fast only for floats,
    # which compare subnormals as zero there.)
    _, top = lax.top_k(positive_zero(ranked), min(max(ks), scores.shape[-1]))
    # an excluded item fills a place of the top k only where fewer than k are left: no hit
    found_here = relevant if exclude is None else relevant & ~exclude
    hits = jnp.take_along_axis(found_here, top, axis=-1).astype(dtype)
    count = jnp.sum(relevant, axis=-1).astype(dtype)
    discount = 1.0 / jnp.log2(jnp.arange(2, top.shape[-1] + 2, dtype=dtype))
    ideal = jnp.concatenate([jnp.zeros(1, dtype), jnp.cumsum(discount)])
    none = count == 0
    out = {}
    for k in ks:
        found = jnp.sum(hits[:, :k], axis=-1)
        best = ideal[jnp.minimum(count, min(k, top.shape[-1])).astype(jnp.int32)]
        out[f"recall@{k}"] = jnp.where(none, jnp.nan, found / jnp.where(none, 1.0, count))
        out[f"ndcg@{k}"] = jnp.where(
            none, jnp.nan, jnp.sum(hits[:, :k] * discount[:k], -1) / jnp.where(none, 1.0, best)
        )
        out[f"hr@{k}"] = jnp.where(none, jnp.nan, (found > 0).astype(dtype))
    return out
