"""Any interaction table — CSV, TSV or Parquet — as the loader's ``Ratings``.

A table has one row per interaction: a user, an item, optionally a rating and a time.

* **Format**: Parquet when the file starts with Parquet's magic bytes (read with pyarrow),
  else delimited text; the delimiter is the one given, or the first of tab, comma,
  semicolon and ``|`` found in the first line.
* **Columns**: named by ``columns`` (``user``, ``item``, ``rating``, ``timestamp``), else
  found under the usual names, compared without case, ``_``, ``-`` or spaces
  (``USUAL_NAMES``: ``user_id``, ``userId``, ``movie_id``, ``time``, ...). A text file whose
  first line names no such column and holds only numbers has no header: its columns are
  user, item[, rating[, timestamp]] in that order.
* **Ids** may be integers or any strings, spaces around them dropped; they are integers when
  every one is written plainly (``007`` is a string id, apart from ``7``) and fits int64, and
  are indexed in sorted order. A column is one field's; a header names each column once, and a
  line that repeats the header is refused. Blank lines are skipped; errors still name the
  file's own line numbers, also after a quoted field that spans lines.
* **Ratings**: numbers in (0, 64] (the gains of the ranking losses; 0 is what a sampled
  negative is labelled). No rating column, or ``implicit``: every interaction is a positive
  with label 1 (implicit feedback), and the rerank task, which orders graded ratings,
  refuses the data.
* **Timestamps**: integers (unix seconds) or ISO dates. Without them the split holds out
  random ratings per user, drawn from the seed (``ltr_common.lists.temporal_split``).
* **Duplicates** (a user and an item twice) are an error naming both lines, unless
  ``duplicates`` is ``"first"`` or ``"last"`` (the earliest or latest interaction kept, by
  time, then by line) — the usual case in implicit logs of repeated plays or clicks.

Every error is a ``DataError`` naming the file, the line (the row, for Parquet) and what was
wrong. Nothing is cached: the file is read and checked anew by every run and script.
"""

from __future__ import annotations

import csv
import dataclasses
import mmap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from loguru import logger

from ltr_common.movielens import DataError, ExpectedCounts, Ratings, index_ratings

FIELDS = ("user", "item", "rating", "timestamp")
USUAL_NAMES = {
    "user": ("user", "userid", "uid", "customerid", "visitorid"),
    "item": ("item", "itemid", "iid", "movie", "movieid", "productid", "trackid", "songid", "bookid"),
    "rating": ("rating", "score", "stars"),
    "timestamp": ("timestamp", "time", "ts", "datetime", "date", "unixtime"),
}
DELIMITERS = ("\t", ",", ";", "|")
DUPLICATES = ("error", "first", "last")
MAX_RATING = 64.0  # the gain 2^label - 1 of a larger label leaves float32's exact range
PARQUET_MAGIC = b"PAR1"


@dataclasses.dataclass(frozen=True)
class TableOptions:
    """How to read a table; ``None`` fields are detected (see the module docstring)."""

    user: str | None = None
    item: str | None = None
    rating: str | None = None
    timestamp: str | None = None
    delimiter: str | None = None
    implicit: bool = False
    duplicates: str = "error"


