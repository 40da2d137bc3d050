"""``ratings.dat`` and ``movies.dat``: ml-1m and ml-10m (``::``-separated, no header)."""

from __future__ import annotations

import polars as pl

from rating_prediction.data.schema import MOVIES_SCHEMA, RATINGS_SCHEMA

from .common import Content, as_utf8, cast_movies, cast_ratings, reading, split_lines
from .diagnosis import TextLayout, explained_read_errors


def parse_ratings_dat(content: Content, file_name: str = "ratings.dat") -> pl.DataFrame:
    """Parse a ``ratings.dat`` (``::``-separated; ml-1m and ml-10m)."""
    layout = TextLayout("::")
    with reading(content, file_name), explained_read_errors(content, file_name, layout):
        raw = split_lines(content, "::", list(RATINGS_SCHEMA))
        return cast_ratings(raw, file_name)


def parse_movies_dat(content: Content, file_name: str = "movies.dat") -> pl.DataFrame:
    """Parse a ``movies.dat`` (``::``-separated; UTF-8 in ml-10m, Latin-1 in ml-1m)."""
    movies = split_lines(as_utf8(content), "::", list(MOVIES_SCHEMA)).collect()
    return cast_movies(movies, file_name)
