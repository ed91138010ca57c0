"""MovieLens 100K: find, fetch, validate and cache the ratings and the movie titles, offline
if need be.

Resolution order, one for both (the first that yields a file wins, and the log says which):

1. a GroupLens-format folder holding ``u.data`` (and ``u.item``, the titles), given as
   ``data_dir`` or by the ``JAX_LTR_DATA_DIR`` environment variable;
2. the cache, ``<cache_dir>/ml-100k/u.data`` (and ``movies.tsv``; ``cache_dir`` from the
   argument, the ``JAX_LTR_CACHE_DIR`` environment variable, or ``$XDG_CACHE_HOME/jax-ltr``);
3. the official GroupLens download (short timeout);
4. the PyPI wheel ``recbole==1.2.1``, fetched with ``pip download --no-deps`` and read
   as a zip: it ships the same 100,000 ratings as ``ml-100k.inter`` (the titles as
   ``ml-100k.item``). recbole is never installed or imported.

Whatever the source, the ratings are validated line by line and then against the
expected counts before anything is cached; the cache is written to a temporary file
and renamed into place, so an interrupted fetch never leaves a file a later run trusts.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import io
import os
import re
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from loguru import logger

from ltr_common.files import atomic_write_text

GROUPLENS_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
GROUPLENS_MEMBER = "ml-100k/u.data"
GROUPLENS_ITEMS = "ml-100k/u.item"
RECBOLE_REQUIREMENT = "recbole==1.2.1"
RECBOLE_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
RECBOLE_HEADER = ("user_id:token", "item_id:token", "rating:float", "timestamp:float")
RECBOLE_ITEMS = "recbole/dataset_example/ml-100k/ml-100k.item"
RECBOLE_ITEMS_HEADER = ("item_id:token", "movie_title:token_seq", "release_year:token", "class:token_seq")
MOVIES_FILE = "movies.tsv"  # the cache's copy of the titles, in the recbole member's format
GENRES = (  # u.item's genre flags, in order
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
DATA_DIR_ENV = "JAX_LTR_DATA_DIR"
CACHE_DIR_ENV = "JAX_LTR_CACHE_DIR"
RATING_RANGE = (1, 5)
_Loaded = TypeVar("_Loaded")  # what a source gives, validated: Ratings or Movies
_Fetched = TypeVar("_Fetched")  # what a fetch gives, parsed but not yet validated


class DataError(ValueError):
    """Ratings that are missing, malformed or not the expected data set."""


@dataclasses.dataclass(frozen=True)
class ExpectedCounts:
    """What a complete copy of a data set holds; ``None`` fields are not checked."""

    rows: int | None
    users: int | None
    items: int | None
    # of the ratings written as ``format_udata`` writes them, in the file's row order: the
    # same bytes whatever the source (GroupLens' u.data, the recbole wheel, a folder, the cache)
    sha256: str | None = None


ML_100K = ExpectedCounts(
    rows=100_000,
    users=943,
    items=1_682,
    sha256="06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
)


@dataclasses.dataclass(frozen=True)
class Ratings:
    """Validated ratings with contiguous 0-based ids, in the file's row order.

    ``user_raw_ids[u]`` is the raw id of user index ``u`` (likewise items); the raw ids
    are sorted, so the mapping is the same for every copy of the same data. Raw ids are
    integers, or strings where the data names its users or items so.
    """

    users: np.ndarray  # [N] int32, 0..num_users-1
    items: np.ndarray  # [N] int32, 0..num_items-1
    ratings: np.ndarray  # [N] float32, in (0, 64]; 1 for implicit feedback
    timestamps: np.ndarray  # [N] int64, unix seconds (0 where the data has no times)
    user_raw_ids: np.ndarray  # [num_users] int64 or str
    item_raw_ids: np.ndarray  # [num_items] int64 or str
    source: str
    implicit: bool = False  # every rating is 1: interactions without a grade
    timed: bool = True  # False: no timestamps, so the split holds out random ratings

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
    low, high = RATING_RANGE
    body = text.split("\n", first)[-1]
    if _PLAIN_ROWS.fullmatch(body):  # every line four plain integers: converted in one pass
        rows = np.array(body.split(), dtype=np.int64).reshape(-1, 4)
        if ((rows[:, 2] >= low) & (rows[:, 2] <= high)).all():
            return rows
    # Line by line, to name the first line that is wrong and what is wrong with it.
    rows = np.empty((len(lines) - first, 4), dtype=np.int64)
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
            rows[row, col] = parse_int(field, path=path, lineno=lineno, name=name)
        if not low <= rows[row, 2] <= high:
            raise DataError(f"{path}: line {lineno}: rating {rows[row, 2]} is outside {low}..{high}")
    return rows


INT64_DIGITS = 18  # every integer of at most this many digits fits in int64
_PLAIN_ROW = rf"[0-9]{{1,{INT64_DIGITS}}}(?:\t[0-9]{{1,{INT64_DIGITS}}}){{3}}"
# A file of such rows, each ending in a newline (CRLF too), the last one maybe not: what
# ``parse_ratings`` reads without looking at each line (a fifth of the time on ML-100K).
_PLAIN_ROWS = re.compile(rf"(?:{_PLAIN_ROW}\r?\n)*{_PLAIN_ROW}\r?\n?")


def parse_int(field: str, *, path: str, lineno: int, name: str) -> int:
    """A field of ASCII digits, with an optional leading minus, as a non-negative int64.

    Nothing else is read as a number, not even what Python's ``int`` or ``float`` would take
    (``" 3 "``, ``"1_96"``, ``"3.0"``, ``"8.8e+08"``, other scripts' digits): a file that writes
    numbers another way is not a file this loader knows.
    """
    digits = field[1:] if field.startswith("-") else field
    shown = repr(field if len(field) <= 40 else field[:40] + "...")
    if not (digits.isascii() and digits.isdigit()):
        raise DataError(f"{path}: line {lineno}: {name} {shown} is not an integer (ASCII digits 0-9 only)")
    if len(digits.lstrip("0")) > INT64_DIGITS:
        raise DataError(f"{path}: line {lineno}: {name} {shown} is too large (at most {INT64_DIGITS} digits)")
    value = int(field)
    if value < 0:
        raise DataError(f"{path}: line {lineno}: {name} {value} is negative")
    return value


def ratings_from_rows(rows: np.ndarray, *, path: str, expected: ExpectedCounts, source: str) -> Ratings:
    """Check counts, uniqueness and content of parsed u.data rows, then index the ids."""
    ratings = index_ratings(
        rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3], path=path, expected=expected, source=source
    )
    if expected.sha256 is not None:
        found = hashlib.sha256(format_udata(rows).encode()).hexdigest()
        if found != expected.sha256:
            raise DataError(
                f"{path}: these are not MovieLens 100K's ratings (sha256 {found}, expected "
                f"{expected.sha256}): the file was changed, or is another data set"
            )
    return ratings


def _sorted_codes(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(raw, return_inverse=True)``: the sorted distinct values and each row's index
    among them; integers by hashing (pandas' ``factorize``, a tenth of the sort's time)."""
    if raw.dtype.kind in "iu":
        codes, uniques = pd.factorize(raw, sort=True)
        return uniques, codes
    return np.unique(raw, return_inverse=True)


def index_ratings(
    user_raw: np.ndarray,
    item_raw: np.ndarray,
    ratings: np.ndarray,
    timestamps: np.ndarray | None,
    *,
    path: str,
    expected: ExpectedCounts,
    source: str,
    implicit: bool = False,
    lines: np.ndarray | None = None,
    unit: str = "line",
) -> Ratings:
    """Check the counts and that no user rates an item twice, then map raw ids to indices.

    ``lines``: each row's ``unit`` number in ``path`` (a text file's line, a Parquet table's
    row), for the error that names a duplicate; default: row ``k`` is line ``k + 1``.
    ``timestamps`` ``None``: the data has none.
    """
    user_raw_ids, users = _sorted_codes(user_raw)
    item_raw_ids, items = _sorted_codes(item_raw)
    found = ExpectedCounts(rows=len(users), users=len(user_raw_ids), items=len(item_raw_ids))
    for field in ("rows", "users", "items"):
        want, got = getattr(expected, field), getattr(found, field)
        if want is not None and want != got:
            raise DataError(
                f"{path}: expected {want} {field}, found {got} "
                "(the file is truncated, or not the expected data set)"
            )
    pair_keys = users.astype(np.int64) * len(item_raw_ids) + items
    keys = np.sort(pair_keys)  # a tenth of the stable argsort's time, which only names a repeat
    if (keys[1:] == keys[:-1]).any():
        order = np.argsort(pair_keys, kind="stable")
        same = np.flatnonzero(pair_keys[order][1:] == pair_keys[order][:-1])
        first, second = sorted(order[same[0] : same[0] + 2])
        where = (lines if lines is not None else np.arange(1, len(users) + 1))[[first, second]]
        raise DataError(
            f"{path}: {unit}s {where[0]} and {where[1]}: user {user_raw[first]} rated item "
            f"{item_raw[first]} twice (each user rates each item at most once)"
        )
    timed = timestamps is not None
    return Ratings(
        users=users.astype(np.int32),
        items=items.astype(np.int32),
        ratings=np.asarray(ratings, np.float32),
        timestamps=np.asarray(timestamps, np.int64) if timed else np.zeros(len(users), np.int64),
        user_raw_ids=user_raw_ids,
        item_raw_ids=item_raw_ids,
        source=source,
        implicit=implicit,
        timed=timed,
    )


def read_udata(path: Path, *, expected: ExpectedCounts = ML_100K, source: str | None = None) -> Ratings:
    """Read and validate a GroupLens ``u.data`` file."""
    path = Path(path)
    text = _read_text(path, expected="a GroupLens u.data ratings file")
    rows = parse_ratings(text, path=str(path))
    return ratings_from_rows(rows, path=str(path), expected=expected, source=source or str(path))


def format_udata(rows: np.ndarray) -> str:
    """The inverse of ``parse_ratings`` for a header-less file."""
    return "".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows.tolist())


