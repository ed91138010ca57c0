"""Export the user and item embedding matrices of a run's best checkpoint, with raw-id mappings.

    python scripts/export_embeddings.py RUN_DIR [--out DIR]

Writes ``embeddings.npz`` (``user_embeddings`` [U, d], ``item_embeddings`` [I, d],
``user_raw_ids`` [U], ``item_raw_ids`` [I]: row k belongs to raw id ``*_raw_ids[k]``) and
``user_ids.csv`` / ``item_ids.csv`` (index, raw_id). Works for JAX and PyTorch runs alike.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ltr_common import ConfigError, DataError
from ltr_common.files import CheckpointError, atomic_write_bytes, atomic_write_text
from ltr_common.movielens import load_movielens
from ltr_train import load_run_config, make_backend


def export(run_dir: Path, out_dir: Path | None = None) -> Path:
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir
    framework, config = load_run_config(run_dir)
    ratings = load_movielens(data_dir=config.data_dir, cache_dir=config.cache_dir)
    trainer = make_backend(framework, config, ratings.num_users, ratings.num_items)
    trainer.restore(run_dir / "checkpoint_best")
    users, items = trainer.embeddings()
    buffer = io.BytesIO()
    np.savez(
        buffer,
        user_embeddings=np.asarray(users),
        item_embeddings=np.asarray(items),
        user_raw_ids=ratings.user_raw_ids,
        item_raw_ids=ratings.item_raw_ids,
    )
    atomic_write_bytes(out_dir / "embeddings.npz", buffer.getvalue())
    for name, raw in (("user_ids.csv", ratings.user_raw_ids), ("item_ids.csv", ratings.item_raw_ids)):
        table = pd.DataFrame({"index": np.arange(len(raw)), "raw_id": raw})
        atomic_write_text(out_dir / name, table.to_csv(index=False))
    return out_dir / "embeddings.npz"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the run directory)")
    args = parser.parse_args(argv)
    try:
        print(export(args.run_dir, args.out))
    except (ConfigError, CheckpointError, DataError) as err:
        parser.error(str(err))  # one line and exit status 2, like scripts/train.py
    return 0


if __name__ == "__main__":
    sys.exit(main())
