"""A run folder: what a run leaves in it, and how later scripts read it back.

``<run_dir>/``: ``config.json`` (the framework and the resolved config), ``data.json`` (the
data's source, counts and content hash), ``train.log``, ``events.*`` (TensorBoard),
``checkpoint_latest``/``checkpoint_best`` (+ ``.prev``), ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from loguru import logger

from ltr_common.config import ConfigError, TrainConfig, load_config_file
from ltr_common.data import fingerprint, load_split
from ltr_common.files import has_checkpoint
from ltr_common.lists import Split
from ltr_common.movielens import DataError, Ratings
from ltr_train.backends import FRAMEWORKS


def default_run_dir(framework: str, config: TrainConfig) -> Path:
    return Path("runs") / f"{framework}-{config.loss}-{time.strftime('%Y%m%d-%H%M%S')}"


RUN_OUTPUTS = ("checkpoint_latest", "checkpoint_best", "metrics.json")


def run_config_data(framework: str, config: TrainConfig) -> dict:
    """What a run writes to its ``config.json``, as JSON reads it back."""
    return json.loads(json.dumps({"framework": framework, **dataclasses.asdict(config)}))


def check_new_run_dir(run_dir: Path, framework: str, config: TrainConfig) -> None:
    """Refuse a folder that holds a run: a ``config.json`` of another framework or config, or
    what a run leaves (``RUN_OUTPUTS``), which a new run there would write over.

    Other files do not count, nor does this very run's ``config.json`` alone: the other
    processes of a multi-host run start in the folder where process 0 has written it, before
    any of them can train a step or write a checkpoint.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--run-dir: {run_dir} is a file, not a folder")
    found = [name for name in RUN_OUTPUTS if (run_dir / name).exists()]
    saved = run_dir / "config.json"
    if saved.exists():
        try:
            same = json.loads(saved.read_text(encoding="utf-8")) == run_config_data(framework, config)
        except (OSError, ValueError):  # unreadable, not UTF-8 or not JSON: not this run's
            same = False
        if not same:
            found.insert(0, "config.json")
    if found:
        advice = (
            f"continue that run with --resume {run_dir}"
            if has_checkpoint(run_dir / "checkpoint_latest")
            else "remove it (it has no checkpoint_latest, so it cannot be resumed)"
        )
        raise ConfigError(
            f"--run-dir: {run_dir} holds a run already ({', '.join(found)}); choose another folder, "
            f"or {advice}"
        )


DATA_RECORD = "data.json"


def check_run_data(run_dir: Path, ratings: Ratings, record: dict | None = None) -> None:
    """Refuse ``ratings`` that are not what the run in ``run_dir`` was trained on (its
    ``data.json``: counts and content hash); a run without the record is taken as it is.
    ``record``: ``fingerprint(ratings)`` where the caller has it already."""
    path = Path(run_dir) / DATA_RECORD
    if not path.is_file():
        return
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable ({err})") from None
    now = record if record is not None else fingerprint(ratings)
    changed = [
        k for k in ("ratings", "users", "items", "implicit", "timed", "sha256") if saved.get(k) != now[k]
    ]
    if changed:
        raise DataError(
            f"{path}: the run was trained on other data than {now['source']} holds now "
            f"({', '.join(f'{k}: {saved.get(k)!r} then, {now[k]!r} now' for k in changed[:2])})"
        )


def absolute_path(path: str | Path) -> str:
    """``path`` made absolute, ``~`` expanded: what a run's ``config.json`` records, so that
    every later script finds the same file wherever it is started."""
    return str(Path(path).expanduser().resolve())


def moved_data(run_dir: Path, config: TrainConfig, data: str | Path | None = None) -> TrainConfig:
    """``config`` reading its ``--data`` table from ``data``, where it lies now (absolute), if
    given; a table that is not where the run's ``config.json`` says is a ``DataError`` that
    says how to give its new place. ``check_run_data`` then checks it holds the same data."""
    if data is not None:
        if config.data is None:
            raise ConfigError(
                f"--data: {run_dir} was trained on MovieLens {config.dataset or 'ml-100k'}, "
                "not on a --data table"
            )
        config = dataclasses.replace(config, data=absolute_path(data))
    elif config.data is not None and not Path(config.data).exists():
        raise DataError(
            f"{config.data}: no such file: the table the run in {run_dir} was trained on (its "
            "config.json's data); if it was moved, give its new place with --data (checked against "
            "the run's data.json)"
        )
    return config


def warn_if_unfinished(run_dir: Path) -> None:
    """A run folder without ``metrics.json`` did not finish (stopped, killed, or diverged):
    its best checkpoint so far is what is read, and the log says so."""
    if not (Path(run_dir) / "metrics.json").exists():
        logger.warning(
            "{} has no metrics.json: its training did not finish (stopped, or diverged); its best "
            "checkpoint so far is read",
            run_dir,
        )


def load_run_data(
    run_dir: Path, config: TrainConfig, *, refit: bool | None = None, data: str | Path | None = None
) -> tuple[Ratings, Split]:
    """The ratings and split of the run in ``run_dir`` (``config``: its saved config), checked
    to be the data it was trained on (``check_run_data``); ``data``: where its ``--data``
    table lies now, if it was moved (``moved_data``)."""
    warn_if_unfinished(run_dir)
    ratings, split = load_split(moved_data(run_dir, config, data), refit=refit)
    check_run_data(run_dir, ratings)
    return ratings, split


def load_run_config(run_dir: Path) -> tuple[str, TrainConfig]:
    """The framework and configuration a run directory was trained with (its ``config.json``)."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a run directory (it has no config.json)")
    data = load_config_file(path, TrainConfig, allow={"framework"}, flag=None)
    framework = data.pop("framework", "jax")
    if framework not in FRAMEWORKS:
        raise ConfigError(f"{path}: framework must be one of {', '.join(FRAMEWORKS)}, found {framework!r}")
    try:
        return framework, TrainConfig(**data)
    except (ConfigError, TypeError) as err:
        raise ConfigError(f"{path}: {err}") from None
