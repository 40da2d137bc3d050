"""Nodes of the ``data_processing`` pipeline: keep the most-rated movies, map the
original ids to contiguous 0-based indices and split the ratings into train, val and
test sets.

The id mappings cover every filtered rating, not only the training split, so a user
or movie that appears only in val or test still has an index. The training code
treats indices absent from the training split as unknown (zero factors and biases),
so such ratings get the fallback prediction.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import polars as pl

from rating_prediction.parameters import ProcessingParameters, parse
from rating_prediction.schema import MAPPED_RATINGS_SCHEMA, SPLITS

logger = logging.getLogger(__name__)


def filter_top_movies(
    ratings: pl.DataFrame, processing: dict[str, Any]
) -> pl.DataFrame:
    """Keeps the ratings of the ``processing.top_n_movies`` most-rated movies (all if
    ``null``).

    Movies with equal rating counts are ranked by ascending ``movieId``, so the
    selection does not depend on the input row order. A non-empty input always keeps
    at least one movie, so only an empty input can leave nothing to process.
    """
    top_n_movies = parse(ProcessingParameters, processing, "processing").top_n_movies
    if ratings.is_empty():
        raise ValueError(
            "The input 'ratings' is empty: there is nothing to process. "
            "Check the data_ingestion output and the 'ingestion.dataset' parameter."
        )
    if top_n_movies is None:
        filtered = ratings
    else:
        top_movies = (
            ratings.lazy()
            .group_by("movieId")
            .agg(pl.len().alias("n_ratings"))
            .sort(["n_ratings", "movieId"], descending=[True, False])
            .head(top_n_movies)
            .select("movieId")
        )
        filtered = ratings.lazy().join(top_movies, on="movieId", how="semi").collect()
    logger.info(
        "Kept %d of %d ratings (top_n_movies=%s): %d users, %d movies.",
        filtered.height,
        ratings.height,
        top_n_movies,
        filtered["userId"].n_unique(),
        filtered["movieId"].n_unique(),
    )
    return filtered


def create_user_mapping(ratings: pl.DataFrame) -> pl.DataFrame:
    """Maps each ``userId`` to a contiguous 0-based ``userIdMapped`` in ascending id order."""
    return _create_id_mapping(ratings, "userId")


def create_movie_mapping(ratings: pl.DataFrame) -> pl.DataFrame:
    """Maps each ``movieId`` to a contiguous 0-based ``movieIdMapped`` in ascending id order."""
    return _create_id_mapping(ratings, "movieId")


def apply_id_mappings(
    ratings: pl.DataFrame, user_mapping: pl.DataFrame, movie_mapping: pl.DataFrame
) -> pl.DataFrame:
    """Adds ``userIdMapped`` and ``movieIdMapped`` to the ratings with two joins.

    Returns the six columns of ``MAPPED_RATINGS_SCHEMA`` sorted by the mapped ids.
    """
    return (
        ratings.lazy()
        .join(user_mapping.lazy(), on="userId", how="inner")
        .join(movie_mapping.lazy(), on="movieId", how="inner")
        .select(
            pl.col(name).cast(dtype) for name, dtype in MAPPED_RATINGS_SCHEMA.items()
        )
        .sort(_rating_order())
        .collect()
    )


def split_ratings(
    ratings: pl.DataFrame, processing: dict[str, Any]
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Splits the mapped ratings into train, val and test sets, as
    ``processing.split`` says.

    ``split.strategy`` is ``random`` (a seeded permutation of all ratings cut at
    ``split.fractions``) or ``temporal`` (per user: the earliest ratings to train,
    the latest to test, and at least one rating to train). Each set keeps the input
    columns, sorted by the mapped ids. Users and movies absent from train keep their
    mapped index; the training code treats them as unknown.
    """
    split = parse(ProcessingParameters, processing, "processing").split
    fractions = split.fractions
    # Sorting first makes the result independent of the order the rows arrive in.
    ratings = ratings.sort(_rating_order())
    if split.strategy == "random":
        split_index = _random_split_index(ratings.height, fractions, split.seed)
    else:
        split_index = _temporal_split_index(ratings, fractions)
    labelled = ratings.with_columns(split_index.alias("split_index"))
    train, val, test = (
        labelled.filter(pl.col("split_index") == index).drop("split_index")
        for index in range(len(SPLITS))
    )
    if train.is_empty():
        raise ValueError(
            f"The training split is empty ({ratings.height} ratings, fractions "
            f"{list(fractions)}); raise the first of 'processing.split.fractions'."
        )
    logger.info(
        "Split %d ratings (%s): train %d, val %d, test %d.",
        ratings.height,
        split.strategy,
        train.height,
        val.height,
        test.height,
    )
    return train, val, test


def _rating_order() -> pl.Expr:
    """Sort key unique per rating: (userIdMapped, movieIdMapped) packed in one Int64.

    On 25M ratings, sorting by one key is about 3x faster than by two columns.
    """
    return pl.col("userIdMapped").cast(pl.Int64) * 2**32 + pl.col("movieIdMapped")


def _create_id_mapping(ratings: pl.DataFrame, id_column: str) -> pl.DataFrame:
    return (
        ratings.select(pl.col(id_column).cast(pl.Int32).unique().sort())
        .with_row_index(f"{id_column}Mapped")
        .select(id_column, pl.col(f"{id_column}Mapped").cast(pl.Int32))
    )


def _random_split_index(n_ratings: int, fractions: list[float], seed: int) -> pl.Series:
    """Labels rows 0/1/2 by their position in a seeded random permutation."""
    train_end, val_end = _cut_points(n_ratings, fractions)
    position = np.random.default_rng(seed).permutation(n_ratings)
    split_index = np.full(n_ratings, 2, dtype=np.int8)
    split_index[position < val_end] = 1
    split_index[position < train_end] = 0
    return pl.Series(split_index)


def _temporal_split_index(ratings: pl.DataFrame, fractions: list[float]) -> pl.Series:
    """Labels each user's ratings 0/1/2 by time: earliest to train, latest to test.

    Expects ``ratings`` sorted by (userIdMapped, movieIdMapped).
    """
    train_fraction, val_fraction, _ = fractions
    # 1-based chronological position within the user. The ratings are sorted by
    # (userIdMapped, movieIdMapped) and "ordinal" ranks ties in row order, so movieId
    # breaks timestamp ties (2x faster than ranking a (timestamp, movie) struct).
    position = pl.col("timestamp").rank("ordinal").over("userIdMapped")
    n_user_ratings = pl.len().over("userIdMapped")
    # Every user keeps at least their first rating in train, so the model knows them.
    train_end = (n_user_ratings * train_fraction).round().clip(lower_bound=1)
    val_end = (n_user_ratings * (train_fraction + val_fraction)).round()
    return ratings.select(
        pl.when(position <= train_end)
        .then(0)
        .when(position <= val_end)
        .then(1)
        .otherwise(2)
        .cast(pl.Int8)
    ).to_series()


def _cut_points(n_ratings: int, fractions: list[float]) -> tuple[int, int]:
    """Returns the end of train and val, rounding cumulative fractions so sizes add up."""
    train_fraction, val_fraction, _ = fractions
    train_end = round(n_ratings * train_fraction)
    val_end = min(n_ratings, round(n_ratings * (train_fraction + val_fraction)))
    return train_end, val_end
