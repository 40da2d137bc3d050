"""``ratings.dat``, ``movies.dat`` and ``users.dat``: ml-1m and ml-10m
(``::``-separated, no header; only ml-1m has ``users.dat``)."""

from __future__ import annotations

import polars as pl

from rating_prediction.data.schema import MOVIES_SCHEMA, RATINGS_SCHEMA

from .common import (
    Content,
    as_utf8,
    cast_movies,
    cast_ratings,
    cast_users,
    reading,
    split_lines,
)
from .diagnosis import TextLayout, check_lines, explained_read_errors

# ml-1m's README: UserID::Gender::Age::Occupation::Zip-code.
USERS_DAT_COLUMNS = ("userId", "gender", "age", "occupation", "zip")
USERS_DAT_LAYOUT = TextLayout("::", columns=USERS_DAT_COLUMNS, utf8_only=False)


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


def parse_users_dat(content: Content, file_name: str = "users.dat") -> pl.DataFrame:
    """Parse ml-1m's ``users.dat`` (``UserID::Gender::Age::Occupation::Zip-code``) into
    ``USERS_SCHEMA``, its codes kept: age as the age group's code (1, 18, 25, 35, 45,
    50, 56), occupation as its code (``"0"`` .. ``"20"``), both named in ml-1m's README.

    Raises:
        MovieLensError: Naming ``file_name`` and the first line without five fields,
            or the rows whose id or age is not an integer.
    """
    check_lines(content, file_name, USERS_DAT_LAYOUT)
    users = split_lines(as_utf8(content), "::", list(USERS_DAT_COLUMNS)).collect()
    return cast_users(users, file_name)
