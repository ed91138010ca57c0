"""The MovieLens family by name: ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m.

Each GroupLens archive is pinned by its size and SHA-256 (``ARCHIVES``), and its ratings by
their counts (ratings, users, and items that were rated — fewer than the movies file lists).
Sources, the first that has the data wins:

1. a folder holding the archive's files, unpacked (``data_dir``): its ratings file is read
   and checked against the counts;
2. the cache, ``<cache_dir>/<name>/<archive>.zip``: checked against its pins on every read;
3. the GroupLens download, streamed to a temporary file beside the cache, checked against
   the pins, then renamed into place — an interrupted or altered download never becomes a
   file a later run trusts.

ML-100K keeps its own resolution (``ltr_common.movielens``: folder, cache, GroupLens, the
recbole wheel), and every source of it is checked against the same content hash.

The three formats: ``u.data`` (tab-separated, no header; titles in ``u.item``, pipe-separated,
latin-1), ``ratings.dat`` (``::``-separated, no header; titles in ``movies.dat``, latin-1 in
ML-1M, UTF-8 in ML-10M) and ``ratings.csv`` (a header ``userId,movieId,rating,timestamp``;
titles in ``movies.csv``, UTF-8). Ratings from ML-10M on are half stars, 0.5 to 5.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
import tempfile
import urllib.request
from pathlib import Path

import pandas as pd
from loguru import logger

from ltr_common import movielens
from ltr_common.interactions import ratings_from_frame
from ltr_common.movielens import DataError, ExpectedCounts, Movies, Ratings

GROUPLENS = "https://files.grouplens.org/datasets/movielens/"


@dataclasses.dataclass(frozen=True)
class Archive:
    """One GroupLens archive: where it is, what it must be, and what it holds."""

    name: str
    folder: str  # the folder inside the zip
    format: str  # "udata", "dat" or "csv"
    size: int
    sha256: str
    counts: ExpectedCounts
    movies_encoding: str = "utf-8"

    @property
    def url(self) -> str:
        return f"{GROUPLENS}{self.name}.zip"

    @property
    def ratings_file(self) -> str:
        return {"udata": "u.data", "dat": "ratings.dat", "csv": "ratings.csv"}[self.format]

    @property
    def movies_file(self) -> str:
        return {"udata": "u.item", "dat": "movies.dat", "csv": "movies.csv"}[self.format]


ARCHIVES = {
    a.name: a
    for a in (
        Archive(
            "ml-100k",
            "ml-100k",
            "udata",
            4_924_029,
            "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            movielens.ML_100K,
            "latin-1",
        ),
        Archive(
            "ml-1m",
            "ml-1m",
            "dat",
            5_917_549,
            "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            ExpectedCounts(rows=1_000_209, users=6_040, items=3_706),
            "latin-1",
        ),
        Archive(
            "ml-10m",
            "ml-10M100K",
            "dat",
            65_566_137,
            "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
            ExpectedCounts(rows=10_000_054, users=69_878, items=10_677),
        ),
        Archive(
            "ml-20m",
            "ml-20m",
            "csv",
            198_702_078,
            "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            ExpectedCounts(rows=20_000_263, users=138_493, items=26_744),
        ),
        Archive(
            "ml-25m",
            "ml-25m",
            "csv",
            261_978_986,
            "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            ExpectedCounts(rows=25_000_095, users=162_541, items=59_047),
        ),
        Archive(
            "ml-32m",
            "ml-32m",
            "csv",
            238_950_008,
            "e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee",
            ExpectedCounts(rows=32_000_204, users=200_948, items=84_432),
        ),
    )
}
DATASETS = tuple(ARCHIVES)
CSV_HEADER = ("userId", "movieId", "rating", "timestamp")
MOVIES_CSV_HEADER = ("movieId", "title", "genres")
_TITLE_YEAR = re.compile(r"^(.*\S)\s+\((\d{4})(?:[-–]\d{0,4})?\)\s*$")


def parse_ratings_file(data, archive: Archive, *, path: str) -> Ratings:
    """Parse an archive's ratings file (``data``: bytes) and check it against the counts."""
    if not data:
        raise DataError(f"{path}: the file is empty (no ratings)")
    if archive.format == "udata":
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: not a text file ({err})") from None
        rows = movielens.parse_ratings(text, path=path)
        return movielens.ratings_from_rows(rows, path=path, expected=archive.counts, source=path)
    try:
        if archive.format == "dat":  # a::b::c::d split on ":" is a,,b,,c,,d: the C parser's speed
            frame = pd.read_csv(io.BytesIO(data), sep=":", header=None, engine="c", dtype=str)
            if frame.shape[1] != 7 or frame[[1, 3, 5]].notna().any().any():
                raise DataError(f"{path}: expected user::item::rating::timestamp on every line")
            frame, first = frame[[0, 2, 4, 6]].set_axis(list(CSV_HEADER), axis=1), 1
        else:
            frame, first = pd.read_csv(io.BytesIO(data), dtype=str, engine="c"), 2
            if tuple(frame.columns) != CSV_HEADER:
                raise DataError(f"{path}: line 1: expected the header {','.join(CSV_HEADER)!r}")
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: {err}".replace("\n", " ")) from None
    columns = {"user": "userId", "item": "movieId", "rating": "rating", "timestamp": "timestamp"}
    return ratings_from_frame(
        frame, columns, path=path, first=first, expected=archive.counts, source=f"{archive.name} {path}"
    )


