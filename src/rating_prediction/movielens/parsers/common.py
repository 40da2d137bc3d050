"""What the format parsers share: getting a file out of a release, decoding, splitting,
casting to the contract's dtypes and naming the rows that do not parse."""

from __future__ import annotations

import io
import logging
import zipfile
import zlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TypeAlias

import polars as pl

from rating_prediction.data.schema import MOVIES_SCHEMA, RATINGS_SCHEMA, USERS_SCHEMA
from rating_prediction.movielens.releases import MovieLensError, ReleaseSource
from rating_prediction.runtime.progress import Progress, waiting

logger = logging.getLogger(__name__)

# A file of a release: its path in an extracted folder, or its bytes from the zip.
Content: TypeAlias = Path | bytes
# A zip member is decompressed this much at a time, its progress reported in between.
EXTRACT_CHUNK_BYTES = 16 << 20


def release_file(source: ReleaseSource, file_name: str) -> Content:
    """Return a file of a release: its path in a folder, or its bytes from the zip.

    Paths let polars scan lazily; zip members must be decompressed into memory.
    """
    if source.path.is_dir():
        path = source.path / file_name
        if not path.is_file():
            raise MovieLensError(
                f"{source.path} holds no {file_name}: the {source.release} release "
                "ships it; restore the folder or use the zip archive."
            )
        return path
    try:
        with zipfile.ZipFile(source.path) as archive:
            members = [
                name
                for name in archive.namelist()
                if name == file_name or name.endswith(f"/{file_name}")
            ]
            if not members:
                raise MovieLensError(
                    f"{source.path} holds no {file_name}; is it the {source.release} "
                    "archive? Delete it to download it again."
                )
            # The shallowest match is the release's own file, not a nested copy.
            return _extract(archive, min(members, key=lambda name: name.count("/")))
    except zipfile.BadZipFile as error:
        raise MovieLensError(
            f"{source.path} is not a valid zip archive ({error}); delete it to "
            "download it again."
        ) from error
    # Encrypted members, unsupported compression methods, corrupt compressed data.
    except (RuntimeError, NotImplementedError, EOFError, zlib.error) as error:
        raise MovieLensError(
            f"{file_name} in {source.path} cannot be extracted ({error}); GroupLens "
            "archives are plain zip files: delete it to download it again, or "
            f"extract it into {source.path.with_suffix('')} yourself."
        ) from error


def _extract(archive: zipfile.ZipFile, member: str) -> bytes:
    """The bytes of ``member``, decompressed a chunk at a time: a large one (ml-32m's
    ratings.csv, 0.9 GB) reports the MB extracted and the time left
    (:class:`~rating_prediction.runtime.progress.Progress`)."""
    size = archive.getinfo(member).file_size
    what = f"extracting {member} from {Path(archive.filename or '').name}"
    extracted = io.BytesIO()  # its getvalue() hands over its buffer, uncopied
    with archive.open(member) as source, Progress(what, size, "B", logger=logger) as p:
        while chunk := source.read(EXTRACT_CHUNK_BYTES):
            extracted.write(chunk)
            p.advance(len(chunk))
    return extracted.getvalue()


def reading(content: Content, file_name: str) -> AbstractContextManager[Progress]:
    """Around a single polars read of ``content``, which reports nothing while it
    runs: a line every so often with the file's size and the time so far
    (:func:`~rating_prediction.runtime.progress.waiting`), none for a quick read."""
    size = content.stat().st_size if isinstance(content, Path) else len(content)
    return waiting(f"reading {file_name} ({size / 1e6:,.1f} MB)", logger=logger)


def file_label(source: ReleaseSource, file_name: str) -> str:
    """How an error names a file of a release: its path, or its name and archive."""
    if source.path.is_dir():
        return str(source.path / file_name)
    return f"{file_name} in {source.path}"


def require_columns(found: list[str], expected: list[str], file_name: str) -> None:
    """Raise if a file with a header lacks any of the expected columns."""
    missing = [column for column in expected if column not in found]
    if missing:
        raise MovieLensError(
            f"{file_name} lacks column(s) {missing}; found {found}, expected {expected}."
        )


def as_utf8(content: Content) -> bytes:
    """Decode a small text file as UTF-8, falling back to Latin-1 (older releases)."""
    data = content.read_bytes() if isinstance(content, Path) else content
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1").encode("utf-8")
    return data


def split_lines(content: Content, separator: str, columns: list[str]) -> pl.LazyFrame:
    """Split each line on a (possibly multi-character) separator into string columns.

    polars' CSV reader takes single-byte separators only, so ``::`` files are read as
    one string column per line and split in a vectorised way. Extra fields stay in the
    last column, so a wrong line shows up as a value that does not parse.
    """
    return (
        pl.scan_lines(content)
        .filter(pl.col("line").str.strip_chars() != "")
        .select(
            pl.col("line")
            .str.splitn(separator, len(columns))
            .struct.rename_fields(columns)
            .struct.unnest()
        )
    )


