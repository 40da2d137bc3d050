"""``ratings.csv`` and ``movies.csv``: ml-20m and later releases, and the synthetic
sample (headed, comma-separated, quoted, UTF-8)."""

from __future__ import annotations

import polars as pl

from rating_prediction.data.schema import MOVIES_SCHEMA, RATINGS_SCHEMA

from .common import (
    Content,
    cast_movies,
    cast_ratings,
    reading,
    reject_unreadable,
    require_columns,
)
from .diagnosis import TextLayout, explained_read_errors

CSV_LAYOUT = TextLayout(",", quoted=True)


def scan_ratings_csv(content: Content, file_name: str = "ratings.csv") -> pl.LazyFrame:
    """A lazy scan of a ``ratings.csv`` (header userId,movieId,rating,timestamp; ml-20m
    and later) with the contract's dtypes.

    Only the header is read here: the rows are parsed as the frame is collected or
    streamed, so a file of any size (the Netflix Prize's 100 million ratings) goes
    through in bounded memory. A value that does not parse raises polars'
    ``ComputeError`` then; :func:`explain_unreadable_ratings_csv` tells which rows.
    """
    with explained_read_errors(content, file_name, CSV_LAYOUT):
        header = pl.scan_csv(content, infer_schema=False).collect_schema().names()
    require_columns(header, list(RATINGS_SCHEMA), file_name)
    return pl.scan_csv(
        content, infer_schema=False, schema_overrides=RATINGS_SCHEMA
    ).select(list(RATINGS_SCHEMA))


def parse_ratings_csv(content: Content, file_name: str = "ratings.csv") -> pl.DataFrame:
    """Parse a ``ratings.csv`` into memory (:func:`scan_ratings_csv`, collected).

    Errors name ``file_name`` (pass the file's path or place in its archive).
    """
    ratings = scan_ratings_csv(content, file_name)
    with (
        reading(content, file_name),
        explained_read_errors(content, file_name, CSV_LAYOUT),
    ):
        try:
            return ratings.collect()
        except pl.exceptions.ComputeError:
            return cast_ratings(_ratings_as_text(content), file_name)


def explain_unreadable_ratings_csv(content: Content, file_name: str) -> None:
    """Raise a MovieLensError naming ``file_name`` and the lines or rows that keep a
    ``ratings.csv`` from parsing; the file is streamed, never held."""
    with explained_read_errors(content, file_name, CSV_LAYOUT):
        reject_unreadable(_ratings_as_text(content), RATINGS_SCHEMA, file_name)


def _ratings_as_text(content: Content) -> pl.LazyFrame:
    """The rating columns of a ``ratings.csv`` as strings, to tell which values do not
    parse."""
    return pl.scan_csv(content, infer_schema=False).select(list(RATINGS_SCHEMA))


def parse_movies_csv(content: Content, file_name: str = "movies.csv") -> pl.DataFrame:
    """Parse a ``movies.csv`` (quoted CSV movieId,title,genres in UTF-8)."""
    with explained_read_errors(content, file_name, CSV_LAYOUT):
        movies = pl.read_csv(content, infer_schema=False)
    require_columns(movies.columns, list(MOVIES_SCHEMA), file_name)
    return cast_movies(movies, file_name)
