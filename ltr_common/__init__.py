"""Framework-neutral learning-to-rank plumbing (NumPy and pandas only).

Data loading, the temporal split, padded batches, pair sampling and configuration
live here once; ``jax_ltr`` and ``torch_ltr`` both use them and neither imports the
other's framework.
"""

from ltr_common.batching import Batch, bucket_length, epoch_order, iterate_batches, make_batch
from ltr_common.config import LOSSES, ConfigError, TrainConfig, parse_config
from ltr_common.data import load_split
from ltr_common.lists import Lists, Split, temporal_split
from ltr_common.movielens import (
    ML_100K,
    DataError,
    ExpectedCounts,
    Ratings,
    default_cache_dir,
    load_movielens,
    read_udata,
)
from ltr_common.pairs import sample_pairs

__all__ = [
    "LOSSES",
    "ML_100K",
    "Batch",
    "ConfigError",
    "DataError",
    "ExpectedCounts",
    "Lists",
    "Ratings",
    "Split",
    "TrainConfig",
    "bucket_length",
    "default_cache_dir",
    "epoch_order",
    "iterate_batches",
    "load_movielens",
    "load_split",
    "make_batch",
    "parse_config",
    "read_udata",
    "sample_pairs",
    "temporal_split",
]
