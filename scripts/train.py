"""Train a two-tower ranker on MovieLens 100K with JAX (default) or PyTorch.

    python scripts/train.py [--framework jax|torch] [--run-dir DIR] [--<option> VALUE ...]
    python scripts/train.py --resume RUN_DIR

Every option of ``ltr_common.TrainConfig`` is a flag (``--help`` lists them); ``--config
FILE.json`` overrides the defaults and flags override the file. The run directory gets the
resolved config, a log, TensorBoard events, checkpoints and ``metrics.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loguru import logger

from ltr_common import ConfigError, DataError, parse_config
from ltr_common.files import CheckpointError
from ltr_common.loop import NonFiniteError
from ltr_common.run import FRAMEWORKS, default_run_dir, format_table, load_run_config, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--framework", choices=FRAMEWORKS, default="jax")
    parser.add_argument("--run-dir", type=Path, default=None, help="default runs/<framework>-<loss>-<time>")
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="continue RUN_DIR from its latest checkpoint, with its saved config",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = parser.add_argument_group("multi-host JAX (jax.distributed.initialize)")
    group.add_argument(
        "--distributed", action="store_true", help="initialise from the cluster (SLURM, Open MPI, TPU pods)"
    )
    group.add_argument("--coordinator_address", default=None, help="host:port of process 0")
    group.add_argument("--num_processes", type=int, default=None)
    group.add_argument("--process_id", type=int, default=None)
    try:
        config, args = parse_config(argv, parser=parser)
        framework = args.framework
        if args.resume is not None:
            framework, config = load_run_config(args.resume)
    except ConfigError as err:
        parser.error(str(err))
    distributed = (args.coordinator_address, args.num_processes, args.process_id)
    if framework == "jax" and (args.distributed or any(v is not None for v in distributed)):
        import jax

        jax.distributed.initialize(*distributed)
    run_dir = args.resume or args.run_dir or default_run_dir(framework, config)
    logger.info("config: {}", config.to_dict())
    try:
        results = run(
            framework, config, run_dir, resume=args.resume is not None, progress_bar=not args.no_progress
        )
    except (DataError, CheckpointError, NonFiniteError) as err:
        logger.error("{}", err)
        return 1
    print(
        f"\n{framework} {config.loss}: best validation ndcg@10 at step {results['best_step']} "
        f"of {results['steps']}, {results['train_seconds']:.0f} s of training; run directory {run_dir}"
    )
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
