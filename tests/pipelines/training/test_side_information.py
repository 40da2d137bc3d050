"""The users' demographics of an ml-100k or ml-1m release reach every fit: the
ingestion, processing and training pipelines run by Kedro, the fit function handed
``TrainingData.users``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import polars as pl
import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from rating_prediction.data.schema import USERS_SCHEMA
from rating_prediction.pipelines import data_ingestion, data_processing
from rating_prediction.pipelines.training import nodes
from rating_prediction.pipelines.training.pipeline import create_variant_pipeline
from rating_prediction.training.data import TrainingData
from tests.ml100k import N_USERS, ml_1m_user, ml_100k_user, write_ml_1m, write_ml_100k

from .test_pipeline import EVALUATION

VARIANT = "bayesian_fm"
RELEASES = {
    "ml-100k": (write_ml_100k, ml_100k_user),
    "ml-1m": (write_ml_1m, ml_1m_user),
}


def fit_data(
    raw_dir: Path, release: str, training_parameters, monkeypatch
) -> TrainingData:
    """The TrainingData the training node hands the variant's fit, after ingestion and
    processing of ``release`` in ``raw_dir``."""
    handed: list[TrainingData] = []

    def fit(entry, options, data, evaluation):
        handed.append(data)
        return {}, SimpleNamespace(model_dump=dict), pl.DataFrame({"epoch": [0]})

    monkeypatch.setattr(nodes, "fit_with_val_ranking", fit)
    catalog = DataCatalog()
    catalog["params:ingestion"] = {
        "dataset": release,
        "raw_dir": str(raw_dir),
        "base_url": "http://127.0.0.1:9",
        "download_timeout_s": 1,
    }
    catalog["params:processing"] = {
        "top_n_movies": None,
        "split": {"strategy": "random", "fractions": [0.7, 0.2, 0.1], "seed": 0},
    }
    catalog["params:cross_validation"] = {}
    catalog[f"params:training.{VARIANT}"] = training_parameters[VARIANT]
    catalog["params:evaluation"] = EVALUATION
    pipeline = (
        data_ingestion.create_pipeline()
        + data_processing.create_pipeline()
        + create_variant_pipeline(VARIANT)
    )
    SequentialRunner().run(pipeline, catalog)
    assert len(handed) == 1
    return handed[0]


@pytest.mark.parametrize("release", list(RELEASES))
def test_the_release_demographics_reach_the_fit(
    tmp_path, release, training_parameters, monkeypatch
):
    write_release, user_row = RELEASES[release]
    write_release(tmp_path)
    data = fit_data(tmp_path, release, training_parameters, monkeypatch)
    assert data.users is not None and data.user_mapping is not None
    assert data.users.schema == USERS_SCHEMA
    assert data.users.rows() == [user_row(user) for user in range(1, N_USERS + 1)]
    # Every mapped user finds their demographics by userId.
    mapped = data.user_mapping.join(data.users, on="userId", how="left")
    assert mapped.height == data.n_users == N_USERS
    demographics = pl.col("age", "gender", "occupation")
    assert mapped.select(demographics.null_count()).row(0) == (0, 0, 0)
