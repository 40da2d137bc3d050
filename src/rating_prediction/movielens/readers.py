"""Reading a release's ratings, movies and users, whatever its format.

Each layout names its files' formats; the parser of each format is looked up here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl

from rating_prediction.data.schema import USERS_SCHEMA

from .own_file import explain_unreadable_own_ratings, read_own_items, scan_own_ratings
from .parsers.common import Content, file_label, release_file
from .parsers.csv_files import (
    explain_unreadable_ratings_csv,
    parse_movies_csv,
    parse_ratings_csv,
    scan_ratings_csv,
)
from .parsers.dat_files import parse_movies_dat, parse_ratings_dat, parse_users_dat
from .parsers.diagnosis import RESTORE_ADVICE
from .parsers.ml_100k import parse_u_data, parse_u_item, parse_u_split, parse_u_user
from .releases import (
    MovieLensError,
    MoviesFormat,
    RatingsFormat,
    ReleaseSource,
    UsersFormat,
)

# A file's content and how errors name it.
Parser = Callable[[Content, str], pl.DataFrame]

# Columns of the predefined-fold table: which (user, movie) pairs each fold's base and
# test files hold.
FOLD_PAIRS_SCHEMA = pl.Schema(
    {
        "userId": pl.Int32(),
        "movieId": pl.Int32(),
        "fold": pl.String(),
        "is_test": pl.Boolean(),
    }
)

RATINGS_PARSERS: Mapping[RatingsFormat, Parser] = {
    "u.data": parse_u_data,
    "ratings.dat": parse_ratings_dat,
    "ratings.csv": parse_ratings_csv,
}
MOVIES_PARSERS: Mapping[MoviesFormat, Parser] = {
    "u.item": parse_u_item,
    "movies.dat": parse_movies_dat,
    "movies.csv": parse_movies_csv,
}
USERS_PARSERS: Mapping[UsersFormat, Parser] = {
    "u.user": parse_u_user,
    "users.dat": parse_users_dat,
}


def read_ratings(source: ReleaseSource) -> pl.DataFrame:
    """Read the ratings of a release (any GroupLens format) with compact dtypes.

    Returns:
        Columns userId (Int32), movieId (Int32), rating (Float32), timestamp (Int64), in
        file order, unvalidated apart from parsing.

    Raises:
        MovieLensError: If the file is missing, unreadable or holds no rating (the
            message names the file and the first line or rows at fault).
    """
    file_format = source.layout.ratings_format
    label = file_label(source, file_format)
    ratings = RATINGS_PARSERS[file_format](release_file(source, file_format), label)
    if ratings.is_empty():
        raise MovieLensError(f"{label} holds no ratings. {RESTORE_ADVICE}")
    return ratings


def scan_ratings(source: ReleaseSource) -> pl.LazyFrame:
    """The ratings of a release as a lazy frame, with the dtypes of :func:`read_ratings`.

    ``ratings.csv`` (ml-20m and later, the synthetic sample: the large releases) is
    scanned, so it streams through the ingestion in bounded memory; the other formats
    (ml-10m at most, 10 million ratings) are parsed into memory first. A value that
    does not parse surfaces when the frame is collected; :func:`explain_unreadable_ratings`
    then names the file and the rows.

    Raises:
        MovieLensError: If the file is missing, its header lacks a column, or it holds
            no rating (only the header and the first rows are read here).
    """
    if source.own is not None:
        return scan_own_ratings(source.own)
    file_format = source.layout.ratings_format
    if file_format != "ratings.csv":
        return read_ratings(source).lazy()
    label = file_label(source, file_format)
    content = release_file(source, file_format)
    ratings = scan_ratings_csv(content, label)
    try:
        is_empty = ratings.head(1).collect().is_empty()
    except pl.exceptions.ComputeError:
        explain_unreadable_ratings(source)
        raise
    if is_empty:
        raise MovieLensError(f"{label} holds no ratings. {RESTORE_ADVICE}")
    return ratings


def explain_unreadable_ratings(source: ReleaseSource) -> None:
    """Raise a MovieLensError naming the ratings file of ``source`` and the lines or
    rows of it that do not parse (read again, streamed); return if none is found."""
    if source.own is not None:
        explain_unreadable_own_ratings(source.own)
        return
    file_format = source.layout.ratings_format
    content = release_file(source, file_format)
    label = file_label(source, file_format)
    if file_format == "ratings.csv":
        explain_unreadable_ratings_csv(content, label)
    else:
        RATINGS_PARSERS[file_format](content, label)


def read_movies(source: ReleaseSource) -> pl.DataFrame:
    """Read the movie titles of a release (any GroupLens format).

    Returns:
        Columns movieId (Int32; a file of the user's own: its ratings' id type),
        title (String), genres (String, ``|``-joined).
    """
    if source.own is not None:
        return read_own_items(source.own)
    file_format = source.layout.movies_format
    label = file_label(source, file_format)
    return MOVIES_PARSERS[file_format](release_file(source, file_format), label)


def read_users(source: ReleaseSource) -> pl.DataFrame:
    """Read the users' demographics of a release that ships them (ml-100k's
    ``u.user``, ml-1m's ``users.dat``).

    Returns:
        Columns of ``USERS_SCHEMA``, one row per line of the file; no row for a
        release (or a file of the user's own) without one.

    Raises:
        MovieLensError: If the release's users file is missing or malformed (the
            message names the file and the first line or rows at fault).
    """
    file_format = source.layout.users_format
    if source.own is not None or file_format is None:
        return pl.DataFrame(schema=USERS_SCHEMA)
    label = file_label(source, file_format)
    return USERS_PARSERS[file_format](release_file(source, file_format), label)


def read_fold(source: ReleaseSource, fold: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ratings of one predefined fold of a release: ``<fold>.base`` and
    ``<fold>.test`` (ml-100k's format, same compact dtypes as :func:`read_ratings`).

    Raises:
        MovieLensError: If the release has no such fold, or a file of it is missing
            or malformed (the message names the file).
    """
    folds = source.layout.folds
    if fold not in folds:
        raise MovieLensError(
            f"{source.release} has no predefined fold {fold!r}; its folds: "
            f"{', '.join(folds) or 'none'}."
        )
    parts = []
    for suffix in ("base", "test"):
        file_name = f"{fold}.{suffix}"
        content = release_file(source, file_name)
        parts.append(parse_u_split(content, file_label(source, file_name)))
    return parts[0], parts[1]


def read_fold_pairs(source: ReleaseSource, folds: list[str]) -> pl.DataFrame:
    """Which (userId, movieId) pairs each of ``folds`` puts in base and in test.

    Returns:
        Columns of ``FOLD_PAIRS_SCHEMA``; one row per pair and fold.
    """
    frames = [pl.DataFrame(schema=FOLD_PAIRS_SCHEMA)]
    for fold in folds:
        base, test = read_fold(source, fold)
        for part, is_test in ((base, False), (test, True)):
            frames.append(
                part.select("userId", "movieId").with_columns(
                    fold=pl.lit(fold), is_test=pl.lit(is_test)
                )
            )
    return pl.concat(frames, how="vertical_relaxed").cast(dict(FOLD_PAIRS_SCHEMA))
