"""Synthetic MovieLens-shaped ratings for scale tests, returned as the loader's ``Ratings``.

Skewed item popularity (Zipf), skewed user activity (log-normal list lengths, clipped to
``[min_ratings, max_ratings]``), ratings 1..5 from biases plus a low-rank taste model, and
increasing timestamps per user, so ``temporal_split`` and everything after it work as on
MovieLens 100K. Every row passes the same validation as loaded data (``ratings_from_rows``).
"""

from __future__ import annotations

import numpy as np

from ltr_common.movielens import ExpectedCounts, Ratings, ratings_from_rows


def synthetic_ratings(
    num_users: int = 2_000,
    num_items: int = 20_000,
    *,
    median_ratings: int = 60,
    min_ratings: int = 20,
    max_ratings: int = 10_000,
    zipf: float = 1.0,
    rank: int = 8,
    seed: int = 0,
) -> Ratings:
    """Ratings of ``num_users`` users over ``num_items`` items; deterministic in ``seed``.

    Example:
      >>> r = synthetic_ratings(50, 400, median_ratings=30, max_ratings=300, seed=1)
      >>> (r.num_users, int(r.ratings.min()) >= 1, int(r.ratings.max()) <= 5)
      (50, True, True)
    """
    for name, value, low in (
        ("num_users", num_users, 1),
        ("num_items", num_items, 2),
        ("median_ratings", median_ratings, 1),
        ("min_ratings", min_ratings, 1),
        ("rank", rank, 1),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not min_ratings <= max_ratings <= num_items:
        raise ValueError(
            f"max_ratings must lie in [min_ratings, num_items] = [{min_ratings}, {num_items}], "
            f"got {max_ratings!r}"
        )
    rng = np.random.default_rng(seed)
    lengths = np.exp(rng.normal(np.log(median_ratings), 1.0, num_users)).round().astype(np.int64)
    lengths = np.clip(lengths, min_ratings, max_ratings)
    lengths[rng.integers(num_users)] = max_ratings  # the longest list reaches the cap
    log_popularity = -zipf * np.log(np.arange(1, num_items + 1))
    item_bias = rng.normal(0.0, 0.5, num_items)
    item_taste = rng.normal(0.0, 1.0 / np.sqrt(rank), (num_items, rank))
    rows = []
    for user, length in enumerate(lengths):
        # Weighted sampling without replacement: the top ``length`` of log p + Gumbel noise.
        keys = log_popularity + rng.gumbel(size=num_items)
        items = np.argpartition(-keys, length - 1)[:length]
        taste = rng.normal(0.0, 1.0, rank) @ item_taste[items].T
        value = 3.5 + rng.normal(0.0, 0.4) + item_bias[items] + taste + rng.normal(0.0, 0.7, length)
        ratings = np.clip(np.rint(value), 1, 5)
        start = 880_000_000 + rng.integers(0, 10_000_000)
        times = start + np.cumsum(rng.exponential(3_600.0, length)).astype(np.int64)
        rows.append(np.column_stack([np.full(length, user + 1), items + 1, ratings, times]))
    table = np.concatenate(rows).astype(np.int64)
    expected = ExpectedCounts(rows=None, users=None, items=None)
    return ratings_from_rows(
        table, path=f"synthetic(seed={seed})", expected=expected, source=f"synthetic, seed {seed}"
    )