def fetch_grouplens(*, timeout: float = 10.0, url: str = GROUPLENS_URL) -> tuple[np.ndarray, str]:
    """Download the official zip and parse its ``u.data``; raises ``OSError`` when offline."""
    name = f"{url}!{GROUPLENS_MEMBER}"
    text = _decode(_grouplens_member(GROUPLENS_MEMBER, timeout=timeout, url=url), name=name)
    return parse_ratings(text, path=name), url


def read_recbole_wheel(wheel: Path) -> np.ndarray:
    """Parse the ML-100K ratings member of a recbole wheel (a zip)."""
    name = f"{wheel}!{RECBOLE_MEMBER}"
    text = _decode(zip_member(wheel, RECBOLE_MEMBER), name=name)
    return parse_ratings(text, path=name, header=RECBOLE_HEADER)


def fetch_recbole(*, timeout: float = 600.0) -> tuple[np.ndarray, str]:
    """``pip download --no-deps recbole==1.2.1`` into a temporary folder and read the ratings."""
    with tempfile.TemporaryDirectory(prefix="jax-ltr-recbole-") as tmp:
        wheel = _download_recbole(tmp, timeout)
        return read_recbole_wheel(wheel), f"PyPI wheel {RECBOLE_REQUIREMENT} ({RECBOLE_MEMBER})"


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
    return _first_source(
        "ratings",
        data_dir=data_dir,
        cache_dir=cache_dir,
        folder_file="u.data",
        read_folder=lambda path: read_udata(path, expected=expected, source=f"local folder {path.parent}"),
        cache_file="u.data",
        read_cache=lambda path: read_udata(path, expected=expected, source=f"cache {path}"),
        fetches=(
            (f"GroupLens ({GROUPLENS_URL})", lambda: fetch_grouplens(timeout=download_timeout)),
            (f"PyPI's {RECBOLE_REQUIREMENT} wheel", fetch_recbole),
        ),
        check=lambda rows, origin: ratings_from_rows(rows, path=origin, expected=expected, source=origin),
        cache_text=format_udata,
    )


