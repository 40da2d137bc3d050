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

import polars as pl

from rating_prediction.data.schema import MAPPED_RATINGS_SCHEMA, RATINGS_SCHEMA
from rating_prediction.data.splitting import split_by_label, split_labels
from rating_prediction.parameters import (
    ProcessingParameters,
    SplitParameters,
    parse,
)

logger = logging.getLogger(__name__)

MAPPED_ID_COLUMNS = ["userIdMapped", "movieIdMapped"]
ORIGINAL_ID_COLUMNS = ["userId", "movieId"]


def filter_top_movies(
    ratings: pl.DataFrame | pl.LazyFrame, processing: dict[str, Any]
) -> pl.DataFrame:
    """Keeps the ratings of the ``processing.top_n_movies`` most-rated movies (all if
    ``null``).

    Movies with equal rating counts are ranked by ascending ``movieId``, so the
    selection does not depend on the input row order. A non-empty input always keeps
    at least one movie, so only an empty input can leave nothing to process.
    ``ratings`` is lazy when ingestion's output is passed in memory, not through the
    catalog's parquet file.
    """
    top_n_movies = parse(ProcessingParameters, processing, "processing").top_n_movies
    ratings = ratings.lazy().collect()
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
    """Maps each ``userId`` to a contiguous 0-based ``userIdMapped`` in ascending id
    order (text ids in byte order); the ids keep their type."""
    return _create_id_mapping(ratings, "userId")


def create_movie_mapping(ratings: pl.DataFrame) -> pl.DataFrame:
    """Maps each ``movieId`` to a contiguous 0-based ``movieIdMapped`` in ascending id
    order (text ids in byte order); the ids keep their type."""
    return _create_id_mapping(ratings, "movieId")


def apply_id_mappings(
    ratings: pl.DataFrame, user_mapping: pl.DataFrame, movie_mapping: pl.DataFrame
) -> pl.DataFrame:
    """Adds ``userIdMapped`` and ``movieIdMapped``: each id looked up in its mapping by
    binary search, next to the ratings' own columns (not copied). Ratings of an id
    absent from a mapping are dropped, as an inner join would.

    Returns the six columns of ``MAPPED_RATINGS_SCHEMA`` sorted by the mapped ids;
    ratings sorted by (userId, movieId), as ingestion writes them, are already.
    """
    mapped = ratings.select(list(RATINGS_SCHEMA)).with_columns(
        _mapped_ids(ratings["userId"], user_mapping, "userId"),
        _mapped_ids(ratings["movieId"], movie_mapping, "movieId"),
    )
    if mapped.null_count().select(pl.sum_horizontal(MAPPED_ID_COLUMNS)).item():
        mapped = mapped.drop_nulls(MAPPED_ID_COLUMNS)
    # The original ids keep their type (Int32, or String from a file of the user's
    # own); everything else takes the contract's dtypes.
    typed = {
        column: dtype
        for column, dtype in MAPPED_RATINGS_SCHEMA.items()
        if column not in ORIGINAL_ID_COLUMNS
    }
    return _sorted_by_mapped_ids(mapped.cast(typed))


def _mapped_ids(ids: pl.Series, mapping: pl.DataFrame, id_column: str) -> pl.Series:
    """The mapped index of each of ``ids`` in ``mapping``; null where it has none."""
    index_column = f"{id_column}Mapped"
    by_id = mapping.sort(id_column)
    if by_id.is_empty():
        return pl.Series(index_column, [None] * ids.len(), dtype=pl.Int32)
    position = by_id[id_column].search_sorted(ids).clip(upper_bound=by_id.height - 1)
    found = by_id[id_column].gather(position) == ids
    return (
        by_id[index_column]
        .gather(position)
        .zip_with(found, pl.Series([None], dtype=by_id[index_column].dtype))
        .alias(index_column)
    )


def _sorted_by_mapped_ids(ratings: pl.DataFrame) -> pl.DataFrame:
    """``ratings`` sorted by (userIdMapped, movieIdMapped); a sorted frame as it is."""
    order = ratings.select(_rating_order()).to_series()
    return ratings if order.is_sorted() else ratings.sort(order)


def split_ratings(
    ratings: pl.DataFrame,
    processing: dict[str, Any],
    predefined_folds: pl.DataFrame | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Splits the mapped ratings into train, val and test sets by ``processing.split``
    (its strategies: :func:`rating_prediction.data.splitting.split_labels`).

    Each set keeps the input columns, sorted by the mapped ids. Users and movies
    absent from train keep their mapped index; the training code treats them as
    unknown.
    """
    split = parse(ProcessingParameters, processing, "processing").split
    # Sorting first makes the result independent of the order the rows arrive in.
    ratings = _sorted_by_mapped_ids(ratings)
    labels = split_labels(
        ratings,
        split.strategy,
        seed=split.seed,
        fractions=split.fractions,
        val_fraction=split.val_fraction,
        fold=split.fold,
        fold_pairs=predefined_folds,
    )
    splits = split_by_label(ratings, labels)
    _check_and_log(splits, ratings.height, split)
    return splits


def _check_and_log(
    splits: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
    n_ratings: int,
    split: SplitParameters,
) -> None:
    """Refuses an empty training split; logs the sizes of the three."""
    train, val, test = splits
    if train.is_empty():
        raise ValueError(
            f"The training split is empty ({n_ratings} ratings, fractions "
            f"{list(split.fractions)}); raise the first of "
            "'processing.split.fractions'."
        )
    logger.info(
        "Split %d ratings (%s): train %d, val %d, test %d.",
        n_ratings,
        split.strategy,
        train.height,
        val.height,
        test.height,
    )


def _rating_order() -> pl.Expr:
    """Sort key unique per rating: (userIdMapped, movieIdMapped) packed in one Int64.

    Sorting by one key is faster than by two columns (docs: Performance).
    """
    return pl.col("userIdMapped").cast(pl.Int64) * 2**32 + pl.col("movieIdMapped")


def _create_id_mapping(ratings: pl.DataFrame, id_column: str) -> pl.DataFrame:
    return (
        ratings.select(pl.col(id_column).unique().sort())
        .with_row_index(f"{id_column}Mapped")
        .select(id_column, pl.col(f"{id_column}Mapped").cast(pl.Int32))
    )