def _normal(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch not in "_- ")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _text_table(path: Path, options: TableOptions) -> tuple[pd.DataFrame, int]:
    """The file's fields as strings, and the line of its first data row."""
    with open(path, "rb") as raw:
        first = raw.readline()
    try:
        first_line = next(iter(first.decode("utf-8-sig").splitlines()), "")  # any line end, no BOM
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: line 1 is not UTF-8 text ({err})") from None
    delimiter = options.delimiter
    if delimiter is None:
        delimiter = next((d for d in DELIMITERS if d in first_line), None)
        if delimiter is None:
            raise DataError(
                f"{path}: line 1: no delimiter (tab, comma, semicolon or |) in {first_line[:80]!r}; "
                "give it with --delimiter"
            )
    if len(delimiter) != 1:
        raise DataError(f"{path}: the delimiter must be one character, got {delimiter!r}")
    fields = [x.strip() for x in next(csv.reader([first_line], delimiter=delimiter))]
    given = {f: getattr(options, f) for f in FIELDS if getattr(options, f) is not None}
    usual = {_normal(n) for names in USUAL_NAMES.values() for n in names}
    header = any(_normal(x) in usual for x in fields) or any(x in given.values() for x in fields)
    if not header and (given or not all(_is_number(x) for x in fields[:2])):
        other = next((d for d in DELIMITERS if d != delimiter and len(fields) == 1 and d in fields[0]), None)
        hint = f" (one field: is the delimiter {other!r}?)" if other else ""
        named = f" (no column named {sorted(given.values())})" if given else ""
        raise DataError(
            f"{path}: line 1 {fields[:8]} is neither a header naming the user and item columns{named} "
            f"nor a row of numeric ids{hint}; start the file with a header line (user_id,item_id"
            "[,rating[,timestamp]], or names given with --user_column and --item_column)"
        )
    if header:
        twice = next((x for i, x in enumerate(fields) if x in fields[:i]), None)
        if twice is not None:
            raise DataError(f"{path}: line 1 names the column {twice!r} twice")
    frame = _plain_table(path, delimiter, header)
    plain = frame is not None  # no quote in the file: each row is a line
    if not plain:
        frame = _pandas_table(path, delimiter, header, len(fields))
    if not header:
        if not 2 <= frame.shape[1] <= 4:
            raise DataError(
                f"{path}: line 1: a file without a header needs 2 to 4 columns (user, item[, rating"
                f"[, timestamp]]), found {frame.shape[1]}"
            )
        frame.columns = list(FIELDS[: frame.shape[1]])
    first = 2 if header else 1
    if not plain:
        frame.index = _line_offsets(frame, path, first - 1)
    if header:
        repeated = _rows_holding(frame, {name: name for name in frame.columns})
        if len(repeated):
            raise DataError(f"{path}: line {frame.index[repeated[0]] + first} repeats the header line")
        frame.columns = [str(c).strip() for c in frame.columns]
    blank = _rows_holding(frame, dict.fromkeys(frame.columns, ""))
    # The frame's index: each row's line, counted from the first data line; blank lines skipped.
    return frame.drop(frame.index[blank]) if len(blank) else frame, first


def _plain_table(path: Path, delimiter: str, header: bool) -> pd.DataFrame | None:
    """The fields of a plain file as ``_pandas_table`` reads them, read by pyarrow's CSV reader
    (threaded: about a third of pandas' time, 1.3 against 3.7 s for 5M lines on 2 cores);
    None where the file is not plain, for pandas to read it and name what is wrong.

    Plain: no quote, no NUL, no byte-order mark, line 1 ending in a line feed (or the file), no
    blank line, each line with line 1's fields (two or more: the columns' names, where it is a
    ``header``, none empty or repeated), UTF-8 — where the two readers cannot differ.
    """
    if not path.stat().st_size:
        return None
    with open(path, "rb") as raw, mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data.find(b'"') >= 0 or data.find(b"\x00") >= 0 or data[:3] == b"\xef\xbb\xbf":
            return None  # quoting, or a NUL, where pandas 2 cuts a field
        line = data[: data.find(b"\n") + 1 or len(data)].removesuffix(b"\n").removesuffix(b"\r")
    if b"\r" in line:  # lines that end in a carriage return alone
        return None
    try:
        names = line.decode("utf-8").split(delimiter)
    except UnicodeDecodeError:
        return None
    if len(names) < 2 or (header and not (all(names) and len(set(names)) == len(names))):
        return None  # no table, or names that pandas changes (empty or repeated ones)
    columns = names if header else [str(i) for i in range(len(names))]
    try:
        table = pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(skip_rows=int(header), column_names=columns),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter, quote_char=False, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()), strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, ValueError):  # a line of other fields, not UTF-8, ...: pandas says which
        return None
    frame = table.to_pandas()
    if not header:
        frame.columns = range(len(columns))  # pandas' names, without a header
    return frame


def _pandas_table(path: Path, delimiter: str, header: bool, fields: int) -> pd.DataFrame:
    """Every field of the table as a string (missing trailing fields NaN, blank lines kept as
    rows of empty fields, so that each row keeps its line); a line with more fields than
    line 1's ``fields``, or text that is not UTF-8, is a ``DataError``."""
    try:
        with warnings.catch_warnings():
            # a line with more fields than the header: pandas would drop them with a warning
            warnings.simplefilter("error", pd.errors.ParserWarning)
            return pd.read_csv(
                path,
                sep=delimiter,
                header=0 if header else None,
                index_col=False,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                engine="c",
                encoding="utf-8",
                skip_blank_lines=False,
            )
    except pd.errors.ParserWarning:
        raise DataError(f"{path}: a line has more fields than line 1's {fields}") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err})") from None
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: {err}".replace("\n", " ")) from None


