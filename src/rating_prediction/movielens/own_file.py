"""A ratings file of the user's own (``ingestion.dataset: file``): any columns, any
separator, integer or text ids, Unix-second or formatted timestamps, plain or zipped.

The ratings come out in the contract's column names (``userId``, ``movieId``,
``rating``, ``timestamp``) as a lazy scan, so a file of any size streams through the
same checks as a release. Ids keep their type: integers in 0..MAX_ID (Int32, as a
release's) or text (String); ``ingestion.file.ids`` decides, ``auto`` by the file's
first rows. Errors name the file, the parameter and the column.
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from rating_prediction.data.schema import MAX_ID
from rating_prediction.parameters.ingestion import ItemsFile, OwnFileSettings

from .releases import MovieLensError

logger = logging.getLogger(__name__)

# Enough rows to tell integer ids from text ones; a later id that breaks the choice is
# reported with its row when the ratings are checked.
ID_SAMPLE_ROWS = 10_000
# A canonical integer: "007" stays text, so "007" and "7" can never become one id.
INTEGER_TEXT = r"^(0|-?[1-9][0-9]*)$"
ID_COLUMNS = {"user": "userId", "item": "movieId"}
# Integer ids are held as a release's: Int32 in 0..MAX_ID, the range every request and
# parameter id is checked against. Other integers (negative, 64-bit hashes) are labels,
# read as text.
INTEGER_IDS, TEXT_IDS = pl.Int32(), pl.String()
# Bytes that stripping a value could remove or that could hide one inside quotes:
# where the file's head has none of them (nor non-ASCII bytes), the CSV reader parses
# the numbers itself, as it does a release's; padding past the head is then explained.
PADDING_BYTES = b'\t\x0b\x0c\r "'
PLAIN_CHECK_BYTES = 64 * 1024**2


@dataclass(frozen=True)
class OwnFile:
    """The user's ratings file, found and described.

    Attributes:
        settings: ``ingestion.file``.
        ratings_path: The ratings file (or the zip holding it).
        items_path: The items file (or its zip), if any.
        id_dtypes: The dtype of ``userId`` and ``movieId``: Int32 or String.
    """

    settings: OwnFileSettings
    ratings_path: Path
    items_path: Path | None
    id_dtypes: dict[str, pl.DataType]

    @property
    def label(self) -> str:
        return f"{self.ratings_path} (ingestion.file.path)"

    @property
    def has_timestamps(self) -> bool:
        return self.settings.columns.timestamp is not None


def locate_own_file(settings: OwnFileSettings) -> OwnFile:
    """The files ``settings`` names, checked to exist, with the type of their ids.

    Raises:
        MovieLensError: If a file is missing, empty, lacks a named column, or its ids
            are neither integers nor text.
    """
    ratings_path = _existing(settings.path, "ingestion.file.path")
    items_path = None
    if settings.items is not None:
        items_path = _existing(settings.items.path, "ingestion.file.items.path")
    own = OwnFile(settings, ratings_path, items_path, {})
    sample = _sample(own)
    id_dtypes = {
        column: _id_dtype(sample[column], settings.ids, own.label, key)
        for key, column in ID_COLUMNS.items()
    }
    return OwnFile(settings, ratings_path, items_path, id_dtypes)


def _existing(path: str, key: str) -> Path:
    found = Path(path)
    if not found.is_file():
        raise MovieLensError(
            f"{key}: no file at {found.resolve()}; put your file there or point {key} "
            "at it (relative paths start at the project root)."
        )
    return found


def _content(path: Path, key: str) -> tuple[Path | bytes, str]:
    """The data file at ``path``, or the one data file inside a zip, and its suffix."""
    if path.suffix.lower() != ".zip":
        return path, path.suffix.lower()
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                name
                for name in archive.namelist()
                if Path(name).suffix.lower() in (".csv", ".tsv", ".parquet")
                and not name.startswith("__MACOSX/")
            ]
            if len(members) != 1:
                raise MovieLensError(
                    f"{path} ({key}) must hold exactly one .csv, .tsv or .parquet "
                    f"file; it holds {members or 'none'}."
                )
            return archive.read(members[0]), Path(members[0]).suffix.lower()
    except (zipfile.BadZipFile, OSError) as error:
        raise MovieLensError(f"{path} ({key}) is not a readable zip: {error}") from None


def _readable(content: Path | bytes) -> Path | io.BytesIO:
    """What polars reads: the file's path, or a zip member's bytes as a file."""
    return io.BytesIO(content) if isinstance(content, bytes) else content


def _text_scan(content: Path | bytes, separator: str, label: str) -> pl.LazyFrame:
    """Every column as text; a clear error for an empty file."""
    source = _readable(content)
    try:
        scan = pl.scan_csv(source, separator=separator, infer_schema=False)
        scan.collect_schema()
    except pl.exceptions.NoDataError:
        raise MovieLensError(
            f"{label} is empty: it holds no header and no rating."
        ) from None
    return scan


def _scan(own: OwnFile, parsed: bool = False) -> pl.LazyFrame:
    """The ratings file as it is (text columns for .csv/.tsv, typed for .parquet).

    With ``parsed``, a .csv/.tsv whose head has no padding (:func:`_plain_head`) has
    its integer ids, ratings and Unix-second timestamps parsed by the CSV reader: the
    same values as their stripped text cast, without a text column per value. A value
    that does not parse, padded ones past the head included, raises when the frame is
    collected, and is explained then.
    """
    content, suffix = _content(own.ratings_path, "ingestion.file.path")
    if suffix == ".parquet":
        source = _readable(content)
        return pl.scan_parquet(source)
    scan = _text_scan(content, own.settings.separator, own.label)
    if not parsed or not _plain_head(content, own.settings.separator):
        return scan
    source = _readable(content)
    return pl.scan_csv(
        source,
        separator=own.settings.separator,
        infer_schema=False,
        schema_overrides=_parsed_dtypes(own),
    )


def _plain_head(content: Path | bytes, separator: str) -> bool:
    """Whether the first ``PLAIN_CHECK_BYTES`` of ``content`` are ASCII without padding
    bytes (the separator aside). Only the head: a padded file pads from its first rows
    on, and reading all of a large file would cost as much as parsing it."""
    padding = [bytes([b]) for b in PADDING_BYTES if bytes([b]) != separator.encode()]
    if isinstance(content, Path):
        with content.open("rb") as file:
            content = file.read(PLAIN_CHECK_BYTES)
    head = content[:PLAIN_CHECK_BYTES]
    return head.isascii() and not any(b in head for b in padding)


def _parsed_dtypes(own: OwnFile) -> dict[str, pl.DataType]:
    """The file columns the CSV reader can parse as the contract wants them: integer
    ids, ratings and (without ``timestamp_format``) Unix seconds."""
    named = {to: name for name, to in _named_columns(own).items()}
    dtypes: dict[str, pl.DataType] = {
        named[column]: dtype
        for column, dtype in own.id_dtypes.items()
        if dtype != TEXT_IDS
    }
    dtypes[named["rating"]] = pl.Float32()
    if own.has_timestamps and own.settings.timestamp_format is None:
        dtypes[named["timestamp"]] = pl.Int64()
    return dtypes


def _named_columns(own: OwnFile) -> dict[str, str]:
    """The contract's column name of each file column ``ingestion.file.columns`` names."""
    columns = own.settings.columns
    named = {
        columns.user: "userId",
        columns.item: "movieId",
        columns.rating: "rating",
    }
    if columns.timestamp is not None:
        named[columns.timestamp] = "timestamp"
    return named


