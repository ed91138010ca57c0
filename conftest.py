"""Fixtures shared by tests/ and parity_tests/: the real MovieLens 100K, loaded once."""

from __future__ import annotations

import pytest

from ltr_common import Ratings, Split, load_movielens, temporal_split


@pytest.fixture(scope="session")
def movielens() -> Ratings:
    # Through the real pipeline (local folder, cache, download or the PyPI wheel):
    # a missing data set is a failure, never a skip.
    return load_movielens()


@pytest.fixture(scope="session")
def movielens_split(movielens: Ratings) -> Split:
    return temporal_split(movielens)
