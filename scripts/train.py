"""Train a ranker with JAX (default) or PyTorch, on MovieLens or on your own interactions.

    python scripts/train.py [--framework jax|torch] [--run-dir DIR] [--<option> VALUE ...]
    python scripts/train.py --dataset ml-1m            # a MovieLens release by name
    python scripts/train.py --data interactions.csv    # CSV, TSV or Parquet; see ltr_common.interactions
    python scripts/train.py --resume RUN_DIR [--epochs N] [--data_dir DIR] [--cache_dir DIR]

Every option of ``ltr_common.TrainConfig`` is a flag (``--help`` lists them); ``--config
FILE.json`` overrides the defaults and flags override the file. The run directory gets the
resolved config, a log, TensorBoard events, checkpoints and ``metrics.json`` (every metric);
the console shows a few. See the curves of every run with ``tensorboard --logdir runs``
(``pip install tensorboard``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ltr_common import ConfigError, TrainConfig, parse_config
from ltr_common.config import INT_LIMIT, ArgumentParser
from ltr_train import (
    FRAMEWORKS,
    configure,
    default_run_dir,
    load_run_config,
    log_to_console,
    moved_data,
    run,
    run_summary,
)
from ltr_train.cli import USER_ERRORS, error_exit, run_script
from ltr_train.runs import absolute_path

# Options that may change when a run is resumed: more epochs continue the same trajectory;
# where the data and the compiled programs are cached, and how many devices, are the machine's;
# --data says where a moved table lies now (the run's data.json checks it holds the same data).
RESUMABLE = ("--epochs", "--data", "--data_dir", "--cache_dir", "--compilation_cache", "--devices")


def absolute_data(config: TrainConfig) -> TrainConfig:
    """``config`` with its ``--data`` path made absolute, so that the run's ``config.json``
    names the same file for every later script, wherever it is started."""
    if config.data is None:
        return config
    return dataclasses.replace(config, data=absolute_path(config.data))


def resumed_config(args: argparse.Namespace) -> tuple[str, TrainConfig]:
    """The saved framework and config of ``--resume RUN_DIR``, with the ``RESUMABLE`` options
    given applied (``--epochs`` only upward).

    Every other option would silently disagree with the checkpoint (or, for ``--run-dir``
    and ``--framework``, with the run being resumed), so giving one is an error naming it.
    """
    given = [f"--{f.name}" for f in dataclasses.fields(TrainConfig) if getattr(args, f.name) is not None]
    given += [
        flag
        for flag, value in (
            ("--config", args.config),
            ("--run-dir", args.run_dir),
            ("--framework", args.framework),
        )
        if value is not None
    ]
    refused = [flag for flag in given if flag not in RESUMABLE]
    if refused:
        raise ConfigError(
            f"--resume continues {args.resume} with its saved config; {', '.join(refused)} cannot "
            f"apply to it (only {', '.join(RESUMABLE)} may be given)"
        )
    try:
        framework, config = load_run_config(args.resume)
    except ConfigError as err:
        raise ConfigError(f"--resume: {err}") from None
    if args.epochs is not None and args.epochs < config.epochs:
        raise ConfigError(
            f"--epochs: {args.epochs} is fewer than the {config.epochs} {args.resume} was started "
            "with; a resumed run can only train longer"
        )
    given = {name.removeprefix("--"): getattr(args, name.removeprefix("--")) for name in RESUMABLE}
    moved = given.pop("data")
    config = dataclasses.replace(config, **{k: v for k, v in given.items() if v is not None})
    return framework, config if moved is None else moved_data(args.resume, config, moved)


def make_parser() -> argparse.ArgumentParser:
    """The script's own flags; ``parse_command_line`` adds one per ``TrainConfig`` field."""
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", choices=FRAMEWORKS, default=None, help="default jax")
    parser.add_argument("--run-dir", type=Path, default=None, help="default runs/<framework>-<loss>-<time>")
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN_DIR",
        help="continue RUN_DIR from its latest checkpoint, with its saved config; "
        f"only {', '.join(RESUMABLE)} may be given with it (to train longer)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = parser.add_argument_group("multi-host JAX (jax.distributed.initialize)")
    group.add_argument(
        "--distributed", action="store_true", help="initialise from the cluster (SLURM, Open MPI, TPU pods)"
    )
    group.add_argument("--coordinator_address", default=None, help="host:port of process 0")
    group.add_argument("--num_processes", type=int, default=None)
    group.add_argument("--process_id", type=int, default=None)
    return parser