def _require(found: list[str], named: dict[str, str], label: str, key: str) -> None:
    missing = [column for column in named if column not in found]
    if missing:
        raise MovieLensError(
            f"{label} lacks the column(s) {missing} that {key} names; its columns are "
            f"{found}. Fix {key} (or the separator, if the file's columns show as one)."
        )


def _sample(own: OwnFile) -> pl.DataFrame:
    """The first rows of the ratings file, under the contract's names."""
    scan = _scan(own)
    named = _named_columns(own)
    _require(scan.collect_schema().names(), named, own.label, "ingestion.file.columns")
    sample = scan.select(pl.col(name).alias(to) for name, to in named.items())
    rows = sample.head(ID_SAMPLE_ROWS).collect()
    if rows.is_empty():
        raise MovieLensError(f"{own.label} holds no ratings: only a header.")
    return rows


def _id_dtype(ids: pl.Series, wanted: str, label: str, key: str) -> pl.DataType:
    """Int32 or String for a column of ids, by ``ingestion.file.ids`` and the first
    rows: ``auto`` reads integers when those rows' ids all are integers in 0..MAX_ID,
    text otherwise; ``integer`` insists on such integers."""
    column = f"ingestion.file.columns.{key}"
    if ids.dtype not in (pl.String, pl.Categorical) and not ids.dtype.is_integer():
        raise MovieLensError(
            f"{label}: the {key} ids ({column}) are {ids.dtype}; ids must be integers "
            "or text."
        )
    if wanted == "string":
        return TEXT_IDS
    ids = ids.drop_nulls()
    if ids.dtype.is_integer():
        fitting = ids.cast(pl.Int64).is_between(0, MAX_ID)
    else:
        text = ids.cast(pl.String).str.strip_chars()
        # "c42" and "007" are not plain integers: text ids.
        number = text.cast(pl.Int64, strict=False)
        fitting = text.str.contains(INTEGER_TEXT) & number.is_between(0, MAX_ID)
    whole = fitting.len() > 0 and fitting.fill_null(False).all()
    if wanted == "auto":
        return INTEGER_IDS if whole else TEXT_IDS
    if not whole:
        raise MovieLensError(
            f"{label}: ingestion.file.ids is 'integer' but the {key} ids ({column}) of "
            f"the first rows are not all integers in 0..{MAX_ID}; set ids: string (or "
            "auto) to read them as text."
        )
    return INTEGER_IDS