@dataclasses.dataclass(frozen=True)
class Movies:
    """Titles, release years and genres of the movies, by raw item id."""

    raw_ids: np.ndarray  # [M] int64
    titles: tuple[str, ...]
    years: tuple[str, ...]  # "" where unknown
    genres: tuple[tuple[str, ...], ...]
    source: str

    def __len__(self) -> int:
        return len(self.raw_ids)

    def describe(self, raw_id: int) -> str:
        """``"Title (year) [genre, ...]"``, or ``"item <id>"`` for an id without a title."""
        index = np.searchsorted(self.raw_ids, raw_id)
        if index == len(self.raw_ids) or self.raw_ids[index] != raw_id:
            return f"item {raw_id}"
        year = f" ({self.years[index]})" if self.years[index] else ""
        return f"{self.titles[index]}{year} [{', '.join(self.genres[index])}]"


def parse_movies(text: str, *, path: str) -> Movies:
    """Parse the recbole ``ml-100k.item`` format (also the cache's): id, title, year, genres."""
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if not lines or tuple(lines[0].split("\t")) != RECBOLE_ITEMS_HEADER:
        found = lines[0][:80] if lines else "an empty file"
        raise DataError(
            f"{path}: line 1: expected the header {chr(9).join(RECBOLE_ITEMS_HEADER)!r}, found {found!r}"
        )
    rows = []
    for lineno, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != 4:
            raise DataError(f"{path}: line {lineno}: expected 4 tab-separated fields, found {len(fields)}")
        raw = parse_int(fields[0], path=path, lineno=lineno, name="item")
        rows.append((raw, fields[1], fields[2], tuple(fields[3].split())))
    return movies_from_rows(rows, path)


