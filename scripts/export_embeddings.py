"""Export the user and item embedding matrices of a run's best checkpoint, with raw-id mappings.

    python scripts/export_embeddings.py RUN_DIR [--out DIR]

Writes ``embeddings.npz`` (``user_embeddings`` [U, d], ``item_embeddings`` [I, d],
``user_raw_ids`` [U], ``item_raw_ids`` [I]: row k belongs to raw id ``*_raw_ids[k]``) and
``user_ids.csv`` / ``item_ids.csv`` (index, raw_id). Works for JAX and PyTorch runs alike.

For the dot-product and sequence models it also writes ``user_vectors`` [U, d + 1] and
``item_vectors`` [I, d + 1], ready for a nearest-neighbour (maximum inner product) index:
``user_vectors[u] . item_vectors[i]`` is the model's score of item ``i`` for user ``u`` (up to
the dot model's user bias, which orders no user's items). The sequence model has no user
embedding table: its user vectors are read from each user's latest history, every rating in
the data (a user with none gets the vector of an empty history).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ltr_common.config import ArgumentParser
from ltr_common.files import atomic_write_bytes, atomic_write_text, restore_with_fallback
from ltr_train import cli, load_run_config, load_run_data, log_to_console, make_backend


def export(run_dir: Path, out_dir: Path | None = None, *, data: str | None = None) -> Path:
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir
    framework, config = load_run_config(run_dir)
    made = cli.ensure_folder(out_dir, "--out")  # before the work; taken away again if it fails
    try:
        return _export(run_dir, out_dir, framework, config, data)
    except BaseException:
        cli.remove_made_folders(made)
        raise


def _export(run_dir: Path, out_dir: Path, framework: str, config, data: str | None) -> Path:
    ratings, split = load_run_data(run_dir, config, data=data)
    trainer = make_backend(framework, config, ratings.num_users, ratings.num_items)
    restore_with_fallback(trainer.restore, run_dir / "checkpoint_best")
    weights = trainer.weights()
    items = weights["item_embedding"]
    if "user_embedding" in weights:
        users = weights["user_embedding"]
    else:  # a sequence model: each user's vector from all their ratings, in time order
        users = trainer.user_vectors(np.arange(ratings.num_users), split.every_rating())
    arrays = {"user_embeddings": users, "item_embeddings": items}
    if "item_bias" in weights:  # s(u, i) = <e_u, e_i> + b_i + b_u: append b_i, and a 1 for users
        arrays["user_vectors"] = np.hstack([users, np.ones((len(users), 1), users.dtype)])
        arrays["item_vectors"] = np.hstack([items, weights["item_bias"][:, None]])
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, user_raw_ids=ratings.user_raw_ids, item_raw_ids=ratings.item_raw_ids)
    atomic_write_bytes(out_dir / "embeddings.npz", buffer.getvalue())
    for name, raw in (("user_ids.csv", ratings.user_raw_ids), ("item_ids.csv", ratings.item_raw_ids)):
        table = pd.DataFrame({"index": np.arange(len(raw)), "raw_id": raw})
        atomic_write_text(out_dir / name, table.to_csv(index=False))
    return out_dir / "embeddings.npz"


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the run directory)")
    cli.add_moved_data_flag(parser)
    args = parser.parse_args(argv)
    try:
        print(export(args.run_dir, args.out, data=args.data))
    except cli.USER_ERRORS as err:
        return cli.error_exit(parser, err)
    return 0


if __name__ == "__main__":
    log_to_console()
    sys.exit(cli.run_script(main))