def scan_own_ratings(own: OwnFile) -> pl.LazyFrame:
    """The ratings as a lazy frame: ``userId``, ``movieId`` (:attr:`OwnFile.id_dtypes`),
    ``rating`` (Float32), ``timestamp`` (Int64 Unix seconds; null without a timestamp
    column). Values that do not parse raise when the frame is collected;
    :func:`explain_unreadable_own_ratings` then tells which rows."""
    named = {to: name for name, to in _named_columns(own).items()}
    scan = _scan(own, parsed=True)
    schema = scan.collect_schema()
    columns = [
        _typed_id(pl.col(named[column]), schema[named[column]], dtype).alias(column)
        for column, dtype in own.id_dtypes.items()
    ]
    columns.append(_number(pl.col(named["rating"]), schema[named["rating"]]))
    if own.has_timestamps:
        source = named["timestamp"]
        columns.append(
            _timestamp(pl.col(source), schema[source], own.settings.timestamp_format)
        )
    else:
        columns.append(pl.lit(None, dtype=pl.Int64).alias("timestamp"))
    return scan.select(columns)


def _typed_id(column: pl.Expr, found: pl.DataType, dtype: pl.DataType) -> pl.Expr:
    if dtype == TEXT_IDS:
        return (
            column.cast(pl.String) if found.is_integer() else column.str.strip_chars()
        )
    if found.is_integer():
        return column.cast(dtype)
    # Strict: a text id in a column of integer ids stops the scan (then explained).
    return column.str.strip_chars().cast(dtype)


def _number(column: pl.Expr, found: pl.DataType) -> pl.Expr:
    if found.is_numeric():
        return column.cast(pl.Float32).alias("rating")
    return column.str.strip_chars().cast(pl.Float32).alias("rating")