def _line_offsets(frame: pd.DataFrame, path: Path, lines_before: int) -> pd.RangeIndex | np.ndarray:
    """Each row's line, counted from the first data row's: the row's position, plus the line
    breaks inside quoted fields of the rows before it. The fields are searched for line
    breaks only where the file holds a quote and its line ends could hide one: more line
    feeds than ``lines_before`` and the rows hold, or carriage returns other than one per
    line feed (a file whose lines end in a carriage return alone is searched whenever it
    holds a quote)."""
    with open(path, "rb") as raw, mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data.find(b'"') < 0:
            return frame.index
        chunks = range(0, len(data), 2**24)
        feeds = sum(data[start : start + 2**24].count(b"\n") for start in chunks)
        returns = sum(data[start : start + 2**24].count(b"\r") for start in chunks)
        if 0 < feeds <= lines_before + len(frame) and returns in (0, feeds):
            return frame.index
    breaks = np.zeros(len(frame), dtype=np.int64)
    for name in frame.columns:
        breaks += frame[name].str.count("\r\n|\r|\n").to_numpy(dtype=np.int64)
    if not breaks.any():
        return frame.index
    return np.arange(len(frame), dtype=np.int64) + np.concatenate([[0], np.cumsum(breaks)[:-1]])


def _rows_holding(frame: pd.DataFrame, values: dict) -> np.ndarray:
    """The positions of the rows whose every column ``name`` holds ``values[name]``: the
    first column compared whole, the others only at the rows still in question."""
    names = list(values)
    rows = np.flatnonzero((frame[names[0]] == values[names[0]]).to_numpy())
    for name in names[1:]:
        if not len(rows):
            break
        rows = rows[(frame[name].iloc[rows] == values[name]).to_numpy()]
    return rows


def _parquet_table(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except ImportError:
        raise DataError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    except Exception as err:  # pyarrow raises its own errors for a damaged file
        raise DataError(f"{path}: not a readable Parquet file ({err})") from None


def _pick_columns(frame: pd.DataFrame, options: TableOptions, path: Path) -> dict[str, str]:
    """``{field: column}`` for the fields the table has."""
    found = {}
    for field in FIELDS:
        given = getattr(options, field)
        if given is not None:
            if given not in frame.columns:
                raise DataError(
                    f"{path}: --{field}_column {given!r} is not a column "
                    f"(columns: {list(frame.columns)[:12]})"
                )
            found[field] = given
            continue
        matches = [c for c in frame.columns if _normal(c) in USUAL_NAMES[field]]
        if len(matches) > 1:
            raise DataError(
                f"{path}: columns {matches} could each be the {field}; name one with --{field}_column"
            )
        if matches:
            found[field] = matches[0]
    for field in ("user", "item"):
        if field not in found:
            raise DataError(
                f"{path}: no {field} column among {list(frame.columns)[:12]}; name it with --{field}_column"
            )
    fields = list(found)
    for i, field in enumerate(fields):
        other = next((f for f in fields[:i] if found[f] == found[field]), None)
        if other is not None:
            raise DataError(f"{path}: the column {found[field]!r} would be both the {other} and the {field}")
    return found


def _ids(column: pd.Series, *, path: str, name: str, where) -> np.ndarray:
    """Integer ids as int64, anything else as strings (spaces around them dropped); empty ids
    are refused. Integers are ids only when each is written plainly (``7``, not ``007``, which
    stays a string id of its own) and fits int64."""
    missing = np.flatnonzero(column.isna().to_numpy())
    if len(missing):
        raise DataError(f"{path}: {where(missing[0])}: the {name} id is missing")
    values = column.to_numpy() if pd.api.types.is_numeric_dtype(column) else None  # Parquet's
    if values is None:
        return _text_ids(column, path=path, name=name, where=where)
    if values.dtype.kind == "u" and len(values) and values.max() > np.iinfo(np.int64).max:
        return values.astype(str)  # beyond int64: kept exactly, as strings
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "f":
        bad = np.flatnonzero(
            ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) >= 2.0**63)
        )
        if len(bad):
            value = float(values[bad[0]])
            raise DataError(
                f"{path}: {where(bad[0])}: {name} id {value!r} is not an integer that fits 64 bits"
            )
        return values.astype(np.int64)
    return _text_ids(column, path=path, name=name, where=where)