def parse_uitem(text: str, *, path: str) -> Movies:
    """Parse a GroupLens ``u.item`` (pipe-separated; the year taken from the release date)."""
    rows = []
    for lineno, line in enumerate((x for x in text.split("\n") if x.strip()), start=1):
        fields = line.rstrip("\r").split("|")
        if len(fields) != 5 + len(GENRES):
            raise DataError(
                f"{path}: line {lineno}: expected {5 + len(GENRES)} |-separated fields, found {len(fields)}"
            )
        raw = parse_int(fields[0], path=path, lineno=lineno, name="item")
        title = fields[1].rsplit(" (", 1)[0] if fields[1].endswith(")") else fields[1]
        year = fields[2][-4:] if len(fields[2]) >= 4 else ""
        genres = tuple(g for g, flag in zip(GENRES, fields[5:], strict=True) if flag.strip() == "1")
        rows.append((raw, title, year, genres))
    return movies_from_rows(rows, path)


def check_movies(movies: Movies, *, expected: ExpectedCounts = ML_100K) -> Movies:
    """``movies``, when it holds as many titles as the data set has items (``expected.items``)."""
    found = len(movies)
    if expected.items is not None and found != expected.items:
        raise DataError(
            f"{movies.source}: expected {expected.items} items, found {found} "
            "(the file is truncated, or not the expected data set)"
        )
    return movies


def movies_from_rows(rows: list, source: str) -> Movies:
    rows.sort()
    raw_ids = np.array([r[0] for r in rows], np.int64)
    if len(np.unique(raw_ids)) != len(raw_ids):
        raise DataError(f"{source}: an item id appears twice")
    return Movies(raw_ids, *(tuple(r[k] for r in rows) for k in (1, 2, 3)), source=source)


