"""From a configuration to the ratings and the split lists every trainer and script starts from."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np

from ltr_common.config import ConfigError, TrainConfig
from ltr_common.datasets import load_dataset, load_titles
from ltr_common.interactions import TableOptions, read_interactions
from ltr_common.lists import Split, temporal_split
from ltr_common.movielens import Movies, Ratings

DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def table_options(config: TrainConfig) -> TableOptions:
    """How ``config`` says its ``--data`` table is read."""
    delimiter = DELIMITER_NAMES.get(config.delimiter, config.delimiter)
    return TableOptions(
        user=config.user_column,
        item=config.item_column,
        rating=config.rating_column,
        timestamp=config.timestamp_column,
        delimiter=delimiter,
        implicit=config.implicit,
        duplicates=config.duplicates,
    )


def load_ratings(config: TrainConfig) -> Ratings:
    """The ratings ``config`` names: its ``--data`` table, else its ``--dataset`` (ML-100K by
    default). ``--implicit`` reads every rating as a positive, label 1; reranking, which
    orders graded ratings, refuses implicit data."""
    if config.data is not None:
        ratings = read_interactions(config.data, table_options(config))
    else:
        ratings = load_dataset(
            config.dataset or "ml-100k", data_dir=config.data_dir, cache_dir=config.cache_dir
        )
    if config.implicit and not ratings.implicit:
        ratings = dataclasses.replace(ratings, ratings=np.ones_like(ratings.ratings), implicit=True)
    if ratings.implicit and config.task == "rerank":
        raise ConfigError(
            f"--task rerank: {ratings.source} has no ratings (implicit feedback), and reranking "
            "orders graded ratings; use --task retrieve"
        )
    return ratings


def load_movies_for(config: TrainConfig) -> Movies | None:
    """The titles of ``config``'s data set, or ``None`` for a ``--data`` table (ids only)."""
    if config.data is not None:
        return None
    return load_titles(config.dataset or "ml-100k", data_dir=config.data_dir, cache_dir=config.cache_dir)


def load_split(config: TrainConfig, *, refit: bool | None = None) -> tuple[Ratings, Split]:
    """Load the ratings as the config says and split them (see ``split_ratings``).

    With ``refit`` (default: ``config.refit``) the validation ratings join the training lists
    and the validation lists are empty.
    """
    ratings = load_ratings(config)
    return ratings, split_ratings(ratings, config, refit=refit)


def split_ratings(ratings: Ratings, config: TrainConfig, *, refit: bool | None = None) -> Split:
    """Each user's newest ratings held out (random ones where the data has no times, the same
    for every run: ``temporal_split``'s fixed seed)."""
    refit = config.refit if refit is None else refit
    return temporal_split(
        ratings,
        test_size=config.test_size,
        validation_size=0 if refit else config.validation_size,
        max_list_size=config.max_list_size,
    )


def fingerprint(ratings: Ratings) -> dict:
    """What a run records of its data (``data.json``): the source, the counts, and a SHA-256
    of the indexed ratings (ids, ratings, times, raw ids), so that a script reading the run's
    data later knows it is the same."""
    digest = hashlib.sha256()
    for array in (ratings.users, ratings.items, ratings.ratings, ratings.timestamps):
        digest.update(np.ascontiguousarray(array).tobytes())
    for raw in (ratings.user_raw_ids, ratings.item_raw_ids):
        digest.update("\x1f".join(map(str, raw.tolist())).encode())
    return {
        "source": ratings.source,
        "ratings": len(ratings),
        "users": ratings.num_users,
        "items": ratings.num_items,
        "implicit": ratings.implicit,
        "timed": ratings.timed,
        "sha256": digest.hexdigest(),
    }
