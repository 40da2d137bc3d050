"""Request files: the pairs to score or the users to recommend for, read from a CSV or
parquet file of any length.

:func:`read_request_file` checks the whole file in one streaming pass (bounded memory)
before anything is answered, so a bad file stops the run with a message naming the file,
the column and the first offending rows, and no answer is written. The
:class:`RequestTable` it returns holds the id columns as Int64, in file order, and is
read :meth:`~RequestTable.batch` by batch: memory is bounded by the batch (and by the
parquet file's row groups), not by the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from rating_prediction.data.ids import INTEGER, STRING, IdType
from rating_prediction.data.schema import MAX_ID

from .request_ids import strings_expected

CSV_SUFFIX = ".csv"
PARQUET_SUFFIX = ".parquet"
REQUEST_FILE_SUFFIXES = (CSV_SUFFIX, PARQUET_SUFFIX)
# The offending rows quoted in an error message.
QUOTED_ROWS = 3
# An id written as text: optional sign and surrounding spaces, digits only.
INTEGER_TEXT = r"^\s*[+-]?\d+\s*$"
ROW_INDEX = "__row__"
ROW_COUNT = "__rows__"


class RequestFileError(ValueError):
    """A request file is missing, unreadable, or holds something other than ids."""


@dataclass(frozen=True)
class RequestTable:
    """Ids to answer, in request order: a lazy table and its number of rows.

    Attributes:
        source: Where the ids come from (a file's path), for messages.
        table: The id columns, checked, no nulls: Int64 integers in 0..``MAX_ID``, or
            non-empty String ids for a served model whose ids are strings.
        rows: The number of rows of ``table``.
    """

    source: str
    table: pl.LazyFrame
    rows: int

    @classmethod
    def from_frame(cls, frame: pl.DataFrame, source: str) -> RequestTable:
        """A table already in memory (its ids checked by the caller)."""
        return cls(source, frame.lazy(), frame.height)

    def batch_count(self, batch_size: int) -> int:
        """The number of batches of ``batch_size`` rows; at least one (maybe empty)."""
        return max(1, math.ceil(self.rows / batch_size))

    def batch(self, index: int, batch_size: int) -> pl.DataFrame:
        """Rows ``index * batch_size`` onwards, at most ``batch_size`` of them."""
        return self.table.slice(index * batch_size, batch_size).collect()


@dataclass(frozen=True)
class RequestFile:
    """A request file found, readable and holding ``columns``; its ids are checked
    when it is :meth:`read` with the served model's id types.

    Attributes:
        path: The CSV or parquet file.
        columns: The id columns it is read for.
    """

    path: Path
    columns: tuple[str, ...]

    def read(self, id_types: Mapping[str, IdType] | None = None) -> RequestTable:
        """:func:`read_request_file` of this file."""
        return read_request_file(self.path, self.columns, id_types)


def open_request_file(path: Path, columns: Sequence[str]) -> RequestFile:
    """The request file at ``path`` with ``columns``, its ids not yet checked (their
    type is the served model's).

    Raises:
        RequestFileError: For an unknown suffix, an unreadable file or a missing
            column.
    """
    _schema(path, columns)
    return RequestFile(Path(path), tuple(columns))


def _schema(path: Path, columns: Sequence[str]) -> tuple[pl.LazyFrame, pl.Schema]:
    scan = _scan(path)
    try:
        schema = scan.collect_schema()
    except (OSError, pl.exceptions.PolarsError) as error:
        raise _unreadable(path, columns, error) from None
    missing = [column for column in columns if column not in schema]
    if missing:
        raise RequestFileError(
            f"The request file {path} lacks the column(s) {missing}: it needs "
            f"{list(columns)} (original MovieLens ids; other columns are ignored), "
            f"and has {schema.names()}."
            + (" A CSV request file needs a header row." if _is_csv(path) else "")
        )
    return scan, schema


def read_request_file(
    path: Path,
    columns: Sequence[str],
    id_types: Mapping[str, IdType] | None = None,
) -> RequestTable:
    """The ``columns`` of the CSV or parquet file at ``path`` (the suffix decides), as
    ids in file order; other columns are ignored. ``id_types`` gives each column's id
    type (the served model's; ``"integer"`` when not given): integer ids are read as
    Int64, string ids as String, exactly as written.

    Raises:
        RequestFileError: For an unknown suffix, an unreadable file, a missing column,
            or a value that is missing, not an integer, or outside 0..``MAX_ID`` (for
            string ids: missing, empty, or a column that does not hold text), naming
            the file, the column and the first offending rows.
    """
    id_types = {column: (id_types or {}).get(column, INTEGER) for column in columns}
    scan, schema = _schema(path, columns)
    checks = {
        column: _problem(path, column, schema[column], id_types[column])
        for column in columns
    }
    counts = _collect(
        path,
        columns,
        scan.select(
            pl.len().alias(ROW_COUNT),
            *[check.is_not_null().sum().alias(name) for name, check in checks.items()],
        ),
    ).row(0, named=True)
    for column, check in checks.items():
        if counts[column]:
            raise _bad_ids(
                path,
                columns,
                scan,
                column=column,
                check=check,
                count=counts[column],
                id_type=id_types[column],
            )
    table = scan.select(
        [
            _as_id(pl.col(column), schema[column], id_types[column]).alias(column)
            for column in columns
        ]
    )
    return RequestTable(str(path), table, counts[ROW_COUNT])


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() == CSV_SUFFIX


def _scan(path: Path) -> pl.LazyFrame:
    suffix = path.suffix.lower()
    if suffix == PARQUET_SUFFIX:
        return pl.scan_parquet(path)
    if suffix == CSV_SUFFIX:
        # Ids are parsed here, not guessed from the first rows; a stray byte in a
        # column that is not read must not stop the run.
        return pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy")
    raise RequestFileError(
        f"The request file {path} must end in {' or '.join(REQUEST_FILE_SUFFIXES)} "
        "(its suffix picks the format)."
    )


def _collect(path: Path, columns: Sequence[str], query: pl.LazyFrame) -> pl.DataFrame:
    try:
        return query.collect(engine="streaming")
    except (OSError, pl.exceptions.PolarsError) as error:
        raise _unreadable(path, columns, error) from None


def _unreadable(path: Path, columns: Sequence[str], error: Exception) -> Exception:
    kind = "CSV with a header row" if _is_csv(path) else "parquet"
    return RequestFileError(
        f"Cannot read the request file {path}: {error}. It must be a {kind} file with "
        f"the columns {list(columns)}."
    )


def _problem(path: Path, column: str, dtype: pl.DataType, id_type: IdType) -> pl.Expr:
    """Per row, what is wrong with the id (null when nothing is)."""
    ids = pl.col(column)
    if id_type == STRING:
        if dtype != pl.String:
            raise RequestFileError(
                f"Column {column!r} of the request file {path} holds {dtype} values; "
                f"it must hold string ids ({strings_expected(column)})."
            )
        return pl.when(ids.is_null() | (ids == "")).then(pl.lit("missing"))
    if dtype == pl.String:
        text = ids.str.strip_chars()
        integer = text.str.contains(INTEGER_TEXT)
        value = text.cast(pl.Int64, strict=False)
        return (
            pl.when(ids.is_null() | (text == ""))
            .then(pl.lit("missing"))
            .when(~integer)
            .then(pl.lit("not an integer"))
            .when(value.is_null() | ~value.is_between(0, MAX_ID))
            .then(pl.lit(f"outside 0..{MAX_ID}"))
        )
    if dtype.is_float():
        return (
            pl.when(ids.is_null() | ids.is_nan())
            .then(pl.lit("missing"))
            .when(~ids.is_finite() | (ids != ids.floor()))
            .then(pl.lit("not an integer"))
            .when(~ids.is_between(0, MAX_ID))
            .then(pl.lit(f"outside 0..{MAX_ID}"))
        )
    if dtype.is_integer():
        return (
            pl.when(ids.is_null())
            .then(pl.lit("missing"))
            .when(~ids.is_between(0, MAX_ID))
            .then(pl.lit(f"outside 0..{MAX_ID}"))
        )
    raise RequestFileError(
        f"Column {column!r} of the request file {path} holds {dtype} values; it must "
        "hold integer ids (original MovieLens ids)."
    )


def _as_id(ids: pl.Expr, dtype: pl.DataType, id_type: IdType) -> pl.Expr:
    if id_type == STRING:
        return ids
    return (ids.str.strip_chars() if dtype == pl.String else ids).cast(pl.Int64)


def _bad_ids(
    path: Path,
    columns: Sequence[str],
    scan: pl.LazyFrame,
    *,
    column: str,
    check: pl.Expr,
    count: int,
    id_type: IdType = INTEGER,
) -> RequestFileError:
    """The error for ``count`` bad ids in ``column``, quoting the first few rows."""
    first = _collect(
        path,
        columns,
        scan.with_row_index(ROW_INDEX)
        .select(ROW_INDEX, pl.col(column).cast(pl.String), check.alias("problem"))
        .filter(pl.col("problem").is_not_null())
        .head(QUOTED_ROWS),
    )
    # Rows are counted from 1; a CSV's header is its line 1.
    line = 2 if _is_csv(path) else 1
    place = "line" if _is_csv(path) else "row"
    quoted = "; ".join(
        f"{place} {row + line}: {value!r} ({problem})"
        for row, value, problem in first.iter_rows()
    )
    needed = (
        f"a non-empty string id ({strings_expected(column)}"
        if id_type == STRING
        else f"an integer id in 0..{MAX_ID} (an original MovieLens id"
    )
    return RequestFileError(
        f"Column {column!r} of the request file {path} has {count} bad id(s) ({quoted}). "
        f"Every row needs {needed}; one unseen in training is answered with the "
        "model's fallback): fix or remove those rows."
    )