def format_movies(movies: Movies) -> str:
    lines = ["\t".join(RECBOLE_ITEMS_HEADER)]
    for raw, title, year, genres in zip(
        movies.raw_ids.tolist(), movies.titles, movies.years, movies.genres, strict=True
    ):
        lines.append(f"{raw}\t{title}\t{year}\t{' '.join(genres)}")
    return "\n".join(lines) + "\n"


def fetch_grouplens_titles(*, timeout: float = 10.0, url: str = GROUPLENS_URL) -> tuple[Movies, str]:
    """Download the official zip and parse its ``u.item``; raises ``OSError`` when offline."""
    # u.item is latin-1, as in a GroupLens folder (every byte is a latin-1 character)
    text = _grouplens_member(GROUPLENS_ITEMS, timeout=timeout, url=url).decode("latin-1")
    return parse_uitem(text, path=f"{url}!{GROUPLENS_ITEMS}"), url


def fetch_recbole_titles(*, timeout: float = 600.0) -> tuple[Movies, str]:
    """The titles member of the recbole wheel, downloaded as ``fetch_recbole`` does."""
    with tempfile.TemporaryDirectory(prefix="jax-ltr-recbole-") as tmp:
        data = zip_member(_download_recbole(tmp, timeout), RECBOLE_ITEMS)
    text = data.decode("utf-8", errors="replace")
    movies = parse_movies(text, path=f"{RECBOLE_REQUIREMENT}!{RECBOLE_ITEMS}")
    return movies, f"PyPI wheel {RECBOLE_REQUIREMENT} ({RECBOLE_ITEMS})"


def load_movies(
    *,
    data_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    download_timeout: float = 10.0,
    expected: ExpectedCounts = ML_100K,
) -> Movies:
    """Titles and genres of MovieLens 100K, from the first source that has them.

    The ratings' sources in the same order (the module docstring): a local folder's GroupLens
    ``u.item`` (``data_dir``, ``$JAX_LTR_DATA_DIR``), the cache's ``ml-100k/movies.tsv``, the
    GroupLens zip, then only the ``ml-100k.item`` member of the recbole wheel. Every source
    is validated as the ratings are, line by line and then against the count of items
    (``expected``), before it is used or cached.
    """

    def read_folder(path: Path) -> Movies:
        text = _read_text(path, expected="a GroupLens u.item file of titles", encoding="latin-1")
        return check_movies(parse_uitem(text, path=str(path)), expected=expected)

    def read_cache(path: Path) -> Movies:
        text = _read_text(path, expected=f"the titles cached as {MOVIES_FILE}")
        return check_movies(parse_movies(text, path=str(path)), expected=expected)

    return _first_source(
        "titles",
        data_dir=data_dir,
        cache_dir=cache_dir,
        folder_file="u.item",
        read_folder=read_folder,
        cache_file=MOVIES_FILE,
        read_cache=read_cache,
        fetches=(
            (f"GroupLens ({GROUPLENS_URL})", lambda: fetch_grouplens_titles(timeout=download_timeout)),
            (f"PyPI's {RECBOLE_REQUIREMENT} wheel", fetch_recbole_titles),
        ),
        check=lambda movies, _origin: check_movies(movies, expected=expected),
        cache_text=format_movies,
    )


