"""Real MovieLens batches for the parity suite: tied ratings, variable lengths, padding rows."""

from __future__ import annotations

import pytest

from parity_tests._cases import real_batches


@pytest.fixture(scope="session")
def parity_batches(movielens_split):
    return real_batches(movielens_split, count=2, lists_per_batch=24, padding_rows=3, seed=2024)