PLAIN_INTEGER = r"0|-?[1-9]\d{0,18}"  # an integer id as written plainly, of int64's 19 digits at most


def _text_ids(column: pd.Series, *, path: str, name: str, where) -> np.ndarray:
    text = column.astype(str)
    if not text.str.fullmatch(PLAIN_INTEGER).all():  # else nothing to strip
        text = text.str.strip()
        empty = np.flatnonzero((text.str.len() == 0).to_numpy())
        if len(empty):
            raise DataError(f"{path}: {where(empty[0])}: the {name} id is empty")
        if not text.str.fullmatch(PLAIN_INTEGER).all():
            return text.to_numpy(dtype=str)
    try:
        if isinstance(text.array, pd.arrays.ArrowStringArray):  # a tenth of pandas' time
            return pc.cast(pa.array(text.array), pa.int64()).to_numpy()
        return text.astype(np.int64).to_numpy()
    except (pa.ArrowInvalid, OverflowError, ValueError):  # 19 digits past int64's range
        return text.to_numpy(dtype=str)


def _field_error(column: pd.Series, row: int, *, path: str, where, name: str, problem: str) -> DataError:
    """The error of field ``row``: missing where it is empty (or absent: a short line, or a
    null), else ``problem``."""
    value = column.iloc[row]
    if pd.isna(value) or not str(value).strip():
        problem = (
            f"the {name} is missing (an empty field or a null, or a line with fewer fields than the header)"
        )
    return DataError(f"{path}: {where(row)}: {problem}")


def _floats(column: pd.Series) -> np.ndarray:
    """Each field as float64, NaN where it is not a number (``pd.to_numeric``'s coerce), and
    no negative zero. Arrow's parser first, where pandas holds the strings in Arrow: about 25
    times faster, and correctly rounded as ``float()`` is (pandas misrounds a few numbers
    written with a ``+``, such as ``+3E23``). It refuses the whole column over one field that
    it will not read (spaces around a number, say); pandas reads it then."""
    if isinstance(column.array, pd.arrays.ArrowStringArray):
        try:
            return pc.cast(pa.array(column.array), pa.float64()).to_numpy() + 0.0  # -0 read as 0
        except pa.ArrowInvalid:
            pass
    return pd.to_numeric(column, errors="coerce").to_numpy(np.float64) + 0.0


def _numbers(column: pd.Series, *, path: str, name: str, where) -> np.ndarray:
    values = _floats(column)
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        problem = f"{name} {str(column.iloc[bad[0]])[:40]!r} is not a finite number"
        raise _field_error(column, bad[0], path=path, where=where, name=name, problem=problem)
    return values


