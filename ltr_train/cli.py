"""How a script answers an input it cannot use: one line on stderr and an exit status, never
a traceback.

Status 2, argparse's own for a usage error, when a flag, an option or a configuration value
cannot work (``ConfigError``); status 1 when what the command found while running was wrong:
data (``DataError``), files (``OSError``), checkpoints (``CheckpointError``), a run that
diverged (``NonFiniteError``), sizes the host's memory cannot hold (NumPy's ``MemoryError``,
which names the array it could not allocate).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ltr_common.config import ConfigError
from ltr_common.files import CheckpointError
from ltr_common.loop import NonFiniteError
from ltr_common.movielens import DataError

USER_ERRORS = (ConfigError, DataError, CheckpointError, NonFiniteError, OSError, MemoryError)


def _reader_left() -> int:
    """Stdout's reader left (``| head``): nothing to say, nor at the interpreter's last flush."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1


def run_script(main) -> int:
    """``main()``'s exit status, a reader of stdout that left early ending it quietly (status
    1) wherever it prints; for a script's ``__main__``."""
    try:
        return main()
    except BrokenPipeError:
        return _reader_left()


def error_exit(parser: argparse.ArgumentParser, error: Exception) -> int:
    """Report ``error`` (one of ``USER_ERRORS``) as ``parser``'s program does a usage error.

    A ``ConfigError`` exits with status 2 through ``parser.error``; anything else is printed
    as ``<prog>: error: <message>`` and 1 is returned, for ``main`` to return.
    """
    if isinstance(error, BrokenPipeError):
        return _reader_left()
    message = " ".join(str(error).split("\n")) or type(error).__name__  # a bare MemoryError has no text
    if isinstance(error, ConfigError):
        parser.error(message)
    print(f"{parser.prog}: error: {message}", file=sys.stderr)
    return 1


def add_moved_data_flag(parser: argparse.ArgumentParser) -> None:
    """``--data TABLE`` for a script that reads a run: where the run's table lies now, if it
    was moved since (``ltr_train.runs.moved_data``)."""
    parser.add_argument(
        "--data",
        default=None,
        metavar="TABLE",
        help="where the run's --data table lies now, if it was moved (checked against the run's data.json)",
    )


def ensure_folder(path: Path, flag: str) -> list[Path]:
    """Make folder ``path`` (and its parents) now, before work that would be lost if it could
    not be made; where it cannot (a file in the way, no permission) a ``ConfigError`` naming
    ``flag`` and the reason. Returns the folders it made, outermost first
    (``remove_made_folders`` takes them away again if the work fails)."""
    path = Path(path)
    missing = [p for p in (path, *path.parents) if not p.exists()][::-1]
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"{flag}: {path} is a file, not a folder") from None
    except OSError as err:
        raise ConfigError(f"{flag}: cannot make the folder {path} ({err.strerror or err})") from None
    return missing


def ensure_folder_or_exit(parser: argparse.ArgumentParser, path: Path, flag: str) -> list[Path]:
    """``ensure_folder``, a folder it cannot make ending the script as ``parser``'s usage
    error (status 2): for a script that makes its output folder before long work."""
    try:
        return ensure_folder(path, flag)
    except ConfigError as err:
        parser.error(str(err))


def remove_made_folders(made: list[Path]) -> None:
    """Remove the folders ``ensure_folder`` made, innermost first, those still empty."""
    for folder in reversed(made):
        try:
            folder.rmdir()
        except OSError:  # not empty (something else wrote there), or gone
            return
