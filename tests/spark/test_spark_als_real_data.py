"""spark_als on the real ml-latest-small release (../shared/data, read in place): the
issue's target, a test RMSE of at most 0.90 with the hash split. Skipped cleanly where
the release is absent."""

from __future__ import annotations

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner

from rating_prediction.pipelines import data_ingestion, data_processing
from tests.project import SHARED_DATA
from tests.spark.fitting import fit_spark_variant
from tests.training.fixtures import project_training_parameters

pytest.importorskip("pyspark")

RELEASE = "ml-latest-small"
pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / RELEASE / "ratings.csv").is_file(),
    reason=f"{SHARED_DATA / RELEASE} is absent",
)
TABLES = [
    "train_ratings",
    "val_ratings",
    "test_ratings",
    "user_mapping",
    "movie_mapping",
]


def _one_machine_splits() -> dict:
    """Every movie, the hash split (the one Spark runs), by the one-machine pipelines."""
    tables: dict = {}
    catalog = DataCatalog(
        {
            "params:ingestion": MemoryDataset(
                {
                    "dataset": RELEASE,
                    "raw_dir": str(SHARED_DATA),
                    "base_url": "http://127.0.0.1:9",
                    "download_timeout_s": 1,
                }
            ),
            "params:processing": MemoryDataset(
                {
                    "top_n_movies": None,
                    "split": {
                        "strategy": "hash",
                        "fractions": [0.7, 0.2, 0.1],
                        "seed": 42,
                    },
                }
            ),
            "params:cross_validation": MemoryDataset({}),
        }
    )
    keep = Node(
        lambda *frames: tables.update(zip(TABLES, frames)), TABLES, None, name="keep"
    )
    pipeline = data_ingestion.create_pipeline() + data_processing.create_pipeline()
    SequentialRunner().run(pipeline + Pipeline([keep]), catalog)
    return tables


def test_spark_als_reaches_the_target_rmse_on_ml_latest_small(spark):
    from rating_prediction.pipelines.spark_modelling import nodes  # noqa: PLC0415

    frames = {
        name: spark.createDataFrame(table.to_arrow())
        for name, table in _one_machine_splits().items()
    }
    # The shipped block, at the candidate its recorded val grid chose (rank 50,
    # reg_param 0.15): one fit on train, scored on val, then the refit on train + val.
    parameters = project_training_parameters()["spark_als"] | {"reg_param": [0.15]}
    scale = {"min": 0.5, "max": 5.0, "inferred": False}
    evaluation = {
        "prediction_batch_size": 1_000_000,
        "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
    }
    users, movies, config, _ = fit_spark_variant(
        frames, "spark_als", parameters, evaluation, scale
    )
    metrics = nodes.evaluate_spark_model(
        train_ratings=frames["train_ratings"],
        val_ratings=frames["val_ratings"],
        test_ratings=frames["test_ratings"],
        user_factors=users,
        movie_factors=movies,
        model_config=config,
        rating_scale=scale,
    )
    assert config["best_val_loss"] ** 0.5 < 0.90
    assert metrics["test"]["rmse"] <= 0.90