def parse_command_line(
    argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None
) -> tuple[str, TrainConfig, argparse.Namespace]:
    """``(framework, config, args)``; a bad option exits with status 2 and a line naming it."""
    parser = parser or make_parser()
    try:
        config, args = parse_config(argv, parser=parser)
        from_file = getattr(args, "config_framework", None)
        if from_file is not None and from_file not in FRAMEWORKS:
            raise ConfigError(
                f"--config: {args.config}: framework must be {' or '.join(FRAMEWORKS)}, found {from_file!r}"
            )
        framework = args.framework or from_file or "jax"
        if args.resume is not None:
            framework, config = resumed_config(args)
        else:
            config = absolute_data(config)
        if framework == "torch" and config.devices > 1:  # recorded, it would claim what did not run
            raise ConfigError(
                f"--devices: {config.devices} is JAX's data parallelism; PyTorch trains on one device"
            )
    except ConfigError as err:
        parser.error(str(err))
    return framework, config, args


HOST_FLAGS = ("coordinator_address", "num_processes", "process_id")  # jax.distributed.initialize's


def distributed_flags(args) -> list[str]:
    """The multi-host flags given, as typed (``--distributed`` first)."""
    given = [f"--{k}" for k in HOST_FLAGS if getattr(args, k) is not None]
    return ["--distributed"] * args.distributed + given


def check_distributed(parser, framework: str, args) -> tuple | None:
    """The arguments of ``jax.distributed.initialize`` the multi-host flags ask for (None: one
    host). Given by hand, all three are needed (``--distributed`` alone reads them from the
    cluster), with ``0 <= --process_id < --num_processes``; PyTorch takes none of them."""
    given = {k: getattr(args, k) for k in HOST_FLAGS}
    named = [f for f in distributed_flags(args) if f != "--distributed"]
    if not (args.distributed or named):
        return None
    if framework != "jax":
        parser.error(f"{' '.join(distributed_flags(args))}: multi-host runs are JAX's")
    if named and len(named) < 3 and not args.distributed:
        missing = [f"--{k}" for k, v in given.items() if v is None]
        parser.error(
            f"{', '.join(named)}: give {', '.join(missing)} too (or --distributed, to read them from "
            "the cluster)"
        )
    if args.num_processes is not None and not 1 <= args.num_processes < INT_LIMIT:
        parser.error(f"--num_processes: need an integer in [1, 2**31), got {args.num_processes}")
    if args.process_id is not None and not 0 <= args.process_id < (args.num_processes or INT_LIMIT):
        below = "2**31" if args.num_processes is None else f"--num_processes {args.num_processes}"
        parser.error(f"--process_id: need 0 <= process_id < {below}, got {args.process_id}")
    return tuple(given.values())


def main(argv: list[str] | None = None) -> int:
    """Train; an input the run cannot use ends it with one line: status 2 for an option the
    data or the machine cannot meet, 1 for bad data, files or checkpoints, or divergence."""
    parser = make_parser()
    framework, config, args = parse_command_line(argv, parser)
    distributed = check_distributed(parser, framework, args)
    configure(framework, config)  # process-wide settings, here, once
    if distributed is not None:
        import jax

        try:
            jax.distributed.initialize(*distributed)
        except (ValueError, RuntimeError) as err:  # no cluster found, no coordinator reached
            parser.error(
                f"{', '.join(distributed_flags(args))}: "
                f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
            )
    run_dir = args.resume or args.run_dir or default_run_dir(framework, config)
    try:
        results = run(
            framework, config, run_dir, resume=args.resume is not None, progress_bar=not args.no_progress
        )
    except USER_ERRORS as err:
        return error_exit(parser, err)
    print(run_summary(framework, config, results, run_dir))
    return 0


if __name__ == "__main__":
    log_to_console()  # log sinks are the process's: set where it starts, not in main (tests call it)
    sys.exit(run_script(main))
