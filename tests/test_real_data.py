"""The real ml-latest-small release from ../shared/data, read in place (never copied).

Skipped cleanly where ../shared/data/ml-latest-small is absent.
"""

import json

import polars as pl
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from rating_prediction.pipelines import data_ingestion, data_processing
from tests.project import SHARED_DATA, run_project

RELEASE = "ml-latest-small"

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / RELEASE / "ratings.csv").is_file(),
    reason=f"{SHARED_DATA / RELEASE} is absent",
)

ALL_MOVIES_RANDOM_SPLIT = {
    "top_n_movies": None,
    "split": {"strategy": "random", "fractions": [0.7, 0.2, 0.1], "seed": 42},
}


def test_ingestion_and_processing_keep_every_rating_user_and_movie():
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
            "params:processing": MemoryDataset(ALL_MOVIES_RANDOM_SPLIT),
            "params:cross_validation": MemoryDataset({}),
        }
    )
    pipeline = data_ingestion.create_pipeline() + data_processing.create_pipeline()
    SequentialRunner().run(pipeline, catalog)

    splits = [catalog.load(f"{split}_ratings") for split in ("train", "val", "test")]
    every_rating = pl.concat(splits)
    assert [split.height for split in splits] == [70_585, 20_167, 10_084]
    assert every_rating.height == 100_836
    assert every_rating["userIdMapped"].n_unique() == 610
    assert every_rating["movieIdMapped"].n_unique() == 9_724
    assert every_rating["movieIdMapped"].max() == 9_723


@pytest.mark.slow
def test_the_variants_reach_the_accuracy_targets_on_ml_latest_small(project_copy):
    """One whole `kedro run`: biased_mf within 0.850, bayesian_fm (the best variant)
    within 0.805 (the accuracy issue's target on this split; 0.8016 measured) with its
    fit (sampling on train, then on train + val) under 2 minutes, and below every other
    entry, the train + val baselines included."""
    project_path = project_copy
    run_project(
        project_path,
        {
            "ingestion": {"dataset": RELEASE, "raw_dir": str(SHARED_DATA)},
            "processing": ALL_MOVIES_RANDOM_SPLIT,
        },
    )

    metrics = json.loads(
        (project_path / "data" / "08_reporting" / "metrics.json").read_text()
    )
    assert metrics["biased_mf"]["test"]["rmse"] <= 0.850
    assert (
        metrics["biased_mf"]["test"]["rmse"] < metrics["bias_baseline"]["test"]["rmse"]
    )
    test_rmse = {
        entry: by_split["test"]["rmse"]
        for entry, by_split in metrics.items()
        if "rmse" in by_split.get("test", {})
    }
    assert test_rmse["bayesian_fm"] <= 0.805
    assert min(test_rmse, key=test_rmse.get) == "bayesian_fm"
    config = json.loads(
        (project_path / "data/06_models/bayesian_fm/config.json").read_text()
    )
    assert config["refit_on_train_val"] and config["fit_seconds"] <= 120
