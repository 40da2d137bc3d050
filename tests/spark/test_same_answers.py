"""Same answers on both engines: on ml-latest-small with the hash split, the Spark
nodes give the one-machine nodes' user and movie mappings and the same (userId,
movieId) membership of train, val and test, for the same seed.

Skipped cleanly where ../shared/data/ml-latest-small is absent; the cluster test
(tests/spark/test_cluster.py) checks the same on the synthetic sample through `kedro
run`.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from rating_prediction.data.schema import SPLITS
from rating_prediction.pipelines.data_processing import nodes as one_machine
from rating_prediction.pipelines.spark_preparation import nodes as spark_nodes
from tests.project import SHARED_DATA
from tests.spark.test_ingestion import ingestion, polars_ingestion

RELEASE = SHARED_DATA / "ml-latest-small"

pytestmark = pytest.mark.skipif(
    not (RELEASE / "ratings.csv").is_file(), reason=f"{RELEASE} is absent"
)


def processing(strategy: str) -> dict[str, Any]:
    return {
        "top_n_movies": None,
        "split": {"strategy": strategy, "fractions": [0.7, 0.2, 0.1], "seed": 42},
    }


def spark_preparation(spark, parameters: dict[str, Any], strategy: str):
    """The spark_preparation nodes from the release to the splits."""
    release = spark_nodes.prepare_spark_release(parameters)
    raw = spark_nodes.read_release_ratings(release)
    profile = spark_nodes.check_spark_release(raw, release)
    ratings, _ = spark_nodes.clean_spark_ratings(raw, profile)
    filtered = spark_nodes.filter_top_movies(ratings, processing(strategy))
    users = spark_nodes.create_user_mapping(filtered).cache()
    movies = spark_nodes.create_movie_mapping(filtered).cache()
    mapped = spark_nodes.apply_id_mappings(filtered, users, movies)
    splits = spark_nodes.split_ratings(mapped, processing(strategy))
    return users, movies, splits


def one_machine_preparation(parameters: dict[str, Any], strategy: str):
    ratings, _, _ = polars_ingestion(parameters)
    filtered = one_machine.filter_top_movies(ratings, processing(strategy))
    users = one_machine.create_user_mapping(filtered)
    movies = one_machine.create_movie_mapping(filtered)
    mapped = one_machine.apply_id_mappings(filtered, users, movies)
    return users, movies, one_machine.split_ratings(mapped, processing(strategy))


def pairs(split) -> set[tuple[int, int]]:
    frame = split if isinstance(split, pl.DataFrame) else pl.from_arrow(split.toArrow())
    return set(frame.select("userId", "movieId").rows())


def test_ml_latest_small_mappings_and_splits_match_one_machine(spark, tmp_path):
    """The hash split here; the temporal one on random ratings (test_processing)."""
    strategy = "hash"
    (tmp_path / "ml-latest-small").symlink_to(RELEASE)
    parameters = ingestion(tmp_path, "ml-latest-small")
    users, movies, splits = spark_preparation(spark, parameters, strategy)
    expected_users, expected_movies, expected_splits = one_machine_preparation(
        parameters, strategy
    )
    assert pl.from_arrow(users.toArrow()).sort("userId").equals(expected_users)
    assert pl.from_arrow(movies.toArrow()).sort("movieId").equals(expected_movies)
    assert expected_users.height == 610 and expected_movies.height == 9724
    for name, split, expected in zip(SPLITS, splits, expected_splits, strict=True):
        assert pairs(split) == pairs(expected), name