def _timestamp(column: pl.Expr, found: pl.DataType, time_format: str | None) -> pl.Expr:
    if found.is_temporal():
        return column.cast(pl.Datetime("us")).dt.epoch("s").alias("timestamp")
    if found.is_integer():
        return column.cast(pl.Int64).alias("timestamp")
    text = column.cast(pl.String).str.strip_chars()
    if time_format is None:
        return text.cast(pl.Int64).alias("timestamp")
    return (
        text.str.strptime(pl.Datetime("us"), time_format, strict=True)
        .dt.epoch("s")
        .alias("timestamp")
    )


def explain_unreadable_own_ratings(own: OwnFile) -> None:
    """Raise a MovieLensError naming the file, each column's parameter and the first
    rows whose values do not parse (the file is scanned again, streamed); return if
    every value parses."""
    scan = _scan(own)
    schema = scan.collect_schema()
    checks = {
        (name, to): _parse_check(pl.col(name), schema[name], to, own)
        for name, to in _named_columns(own).items()
        if schema[name] == pl.String or to in own.id_dtypes
    }
    flags = {
        f"{to} problem": pl.col(name).is_not_null() & parsed.is_null()
        for (name, to), (parsed, _) in checks.items()
    }
    if not flags:
        return
    bad = (
        scan.with_row_index("row", offset=1)
        .with_columns(**flags)
        .filter(pl.any_horizontal(list(flags)))
    )
    counts = bad.select(pl.col(list(flags)).sum()).collect(engine="streaming").row(0)
    if not any(counts):
        _explain_padding(own, scan)
        return
    key_of = {to: key for key, to in ID_COLUMNS.items()} | {
        "rating": "rating",
        "timestamp": "timestamp",
    }
    lines = [
        f"- {name} (ingestion.file.columns.{key_of[to]}): {count} value(s) {what}"
        for ((name, to), (_, what)), count in zip(checks.items(), counts, strict=True)
        if count
    ]
    shown = bad.drop(list(flags)).head(5).collect()
    raise MovieLensError(
        f"{own.label}: values that cannot be read; fix or remove them:\n"
        + "\n".join(lines)
        + f"\nFirst {shown.height} (row numbers count data lines from 1):\n{shown}"
    )


def _explain_padding(own: OwnFile, scan: pl.LazyFrame) -> None:
    """Raise naming the rows whose numbers carry padding the CSV reader does not strip
    (spaces after a value), past the file head that decided to parse them directly."""
    parsed = [name for name in _parsed_dtypes(own) if name in scan.collect_schema()]
    padded = pl.any_horizontal(
        pl.col(name) != pl.col(name).str.strip_chars() for name in parsed
    )
    shown = (
        scan.with_row_index("row", offset=1).filter(padded).head(5).collect()
        if parsed
        else pl.DataFrame()
    )
    if shown.height:
        raise MovieLensError(
            f"{own.label}: values padded with spaces after the file's first "
            f"{PLAIN_CHECK_BYTES // 1024**2} MB, which had none, so its numbers are "
            "read as they are: remove the spaces around the values (or pad from the "
            f"first rows on, and every value is stripped). First rows:\n{shown}"
        )


def _parse_check(
    column: pl.Expr, found: pl.DataType, to: str, own: OwnFile
) -> tuple[pl.Expr, str]:
    """A column parsed as ``to`` needs it (null where it does not parse), and what a
    value that does not parse is."""
    text = column.str.strip_chars() if found == pl.String else column
    if to in own.id_dtypes:
        dtype = own.id_dtypes[to]
        if dtype == TEXT_IDS:
            return text, ""
        parsed = text.cast(pl.Int64, strict=False)
        return pl.when(parsed.is_between(0, MAX_ID)).then(parsed), (
            f"are not integer ids in 0..{MAX_ID}, as the file's first rows' are (set "
            "ingestion.file.ids: string to read every id as text)"
        )
    if to == "rating":
        return text.cast(pl.Float32, strict=False), "are not numbers"
    time_format = own.settings.timestamp_format
    if time_format is None:
        return text.cast(pl.Int64, strict=False), (
            "are not Unix seconds (set ingestion.file.timestamp_format for dates)"
        )
    return (
        text.str.strptime(pl.Datetime("us"), time_format, strict=False),
        f"do not match ingestion.file.timestamp_format {time_format!r}",
    )


