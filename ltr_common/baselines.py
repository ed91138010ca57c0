"""Non-learned baselines on the same split: random order, item popularity, item mean rating.

Each gives a per-item score table (random: a fresh draw per list position), computed from
the training lists only, so nothing of validation or test leaks in.
"""

from __future__ import annotations

import numpy as np

from ltr_common.batching import Batch
from ltr_common.lists import Lists

BASELINES = ("random", "popularity", "item_mean")


def item_tables(train: Lists, num_items: int) -> dict[str, np.ndarray]:
    """Per-item scores: training-rating count, and mean training rating (the global mean if unseen)."""
    counts = np.bincount(train.items, minlength=num_items).astype(np.float64)
    sums = np.bincount(train.items, weights=train.labels, minlength=num_items)
    global_mean = train.labels.mean()
    mean = np.where(counts > 0, sums / np.maximum(counts, 1), global_mean)
    return {"popularity": counts, "item_mean": mean}


def baseline_scores(name: str, batch: Batch, tables: dict[str, np.ndarray], rng: np.random.Generator):
    """[B, L] float32 scores of baseline ``name`` for ``batch``."""
    if name == "random":
        return rng.random(batch.item_ids.shape).astype(np.float32)
    if name not in tables:
        raise ValueError(f"baseline must be one of {', '.join(BASELINES)}, got {name!r}")
    return tables[name][batch.item_ids].astype(np.float32)


def baseline_metrics(name: str, tables: dict[str, np.ndarray], ranking_metrics, *, top_k, rng=None):
    """The metric function (``ltr_common.evaluation``) of baseline ``name``: its scores for a
    batch, measured by ``ranking_metrics`` (``jax_ltr.ranking_metrics`` or torch's)."""

    def metric_fn(batch: Batch):
        scores = baseline_scores(name, batch, tables, rng)
        return ranking_metrics(scores, batch.labels, where=batch.mask, top_k=tuple(top_k))

    return metric_fn
