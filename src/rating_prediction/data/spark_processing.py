"""Data processing on Spark DataFrames (``kedro run --env spark``): the top-N movie
filter, the id mappings and the split labels, the same as one machine computes them
(:mod:`rating_prediction.data.splitting`, the data_processing pipeline), on data no
machine holds whole. Only the chosen movies' ids, counts and the mappings are small
enough to come together; the ratings stay on the executors.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from rating_prediction.data.splitting import (
    HASH_BITS,
    SPARK_STRATEGIES,
    TEST,
    TRAIN,
    VAL,
    hash_thresholds,
)

SPLIT_LABEL = "split_label"
MAPPED_COLUMNS = (
    "userId",
    "movieId",
    "rating",
    "timestamp",
    "userIdMapped",
    "movieIdMapped",
)


def top_movies(ratings: DataFrame, top_n_movies: int | None) -> DataFrame:
    """The ratings of the ``top_n_movies`` most-rated movies (all with ``None``),
    equal counts ranked by ascending ``movieId``, as on one machine. Only the counts
    per movie are ordered; the chosen ids are broadcast to every executor."""
    if top_n_movies is None:
        return ratings
    chosen = (
        ratings.groupBy("movieId")
        .count()
        .orderBy(F.col("count").desc(), F.col("movieId").asc())
        .limit(top_n_movies)
        .select("movieId")
    )
    return ratings.join(F.broadcast(chosen), "movieId", "left_semi")


def id_mapping(ratings: DataFrame, id_column: str) -> DataFrame:
    """Each distinct ``id_column`` value and its 0-based index ``<id_column>Mapped``
    (int), numbered in ascending id order: text ids in byte order, as polars sorts
    them. The numbering runs over the distinct ids in one partition: ids, never
    ratings."""
    order = Window.orderBy(F.col(id_column).asc())
    index = (F.row_number().over(order) - 1).cast("int")
    return (
        ratings.select(id_column)
        .distinct()
        .select(id_column, index.alias(f"{id_column}Mapped"))
    )


def apply_mappings(
    ratings: DataFrame, user_mapping: DataFrame, movie_mapping: DataFrame
) -> DataFrame:
    """The ratings with ``userIdMapped`` and ``movieIdMapped`` (``MAPPED_COLUMNS``);
    a rating whose id a mapping lacks is dropped, as on one machine."""
    return (
        ratings.join(user_mapping, "userId")
        .join(movie_mapping, "movieId")
        .select(*MAPPED_COLUMNS)
    )


def labelled(
    ratings: DataFrame, strategy: str, fractions: list[float], seed: int
) -> DataFrame:
    """``ratings`` with ``SPLIT_LABEL`` (0 train, 1 val, 2 test) by ``strategy``:
    ``hash`` (:func:`hash_labels`) or ``temporal`` (:func:`temporal_labels`).

    Raises:
        ValueError: For a strategy Spark does not run (``random``, ``predefined``,
            ``kfold``), saying which do.
    """
    if strategy == "hash":
        return hash_labels(ratings, fractions, seed)
    if strategy == "temporal":
        return temporal_labels(ratings, fractions)
    raise ValueError(
        f"Spark does not run the {strategy!r} split (processing.split.strategy): it "
        "needs all ratings in one place and one order. Use 'hash', which partitions "
        f"and gives the same split on one machine; valid here: {', '.join(SPARK_STRATEGIES)}."
    )


def hash_labels(ratings: DataFrame, fractions: list[float], seed: int) -> DataFrame:
    """``ratings`` with the hash split's label: Spark's ``xxhash64`` of (seed,
    userIdMapped, movieIdMapped), which one machine computes too
    (:func:`rating_prediction.data.splitting.hash_split_labels`), so both give every
    rating the same label."""
    hashed = F.xxhash64(
        F.lit(seed).cast("bigint"),
        F.col("userIdMapped").cast("int"),
        F.col("movieIdMapped").cast("int"),
    )
    top_bits = F.shiftrightunsigned(hashed, 64 - HASH_BITS)
    train_end, val_end = hash_thresholds(fractions)
    return ratings.withColumn(
        SPLIT_LABEL, _label(top_bits < train_end, top_bits < val_end)
    )


def temporal_labels(ratings: DataFrame, fractions: list[float]) -> DataFrame:
    """Per user, the earliest ratings to train and the latest to test, cut at
    ``fractions`` with every user keeping a training rating: one machine's temporal
    split (ties in time broken by ``movieIdMapped``, rounding half to even), in window
    functions over each user's ratings.

    Raises:
        ValueError: If a rating has no timestamp (a file of your own without one).
    """
    undated = ratings.filter(F.col("timestamp").isNull()).limit(1).count()
    if undated:
        raise ValueError(
            "The temporal split (processing.split.strategy: temporal) orders each "
            "user's ratings by time, but some ratings have no timestamp (a file of "
            "your own without ingestion.file.columns.timestamp). Name the file's "
            "timestamp column, or use the 'hash' split."
        )
    train_fraction, val_fraction, _ = fractions
    by_user = Window.partitionBy("userIdMapped")
    position = F.row_number().over(by_user.orderBy("timestamp", "movieIdMapped"))
    n_user_ratings = F.count(F.lit(1)).over(by_user)
    train_end = F.greatest(F.bround(n_user_ratings * train_fraction), F.lit(1.0))
    val_end = F.bround(n_user_ratings * (train_fraction + val_fraction))
    return ratings.withColumn(
        SPLIT_LABEL, _label(position <= train_end, position <= val_end)
    )


def _label(is_train: Column, is_val: Column) -> Column:
    return F.when(is_train, TRAIN).when(is_val, VAL).otherwise(TEST).cast("tinyint")


def split_parts(ratings: DataFrame) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Train, val and test of ratings labelled by :func:`labelled`, without the
    label."""
    train, val, test = (
        ratings.filter(F.col(SPLIT_LABEL) == label).drop(SPLIT_LABEL)
        for label in (TRAIN, VAL, TEST)
    )
    return train, val, test


def label_counts(ratings: DataFrame) -> dict[int, int]:
    """How many ratings each label holds (one pass; three numbers come back)."""
    counts = ratings.groupBy(SPLIT_LABEL).count().collect()
    found = {int(row[SPLIT_LABEL]): int(row["count"]) for row in counts}
    return {label: found.get(label, 0) for label in (TRAIN, VAL, TEST)}