def _split_title(title: str) -> tuple[str, str]:
    match = _TITLE_YEAR.match(title)
    return (match.group(1), match.group(2)) if match else (title.strip(), "")


def parse_movies_file(data: bytes, archive: Archive, *, path: str) -> Movies:
    """Titles, years and genres from an archive's movies file."""
    if archive.format == "udata":
        return movielens.parse_uitem(data.decode("latin-1"), path=path)
    try:
        text = data.decode(archive.movies_encoding)
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # every byte is a latin-1 character
    rows = []
    if archive.format == "dat":
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            fields = line.split("::")
            if len(fields) != 3:
                raise DataError(f"{path}: line {lineno}: expected id::title::genres, found {line[:80]!r}")
            rows.append(_movie(fields, path=path, lineno=lineno))
    else:
        reader = csv.reader(io.StringIO(text))
        if tuple(next(reader, ())) != MOVIES_CSV_HEADER:
            raise DataError(f"{path}: line 1: expected the header {','.join(MOVIES_CSV_HEADER)!r}")
        for lineno, fields in enumerate(reader, start=2):
            if len(fields) != 3:
                raise DataError(f"{path}: line {lineno}: expected 3 fields, found {len(fields)}")
            rows.append(_movie(fields, path=path, lineno=lineno))
    return movielens.movies_from_rows(rows, path)


def _movie(fields, *, path: str, lineno: int) -> tuple:
    raw = movielens.parse_int(fields[0], path=path, lineno=lineno, name="movie")
    title, year = _split_title(fields[1])
    genres = () if fields[2] == "(no genres listed)" else tuple(fields[2].split("|"))
    return raw, title, year, genres


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_archive(path: Path, archive: Archive) -> None:
    """Refuse a file that is not the pinned archive (size, then SHA-256)."""
    size = path.stat().st_size
    if size != archive.size:
        raise DataError(
            f"{path}: {size} bytes, but {archive.name}.zip has {archive.size}: delete it and fetch again"
        )
    found = _sha256(path)
    if found != archive.sha256:
        raise DataError(
            f"{path}: sha256 {found}, but {archive.name}.zip's is {archive.sha256}: delete it and fetch again"
        )


def download_archive(archive: Archive, target: Path, *, timeout: float) -> None:
    """Stream the archive to a temporary file beside ``target``, check it, rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(archive.url, timeout=timeout) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
        check_archive(Path(tmp), archive)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def cached_archive(name: str, cache_dir=None) -> Path:
    cache = Path(cache_dir) if cache_dir is not None else movielens.default_cache_dir()
    return cache / name / f"{name}.zip"


def _source(name: str, data_dir, cache_dir, download_timeout: float, which: str) -> tuple[bytes, str]:
    """``(bytes, where)`` of the archive's ratings or movies file (``which``)."""
    archive = ARCHIVES[name]
    file = getattr(archive, f"{which}_file")
    if data_dir is not None:
        path = Path(data_dir) / file
        if not path.is_file():
            raise DataError(f"{path}: no such file (expected {name}'s {file})")
        return path.read_bytes(), str(path)
    cached = cached_archive(name, cache_dir)
    if not cached.exists():
        try:
            download_archive(archive, cached, timeout=download_timeout)
        except OSError as err:
            raise DataError(
                f"{name} is not available: no --data_dir, nothing cached at {cached}, and the download "
                f"from {archive.url} failed ({err})"
            ) from None
        logger.info("{}: fetched {}; cached at {}", name, archive.url, cached)
    check_archive(cached, archive)
    member = f"{archive.folder}/{file}"
    return movielens.zip_member(cached, member), f"{cached}!{member}"


def load_dataset(name: str, *, data_dir=None, cache_dir=None, download_timeout: float = 60.0) -> Ratings:
    """The ratings of MovieLens ``name`` (one of ``DATASETS``), from the first source that has them."""
    if name not in ARCHIVES:
        raise DataError(f"--dataset: expected one of {', '.join(DATASETS)}, got {name!r}")
    if name == "ml-100k":
        return movielens.load_movielens(data_dir=data_dir, cache_dir=cache_dir)
    data, where = _source(name, data_dir, cache_dir, download_timeout, "ratings")
    ratings = parse_ratings_file(data, ARCHIVES[name], path=where)
    logger.info("{}: read {} ratings from {}", name, len(ratings), where)
    return ratings


def load_titles(name: str, *, data_dir=None, cache_dir=None, download_timeout: float = 60.0) -> Movies:
    """The titles of MovieLens ``name``'s movies, from the same sources as its ratings."""
    if name == "ml-100k":
        return movielens.load_movies(data_dir=data_dir, cache_dir=cache_dir)
    data, where = _source(name, data_dir, cache_dir, download_timeout, "movies")
    return parse_movies_file(data, ARCHIVES[name], path=where)