def read_own_items(own: OwnFile) -> pl.DataFrame:
    """The items file as ``movieId`` (the ratings' id dtype), ``title``, ``genres``; or,
    without one, an empty table (the movies table is then the rated items' ids).

    Raises:
        MovieLensError: If a named column is missing, an id is missing or of another
            type than the ratings' ids, naming the file and the parameter.
    """
    if own.settings.items is None or own.items_path is None:
        return pl.DataFrame(
            schema={
                "movieId": own.id_dtypes["movieId"],
                "title": pl.String,
                "genres": pl.String,
            }
        )
    items: ItemsFile = own.settings.items
    label = f"{own.items_path} (ingestion.file.items.path)"
    content, suffix = _content(own.items_path, "ingestion.file.items.path")
    if suffix == ".parquet":
        source = _readable(content)
        table = pl.read_parquet(source)
    else:
        table = _text_scan(content, items.separator, label).collect()
    named = {items.columns.item: "movieId", items.columns.title: "title"}
    if items.columns.genres is not None:
        named[items.columns.genres] = "genres"
    _require(table.columns, named, label, "ingestion.file.items.columns")
    table = table.select(pl.col(name).alias(to) for name, to in named.items())
    if "genres" not in table.columns:
        table = table.with_columns(genres=pl.lit(None, dtype=pl.String))
    ids = _item_ids(table["movieId"], own.id_dtypes["movieId"], label)
    return table.with_columns(
        ids, pl.col("title").cast(pl.String), pl.col("genres").cast(pl.String)
    ).drop_nulls("movieId")


def _item_ids(ids: pl.Series, dtype: pl.DataType, label: str) -> pl.Series:
    """The items file's ids in the ratings' id dtype; an error if they cannot be."""
    key = "ingestion.file.items.columns.item"
    if ids.null_count():
        raise MovieLensError(f"{label}: {ids.null_count()} item(s) have no id ({key}).")
    if dtype == TEXT_IDS:
        if ids.dtype.is_integer():
            raise MovieLensError(
                f"{label}: the item ids ({key}) are integers but the ratings' item ids "
                "are text; both files must use the same ids (set ingestion.file.ids: "
                "integer if the ratings' ids are integers written as text)."
            )
        return ids.cast(pl.String).str.strip_chars()
    if ids.dtype.is_integer():
        return _fitting(ids, dtype, label, key)
    text = ids.cast(pl.String).str.strip_chars()
    bad = text.filter(~text.str.contains(INTEGER_TEXT))
    if bad.len():
        raise MovieLensError(
            f"{label}: the item ids ({key}) must be integers, as the ratings' item ids "
            f"are; {bad.len()} are not, e.g. {bad.head(3).to_list()}. Both files must "
            "use the same ids (set ingestion.file.ids: string to read both as text)."
        )
    return _fitting(text.cast(pl.Int64), dtype, label, key)


def _fitting(ids: pl.Series, dtype: pl.DataType, label: str, key: str) -> pl.Series:
    """Integer item ids in the ratings' id dtype; an id outside 0..MAX_ID is null (no
    rating can name it: the ratings' ids all lie inside), and its item is dropped."""
    inside = ids.cast(pl.Int64).is_between(0, MAX_ID)
    lost = ids.filter(~inside)
    if lost.len():
        logger.info(
            "%s: %d item id(s) (%s) lie outside 0..%d, e.g. %s: no rating names them, "
            "so they are left out.",
            label,
            lost.len(),
            key,
            MAX_ID,
            lost.head(3).to_list(),
        )
    return ids.zip_with(inside, pl.Series([None], dtype=ids.dtype)).cast(dtype)
