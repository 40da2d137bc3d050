"""The spark_modelling pipeline end to end on a local[2] session: metrics.json's
entries, the served model built from the exported weights (answering with no Spark,
in a process that cannot import pyspark), and every user's recommendations written
from the cluster, which are the served model's own."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import polars as pl
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from rating_prediction.data.schema import MOVIELENS_SCALE
from rating_prediction.datasets import RequestFileDataset, ServedModelDataset
from rating_prediction.evaluation.names import ranking_metric_names
from rating_prediction.serving.artifacts import save_served_model
from rating_prediction.serving.bundle import assemble_served_model
from rating_prediction.serving.rated import RatedIndex
from rating_prediction.serving.recommend import recommend_all
from tests.fakes import fake_movies, learnable_splits

pytest.importorskip("pyspark")

EVALUATION = {
    "prediction_batch_size": 50_000,
    "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
    "ranking": {"k": 5, "popularity_weight": "val"},
}
# One candidate each, no refit: test_spark_als.py covers the search and the refit.
ONE_FIT = {"max_iter": [5], "num_blocks": 2, "refit_on_train_val": False}
TRAINING = {
    "spark_als": ONE_FIT | {"rank": [6], "reg_param": [0.1]},
    "spark_als_implicit": ONE_FIT | {"rank": [6], "reg_param": [0.05], "alpha": [2.0]},
}
# The data's original ids: users from 1, movies from 10.
INFERENCE = {
    "served_variant": "best",
    "served_ranker": "best",
    "pairs": [[1, 10], [5, 12], [999, 10]],
    "recommend": {"user_ids": [1, 2], "top_k": 3},
    "fold_in": {"ratings": [[10, 4.5], [11, 2.0]], "regularization": 1.0, "top_k": 3},
    "similar": {"movie_ids": [10], "top_k": 3},
    "batch_recommend": {"top_k": 4, "block_size": 7},
    "request_files": {"batch_size": 50},
}
SPLITS = ("train_ratings", "val_ratings", "test_ratings")
TABLES = (*SPLITS, "user_mapping", "movie_mapping", "movies")


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    tables = learnable_splits(n_users=70, n_movies=25, n_ratings=1_000, seed=5)
    return tables | {"movies": fake_movies(tables["movie_mapping"])}


@pytest.fixture(scope="module")
def catalog(spark, tables, tmp_path_factory) -> DataCatalog:
    """Every input in memory (Spark DataFrames, as the Spark datasets load them, and
    the parameters); then one run."""
    from kedro_datasets.spark import SparkDatasetV2  # noqa: PLC0415

    from rating_prediction.pipelines.spark_modelling import (  # noqa: PLC0415
        create_pipeline,
    )

    catalog = DataCatalog()
    for name in TABLES:
        frame = spark.createDataFrame(tables[name].to_arrow())
        catalog[name] = MemoryDataset(frame, copy_mode="assign")
    folder = tmp_path_factory.mktemp("requests")
    catalog["pair_requests"] = RequestFileDataset(
        filepath=str(folder / "pairs.parquet"),
        columns=["userId", "movieId"],
        optional=True,
    )
    catalog["rating_scale"] = MemoryDataset(MOVIELENS_SCALE.to_dict())
    catalog["spark_ranking_task"] = MemoryDataset(copy_mode="assign")
    for name, value in (
        ("evaluation", EVALUATION),
        ("inference", INFERENCE),
        ("training", TRAINING),
        *((f"training.{v}", block) for v, block in TRAINING.items()),
    ):
        catalog[f"params:{name}"] = MemoryDataset(value)
    # Saved to files, so they outlive the run (the runner releases what it held).
    saved = tmp_path_factory.mktemp("saved")
    catalog["served_model"] = ServedModelDataset(filepath=str(saved / "served_model"))
    for name in ("spark_als", "spark_als_implicit"):
        catalog[f"{name}_user_factors"] = SparkDatasetV2(
            filepath=str(saved / name / "user_factors")
        )
    SequentialRunner().run(create_pipeline(), catalog)
    return catalog


def test_metrics_hold_spark_als_errors_and_the_rankers_lists(catalog):
    metrics = catalog.load("metrics")
    ranked = [
        "spark_als_implicit",
        "popularity",
        "random",
        "spark_als_implicit_popularity_blend",
    ]
    assert list(metrics) == ["spark_als", *ranked]
    assert list(metrics["spark_als"]) == ["train", "val", "test"]
    for values in metrics["spark_als"].values():
        assert set(values) == {"mse", "rmse", "mae"}
        assert values["rmse"] == pytest.approx(values["mse"] ** 0.5)
    for entry in ranked:
        assert list(metrics[entry]) == ["test"]
        assert list(metrics[entry]["test"]) == ranking_metric_names(5)


def test_the_best_spark_ranker_is_compared_with_popularity(catalog):
    comparison = catalog.load("ranking_comparison")
    assert comparison["best_ranker"] == "spark_als_implicit"
    assert comparison["versus"] == "popularity"
    assert comparison["users"] > 2
    assert (
        comparison["ci_low"] <= comparison["mean_difference"] <= comparison["ci_high"]
    )
    assert comparison["mean_difference"] == pytest.approx(
        comparison["best_ranker_mean"] - comparison["popularity_mean"]
    )


def test_the_served_model_answers_with_the_spark_variants(catalog):
    served = catalog.load("served_model")
    assert served.answered_by == {
        "predict": "spark_als",
        "recommend": "spark_als_implicit",
        "similar": "spark_als_implicit",
        "fold_in": "spark_als_implicit",
    }


def test_the_batch_recommendations_are_the_served_models(catalog, tables):
    """Every training user's lists from the cluster: the served model's, movie for
    movie (its ranker, its history train + val excluded, ties to the lower index)."""
    served = catalog.load("served_model")
    on_spark = pl.from_arrow(catalog.load("spark_all_user_recommendations").toArrow())
    users = np.unique(tables["train_ratings"]["userId"].to_numpy())
    local = recommend_all(
        served, users, served.ranker.history, INFERENCE["batch_recommend"]["top_k"]
    )
    on_spark = on_spark.sort("userId", "rank")
    assert on_spark.columns == local.columns
    assert on_spark["userId"].n_unique() == len(users)
    key = ["userId", "rank", "movieId", "title", "known_user", "variant"]
    assert on_spark.select(key).cast(local.select(key).schema).equals(local.select(key))
    np.testing.assert_allclose(on_spark["prediction"], local["prediction"], rtol=1e-6)


def test_without_a_ranker_the_rating_model_recommends_unrated_movies(catalog, tables):
    from rating_prediction.pipelines.spark_modelling.nodes import (  # noqa: PLC0415
        recommend_on_spark,
    )
    from rating_prediction.serving.ranker import RankerChoice  # noqa: PLC0415

    served = catalog.load("served_model")
    config, weights = served.config.model_dump(), served.state_dict
    frames = {name: catalog.load(name) for name in TABLES}
    on_spark = recommend_on_spark(
        served_model_config=config,
        served_model_weights=weights,
        served_ranker_choice=RankerChoice(),
        rating_user_factors=catalog.load("spark_als_user_factors"),
        ranker_user_factors=catalog.load("spark_als_implicit_user_factors"),
        **frames,
        inference=INFERENCE,
    )
    on_spark = pl.from_arrow(on_spark.toArrow()).sort("userId", "rank")
    rating_only = assemble_served_model(
        config,
        weights,
        **{
            name: tables[name]
            for name in ("user_mapping", "movie_mapping", "train_ratings", "movies")
        },
    )
    rated = pl.concat([tables[split] for split in SPLITS])
    excluded = RatedIndex.from_indices(
        rated["userIdMapped"].to_numpy(),
        rated["movieIdMapped"].to_numpy(),
        tables["user_mapping"].height,
    )
    users = np.unique(tables["train_ratings"]["userId"].to_numpy())
    local = recommend_all(rating_only, users, excluded, 4)
    assert set(on_spark["variant"]) == {"spark_als"}
    assert (
        on_spark.select("userId", "rank", "movieId")
        .cast(pl.Int64)
        .equals(local.select("userId", "rank", "movieId").cast(pl.Int64))
    )
    np.testing.assert_allclose(on_spark["prediction"], local["prediction"], rtol=1e-6)


ANSWER_WITHOUT_PYSPARK = textwrap.dedent(
    """
    import json, sys
    sys.modules["pyspark"] = None  # any import of pyspark now fails
    import pandas as pd
    from rating_prediction.serving.artifacts import load_served_model
    from rating_prediction.serving.requests import answer_request

    served = load_served_model(sys.argv[1])
    pairs = pd.DataFrame({"userId": [1, 5, 999], "movieId": [10, 12, 10]})
    predicted = answer_request(served, pairs)
    listed = answer_request(
        served, pd.DataFrame({"userId": [1, 2]}), {"task": "recommend", "k": 3}
    )
    print(json.dumps({
        "predictions": predicted["prediction"].tolist(),
        "recommended": listed["movieId"].tolist(),
        "spark": [name for name in sys.modules if name.startswith("pyspark.")],
    }))
    """
)


def test_the_served_model_answers_in_a_process_without_pyspark(catalog, tmp_path):
    from rating_prediction.serving.requests import answer_request  # noqa: PLC0415

    served = catalog.load("served_model")
    save_served_model(served, tmp_path / "served_model")
    answer = subprocess.run(
        [sys.executable, "-c", ANSWER_WITHOUT_PYSPARK, str(tmp_path / "served_model")],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert answer.returncode == 0, answer.stderr[-3000:]
    answered = json.loads(answer.stdout.strip().splitlines()[-1])
    assert answered["spark"] == []
    import pandas as pd  # noqa: PLC0415

    here = answer_request(
        served, pd.DataFrame({"userId": [1, 5, 999], "movieId": [10, 12, 10]})
    )
    np.testing.assert_allclose(answered["predictions"], here["prediction"], rtol=1e-6)
    assert len(answered["recommended"]) == 6


def test_the_metrics_are_printed_as_a_plain_run_prints_them(caplog):
    from rating_prediction.pipelines.spark_modelling.nodes import (  # noqa: PLC0415
        gather_spark_metrics,
    )

    errors = {"mse": 0.81, "rmse": 0.9, "mae": 0.7}
    with caplog.at_level("INFO"):
        metrics, _ = gather_spark_metrics(
            {"popularity": {"test": {"ndcg@5": 0.125}}},
            spark_als={split: errors for split in ("train", "val", "test")},
        )
    assert list(metrics) == ["spark_als", "popularity"]
    (printed,) = [r.getMessage() for r in caplog.records if "Results" in r.message]
    header, als, popularity = printed.splitlines()[1:]
    assert header.split() == ["rmse", "ndcg@5"]
    assert als.split() == ["spark_als", "0.9000", "-"]
    assert popularity.split() == ["popularity", "-", "0.1250"]
