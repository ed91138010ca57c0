"""A small training setup for tests where MovieLens itself is not the point: a tiny model and
MovieLens-shaped synthetic ratings (``ltr_common.synthetic``), the same in every process."""

from __future__ import annotations

import functools

from ltr_common import TrainConfig, temporal_split
from ltr_common.synthetic import synthetic_ratings

# The original design's reranker, small; one padded width per batch (no length bucketing):
# about one compilation per run. Every setting the defaults could change is spelled out.
SMALL = TrainConfig(
    task="rerank",
    model="mlp",
    learning_rate=1e-3,
    weight_decay=0.0,
    bias_weight_decay=0.0,
    max_list_size=200,
    early_stop_patience=5,
    embedding_dim=16,
    mlp_hidden=16,
    batch_size=64,
    epochs=2,
    eval_every=3,
    loss="hybrid",
    pairs_per_list=8,
    length_bucketing=False,
)


@functools.cache
def small_data():
    """``(ratings, split)``: 300 users over 600 items, 22 to 70 ratings each (every user trains)."""
    ratings = synthetic_ratings(300, 600, median_ratings=35, min_ratings=22, max_ratings=70, seed=5)
    return ratings, temporal_split(ratings)
