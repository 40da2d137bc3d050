"""Reading a release's ratings and movies, whatever its format.

Each layout names its files' formats; the parser of each format is looked up here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import polars as pl

from .parsers.common import Content, release_file
from .parsers.csv_files import parse_movies_csv, parse_ratings_csv
from .parsers.dat_files import parse_movies_dat, parse_ratings_dat
from .parsers.ml_100k import parse_u_data, parse_u_item
from .releases import MoviesFormat, RatingsFormat, ReleaseSource

Parser = Callable[[Content], pl.DataFrame]

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


def read_ratings(source: ReleaseSource) -> pl.DataFrame:
    """Read the ratings of a release (any GroupLens format) with compact dtypes.

    Returns:
        Columns userId (Int32), movieId (Int32), rating (Float32), timestamp (Int64), in
        file order, unvalidated apart from parsing.
    """
    file_format = source.layout.ratings_format
    return RATINGS_PARSERS[file_format](release_file(source, file_format))


def read_movies(source: ReleaseSource) -> pl.DataFrame:
    """Read the movie titles of a release (any GroupLens format).

    Returns:
        Columns movieId (Int32), title (String), genres (String, ``|``-joined).
    """
    file_format = source.layout.movies_format
    return MOVIES_PARSERS[file_format](release_file(source, file_format))
