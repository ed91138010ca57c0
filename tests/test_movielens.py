"""The loader on small GroupLens-format files written here: parsing, validation, cache, sources."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ltr_common import DataError, ExpectedCounts, files, load_movielens, read_udata
from ltr_common import movielens as ml

ANY = ExpectedCounts(rows=None, users=None, items=None)
ROWS = [
    (196, 242, 3, 881250949),
    (186, 302, 3, 891717742),
    (22, 377, 1, 878887116),
    (196, 51, 2, 880606923),
    (22, 242, 5, 886397596),
]


def udata_text(rows=ROWS) -> str:
    return "".join("\t".join(map(str, r)) + "\n" for r in rows)


def write_folder(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "ml"
    folder.mkdir()
    (folder / "u.data").write_text(text)
    return folder


def test_parse_and_remap_ids(tmp_path):
    ratings = read_udata(write_folder(tmp_path, udata_text()) / "u.data", expected=ANY)
    assert len(ratings) == 5
    np.testing.assert_array_equal(ratings.user_raw_ids, [22, 186, 196])
    np.testing.assert_array_equal(ratings.item_raw_ids, [51, 242, 302, 377])
    # The mapping round-trips to the raw ids, row by row.
    np.testing.assert_array_equal(ratings.user_raw_ids[ratings.users], [r[0] for r in ROWS])
    np.testing.assert_array_equal(ratings.item_raw_ids[ratings.items], [r[1] for r in ROWS])
    np.testing.assert_array_equal(ratings.ratings, [3, 3, 1, 2, 5])
    np.testing.assert_array_equal(ratings.timestamps, [r[3] for r in ROWS])


@pytest.mark.parametrize(
    "text",
    [
        udata_text(),
        udata_text().replace("\n", "\r\n"),
        udata_text()[:-1],  # no newline after the last line
        udata_text().replace("196", "0196"),  # leading zeros
    ],
    ids=["lf", "crlf", "no-final-newline", "leading-zeros"],
)
def test_plain_files_read_in_one_pass_as_line_by_line(text):
    assert ml._PLAIN_ROWS.fullmatch(text)  # the one-pass reader takes it
    rows = ml.parse_ratings(text, path="u.data")
    np.testing.assert_array_equal(rows, ROWS)
    # The same text with one line the one-pass reader does not take (a space) is read line
    # by line, and refused there with its line number.
    spaced = text.replace("186", " 186")
    assert not ml._PLAIN_ROWS.fullmatch(spaced)
    with pytest.raises(DataError, match=r"u\.data: line 2: user ' 186' is not an integer"):
        ml.parse_ratings(spaced, path="u.data")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        (udata_text() + "1\t2\t3\n", "line 6: expected 4 tab-separated fields"),
        (udata_text() + "7\t8\t3\t88", None),  # truncated, but still 4 fields: caught by counts
        (udata_text() + "7\t8\t3\t881250949\t5\n", "line 6: expected 4 tab-separated fields"),
        (udata_text() + "7\t8\tthree\t881250949\n", "line 6: rating 'three' is not an integer"),
        (udata_text() + "7\t8\t6\t881250949\n", "line 6: rating 6 is outside 1..5"),
        (udata_text() + "7\t8\t0\t881250949\n", "line 6: rating 0 is outside 1..5"),
        (udata_text() + "7\t8\t3.5\t881250949\n", "line 6: rating '3.5' is not an integer"),
        # Only ASCII digits: nothing Python's int() or float() would also read is a rating.
        (udata_text() + "7\t8\t4.9999999999999999\t881250949\n", "rating '4.9999999999999999' is not"),
        (udata_text() + "7\t8\t3.0\t881250949\n", "line 6: rating '3.0' is not an integer"),
        (udata_text() + "7\t8\t\u0663\t881250949\n", "line 6: rating '\u0663' is not an integer"),
        (udata_text() + "7\t8\t 3 \t881250949\n", "line 6: rating ' 3 ' is not an integer"),
        (udata_text() + "7\t8\t+3\t881250949\n", "line 6: rating '+3' is not an integer"),
        (udata_text() + "1_96\t8\t3\t881250949\n", "line 6: user '1_96' is not an integer"),
        (udata_text() + "7\t8\t3\t8.812509e+08\n", "line 6: timestamp '8.812509e+08' is not an integer"),
        (udata_text() + "7\t8\t3\t\n", "line 6: timestamp '' is not an integer"),
        (udata_text() + "7\t8\t3\t99999999999999999999\n", "timestamp '99999999999999999999' is too large"),
        (udata_text() + "7\t8\t3\t" + "9" * 5000 + "\n", "is too large"),
        (udata_text() + "7\t8\t3\t8812.5\n", "line 6: timestamp '8812.5' is not an integer"),
        (udata_text() + "7\t-8\t3\t881250949\n", "line 6: item -8 is negative"),
        ("user\titem\trating\ttimestamp\n" + udata_text(), "line 1: user 'user' is not an integer"),
        (udata_text() + "196\t242\t4\t891250949\n", "lines 1 and 6: user 196 rated item 242 twice"),
    ],
)
def test_bad_udata_is_named(tmp_path, text, message):
    path = write_folder(tmp_path, text) / "u.data"
    expected = ExpectedCounts(rows=5, users=3, items=4) if message is None else ANY
    with pytest.raises(DataError) as err:
        read_udata(path, expected=expected)
    assert str(path) in str(err.value)
    assert (message or "expected 5 rows, found 6") in str(err.value)
    if "is not an integer" in (message or ""):
        assert str(err.value).endswith("(ASCII digits 0-9 only)")


def test_counts_must_match(tmp_path):
    path = write_folder(tmp_path, udata_text()) / "u.data"
    with pytest.raises(DataError, match=r"expected 943 users, found 3"):
        read_udata(path, expected=ExpectedCounts(rows=5, users=943, items=None))
    with pytest.raises(DataError, match=r"u.data: expected 100000 rows, found 5"):
        read_udata(path)  # ML-100K counts by default


def test_missing_and_binary_files(tmp_path):
    with pytest.raises(DataError, match=r"no such file"):
        read_udata(tmp_path / "u.data")
    (tmp_path / "u.data").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match=r"not a text file"):
        read_udata(tmp_path / "u.data")


def test_data_dir_wins_and_has_no_silent_fallback(tmp_path, monkeypatch):
    folder = write_folder(tmp_path, udata_text())
    monkeypatch.setattr(ml, "fetch_grouplens", _must_not_fetch)
    monkeypatch.setattr(ml, "fetch_recbole", _must_not_fetch)
    ratings = load_movielens(data_dir=folder, cache_dir=tmp_path / "cache", expected=ANY)
    assert ratings.source == f"local folder {folder}"
    monkeypatch.setenv(ml.DATA_DIR_ENV, str(folder))
    assert load_movielens(cache_dir=tmp_path / "cache", expected=ANY).source == f"local folder {folder}"
    (folder / "u.data").write_text("broken\n")
    with pytest.raises(DataError, match=r"u.data: line 1"):
        load_movielens(cache_dir=tmp_path / "cache", expected=ANY)
    assert not (tmp_path / "cache").exists()


def test_cache_is_read_before_any_fetch(tmp_path, monkeypatch):
    monkeypatch.delenv(ml.DATA_DIR_ENV, raising=False)
    cached = tmp_path / "cache" / "ml-100k" / "u.data"
    cached.parent.mkdir(parents=True)
    cached.write_text(udata_text())
    monkeypatch.setattr(ml, "fetch_grouplens", _must_not_fetch)
    monkeypatch.setattr(ml, "fetch_recbole", _must_not_fetch)
    assert load_movielens(cache_dir=tmp_path / "cache", expected=ANY).source == f"cache {cached}"
    monkeypatch.setenv(ml.CACHE_DIR_ENV, str(tmp_path / "cache"))
    assert load_movielens(expected=ANY).source == f"cache {cached}"


def test_fetch_order_falls_back_and_caches(tmp_path, monkeypatch):
    monkeypatch.delenv(ml.DATA_DIR_ENV, raising=False)
    calls = []

    def offline(**kwargs):
        calls.append("grouplens")
        raise OSError("no network")

    def wheel(**kwargs):
        calls.append("recbole")
        return np.array(ROWS, dtype=np.int64), "test wheel"

    monkeypatch.setattr(ml, "fetch_grouplens", offline)
    monkeypatch.setattr(ml, "fetch_recbole", wheel)
    ratings = load_movielens(cache_dir=tmp_path, expected=ANY)
    assert calls == ["grouplens", "recbole"]
    assert ratings.source == "test wheel"
    assert (tmp_path / "ml-100k" / "u.data").read_text() == udata_text()
    assert list((tmp_path / "ml-100k").iterdir()) == [tmp_path / "ml-100k" / "u.data"]


def test_every_source_failing_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv(ml.DATA_DIR_ENV, raising=False)

    def offline(**kwargs):
        raise OSError("no network here")

    monkeypatch.setattr(ml, "fetch_grouplens", offline)
    monkeypatch.setattr(ml, "fetch_recbole", offline)
    with pytest.raises(
        DataError,
        match=r"every fetch failed: GroupLens \(https://files.grouplens.org/datasets/movielens/ml-100k"
        r".zip\): no network here \| PyPI's recbole==1.2.1 wheel: no network here. Download https://"
        r"files.grouplens.org/datasets/movielens/ml-100k.zip where the network reaches it, unzip it, "
        r"and give its ml-100k folder with JAX_LTR_DATA_DIR, which every script reads \(or train.py's "
        r"--data_dir\)$",
    ):
        load_movielens(cache_dir=tmp_path, expected=ANY)
    assert not (tmp_path / "ml-100k" / "u.data").exists()


def test_fetched_data_that_fails_validation_is_not_cached(tmp_path, monkeypatch):
    monkeypatch.delenv(ml.DATA_DIR_ENV, raising=False)
    monkeypatch.setattr(ml, "fetch_grouplens", lambda **kw: (np.array(ROWS, dtype=np.int64), "short zip"))
    with pytest.raises(DataError, match=r"short zip: expected 100000 rows, found 5"):
        load_movielens(cache_dir=tmp_path)
    assert not (tmp_path / "ml-100k" / "u.data").exists()


def test_interrupted_cache_write_leaves_nothing_trusted(tmp_path, monkeypatch):
    target = tmp_path / "ml-100k" / "u.data"

    def crash(fd):
        raise KeyboardInterrupt  # as if the process were stopped mid-write

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write_text(target, udata_text())
    assert list(target.parent.iterdir()) == []  # neither u.data nor a temp file


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "u.data"
    files.atomic_write_text(target, "old\n")
    files.atomic_write_text(target, udata_text())
    assert target.read_text() == udata_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["u.data"]


def test_atomic_write_gives_the_umask_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        files.atomic_write_text(tmp_path / "metrics.json", "{}\n")
    finally:
        os.umask(old)
    assert (tmp_path / "metrics.json").stat().st_mode & 0o777 == 0o644


def make_wheel(path: Path, member_text: str | None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("recbole/__init__.py", "")
        if member_text is not None:
            archive.writestr(ml.RECBOLE_MEMBER, member_text)
    return path


def test_recbole_wheel_member_is_parsed(tmp_path):
    header = "\t".join(ml.RECBOLE_HEADER) + "\n"
    body = udata_text()  # recbole 1.2.1's member writes integers, under a header that says float
    rows = ml.read_recbole_wheel(make_wheel(tmp_path / "r.whl", header + body))
    np.testing.assert_array_equal(rows, np.array(ROWS))


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (None, "has no member recbole/dataset_example/ml-100k/ml-100k.inter"),
        (udata_text(), "line 1: expected the header"),
        (
            "\t".join(ml.RECBOLE_HEADER) + "\n" + "\t".join(ml.RECBOLE_HEADER) + "\n" + udata_text(),
            "line 2: user 'user_id:token' is not an integer",
        ),
    ],
)
def test_bad_recbole_wheel_is_named(tmp_path, member, message):
    wheel = make_wheel(tmp_path / "r.whl", member)
    with pytest.raises(DataError, match=message) as err:
        ml.read_recbole_wheel(wheel)
    assert str(wheel) in str(err.value)


def test_corrupt_wheel_is_named(tmp_path):
    wheel = make_wheel(tmp_path / "r.whl", udata_text())
    wheel.write_bytes(wheel.read_bytes()[:40])  # truncated zip
    with pytest.raises(DataError, match=r"r.whl: not a zip file"):
        ml.read_recbole_wheel(wheel)


def _must_not_fetch(**kwargs):
    raise AssertionError("no fetch expected when a local source exists")


def test_movie_titles_in_both_formats(tmp_path):
    from ltr_common.movielens import Movies, load_movies, parse_movies, parse_uitem

    genres = ["0"] * 19
    genres[3], genres[5] = "1", "1"  # Animation, Comedy
    uitem = "1|Toy Story (1995)|01-Jan-1995||http://x|" + "|".join(genres) + "\n"
    movies = parse_uitem(uitem, path="u.item")
    assert movies.describe(1) == "Toy Story (1995) [Animation, Comedy]" and movies.describe(2) == "item 2"
    header = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
    recbole = header + "1\tToy Story\t1995\tAnimation Comedy\n"
    assert parse_movies(recbole, path="x").describe(1) == movies.describe(1)
    with pytest.raises(DataError, match=r"u.item: line 1: expected 24 \|-separated fields, found 3"):
        parse_uitem("1|a|b\n", path="u.item")
    with pytest.raises(DataError, match="x: line 1: expected the header"):
        parse_movies("id\ttitle\n", path="x")
    (tmp_path / "u.item").write_text(uitem, encoding="latin-1")
    assert isinstance(load_movies(data_dir=tmp_path, expected=ANY), Movies)
    with pytest.raises(DataError, match=r"u\.item: expected 1682 items, found 1"):
        load_movies(data_dir=tmp_path)  # checked against MovieLens 100K's counts by default
    with pytest.raises(DataError, match=r"u\.item: no such file"):
        load_movies(data_dir=tmp_path / "missing")


def test_cached_titles_are_validated_like_the_ratings(tmp_path, monkeypatch):
    from ltr_common.movielens import load_movies

    monkeypatch.delenv(ml.DATA_DIR_ENV, raising=False)
    header = "\t".join(ml.RECBOLE_ITEMS_HEADER) + "\n"
    rows = "".join(f"{i}\tMovie {i}\t1995\tDrama\n" for i in range(1, 475))  # 474 of 1,682
    cached = tmp_path / "ml-100k" / ml.MOVIES_FILE
    cached.parent.mkdir()
    cached.write_text(header + rows)
    with pytest.raises(DataError) as err:
        load_movies(cache_dir=tmp_path)
    assert str(err.value).startswith(f"{cached}: expected 1682 items, found 474")
    assert load_movies(cache_dir=tmp_path, expected=ExpectedCounts(None, None, 474)).describe(7) == (
        "Movie 7 (1995) [Drama]"
    )
    cached.write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(DataError, match=r"movies\.tsv: not a text file"):
        load_movies(cache_dir=tmp_path)


def test_titles_come_from_the_same_ladder_of_sources(tmp_path, monkeypatch):
    from ltr_common.movielens import load_movies, parse_movies

    monkeypatch.delenv(ml.DATA_DIR_ENV, raising=False)
    calls = []
    header = "\t".join(ml.RECBOLE_ITEMS_HEADER) + "\n"
    wheel_titles = parse_movies(header + "1\tToy Story\t1995\tAnimation Comedy\n", path="test wheel")

    def offline(**kwargs):
        calls.append("grouplens")
        raise OSError("no network")

    def wheel(**kwargs):
        calls.append("recbole")
        return wheel_titles, "test wheel"

    monkeypatch.setattr(ml, "fetch_grouplens_titles", offline)
    monkeypatch.setattr(ml, "fetch_recbole_titles", wheel)
    with pytest.raises(DataError, match=r"test wheel: expected 1682 items, found 1"):
        load_movies(cache_dir=tmp_path)  # validated before it is cached
    assert not (tmp_path / "ml-100k" / ml.MOVIES_FILE).exists()
    movies = load_movies(cache_dir=tmp_path, expected=ANY)
    assert calls == ["grouplens", "recbole"] * 2
    assert movies.describe(1) == "Toy Story (1995) [Animation, Comedy]"
    assert (tmp_path / "ml-100k" / ml.MOVIES_FILE).read_text() == ml.format_movies(wheel_titles)
    monkeypatch.setattr(ml, "fetch_recbole_titles", _must_not_fetch)
    assert load_movies(cache_dir=tmp_path, expected=ANY).describe(1) == movies.describe(1)  # cached
    monkeypatch.setattr(ml, "fetch_recbole_titles", offline)
    with pytest.raises(
        DataError, match=r"titles are not available: .* every fetch failed: GroupLens .*: no network"
    ):
        load_movies(cache_dir=tmp_path / "empty", expected=ANY)
