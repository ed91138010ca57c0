"""The MovieLens family by name (``ltr_common.datasets``), offline: small archives written here
in each release's exact format, pinned as the real ones are, fetched from a file:// mirror."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ltr_common import DataError, ExpectedCounts, TrainConfig
from ltr_common import datasets as ds
from ltr_common.data import load_movies_for, load_ratings

# Four users' ratings: (user, item, rating, timestamp); the third user rates twice at one time.
ROWS = [(1, 10, 4.0, 978300760), (1, 20, 3.0, 978302109), (2, 10, 5.0, 978301968), (3, 30, 1.0, 978300275),
        (3, 20, 2.0, 978300275), (4, 10, 3.0, 978824291)]  # fmt: skip
HALF_STARS = [(u, i, r - 0.5, t) for u, i, r, t in ROWS]
COUNTS = ExpectedCounts(rows=6, users=4, items=3)
TITLES = [
    (10, "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001)", "Comedy|Romance"),
    (20, "Toy Story (1995)", "Animation|Children's|Comedy"),
    (30, "Untitled", "(no genres listed)"),
]


def _files(release: str) -> dict[str, bytes]:
    """The ratings and movies files of a small archive in ``release``'s format."""
    if release == "ml-1m":
        ratings = "".join(f"{u}::{i}::{int(r)}::{t}\n" for u, i, r, t in ROWS)
        movies = "".join(f"{i}::{title}::{genres}\n" for i, title, genres in TITLES)
        return {"ratings.dat": ratings.encode(), "movies.dat": movies.encode("latin-1")}
    if release == "ml-10m":
        ratings = "".join(f"{u}::{i}::{r:g}::{t}\n" for u, i, r, t in HALF_STARS)
        movies = "".join(f"{i}::{title}::{genres}\n" for i, title, genres in TITLES)
        return {"ratings.dat": ratings.encode(), "movies.dat": movies.encode("utf-8")}
    ratings = "userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{i},{r:g},{t}\n" for u, i, r, t in HALF_STARS
    )
    movies = "movieId,title,genres\n" + "".join(
        f'{i},"{title}",{genres}\n' if "," in title else f"{i},{title},{genres}\n"
        for i, title, genres in TITLES
    )
    return {"ratings.csv": ratings.encode(), "movies.csv": movies.encode("utf-8")}


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A GroupLens mirror under tmp_path holding a small archive of each release, pinned."""
    folder = tmp_path / "grouplens"
    folder.mkdir()
    pins = {}
    for name in ("ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m"):
        archive = ds.ARCHIVES[name]
        path = folder / f"{name}.zip"
        with zipfile.ZipFile(path, "w") as out:
            for file, data in _files(name).items():
                out.writestr(f"{archive.folder}/{file}", data)
        data = path.read_bytes()
        pins[name] = dataclasses.replace(
            archive, size=len(data), sha256=hashlib.sha256(data).hexdigest(), counts=COUNTS
        )
    monkeypatch.setattr(ds, "ARCHIVES", {**ds.ARCHIVES, **pins})
    monkeypatch.setattr(ds, "GROUPLENS", folder.as_uri() + "/")
    return folder


@pytest.mark.parametrize("name", ["ml-1m", "ml-10m", "ml-20m", "ml-25m", "ml-32m"])
def test_each_release_is_fetched_checked_cached_and_parsed(tmp_path, mirror, name):
    cache = tmp_path / "cache"
    ratings = ds.load_dataset(name, cache_dir=cache)
    expected = ROWS if name == "ml-1m" else HALF_STARS
    assert ratings.user_raw_ids.tolist() == [1, 2, 3, 4] and ratings.item_raw_ids.tolist() == [10, 20, 30]
    np.testing.assert_array_equal(ratings.ratings, [r for _, _, r, _ in expected])
    np.testing.assert_array_equal(ratings.timestamps, [t for *_, t in expected])
    assert (cache / name / f"{name}.zip").is_file()
    assert [p.name for p in (cache / name).iterdir()] == [f"{name}.zip"]  # no temporary file left
    (mirror / f"{name}.zip").unlink()  # from now on offline: the cache serves
    again = ds.load_dataset(name, cache_dir=cache)
    np.testing.assert_array_equal(again.ratings, ratings.ratings)
    movies = ds.load_titles(name, cache_dir=cache)
    assert movies.describe(10) == "Amélie (Fabuleux destin d'Amélie Poulain, Le) (2001) [Comedy, Romance]"
    assert movies.describe(30) == "Untitled []" and movies.describe(99) == "item 99"
    config = TrainConfig(dataset=name, cache_dir=str(cache), model="dot")
    assert len(load_ratings(config)) == 6 and load_movies_for(config).describe(20).startswith(
        "Toy Story (1995)"
    )


def test_an_unpacked_folder_is_read_and_checked_against_the_counts(tmp_path, mirror):
    folder = tmp_path / "ml-1m"
    folder.mkdir()
    for file, data in _files("ml-1m").items():
        (folder / file).write_bytes(data)
    assert len(ds.load_dataset("ml-1m", data_dir=folder)) == 6
    (folder / "ratings.dat").write_bytes(b"".join(_files("ml-1m")["ratings.dat"].splitlines(True)[:-1]))
    with pytest.raises(DataError, match=r"ratings.dat: expected 6 rows, found 5 \(the file is truncated"):
        ds.load_dataset("ml-1m", data_dir=folder)
    (folder / "ratings.dat").write_bytes(b"1::10::4::978300760\n1::10::x::978300761\n")
    with pytest.raises(DataError, match=r"ratings.dat: line 2: rating 'x' is not a finite number"):
        ds.load_dataset("ml-1m", data_dir=folder)
    with pytest.raises(DataError, match=r"no such file \(expected ml-20m's ratings.csv\)"):
        ds.load_dataset("ml-20m", data_dir=folder)


def test_an_archive_that_is_not_the_pinned_one_is_never_cached_nor_trusted(tmp_path, mirror):
    cache = tmp_path / "cache"
    path = mirror / "ml-20m.zip"
    data = bytearray(path.read_bytes())
    data[-30] ^= 1  # one bit in the zip's directory: the same size, another SHA-256
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"ml-20m.zip's is [0-9a-f]{64}: delete it and fetch again"):
        ds.load_dataset("ml-20m", cache_dir=cache)
    assert not any((cache / "ml-20m").iterdir())  # neither the file nor a temporary one
    cached = cache / "ml-20m" / "ml-20m.zip"
    cached.write_bytes(b"truncated")
    with pytest.raises(DataError, match=r"ml-20m.zip: 9 bytes, but ml-20m.zip has \d+: delete it"):
        ds.load_dataset("ml-20m", cache_dir=cache)


def test_offline_without_a_copy_is_one_line_naming_every_source(tmp_path, mirror):
    (mirror / "ml-25m.zip").unlink()
    with pytest.raises(DataError) as err:
        ds.load_dataset("ml-25m", cache_dir=tmp_path / "cache")
    message = str(err.value)
    assert (
        message.startswith("ml-25m is not available: no --data_dir, nothing cached at")
        and "\n" not in message
    )
    assert "ml-25m.zip failed" in message


def test_the_pins_are_the_published_archives():
    # sizes and SHA-256 as GroupLens serves them (and TensorFlow Datasets pins those it has);
    # counts: ratings, users, and items that were rated
    assert {
        name: (a.size, a.counts.rows, a.counts.users, a.counts.items) for name, a in ds.ARCHIVES.items()
    } == {
        "ml-100k": (4_924_029, 100_000, 943, 1_682),
        "ml-1m": (5_917_549, 1_000_209, 6_040, 3_706),
        "ml-10m": (65_566_137, 10_000_054, 69_878, 10_677),
        "ml-20m": (198_702_078, 20_000_263, 138_493, 26_744),
        "ml-25m": (261_978_986, 25_000_095, 162_541, 59_047),
        "ml-32m": (238_950_008, 32_000_204, 200_948, 84_432),
    }
    assert all(len(a.sha256) == 64 and int(a.sha256, 16) for a in ds.ARCHIVES.values())


def test_the_ml_100k_ratings_are_pinned_by_content_whatever_the_source(tmp_path, movielens):
    from ltr_common.movielens import format_udata, read_udata

    rows = np.stack(
        [movielens.user_raw_ids[movielens.users], movielens.item_raw_ids[movielens.items],
         movielens.ratings.astype(np.int64), movielens.timestamps], 1
    )  # fmt: skip
    rows[0, 2] = 1 if rows[0, 2] != 1 else 2  # one rating changed: the counts still match
    (tmp_path / "u.data").write_text(format_udata(rows))
    with pytest.raises(DataError, match="these are not MovieLens 100K's ratings"):
        read_udata(tmp_path / "u.data")


def test_titles_split_from_years(tmp_path):
    assert ds._split_title("City of Lost Children, The (Cité des enfants perdus, La) (1995)") == (
        "City of Lost Children, The (Cité des enfants perdus, La)",
        "1995",
    )
    assert ds._split_title("Babylon 5") == ("Babylon 5", "")
    assert ds._split_title("Fawlty Towers (1975-1979)") == ("Fawlty Towers", "1975")
    assert Path(ds.cached_archive("ml-1m", tmp_path)).name == "ml-1m.zip"
