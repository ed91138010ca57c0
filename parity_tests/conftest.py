"""Real MovieLens batches for the parity suite: tied ratings, variable lengths, padding rows."""

from __future__ import annotations

import numpy as np
import pytest

from ltr_common import Split, bucket_length, make_batch


def real_batches(split: Split, *, count: int, lists_per_batch: int, padding_rows: int, seed: int):
    """``count`` batches of randomly chosen training lists, each with fully masked padding rows."""
    lists = split.train
    rng = np.random.default_rng(seed)
    max_length = int(lists.lengths.max())
    batches = []
    for _ in range(count):
        ids = rng.choice(len(lists), size=lists_per_batch, replace=False)
        width = bucket_length(int(lists.lengths[ids].max()), max_length=max_length)
        batches.append(make_batch(lists, ids, batch_size=lists_per_batch + padding_rows, width=width))
    return batches


@pytest.fixture(scope="session")
def parity_batches(movielens_split):
    return real_batches(movielens_split, count=2, lists_per_batch=24, padding_rows=3, seed=2024)