def _first_source(
    what: str,
    *,
    data_dir: str | os.PathLike | None,
    cache_dir: str | os.PathLike | None,
    folder_file: str,
    read_folder: Callable[[Path], _Loaded],
    cache_file: str,
    read_cache: Callable[[Path], _Loaded],
    fetches: Sequence[tuple[str, Callable[[], tuple[_Fetched, str]]]],
    check: Callable[[_Fetched, str], _Loaded],
    cache_text: Callable[[_Fetched], str],
) -> _Loaded:
    """MovieLens 100K's ``what`` ("ratings" or "titles") from the first source that has them,
    in the order of the module docstring.

    ``read_folder`` reads and validates ``folder_file`` in ``data_dir`` (or
    ``$JAX_LTR_DATA_DIR``): when a folder is named, it must hold a valid file, with no
    fallback. ``read_cache`` does the same for ``<cache>/ml-100k/<cache_file>``. Otherwise
    each of ``fetches`` (a source's name, and a function) in turn downloads and parses the
    data, returning it with its origin;
    ``check(parsed, origin)`` validates it, and only then is ``cache_text(parsed)`` written to
    the cache (atomically). A fetch that raises ``OSError`` or ``SubprocessError`` (offline,
    no pip) gives way to the next; a ``DataError`` (data that is not what it should be) is
    raised at once, and nothing is cached.
    """
    data_dir = data_dir if data_dir is not None else os.environ.get(DATA_DIR_ENV) or None
    if data_dir is not None:
        path = Path(data_dir) / folder_file
        value = read_folder(path)
        logger.info("MovieLens 100K: read {} {} from the local folder {}", len(value), what, path)
        return value
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cached = cache / "ml-100k" / cache_file
    if cached.exists():
        value = read_cache(cached)
        logger.info("MovieLens 100K: read {} {} from the cache {}", len(value), what, cached)
        return value
    failures = []
    for source, fetch in fetches:
        try:
            parsed, origin = fetch()
        except (OSError, subprocess.SubprocessError) as err:
            logger.warning("MovieLens 100K {}: {} unavailable: {}", what, source, err)
            failures.append(f"{source}: {err}")
            continue
        value = check(parsed, origin)
        atomic_write_text(cached, cache_text(parsed))
        logger.info("MovieLens 100K: fetched {} {} from {}; cached at {}", len(value), what, origin, cached)
        return value
    raise DataError(
        f"MovieLens 100K {what} are not available: no {DATA_DIR_ENV}/data_dir, nothing cached at "
        f"{cached}, and every fetch failed: {' | '.join(failures)}. Download {GROUPLENS_URL} where "
        f"the network reaches it, unzip it, and give its ml-100k folder with {DATA_DIR_ENV}, which "
        "every script reads (or train.py's --data_dir)"
    )


def zip_member(archive, member: str, *, name: str | None = None) -> bytes:
    """The bytes of ``member`` in the zip ``archive`` (a path or a binary file object); a
    ``DataError`` naming the archive (``name``, default ``archive``) otherwise."""
    name = name or str(archive)
    try:
        with zipfile.ZipFile(archive) as opened:
            return opened.read(member)
    except zipfile.BadZipFile as err:
        raise DataError(f"{name}: not a zip file ({err})") from None
    except KeyError:
        raise DataError(f"{name}: has no member {member}") from None
    except (zipfile.LargeZipFile, OSError, EOFError) as err:
        raise DataError(f"{name}: cannot read {member} ({err})") from None


def _grouplens_member(member: str, *, timeout: float, url: str) -> bytes:
    """``member`` of the GroupLens zip at ``url``, downloaded whole; ``OSError`` when offline."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        payload = response.read()
    return zip_member(io.BytesIO(payload), member, name=url)


def _download_recbole(tmp: str, timeout: float) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, RECBOLE_REQUIREMENT]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    wheels = glob.glob(os.path.join(tmp, "recbole-*.whl"))
    if done.returncode != 0 or not wheels:
        raise OSError(f"`{' '.join(cmd)}` failed (exit {done.returncode}): {done.stderr.strip()[-500:]}")
    return Path(wheels[0])


def _read_text(path: Path, *, expected: str, encoding: str = "utf-8") -> str:
    """The text of the file at ``path``; a ``DataError`` naming it when it is missing
    (``expected``: what it should have been) or not text in ``encoding``."""
    if not path.is_file():
        raise DataError(f"{path}: no such file (expected {expected})")
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not a text file ({err})") from None


def _decode(data: bytes, *, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{name}: not a text file ({err})") from None
