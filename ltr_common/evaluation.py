"""Metrics over a set of lists, once for every scorer: the trainers, the baselines, the analysis.

A scorer is handed over as a *metric function*: a padded ``Batch`` in, per-list metric values
``{name: [B]}`` out (NumPy or any framework's arrays). ``jax_ltr.ranking_metrics`` and
``torch_ltr.ranking_metrics`` compute the standard set from scores; a trainer's
``batch_metrics`` scores its model and computes them in one compiled call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import numpy as np

from ltr_common.batching import Batch, iterate_batches
from ltr_common.config import SELECTION_METRIC
from ltr_common.lists import Lists

MetricFn = Callable[[Batch], Mapping[str, object]]
EVAL_BATCH_SIZE = 1024


class NonFiniteError(RuntimeError):
    """A loss, gradient norm or model score that is NaN or infinite (``ltr_common.loop`` raises
    it for a training step, ``unscored`` for an evaluation). ``what``: the step and the
    values; the message adds what the run folder keeps (``train`` writes it once the
    checkpoint writes under way have ended)."""

    def __init__(self, what: str, kept: str | None = None) -> None:
        super().__init__(what if kept is None else f"{what}; {kept}")
        self.what = what


# The metrics a summary shows, in this order, of those a run has: the selection metric first.
# A console line holds the first ``CONSOLE_METRICS`` of them; metrics.json and TensorBoard
# hold every metric.
HEADLINE = tuple(
    dict.fromkeys(
        (SELECTION_METRIC, "ndcg@20", "recall@10", "recall@20", "hr@10", "liked/ndcg@10", "mrr", "map")
    )
)
CONSOLE_METRICS = 5


def ranking_metric_set(
    metrics, scores, labels, *, where=None, top_k=(5, 10, 20), recall_k=(10,), relevance_threshold=4.0
) -> dict:
    """``{ndcg@k, mrr, map, recall@k}`` per list, from ``metrics``: a framework's module of
    metric functions (``jax_ltr`` or ``torch_ltr``'s ``ndcg_at_k``, ``mrr``, ...)."""
    options = {"where": where, "reduction": "none"}
    relevant = {**options, "relevance_threshold": relevance_threshold}
    out = {f"ndcg@{k}": metrics.ndcg_at_k(scores, labels, k=k, **options) for k in top_k}
    out["mrr"] = metrics.mrr(scores, labels, **relevant)
    out["map"] = metrics.average_precision(scores, labels, **relevant)
    out.update({f"recall@{k}": metrics.recall_at_k(scores, labels, k=k, **relevant) for k in recall_k})
    return out


# The key under which ``list_reports`` and ``catalog_reports`` say which lists the scorer
# scored NaN or infinite somewhere (a diverged model); ``unscored`` takes it out again.
UNSCORED = "unscored"


def _not_finite(scores):
    """Elementwise: NaN or infinite, in any framework's arrays (``x - x`` is 0 but then)."""
    if isinstance(scores, np.ndarray):
        return ~np.isfinite(scores)  # no warning of inf - inf
    return (scores - scores) != 0


def unscored(values: dict, real=None) -> tuple[dict, np.ndarray]:
    """``(values without UNSCORED, its flags for the real lists)`` (all lists where ``real``
    is None; no flags where ``values`` has none), for ``check_scored``."""
    values = dict(values)
    flags = values.pop(UNSCORED, None)
    if flags is None:
        return values, np.zeros(0, bool)
    flags = np.asarray(flags, bool)
    return values, flags if real is None else flags[real]


def check_scored(flags: list[np.ndarray], what: str = "lists") -> None:
    """A ``NonFiniteError`` where any of an evaluation's ``unscored`` flags is set: a model
    whose scores are NaN or infinite cannot be ranked, and its metrics (NaN ranked last)
    would read as an ordinary, poor ranking."""
    flags = np.concatenate(flags) if flags else np.zeros(0, bool)
    if flags.any():
        raise NonFiniteError(
            f"the model scores {int(flags.sum())} of {flags.size} {what} NaN or infinite (it diverged)"
        )


def list_reports(ranking_metrics, scores, batch: Batch, *, top_k, relevance_threshold: float) -> dict:
    """An evaluation batch's lists (rerank) measured by a framework's ``ranking_metrics``:
    cut-offs ``top_k``, and a label from ``relevance_threshold`` on relevant to MRR, MAP and
    recall (the run's ``--relevance_threshold``)."""
    out = ranking_metrics(
        scores, batch.labels, where=batch.mask, top_k=tuple(top_k), relevance_threshold=relevance_threshold
    )
    return {**out, UNSCORED: (_not_finite(scores) & batch.mask).any(-1)}


def catalog_reports(retrieval_metrics, scores, reports: Mapping, *, exclude, ks) -> dict:
    """Full-catalog ``scores`` measured against each relevance mask of ``reports``
    (``{name prefix: [U, I] bool}``) by a framework's ``retrieval_metrics``, the metric names
    prefixed: one scoring, several reports."""
    out = {
        f"{prefix}{name}": value
        for prefix, relevant in reports.items()
        for name, value in retrieval_metrics(scores, relevant, exclude=exclude, ks=ks).items()
    }
    return {**out, UNSCORED: _not_finite(scores).any(-1)}


def metric_order(name: str) -> tuple:
    """Sort key: ndcg@k by k, then mrr, map, recall@k, hr@k; ``liked/`` ones after the rest —
    the same columns for every scorer."""
    liked = name.startswith("liked/")
    family, _, k = name.removeprefix("liked/").partition("@")
    rank = {"ndcg": 0, "mrr": 1, "map": 2, "recall": 3, "hr": 4}.get(family, 5)
    return (liked, rank, int(k) if k else 0, name)


def console_metrics(names) -> list[str]:
    """The metrics of ``names`` a console line shows: at most ``CONSOLE_METRICS`` of
    ``HEADLINE``, in its order, so that every trainer prints the same line.

    Example:
      >>> console_metrics(["map", "mrr", "ndcg@5", "ndcg@10", "ndcg@20", "recall@10"])
      ['ndcg@10', 'ndcg@20', 'recall@10', 'mrr', 'map']
    """
    present = set(names)
    return [name for name in HEADLINE if name in present][:CONSOLE_METRICS]


def _batches(metric_fn: MetricFn, lists: Lists, batch_size: int) -> Iterator[tuple[np.ndarray, dict]]:
    """``(real rows, {name: float64 [B]})`` per batch, in the lists' order."""
    flags = []
    for batch in iterate_batches(lists, batch_size=batch_size, shuffle=False):
        real = batch.list_ids >= 0
        values, scored = unscored(metric_fn(batch), real)
        flags.append(scored)
        yield real, {name: np.asarray(v, np.float64) for name, v in values.items()}
    check_scored(flags)  # once every batch is in: the count is the evaluation's


def per_list_metrics(
    metric_fn: MetricFn, lists: Lists, *, batch_size: int = EVAL_BATCH_SIZE
) -> dict[str, np.ndarray]:
    """``{name: [len(lists)] float64}``: each list's metric values, in the lists' order."""
    parts: dict[str, list[np.ndarray]] = {}
    for real, values in _batches(metric_fn, lists, batch_size):
        for name, v in values.items():
            parts.setdefault(name, []).append(v[real])
    return {name: np.concatenate(v) for name, v in parts.items()}


def evaluate(metric_fn: MetricFn, lists: Lists, *, batch_size: int = EVAL_BATCH_SIZE) -> dict[str, float]:
    """The mean of each metric over the lists (every list of a split holds at least one item)."""
    sums: dict[str, float] = {}
    count = 0
    for real, values in _batches(metric_fn, lists, batch_size):
        for name, v in values.items():
            sums[name] = sums.get(name, 0.0) + float(v[real].sum())
        count += int(real.sum())
    return {name: total / max(count, 1) for name, total in sums.items()}
