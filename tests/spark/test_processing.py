"""Data processing on Spark against one machine's: the top-N filter, the id mappings
(integer and text ids) and the hash and temporal splits give the same rows."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from rating_prediction.data.spark_processing import (
    SPLIT_LABEL,
    apply_mappings,
    id_mapping,
    label_counts,
    labelled,
    split_parts,
    top_movies,
)
from rating_prediction.data.splitting import (
    hash_split_labels,
    temporal_split_labels,
    xxh64_long,
)
from rating_prediction.pipelines.data_processing import nodes as one_machine

FRACTIONS = [0.7, 0.2, 0.1]


def ratings_frame(
    n_ratings: int, text_ids: bool = False, seed: int = 3
) -> pl.DataFrame:
    """Random ratings with repeated timestamps (ties) and, optionally, text ids."""
    rng = np.random.default_rng(seed)
    ratings = pl.DataFrame(
        {
            "userId": rng.integers(1, 300, n_ratings).astype(np.int32),
            "movieId": rng.integers(1, 120, n_ratings).astype(np.int32),
            "rating": rng.integers(1, 11, n_ratings).astype(np.float32) / 2,
            "timestamp": rng.integers(0, 50, n_ratings),
        }
    ).unique(["userId", "movieId"], keep="first", maintain_order=True)
    if text_ids:
        # "u10" sorts before "u9": the mapping must follow byte order, not numbers.
        ratings = ratings.with_columns(
            pl.format("u{}", "userId").alias("userId"),
            pl.format("m{}", "movieId").alias("movieId"),
        )
    return ratings


def on_spark(spark, frame: pl.DataFrame):
    return spark.createDataFrame(frame.to_arrow())


def collected(frame) -> pl.DataFrame:
    return pl.from_arrow(frame.toArrow())


def sorted_rows(frame: pl.DataFrame, *columns: str) -> list[tuple]:
    return frame.select(columns).sort(columns).rows()


def test_the_polars_hash_is_sparks_xxhash64(spark):
    """The one hash both engines compute: XXH64 of the seed as Spark hashes a bigint,
    and the labels of extreme indices under several seeds."""
    for seed in (0, 17, 2**32 - 1):
        spark_hash = spark.sql(f"select xxhash64(cast({seed} as bigint)) as h").first()
        assert xxh64_long(seed, 42) == spark_hash["h"] % 2**64
    extremes = [0, 1, 2, 65_535, 65_536, 2**31 - 2, 2**31 - 1]
    mapped = pl.DataFrame(
        {"userIdMapped": extremes * 7, "movieIdMapped": sorted(extremes * 7)},
        schema={"userIdMapped": pl.Int32, "movieIdMapped": pl.Int32},
    )
    for seed in (0, 5, 2**32 - 1):
        spark_labels = collected(
            labelled(on_spark(spark, mapped), "hash", [0.5, 0.25, 0.25], seed)
        )
        expected = hash_split_labels(mapped, [0.5, 0.25, 0.25], seed)
        assert spark_labels[SPLIT_LABEL].cast(pl.Int8).to_list() == expected.to_list()


@pytest.mark.parametrize("text_ids", [False, True])
def test_filter_mappings_and_both_splits_match_one_machine(spark, text_ids):
    ratings = ratings_frame(6000, text_ids)
    processing = {
        "top_n_movies": 40,
        "split": {"strategy": "hash", "fractions": FRACTIONS, "seed": 7},
    }
    expected_filtered = one_machine.filter_top_movies(ratings, processing)
    filtered = top_movies(on_spark(spark, ratings), 40)
    assert sorted_rows(collected(filtered), "userId", "movieId") == sorted_rows(
        expected_filtered, "userId", "movieId"
    )

    for column, expected in (
        ("userId", one_machine.create_user_mapping(expected_filtered)),
        ("movieId", one_machine.create_movie_mapping(expected_filtered)),
    ):
        mapping = collected(id_mapping(filtered, column))
        assert mapping.sort(column).rows() == expected.rows()
        assert mapping[f"{column}Mapped"].dtype == pl.Int32

    mapped = apply_mappings(
        filtered, id_mapping(filtered, "userId"), id_mapping(filtered, "movieId")
    )
    expected_mapped = one_machine.apply_id_mappings(
        expected_filtered,
        one_machine.create_user_mapping(expected_filtered),
        one_machine.create_movie_mapping(expected_filtered),
    )
    for strategy, expected_labels in (
        ("hash", hash_split_labels(expected_mapped, FRACTIONS, 7)),
        ("temporal", temporal_split_labels(expected_mapped, FRACTIONS)),
    ):
        labels = collected(labelled(mapped, strategy, FRACTIONS, 7))
        expected = expected_mapped.with_columns(expected_labels.alias(SPLIT_LABEL))
        assert sorted_rows(
            labels, "userIdMapped", "movieIdMapped", SPLIT_LABEL
        ) == sorted_rows(expected, "userIdMapped", "movieIdMapped", SPLIT_LABEL), (
            strategy
        )


def test_hash_split_shares_follow_the_fractions_and_parts_partition(spark):
    mapped = ratings_frame(20_000).with_columns(
        pl.col("userId").alias("userIdMapped"), pl.col("movieId").alias("movieIdMapped")
    )
    parts = labelled(on_spark(spark, mapped), "hash", FRACTIONS, 1)
    counts = label_counts(parts)
    total = sum(counts.values())
    assert total == mapped.height
    assert abs(counts[0] / total - 0.7) < 0.02 and abs(counts[2] / total - 0.1) < 0.02
    train, val, test = (collected(part) for part in split_parts(parts))
    assert train.height + val.height + test.height == total
    assert SPLIT_LABEL not in train.columns
    assert not set(train["userIdMapped", "movieIdMapped"].rows()) & set(
        test["userIdMapped", "movieIdMapped"].rows()
    )
    other_seed = label_counts(labelled(on_spark(spark, mapped), "hash", FRACTIONS, 2))
    assert other_seed != counts


def test_splits_spark_cannot_run_are_refused(spark):
    mapped = on_spark(spark, ratings_frame(10))
    with pytest.raises(ValueError, match="does not run the 'random' split.*'hash'"):
        labelled(mapped, "random", FRACTIONS, 1)


def test_temporal_split_refuses_ratings_without_time(spark):
    undated = ratings_frame(50).with_columns(
        pl.lit(None, dtype=pl.Int64).alias("timestamp"),
        pl.col("userId").alias("userIdMapped"),
        pl.col("movieId").alias("movieIdMapped"),
    )
    with pytest.raises(ValueError, match="have no timestamp.*use the 'hash' split"):
        labelled(on_spark(spark, undated), "temporal", FRACTIONS, 1)
