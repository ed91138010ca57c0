"""Real MovieLens batches for the parity suite: tied ratings, variable lengths, padding rows."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def parity_batches(movielens_split):
    # Imported here, not at the top: pytest-xdist's controlling process loads this file too,
    # and JAX and PyTorch there would only delay the workers' start.
    from parity_tests._cases import real_batches

    return real_batches(movielens_split, count=2, lists_per_batch=24, padding_rows=3, seed=2024)