def _times(column: pd.Series, *, path: str, where) -> np.ndarray:
    """Unix seconds from integers, integral floats, ISO dates or a table's own date-times."""
    if pd.api.types.is_datetime64_any_dtype(column):  # Parquet: not numbers of some unit
        dates = column.dt.tz_localize("UTC") if column.dt.tz is None else column.dt.tz_convert("UTC")
        bad = np.flatnonzero(dates.isna().to_numpy())
        if len(bad):
            raise DataError(f"{path}: {where(bad[0])}: the timestamp is missing")
        return (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy().astype(np.int64)
    values = _floats(column)
    if not np.isnan(values[0]):  # numbers, from the first row: each must be one
        bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) >= 2**62))
        if len(bad):
            problem = (
                f"timestamp {column.iloc[bad[0]]!r} is not an integer, as unix seconds must be (the first "
                f"row's, {column.iloc[0]!r}, is a number; ISO dates are read where every timestamp is one)"
            )
            raise _field_error(column, bad[0], path=path, where=where, name="timestamp", problem=problem)
        return values.astype(np.int64)
    dates = pd.to_datetime(column, errors="coerce", utc=True, format="ISO8601")
    bad = np.flatnonzero(dates.isna().to_numpy())
    if len(bad):
        problem = f"timestamp {str(column.iloc[bad[0]])[:40]!r} is neither unix seconds nor an ISO date"
        raise _field_error(column, bad[0], path=path, where=where, name="timestamp", problem=problem)
    return (dates - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy().astype(np.int64)


def read_interactions(
    path: str | Path, options: TableOptions = TableOptions(), *, expected: ExpectedCounts | None = None
) -> Ratings:
    """Read, check and index the interaction table at ``path`` (see the module docstring)."""
    path = Path(path)
    if options.duplicates not in DUPLICATES:
        raise ValueError(f"duplicates must be one of {', '.join(DUPLICATES)}, got {options.duplicates!r}")
    if not path.is_file():
        found = "a folder" if path.is_dir() else "no such file"
        raise DataError(f"{path}: {found} (expected a table of interactions: CSV, TSV or Parquet)")
    with open(path, "rb") as raw:
        magic = raw.read(4)
    if not magic:
        raise DataError(f"{path}: the file is empty (no interactions)")
    if magic == PARQUET_MAGIC:
        frame, first, unit = _parquet_table(path), 1, "row"
    else:
        frame, first = _text_table(path, options)
        unit = "line"
    return ratings_from_frame(
        frame,
        _pick_columns(frame, options, path),
        path=str(path),
        first=first,
        unit=unit,
        implicit=options.implicit,
        duplicates=options.duplicates,
        expected=expected,
        source=f"table {path}",
    )


def columns_read(columns: dict[str, str], names: list, *, implicit: bool = False) -> str:
    """What a table's columns are read as, for the log: a rating or time column not found
    changes the run (implicit feedback, a random split), so it is said with how to name one."""
    parts = [f"{field} {columns[field]!r}" for field in ("user", "item")]
    if implicit:
        parts.append("every row a positive (--implicit)")
    elif "rating" in columns:
        parts.append(f"rating {columns['rating']!r}")
    else:
        parts.append(
            "no rating column: implicit feedback, every row a positive (name one with --rating_column)"
        )
    line = ", ".join(parts)
    if "timestamp" in columns:
        line += f", time {columns['timestamp']!r}"
    else:
        line += "; no time column: a random split (name one with --timestamp_column)"
    unread = [name for name in names if name not in columns.values()]
    return line + (f"; not read: {unread[:12]}" if unread else "")


def ratings_from_frame(
    frame: pd.DataFrame,
    columns: dict[str, str],
    *,
    path: str,
    first: int,
    unit: str = "line",
    implicit: bool = False,
    duplicates: str = "error",
    expected: ExpectedCounts | None = None,
    source: str,
) -> Ratings:
    """Check and index a table's rows; ``columns`` maps ``FIELDS`` to the frame's columns
    (user and item at least), ``first`` is the line (``unit``) of the frame's first row."""
    if not len(frame):
        raise DataError(f"{path}: no interactions (the table has a header only)")
    lines = first + np.asarray(frame.index, dtype=np.int64)  # a row's line (or row) in the file
    where = lambda row: f"{unit} {lines[row]}"  # noqa: E731
    user = _ids(frame[columns["user"]], path=path, name="user", where=where)
    item = _ids(frame[columns["item"]], path=path, name="item", where=where)
    logger.info("{}: {}", path, columns_read(columns, list(frame.columns), implicit=implicit))
    implicit = implicit or "rating" not in columns
    if implicit:
        rating = np.ones(len(frame), np.float64)
    else:
        rating = _numbers(frame[columns["rating"]], path=path, name="rating", where=where)
        single = rating.astype(np.float32)  # the labels' type: a tiny rating would become 0
        bad = np.flatnonzero((single <= 0) | (rating > MAX_RATING))
        if len(bad):
            raise DataError(
                f"{path}: {where(bad[0])}: rating {rating[bad[0]]:g} is outside (0, {MAX_RATING:g}] "
                "in float32 (0 labels a sampled negative; pass --implicit to read every row as a positive)"
            )
    times = _times(frame[columns["timestamp"]], path=path, where=where) if "timestamp" in columns else None
    if duplicates != "error":
        keys = pd.DataFrame({"u": user, "i": item, "t": times if times is not None else 0, "row": lines})
        keys = keys.sort_values(["t", "row"], kind="stable")
        kept = np.sort(keys.drop_duplicates(["u", "i"], keep=duplicates).index.to_numpy())
        if len(kept) < len(lines):
            logger.info(
                "{}: kept the {} of each repeated interaction: {} of {} rows",
                path,
                duplicates,
                len(kept),
                len(lines),
            )
        user, item, rating, lines = user[kept], item[kept], rating[kept], lines[kept]
        times = None if times is None else times[kept]
    unchecked = ExpectedCounts(rows=None, users=None, items=None)
    return index_ratings(
        user,
        item,
        rating,
        times,
        path=path,
        expected=expected or unchecked,
        source=source,
        implicit=implicit,
        lines=lines,
        unit=unit,
    )
