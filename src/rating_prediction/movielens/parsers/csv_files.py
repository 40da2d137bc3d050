"""``ratings.csv`` and ``movies.csv``: ml-20m and later releases, and the synthetic
sample (headed, comma-separated, quoted, UTF-8)."""

from __future__ import annotations

import polars as pl

from rating_prediction.schema import MOVIES_SCHEMA, RATINGS_SCHEMA

from .common import Content, cast_movies, cast_ratings, require_columns


def scan_ratings_csv(content: Content) -> pl.LazyFrame:
    """A lazy scan of a ``ratings.csv`` (header userId,movieId,rating,timestamp; ml-20m
    and later) with the contract's dtypes.

    Only the header is read here: the rows are parsed as the frame is collected or
    streamed, so a file of any size (the Netflix Prize's 100 million ratings) goes
    through in bounded memory. A value that does not parse raises polars'
    ``ComputeError`` then; :func:`parse_ratings_csv` counts and shows such rows.
    """
    header = pl.scan_csv(content, infer_schema=False).collect_schema().names()
    require_columns(header, list(RATINGS_SCHEMA), "ratings.csv")
    return pl.scan_csv(
        content, infer_schema=False, schema_overrides=RATINGS_SCHEMA
    ).select(list(RATINGS_SCHEMA))


def parse_ratings_csv(content: Content) -> pl.DataFrame:
    """Parse a ``ratings.csv`` into memory (:func:`scan_ratings_csv`, collected)."""
    ratings = scan_ratings_csv(content)
    try:
        return ratings.collect()
    except pl.exceptions.ComputeError:
        raw = pl.scan_csv(content, infer_schema=False).select(list(RATINGS_SCHEMA))
        return cast_ratings(raw, "ratings.csv")


def parse_movies_csv(content: Content) -> pl.DataFrame:
    """Parse a ``movies.csv`` (quoted CSV movieId,title,genres in UTF-8)."""
    movies = pl.read_csv(content, infer_schema=False)
    require_columns(movies.columns, list(MOVIES_SCHEMA), "movies.csv")
    return cast_movies(movies, "movies.csv")
