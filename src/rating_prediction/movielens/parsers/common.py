"""What the format parsers share: getting a file out of a release, decoding, splitting,
casting to the contract's dtypes and naming the rows that do not parse."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import TypeAlias

import polars as pl

from rating_prediction.movielens.releases import MovieLensError, ReleaseSource
from rating_prediction.schema import MOVIES_SCHEMA, RATINGS_SCHEMA

# A file of a release: its path in an extracted folder, or its bytes from the zip.
Content: TypeAlias = Path | bytes


def release_file(source: ReleaseSource, file_name: str) -> Content:
    """Return a file of a release: its path in a folder, or its bytes from the zip.

    Paths let polars scan lazily; zip members must be decompressed into memory.
    """
    if source.path.is_dir():
        return source.path / file_name
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
            return archive.read(min(members, key=lambda name: name.count("/")))
    except zipfile.BadZipFile as error:
        raise MovieLensError(
            f"{source.path} is not a valid zip archive ({error}); delete it to "
            "download it again."
        ) from error


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
    not a number is an error naming the rows. The typed CSV readers are faster and
    fall back to this path only to tell which rows are bad.
    """
    ratings = raw.select(
        pl.col(column).str.strip_chars().cast(dtype, strict=False).alias(column)
        for column, dtype in RATINGS_SCHEMA.items()
    ).collect()
    unparsed = pl.any_horizontal(pl.col(column).is_null() for column in RATINGS_SCHEMA)
    if ratings.select(unparsed.any()).item():
        _raise_unparsable(raw, file_name)
    return ratings


def _raise_unparsable(raw: pl.LazyFrame, file_name: str) -> None:
    """Raise an error listing the rows whose present values are not numbers."""
    not_a_number = pl.any_horizontal(
        pl.col(column).is_not_null()
        & pl.col(column).str.strip_chars().cast(dtype, strict=False).is_null()
        for column, dtype in RATINGS_SCHEMA.items()
    )
    bad_rows = raw.with_row_index("row", offset=1).filter(not_a_number).collect()
    if bad_rows.height:
        raise MovieLensError(
            f"{file_name}: {bad_rows.height} row(s) hold non-numeric values; first "
            f"{min(bad_rows.height, 5)} (row numbers count data lines from 1):\n"
            f"{bad_rows.head(5)}"
        )


def cast_movies(movies: pl.DataFrame, file_name: str) -> pl.DataFrame:
    """Cast string movie columns to their dtypes; every movie needs an integer id."""
    typed = movies.select(
        pl.col("movieId")
        .str.strip_chars()
        .cast(MOVIES_SCHEMA["movieId"], strict=False),
        pl.col("title").cast(MOVIES_SCHEMA["title"]),
        pl.col("genres").cast(MOVIES_SCHEMA["genres"]),
    )
    bad_rows = movies.with_row_index("row", offset=1).filter(typed["movieId"].is_null())
    if bad_rows.height:
        raise MovieLensError(
            f"{file_name}: {bad_rows.height} row(s) have a missing or non-integer "
            f"movieId; first {min(bad_rows.height, 5)}:\n{bad_rows.head(5)}"
        )
    return typed
