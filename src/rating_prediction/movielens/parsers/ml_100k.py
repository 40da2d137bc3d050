"""``u.data``, ``u.item`` and ``u.user``: ml-100k's tab-separated ratings, and its
``|``-separated, Latin-1 movie list (one flag column per genre) and users."""

from __future__ import annotations

import polars as pl

from rating_prediction.data.schema import ML_100K_GENRES, RATINGS_SCHEMA

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

U_DATA_LAYOUT = TextLayout("\t", columns=tuple(RATINGS_SCHEMA))
U_ITEM_COLUMNS = ("movieId", "title", "released", "video_released", "imdb_url") + tuple(
    f"is_{genre}" for genre in ML_100K_GENRES
)
U_ITEM_LAYOUT = TextLayout("|", columns=U_ITEM_COLUMNS, utf8_only=False)
U_USER_COLUMNS = ("userId", "age", "gender", "occupation", "zip")
U_USER_LAYOUT = TextLayout("|", columns=U_USER_COLUMNS, utf8_only=False)


def parse_u_data(content: Content, file_name: str = "u.data") -> pl.DataFrame:
    """Parse ml-100k's ``u.data`` (tab-separated user, item, rating, timestamp).

    The official split files (``u1.base``, ``u1.test``, ..., ``ub.test``) have the same
    format: pass their name as ``file_name`` so an error names the file.
    """
    with (
        reading(content, file_name),
        explained_read_errors(content, file_name, U_DATA_LAYOUT),
    ):
        try:
            return pl.scan_csv(
                content,
                separator="\t",
                has_header=False,
                quote_char=None,
                new_columns=list(RATINGS_SCHEMA),
                infer_schema=False,
                schema_overrides=RATINGS_SCHEMA,
            ).collect()
        except pl.exceptions.ComputeError:
            raw = split_lines(content, "\t", list(RATINGS_SCHEMA))
            return cast_ratings(raw, file_name)


def parse_u_split(content: Content, file_name: str) -> pl.DataFrame:
    """Parse one of ml-100k's split files (``u1.base`` ... ``ub.test``), u.data's format."""
    return parse_u_data(content, file_name)


def parse_u_item(content: Content, file_name: str = "u.item") -> pl.DataFrame:
    """Parse ml-100k's ``u.item`` (``|``-separated, Latin-1) with genre flag columns.

    The 19 genre flags become a ``|``-joined genre string like the other releases use
    (null when no flag is set).
    """
    flag_columns = list(U_ITEM_COLUMNS[5:])
    with explained_read_errors(content, file_name, U_ITEM_LAYOUT):
        items = pl.read_csv(
            as_utf8(content),
            separator="|",
            has_header=False,
            quote_char=None,
            new_columns=list(U_ITEM_COLUMNS),
            infer_schema=False,
        )
    genres = pl.concat_str(
        [
            pl.when(pl.col(flag) == "1").then(pl.lit(genre))
            for flag, genre in zip(flag_columns, ML_100K_GENRES, strict=True)
        ],
        separator="|",
        ignore_nulls=True,
    )
    movies = items.select(
        "movieId", "title", pl.when(genres != "").then(genres).alias("genres")
    )
    return cast_movies(movies, file_name)


def parse_u_user(content: Content, file_name: str = "u.user") -> pl.DataFrame:
    """Parse ml-100k's ``u.user`` (``|``-separated user id, age, gender, occupation,
    zip code; Latin-1) into ``USERS_SCHEMA``: age in years, occupation by name.

    Raises:
        MovieLensError: Naming ``file_name`` and the first line without five fields,
            or the rows whose id or age is not an integer.
    """
    check_lines(content, file_name, U_USER_LAYOUT)
    users = split_lines(as_utf8(content), "|", list(U_USER_COLUMNS)).collect()
    return cast_users(users, file_name)
