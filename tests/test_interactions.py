"""Your own interaction tables (``ltr_common.interactions``): formats, columns, ids, implicit
feedback, data without times, and every way a table can be wrong, named by its line."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from ltr_common import ConfigError, DataError, TrainConfig, temporal_split
from ltr_common.data import load_ratings, split_ratings
from ltr_common.interactions import TableOptions, read_interactions
from ltr_common.movielens import format_udata, read_udata
from tests._logs import logged
from tests._small import small_data


def _table(ratings) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "userId": ratings.user_raw_ids[ratings.users],
            "movieId": ratings.item_raw_ids[ratings.items],
            "rating": ratings.ratings.astype(int),
            "timestamp": ratings.timestamps,
        }
    )


def _same_split(a, b) -> None:
    for part in ("train", "validation", "test", "older"):
        x, y = getattr(a, part), getattr(b, part)
        for field in ("users", "offsets", "items", "labels", "timestamps", "rows"):
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field), err_msg=f"{part}.{field}")


def test_movielens_as_a_header_csv_gives_the_built_in_loaders_split(tmp_path, movielens):
    path = tmp_path / "ml.csv"
    _table(movielens).to_csv(path, index=False)
    table = read_interactions(path)
    for field in ("users", "items", "ratings", "timestamps", "user_raw_ids", "item_raw_ids"):
        np.testing.assert_array_equal(getattr(table, field), getattr(movielens, field), err_msg=field)
    assert not table.implicit and table.timed
    _same_split(temporal_split(table), temporal_split(movielens))


@pytest.mark.parametrize("delimiter", ["\t", ",", ";", "|"])
def test_the_delimiter_and_usual_names_are_found(tmp_path, delimiter):
    ratings, _ = small_data()
    frame = _table(ratings).rename(columns={"userId": "User ID", "movieId": "item_id", "timestamp": "time"})
    path = tmp_path / "t.txt"
    frame.to_csv(path, sep=delimiter, index=False)
    table = read_interactions(path)
    np.testing.assert_array_equal(table.items, ratings.items)
    np.testing.assert_array_equal(table.timestamps, ratings.timestamps)


def test_a_file_without_a_header_is_read_by_position(tmp_path):
    ratings, _ = small_data()
    rows = np.stack([ratings.user_raw_ids[ratings.users], ratings.item_raw_ids[ratings.items],
                     ratings.ratings.astype(int), ratings.timestamps], 1)  # fmt: skip
    (tmp_path / "u.tsv").write_text(format_udata(rows))
    table = read_interactions(tmp_path / "u.tsv")
    np.testing.assert_array_equal(table.ratings, ratings.ratings)
    (tmp_path / "pairs.csv").write_text("".join(f"{u},{i}\n" for u, i in rows[:, :2].tolist()))
    pairs = read_interactions(tmp_path / "pairs.csv")
    assert pairs.implicit and not pairs.timed and (pairs.ratings == 1).all()


def test_columns_named_by_flags_and_string_ids(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(
        "who,what,stars,when,other\nalice,x1,4.5,2020-01-02,a\nbob,x2,1,2020-01-01,b\nalice,7,2,2020-01-03T10:00:00,c\n"
    )
    options = TableOptions(user="who", item="what", rating="stars", timestamp="when")
    table = read_interactions(path, options)
    assert table.user_raw_ids.tolist() == ["alice", "bob"] and table.item_raw_ids.tolist() == [
        "7",
        "x1",
        "x2",
    ]
    np.testing.assert_array_equal(table.ratings, [4.5, 1, 2])
    assert table.timestamps[0] == pd.Timestamp("2020-01-02", tz="UTC").timestamp()
    with pytest.raises(DataError, match=r"--item_column 'item' is not a column"):
        read_interactions(path, TableOptions(user="who", item="item"))


def test_a_parquet_table_with_implicit_feedback(tmp_path):
    ratings, _ = small_data()
    frame = _table(ratings).drop(columns=["rating"])
    frame["userId"] = "u" + frame["userId"].astype(str)
    frame.to_parquet(tmp_path / "t.parquet")
    table = read_interactions(tmp_path / "t.parquet")
    assert table.implicit and (table.ratings == 1).all() and table.user_raw_ids[0] == "u1"
    np.testing.assert_array_equal(table.timestamps, ratings.timestamps)


def test_implicit_data_is_refused_by_rerank_with_one_line(tmp_path):
    ratings, _ = small_data()
    _table(ratings).drop(columns=["rating"]).to_parquet(tmp_path / "t.parquet")
    config = TrainConfig(data=str(tmp_path / "t.parquet"), task="rerank", model="dot")
    with pytest.raises(ConfigError, match=r"^--task rerank: table .* has no ratings \(implicit feedback\)"):
        load_ratings(config)
    with pytest.raises(ConfigError, match="--implicit: expected false with --task rerank"):
        TrainConfig(task="rerank", implicit=True)
    explicit = load_ratings(TrainConfig(implicit=True))  # MovieLens read as implicit feedback
    assert explicit.implicit and (explicit.ratings == 1).all()


def test_without_times_the_split_holds_out_random_ratings_the_same_every_run(tmp_path):
    ratings, _ = small_data()
    _table(ratings).drop(columns=["timestamp"]).to_csv(tmp_path / "t.csv", index=False)
    config = TrainConfig(data=str(tmp_path / "t.csv"), model="dot")
    table = load_ratings(config)
    assert not table.timed
    split, again = split_ratings(table, config), split_ratings(load_ratings(config), config)
    _same_split(split, again)
    assert (split.test.lengths == 10).all() and (split.validation.lengths == 10).all()
    # Not the newest: the held-out ratings are spread over each user's time order.
    timed = temporal_split(ratings)
    newest = set(zip(np.repeat(timed.test.users, 10).tolist(), timed.test.items.tolist(), strict=True))
    held = set(zip(np.repeat(split.test.users, 10).tolist(), split.test.items.tolist(), strict=True))
    assert len(newest & held) < len(held) / 2


GOOD = "user,item,rating,timestamp\n1,10,4,100\n1,11,3,101\n2,10,5,102\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("user,item,rating,timestamp\n", "no interactions"),
        (GOOD + "2,11,abc,103\n", "line 5: rating 'abc' is not a finite number"),
        (
            GOOD + "2,11,,103\n",
            "line 5: the rating is missing \\(an empty field or a null, or a line with fewer",
        ),
        (GOOD + "2,11,0,103\n", r"line 5: rating 0 is outside \(0, 64\]"),
        (GOOD + "2,11,65,103\n", r"line 5: rating 65 is outside \(0, 64\]"),
        (GOOD + "2,11,inf,103\n", "line 5: rating 'inf' is not a finite number"),
        (GOOD + ",11,4,103\n", "line 5: the user id is empty"),
        (
            GOOD + "2,11,4,yesterday\n",
            "line 5: timestamp 'yesterday' is not an integer, as unix seconds must be \\(the first "
            "row's, '100', is a number; ISO dates are read where every timestamp is one\\)",
        ),
        (GOOD + "2,11,4,103.5\n", "line 5: timestamp '103.5' is not an integer"),
        (GOOD + "1,10,2,200\n", "lines 2 and 5: user 1 rated item 10 twice"),
        (GOOD + "2,11,4\n", "line 5: the timestamp is missing"),  # a short line: padded, refused
        ("user,item,time\n1,2,\n1,3,2020-01-01\n", "line 2: the timestamp is missing"),
        ("user,item,time\n1,2,2020-01-01\n1,3, \n", "line 3: the timestamp is missing"),
        (
            "a,b,c\nx,y,z\n",
            r"line 1 \['a', 'b', 'c'\] is neither a header naming the user and item columns nor a row of "
            "numeric ids; start the file with a header line",
        ),
        ("user;item;rating\n1;2;3\n", None),  # found: ';'
        ("user,item,rating,rating\n1,10,4,3\n", "line 1 names the column 'rating' twice"),
        ("user,item\n1,10\n1,11\nuser,item\n2,10\n", "line 4 repeats the header line"),
        ("user,item,rating\n1,10,4\n\n\n2,11,abc\n", "line 5: rating 'abc' is not a finite number"),
        ("user,item,rating\n1,10,4\n\n1,10,3\n", "lines 2 and 4: user 1 rated item 10 twice"),
        # a quoted field that spans lines: the lines after it keep their numbers
        ('user,item,rating\n"a\nb",10,4\n1,10,4\n2,11,abc\n', "line 5: rating 'abc' is not a finite number"),
        ('user,item,rating\n"a\r\nb",10,4\n\n1,10,4\n1,10,3\n', "lines 5 and 6: user 1 rated item 10 twice"),
        ('user,item\n"1",10\nuser,item\n', "line 3 repeats the header line"),
        # a carriage return alone inside quotes, in a file of line feeds; and in one of CRLF
        ('user,item,rating\n"a\rb",10,4\n1,10,4\n2,11,abc\n', "line 5: rating 'abc' is not a finite"),
        ('user,item,rating\r\n"a\rb",10,4\r\n2,11,abc\r\n', "line 4: rating 'abc' is not a finite"),
        ("user,item,rating\n1,10,1e-300\n", r"line 2: rating 1e-300 is outside \(0, 64\] in float32"),
        ("user,item,user_id\n1,2,3\n", r"columns \['user', 'user_id'\] could each be the user"),
        ("1 2 3\n", "line 1: no delimiter"),
        ("user,item\n1,2,3\n", "a line has more fields than line 1's 2"),
        ("user,item\n1,2\n1,2,3\n", "Expected 2 fields in line 3, saw 3"),
        (
            "time,user,item\n2020-01-01,1,2\n2020-13-01,1,3\n",
            "line 3: timestamp '2020-13-01' is neither unix seconds nor an ISO date",
        ),
    ],
)
def test_bad_tables_are_named_by_file_and_line(tmp_path, text, message):
    path = tmp_path / "t.csv"
    path.write_text(text)
    if message is None:  # a good table beside the bad ones
        assert len(read_interactions(path).ratings) == 1
        return
    with pytest.raises(DataError, match=message) as err:
        read_interactions(path)
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)


def test_a_bad_parquet_file_and_a_bad_parquet_row(tmp_path):
    (tmp_path / "bad.parquet").write_bytes(b"PAR1" + b"\0" * 20)
    with pytest.raises(DataError, match="not a readable Parquet file"):
        read_interactions(tmp_path / "bad.parquet")
    pd.DataFrame({"user": [1, None], "item": [2, 3]}).to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DataError, match="row 2: the user id is missing"):
        read_interactions(tmp_path / "t.parquet")


def test_repeated_interactions_keep_the_first_or_last_when_asked(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("user,item,rating,timestamp\n1,10,4,100\n1,11,3,101\n1,10,2,50\n2,10,5,102\n")
    first = read_interactions(path, TableOptions(duplicates="first"))
    last = read_interactions(path, TableOptions(duplicates="last"))
    np.testing.assert_array_equal(first.ratings, [3, 2, 5])  # (1, 10) at time 50 is the first
    np.testing.assert_array_equal(last.ratings, [4, 3, 5])
    with pytest.raises(DataError, match="lines 2 and 4: user 1 rated item 10 twice"):
        read_interactions(path)


def test_data_flags_need_data_and_one_source():
    with pytest.raises(ConfigError, match="--user_column: expected a value only with --data"):
        TrainConfig(user_column="u")
    with pytest.raises(ConfigError, match="--dataset: expected no data set with --data"):
        TrainConfig(data="x.csv", dataset="ml-1m")
    assert dataclasses.replace(TrainConfig(), dataset="ml-1m").dataset == "ml-1m"


def test_the_u_data_reader_and_the_table_reader_agree_on_u_data(tmp_path):
    ratings, _ = small_data()
    rows = np.stack([ratings.user_raw_ids[ratings.users], ratings.item_raw_ids[ratings.items],
                     ratings.ratings.astype(int), ratings.timestamps], 1)  # fmt: skip
    (tmp_path / "u.data").write_text(format_udata(rows))
    unchecked = dataclasses.replace(
        read_udata.__kwdefaults__["expected"], rows=None, users=None, items=None, sha256=None
    )
    a, b = read_udata(tmp_path / "u.data", expected=unchecked), read_interactions(tmp_path / "u.data")
    for field in ("users", "items", "ratings", "timestamps"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_every_script_runs_on_a_table_of_your_own(tmp_path, capsys):
    """train.py --data on a CSV with string user ids, then recommend, export, baselines (on the
    run's own data) and, for a rerank run of the same table, analyse_run."""
    from tests._scripts import load_script

    ratings, _ = small_data()
    frame = _table(ratings)
    frame["userId"] = "user-" + frame["userId"].astype(str)
    frame.to_csv(tmp_path / "mine.csv", index=False)
    original = (tmp_path / "mine.csv").read_bytes()
    tiny = ["--model", "dot", "--embedding_dim", "8", "--epochs", "1", "--batch_size", "128", "--no-progress"]
    retrieve, rerank = tmp_path / "retrieve", tmp_path / "rerank"
    data = ["--data", str(tmp_path / "mine.csv")]
    assert load_script("train").main([*data, *tiny, "--negatives", "20", "--run-dir", str(retrieve)]) == 0
    assert load_script("train").main([*data, *tiny, "--task", "rerank", "--run-dir", str(rerank)]) == 0
    capsys.readouterr()
    assert load_script("recommend").main([str(retrieve), "--user", "user-7", "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("top 3 unrated items, by score:\n   1. item ") and "\nrated highest (" in out
    with pytest.raises(SystemExit) as exit_info:
        load_script("recommend").main([str(retrieve), "--user", "7"])
    assert exit_info.value.code == 2
    assert "--user: no user with raw id '7' (the 300 ids run from 'user-1' to" in capsys.readouterr().err
    exported = np.load(load_script("export_embeddings").export(retrieve, tmp_path / "out"))
    assert exported["user_raw_ids"][0] == "user-1" and len(exported["item_raw_ids"]) == ratings.num_items
    baselines = load_script("baselines")
    assert (
        baselines.main(["--task", "retrieve", "--run", f"dot={retrieve}", "--baselines", "popularity"]) == 0
    )
    assert "| dot |" in capsys.readouterr().out
    assert load_script("analyse_run").main([str(rerank)]) == 0
    # The run recorded its data (data.json): a table changed since is refused, not read silently.
    frame.loc[0, "rating"] = 1 if frame.loc[0, "rating"] != 1 else 2
    frame.to_csv(tmp_path / "mine.csv", index=False)
    capsys.readouterr()
    assert load_script("recommend").main([str(retrieve), "--user", "user-7"]) == 1
    err = capsys.readouterr().err.strip()
    assert "data.json: the run was trained on other data than table" in err and "sha256" in err
    assert len(err.splitlines()) == 1
    # The table moved: each script says how to give its new place, and reads it there (checked).
    (tmp_path / "mine.csv").unlink()
    (tmp_path / "moved.csv").write_bytes(original)
    assert load_script("recommend").main([str(retrieve), "--user", "user-7"]) == 1
    err = capsys.readouterr().err.strip()
    assert f"mine.csv: no such file: the table the run in {retrieve} was trained on" in err, err
    assert "give its new place with --data" in err and len(err.splitlines()) == 1
    moved = ["--data", str(tmp_path / "moved.csv")]
    assert load_script("recommend").main([str(retrieve), "--user", "user-7", *moved]) == 0
    assert (
        load_script("export_embeddings").main([str(retrieve), "--out", str(tmp_path / "out2"), *moved]) == 0
    )
    assert load_script("analyse_run").main([str(rerank), *moved]) == 0
    assert (
        baselines.main(["--task", "retrieve", "--run", f"dot={retrieve}", "--baselines", "popularity"]) == 1
    )
    assert "give its new place with --data" in capsys.readouterr().err
    assert (
        baselines.main(
            ["--task", "retrieve", "--run", f"dot={retrieve}", "--baselines", "popularity", *moved]
        )
        == 0
    )
    assert load_script("train").main(["--resume", str(rerank), "--epochs", "2", "--no-progress", *moved]) == 0
    assert json.loads((rerank / "config.json").read_text())["data"] == str(tmp_path / "moved.csv")


def test_what_a_table_writes_loosely_is_read_as_meant(tmp_path):
    # Old Mac line ends, spaces after the delimiter, padded ids kept apart from plain ones,
    # ids past int64 kept exactly (as strings) from Parquet.
    cases = {
        "cr.csv": "user_id,item_id,rating\r1,2,3\r1,3,4\r",
        "spaces.csv": "user_id, item_id, rating\n1, 2, 3\n1,3,5\n2 , 2 ,4\n",
        "padded.csv": "user_id,item_id,rating\n007,2,3\n7,3,4\n",
        "bom.csv": "\ufeff1,2,3\n1,3,4\n",  # a byte-order mark before a header-less first line
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text, newline="")
    cr = read_interactions(tmp_path / "cr.csv")
    assert cr.user_raw_ids.tolist() == [1] and cr.item_raw_ids.tolist() == [2, 3]
    spaces = read_interactions(tmp_path / "spaces.csv")
    assert spaces.user_raw_ids.tolist() == [1, 2] and spaces.item_raw_ids.tolist() == [2, 3]
    np.testing.assert_array_equal(spaces.ratings, [3, 5, 4])
    bom = read_interactions(tmp_path / "bom.csv")
    assert bom.user_raw_ids.tolist() == [1] and bom.item_raw_ids.tolist() == [2, 3]
    padded = read_interactions(tmp_path / "padded.csv")
    assert padded.user_raw_ids.tolist() == ["007", "7"]
    # 19 digits: int64 up to its largest, strings past it (both readers, plain and quoted)
    for quote in ("", '"'):
        text = f"user,item\n{quote}{2**63 - 1}{quote},1\n-{2**63},2\n1500000000000000001,3\n"
        (tmp_path / "long.csv").write_text(text)
        assert read_interactions(tmp_path / "long.csv").user_raw_ids.tolist() == [
            -(2**63),
            1500000000000000001,
            2**63 - 1,
        ]
        (tmp_path / "long.csv").write_text(text.replace("1500000000000000001", quote + str(2**63) + quote))
        assert read_interactions(tmp_path / "long.csv").user_raw_ids.tolist() == sorted(
            [str(2**63 - 1), str(-(2**63)), str(2**63)]
        )
    huge = np.array([2**63 + 1, 5], np.uint64)
    pd.DataFrame({"user": huge, "item": [1, 2]}).to_parquet(tmp_path / "huge.parquet")
    assert read_interactions(tmp_path / "huge.parquet").user_raw_ids.tolist() == ["5", str(2**63 + 1)]
    times = pd.to_datetime(["2020-01-01 00:00:10", "2020-01-02 00:00:00"]).tz_localize("Europe/Paris")
    pd.DataFrame({"user": [1, 1], "item": [2, 3], "time": times}).to_parquet(tmp_path / "dates.parquet")
    dates = read_interactions(tmp_path / "dates.parquet").timestamps  # unix seconds, from any zone
    assert dates.tolist() == [1577836810 - 3600, 1577919600]
    pd.DataFrame({"user": [1, 1], "item": [2, 2]}).to_parquet(tmp_path / "twice.parquet")
    with pytest.raises(DataError, match="rows 1 and 2: user 1 rated item 2 twice"):
        read_interactions(tmp_path / "twice.parquet")
    pd.DataFrame({"user": [1e19, 5.0], "item": [1, 2]}).to_parquet(tmp_path / "float.parquet")
    with pytest.raises(DataError, match=r"row 1: user id 1e\+19 is not an integer that fits 64 bits"):
        read_interactions(tmp_path / "float.parquet")


def test_a_column_is_one_field_and_the_delimiter_one_character(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(GOOD)
    with pytest.raises(DataError, match="the column 'item' would be both the user and the item"):
        read_interactions(path, TableOptions(user="item"))
    with pytest.raises(DataError, match="the column 'rating' would be both the rating and the timestamp"):
        read_interactions(path, TableOptions(timestamp="rating"))
    with pytest.raises(DataError, match="the delimiter must be one character, got '::'"):
        read_interactions(path, TableOptions(delimiter="::"))
    with pytest.raises(DataError, match=r"one field: is the delimiter ','\?"):
        read_interactions(path, TableOptions(delimiter="\t"))


def _random_table(rng: np.random.Generator, delimiter: str) -> bytes:
    """A small delimited file, mostly well formed, with what can trip a reader mixed in:
    spaces, empty fields, other delimiters, line ends of each kind, blank lines, quotes, a
    byte-order mark, NUL, characters Python splits lines at, bytes that are not UTF-8."""
    words = ["1", "22", "-3", "1.5", "1e3", "nan", "007", "a", "b c", "é", " 4 ", "", "x\x1cy", "#"]
    rare = ['"', "'", "\r", "\n", "\r\n", "\t", ",", ";", "|", "\x85", "\u2028", "\x00"]
    columns = int(rng.integers(1, 5))
    ends = ["\n", "\r\n", "\r"] if rng.random() < 0.2 else ["\n"]
    lines = []
    for _ in range(int(rng.integers(1, 8))):
        pick = lambda strings: strings[int(rng.integers(len(strings)))]  # noqa: E731 (NumPy's drops NUL)
        fields = [pick(words) for _ in range(columns + int(rng.random() < 0.1))]
        if rng.random() < 0.1:
            fields[int(rng.integers(len(fields)))] += pick(rare)
        lines.append("" if rng.random() < 0.05 else delimiter.join(fields))
    text = "".join(line + str(rng.choice(ends)) for line in lines)
    if rng.random() < 0.3:
        text = text.rstrip("\r\n")  # no line end after the last line
    data = text.encode("utf-8")
    if rng.random() < 0.03:
        data = b"\xef\xbb\xbf" + data
    if rng.random() < 0.03:
        data += b"\xff\xfe"
    return data


def test_the_threaded_reader_reads_each_plain_file_as_pandas_does(tmp_path):
    # Files pyarrow reads (``_plain_table``) must give pandas' very frame; the others go to
    # pandas. Seeded random files, each read with and without a header.
    from ltr_common.interactions import _pandas_table, _plain_table

    rng = np.random.default_rng(2026)
    plain = 0
    for index in range(600):
        delimiter = str(rng.choice([",", "\t", ";", "|"]))
        path = tmp_path / f"{index}.csv"
        path.write_bytes(_random_table(rng, delimiter))
        for header in (True, False):
            fast = _plain_table(path, delimiter, header)
            if fast is None:
                continue
            plain += 1
            first = path.read_bytes().split(b"\n")[0].decode()
            expected = _pandas_table(path, delimiter, header, len(first.split(delimiter)))
            pd.testing.assert_frame_equal(fast, expected, obj=f"{path.read_bytes()!r} (header {header})")
    assert plain >= 300  # a fair share of the files is plain: the comparison ran


def test_numbers_read_by_arrow_are_pandas_numbers():
    # ``_floats`` takes Arrow's parse of a column where Arrow reads every field, else pandas':
    # what is no number is NaN in both; a number is pandas' to the bit, or, where pandas
    # misrounds it (some written with a "+"), Python's correctly rounded float(). No -0.
    import pyarrow as pa
    import pyarrow.compute as pc

    from ltr_common.interactions import _floats

    rng = np.random.default_rng(7)
    pieces = list("0123456789") * 3 + [".", "e", "E", "-", "+", " ", "_", "x", "inf", "nan", "0x1", ",", "-0"]
    by_arrow = 0
    for _ in range(3000):
        fields = [
            "".join(rng.choice(pieces, int(rng.integers(1, 12)))) for _ in range(int(rng.integers(1, 4)))
        ]
        column = pd.Series(fields, dtype="str")
        expected = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
        found = _floats(column)
        for field, value, wanted in zip(fields, found, expected, strict=True):
            assert np.isnan(value) == np.isnan(wanted), repr(field)
            assert np.isnan(value) or value == wanted or value == float(field), repr(field)
            assert not (value == 0 and np.signbit(value)), repr(field)
        try:
            pc.cast(pa.array(fields), pa.float64())
            by_arrow += 1
        except pa.ArrowInvalid:
            pass
    assert by_arrow >= 300


def test_scale_py_times_reading_tables_plain_and_quoted(tmp_path, capsys):
    from tests._scripts import load_script

    scale = load_script("scale")
    assert scale.main(["--tables", "3000", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "tables.json").read_text())
    assert [(r["lines"], r["quoted"], r["ratings"]) for r in rows] == [
        (3000, False, 3000),
        (3000, True, 3000),
    ]
    assert rows[1]["file MB"] > rows[0]["file MB"] > 0 and all(r["read seconds"] > 0 for r in rows)
    assert "| 3,000 | quoted |" in (tmp_path / "tables.md").read_text()
    with pytest.raises(SystemExit) as stop:
        scale.main(["--tables", "3000,0"])
    assert (
        stop.value.code == 2
        and "--tables: expected line counts from 1 to 10**8, got '0'" in capsys.readouterr().err
    )


def test_the_log_says_what_each_column_is_read_as(tmp_path):
    """A rating or time column not found changes the run: the log says so, and how to name one."""
    with logged("INFO") as lines:
        (tmp_path / "a.csv").write_text("user_id,item_id,stars,when\n1,2,4,x\n1,3,5,y\n")
        read_interactions(tmp_path / "a.csv")
        (tmp_path / "b.csv").write_text("user,item,ts\n1,2,10\n1,3,11\n")
        read_interactions(tmp_path / "b.csv")
    assert lines == [
        f"{tmp_path / 'a.csv'}: user 'user_id', item 'item_id', rating 'stars'; no time column: a random "
        "split (name one with --timestamp_column); not read: ['when']\n",
        f"{tmp_path / 'b.csv'}: user 'user', item 'item', no rating column: implicit feedback, every row "
        "a positive (name one with --rating_column), time 'ts'\n",
    ]