def cast_ratings(raw: pl.LazyFrame, file_name: str) -> pl.DataFrame:
    """Cast string rating columns to compact dtypes, rejecting values that do not parse.

    Missing values stay null here (validation reports them); a present value that is
    not a number, or a number that does not fit its column's dtype, is an error naming
    the rows. The typed CSV readers are faster and fall back to this path only to tell
    which rows are bad.
    """
    ratings = raw.select(
        pl.col(column).str.strip_chars().cast(dtype, strict=False).alias(column)
        for column, dtype in RATINGS_SCHEMA.items()
    ).collect()
    unparsed = pl.any_horizontal(pl.col(column).is_null() for column in RATINGS_SCHEMA)
    if ratings.select(unparsed.any()).item():
        reject_unreadable(raw, RATINGS_SCHEMA, file_name)
    return ratings


def cast_movies(movies: pl.DataFrame, file_name: str) -> pl.DataFrame:
    """Cast string movie columns to their dtypes; every movie needs an integer id."""
    movie_id = {"movieId": MOVIES_SCHEMA["movieId"]}
    reject_unreadable(movies.lazy(), movie_id, file_name, missing_is_bad=True)
    return movies.select(
        pl.col("movieId").str.strip_chars().cast(MOVIES_SCHEMA["movieId"]),
        pl.col("title").cast(MOVIES_SCHEMA["title"]),
        pl.col("genres").cast(MOVIES_SCHEMA["genres"]),
    )


def cast_users(users: pl.DataFrame, file_name: str) -> pl.DataFrame:
    """Cast string user columns to ``USERS_SCHEMA``, in its column order: every user
    needs an integer id and age, and a line of its own; an empty text field is null.

    Raises:
        MovieLensError: Naming ``file_name``, the rows whose id or age does not parse,
            or the ids on more than one line.
    """
    integers = {column: USERS_SCHEMA[column] for column in ("userId", "age")}
    reject_unreadable(users.lazy(), integers, file_name, missing_is_bad=True)
    typed = users.select(
        pl.col(column).str.strip_chars().cast(dtype)
        if column in integers
        else _text_or_null(column)
        for column, dtype in USERS_SCHEMA.items()
    )
    repeated = typed.filter(pl.col("userId").is_duplicated())["userId"].unique()
    if repeated.len():
        raise MovieLensError(
            f"{file_name}: {repeated.len()} user id(s) are on more than one line "
            f"(first: {repeated.sort().head(5).to_list()}); each user has one line. "
            "Fix the file, or restore the release's original."
        )
    return typed


def _text_or_null(column: str) -> pl.Expr:
    text = pl.col(column).str.strip_chars()
    return pl.when(text != "").then(text).alias(column)


def reject_unreadable(
    raw: pl.LazyFrame,
    dtypes: Mapping[str, pl.DataType],
    file_name: str,
    missing_is_bad: bool = False,
) -> None:
    """Raise if a string column holds a value that does not cast to its dtype, saying
    per column how many and why (not a number, not an integer, out of range) and
    showing up to five rows."""
    problem_columns = [f"{column} problem" for column in dtypes]
    bad_rows = (
        raw.with_row_index("row", offset=1)
        .with_columns(
            _why_unreadable(column, dtype, missing_is_bad).alias(f"{column} problem")
            for column, dtype in dtypes.items()
        )
        .filter(pl.any_horizontal(pl.col(problem_columns).is_not_null()))
        .collect()
    )
    if not bad_rows.height:
        return
    counts = [
        f"- {column}: {count} value(s) are {problem}"
        for column in dtypes
        for problem, count in bad_rows[f"{column} problem"]
        .drop_nulls()
        .value_counts(sort=True)
        .iter_rows()
    ]
    shown = bad_rows.drop(problem_columns).head(5)
    raise MovieLensError(
        f"{file_name}: {bad_rows.height} row(s) hold values that cannot be "
        "read; fix or remove them:\n"
        + "\n".join(counts)
        + f"\nFirst {shown.height} (row numbers count data lines from 1):\n{shown}"
    )


def _why_unreadable(column: str, dtype: pl.DataType, missing_is_bad: bool) -> pl.Expr:
    """Why each value of a string column does not cast to ``dtype``; null if it does."""
    text = pl.col(column).str.strip_chars()
    number = text.cast(pl.Float64, strict=False)
    fits = text.cast(dtype, strict=False).is_not_null()
    missing = pl.col(column).is_null() | (text == "")
    why = pl.when(fits).then(None)
    if missing_is_bad:
        why = why.when(missing).then(pl.lit("missing"))
    else:
        why = why.when(missing).then(None)
    why = why.when(number.is_null()).then(pl.lit("non-numeric"))
    if not dtype.is_integer():
        return why.otherwise(None)
    low, high = _integer_range(dtype)
    return (
        why.when(number != number.floor())
        .then(pl.lit("not integers"))
        # high + 1 is a power of two, exact as a float where high itself is not
        .when((number < low) | (number >= high + 1))
        .then(
            pl.lit(f"outside the supported range {low}..{high}{_range_advice(column)}")
        )
        .otherwise(pl.lit("not written as plain integers"))
    )


def _integer_range(dtype: pl.DataType) -> tuple[int, int]:
    bits = {pl.Int32: 32, pl.Int64: 64}[type(dtype)]
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _range_advice(column: str) -> str:
    if column.endswith("Id"):
        return (
            " (ids are stored as 32-bit integers): renumber the ids to fit, the same "
            "way in the ratings and movies files"
        )
    return ""
