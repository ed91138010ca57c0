"""MovieLens 100K: find, fetch, validate and cache the ratings, offline if need be.

Resolution order (the first that yields a file wins, and the log says which):

1. a GroupLens-format folder holding ``u.data``, given as ``data_dir`` or by the
   ``JAX_LTR_DATA_DIR`` environment variable;
2. the cache, ``<cache_dir>/ml-100k/u.data`` (``cache_dir`` from the argument, the
   ``JAX_LTR_CACHE_DIR`` environment variable, or ``$XDG_CACHE_HOME/jax-ltr``);
3. the official GroupLens download (short timeout);
4. the PyPI wheel ``recbole==1.2.1``, fetched with ``pip download --no-deps`` and read
   as a zip: it ships the same 100,000 ratings as ``ml-100k.inter``. recbole is never
   installed or imported.

Whatever the source, the ratings are validated line by line and then against the
expected counts before anything is cached; the cache is written to a temporary file
and renamed into place, so an interrupted fetch never leaves a file a later run trusts.
"""

from __future__ import annotations

import dataclasses
import glob
import io
import os
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
from loguru import logger

from ltr_common.files import atomic_write_text

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_MEMBER = "ml-100k/u.data"
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
RECBOLE_HEADER = ("user_id:token", "item_id:token", "rating:float", "timestamp:float")
DATA_DIR_ENV = "JAX_LTR_DATA_DIR"
CACHE_DIR_ENV = "JAX_LTR_CACHE_DIR"
RATING_RANGE = (1, 5)


class DataError(ValueError):
    """Ratings that are missing, malformed or not the expected data set."""


@dataclasses.dataclass(frozen=True)
class ExpectedCounts:
    """What a complete copy of a data set holds; ``None`` fields are not checked."""

    rows: int | None
    users: int | None
    items: int | None


ML_100K = ExpectedCounts(rows=100_000, users=943, items=1_682)


@dataclasses.dataclass(frozen=True)
class Ratings:
    """Validated ratings with contiguous 0-based ids, in the file's row order.

    ``user_raw_ids[u]`` is the raw id of user index ``u`` (likewise items); the raw ids
    are sorted, so the mapping is the same for every copy of the same data.
    """

    users: np.ndarray  # [N] int32, 0..num_users-1
    items: np.ndarray  # [N] int32, 0..num_items-1
    ratings: np.ndarray  # [N] int8, within RATING_RANGE
    timestamps: np.ndarray  # [N] int64, unix seconds
    user_raw_ids: np.ndarray  # [num_users] int64
    item_raw_ids: np.ndarray  # [num_items] int64
    source: str

    @property
    def num_users(self) -> int:
        return len(self.user_raw_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_raw_ids)

    def __len__(self) -> int:
        return len(self.users)


def default_cache_dir() -> Path:
    """``$JAX_LTR_CACHE_DIR``, else ``$XDG_CACHE_HOME/jax-ltr``, else ``~/.cache/jax-ltr``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV])
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "jax-ltr"


def parse_ratings(text: str, *, path: str, header: tuple[str, ...] | None = None) -> np.ndarray:
    """Parse tab-separated ``user item rating timestamp`` lines into an [N, 4] int64 array.

    Args:
      text: the whole file.
      path: the file's name, for error messages.
      header: the exact first line's fields, or ``None`` for a file without one.

    Returns:
      [N, 4] int64 array of (raw user id, raw item id, rating, timestamp).

    Raises:
      DataError: naming ``path``, the 1-based line and what was wrong.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    first = 0
    if header is not None:
        if not lines or tuple(lines[0].rstrip("\r").split("\t")) != header:
            found = lines[0][:80] if lines else "an empty file"
            raise DataError(f"{path}: line 1: expected the header {chr(9).join(header)!r}, found {found!r}")
        first = 1
    if len(lines) == first:
        raise DataError(f"{path}: no ratings (the file is empty)")
    rows = np.empty((len(lines) - first, 4), dtype=np.int64)
    low, high = RATING_RANGE
    for row, line in enumerate(lines[first:]):
        lineno = row + first + 1
        fields = line.rstrip("\r").split("\t")
        if len(fields) != 4:
            raise DataError(
                f"{path}: line {lineno}: expected 4 tab-separated fields (user, item, rating, "
                f"timestamp), found {len(fields)}: {line[:80]!r}"
            )
        for col, (name, field) in enumerate(
            zip(("user", "item", "rating", "timestamp"), fields, strict=True)
        ):
            rows[row, col] = _parse_int(field, path=path, lineno=lineno, name=name)
        if not low <= rows[row, 2] <= high:
            raise DataError(f"{path}: line {lineno}: rating {rows[row, 2]} is outside {low}..{high}")
    return rows


def _parse_int(field: str, *, path: str, lineno: int, name: str) -> int:
    try:
        value = int(field)
    except ValueError:
        # recbole stores ratings and timestamps as floats ("3.0"): accept integral ones only.
        try:
            number = float(field)
        except ValueError:
            raise DataError(f"{path}: line {lineno}: {name} {field!r} is not a number") from None
        if not np.isfinite(number) or number != int(number):
            raise DataError(f"{path}: line {lineno}: {name} {field!r} is not an integer") from None
        value = int(number)
    if value < 0:
        raise DataError(f"{path}: line {lineno}: {name} {value} is negative")
    return value


def ratings_from_rows(rows: np.ndarray, *, path: str, expected: ExpectedCounts, source: str) -> Ratings:
    """Check counts and uniqueness, then remap raw ids to contiguous 0-based indices."""
    user_raw_ids, users = np.unique(rows[:, 0], return_inverse=True)
    item_raw_ids, items = np.unique(rows[:, 1], return_inverse=True)
    found = ExpectedCounts(rows=len(rows), users=len(user_raw_ids), items=len(item_raw_ids))
    for field in dataclasses.fields(ExpectedCounts):
        want, got = getattr(expected, field.name), getattr(found, field.name)
        if want is not None and want != got:
            raise DataError(
                f"{path}: expected {want} {field.name}, found {got} "
                "(the file is truncated, or not the expected data set)"
            )
    pair_keys = users.astype(np.int64) * len(item_raw_ids) + items
    unique_keys, first_rows, counts = np.unique(pair_keys, return_index=True, return_counts=True)
    if len(unique_keys) != len(pair_keys):
        dup = first_rows[np.argmax(counts > 1)]
        raise DataError(
            f"{path}: user {rows[dup, 0]} rated item {rows[dup, 1]} more than once "
            "(each user rates each item at most once)"
        )
    return Ratings(
        users=users.astype(np.int32),
        items=items.astype(np.int32),
        ratings=rows[:, 2].astype(np.int8),
        timestamps=rows[:, 3],
        user_raw_ids=user_raw_ids,
        item_raw_ids=item_raw_ids,
        source=source,
    )


def read_udata(path: Path, *, expected: ExpectedCounts = ML_100K, source: str | None = None) -> Ratings:
    """Read and validate a GroupLens ``u.data`` file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected a GroupLens u.data ratings file)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a text file ({err})") from None
    rows = parse_ratings(text, path=str(path))
    return ratings_from_rows(rows, path=str(path), expected=expected, source=source or str(path))


def format_udata(rows: np.ndarray) -> str:
    """The inverse of ``parse_ratings`` for a header-less file."""
    return "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows.tolist())


def fetch_grouplens(*, timeout: float = 10.0, url: str = GROUPLENS_URL) -> tuple[np.ndarray, str]:
    """Download the official zip and parse its ``u.data``; raises ``OSError`` when offline."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        payload = response.read()
    name = f"{url}!{GROUPLENS_MEMBER}"
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            text = archive.read(GROUPLENS_MEMBER).decode("utf-8")
    except (zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"{url}: not a MovieLens 100K zip ({err})") from None
    return parse_ratings(text, path=name), url


def read_recbole_wheel(wheel: Path) -> np.ndarray:
    """Parse the ML-100K ratings member of a recbole wheel (a zip)."""
    name = f"{wheel}!{RECBOLE_MEMBER}"
    try:
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read(RECBOLE_MEMBER)
    except zipfile.BadZipFile as err:
        raise DataError(f"{wheel}: not a valid wheel/zip file ({err})") from None
    except KeyError:
        raise DataError(f"{wheel}: has no member {RECBOLE_MEMBER}") from None
    except (zipfile.LargeZipFile, OSError, EOFError) as err:
        raise DataError(f"{wheel}: cannot read {RECBOLE_MEMBER} ({err})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{name}: not a text file ({err})") from None
    return parse_ratings(text, path=name, header=RECBOLE_HEADER)


def fetch_recbole(*, timeout: float = 600.0) -> tuple[np.ndarray, str]:
    """``pip download --no-deps recbole==1.2.1`` into a temporary folder and read the ratings."""
    with tempfile.TemporaryDirectory(prefix="jax-ltr-recbole-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "-d",
            tmp,
            RECBOLE_REQUIREMENT,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        wheels = glob.glob(os.path.join(tmp, "recbole-*.whl"))
        if done.returncode != 0 or not wheels:
            raise OSError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
        return read_recbole_wheel(Path(wheels[0])), f"PyPI wheel {RECBOLE_REQUIREMENT} ({RECBOLE_MEMBER})"


def load_movielens(
    *,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download_timeout: float = 10.0,
    expected: ExpectedCounts = ML_100K,
) -> Ratings:
    """Load MovieLens 100K from the first source that has it (see the module docstring).

    Args:
      data_dir: a folder with a GroupLens ``u.data``; defaults to ``$JAX_LTR_DATA_DIR``.
        When given, it must hold a valid file: there is no silent fallback.
      cache_dir: where fetched data is cached; defaults to ``default_cache_dir()``.
      download_timeout: seconds to wait for the GroupLens server.
      expected: the counts a complete copy has.

    Returns:
      The validated ``Ratings``.
    """
    data_dir = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    if data_dir is not None:
        path = Path(data_dir) / "u.data"
        ratings = read_udata(path, expected=expected, source=f"local folder {data_dir}")
        logger.info("MovieLens 100K: read {} ratings from the local folder {}", len(ratings), path)
        return ratings
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = cache / "ml-100k" / "u.data"
    if cached.exists():
        ratings = read_udata(cached, expected=expected, source=f"cache {cached}")
        logger.info("MovieLens 100K: read {} ratings from the cache {}", len(ratings), cached)
        return ratings
    failures = []
    for fetch in (lambda: fetch_grouplens(timeout=download_timeout), fetch_recbole):
        try:
            rows, origin = fetch()
        except (OSError, subprocess.SubprocessError) as err:
            logger.warning("MovieLens 100K: source unavailable: {}", err)
            failures.append(str(err))
            continue
        ratings = ratings_from_rows(rows, path=origin, expected=expected, source=origin)
        atomic_write_text(cached, format_udata(rows))
        logger.info("MovieLens 100K: fetched {} ratings from {}; cached at {}", len(ratings), origin, cached)
        return ratings
    raise DataError(
        f"MovieLens 100K is not available: no {DATA_DIR_ENV}/data_dir, nothing cached at {cached}, "
        f"and every fetch failed: {' | '.join(failures)}"
    )
