"""The cross-validation path on the real ml-latest-small (read in place, never copied):
two short folds. Skipped cleanly where ../shared/data/ml-latest-small is absent."""

from __future__ import annotations

import json

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from rating_prediction.models.variants import VARIANTS, variants_that
from rating_prediction.parameters import TrainingParameters
from tests.project import SHARED_DATA

RELEASE = "ml-latest-small"

pytestmark = pytest.mark.skipif(
    not (SHARED_DATA / RELEASE / "ratings.csv").is_file(),
    reason=f"{SHARED_DATA / RELEASE} is absent",
)


def short_training() -> dict:
    """Two epochs for epoch-trained variants; few samples for sampled ones."""
    overrides = {}
    for variant in VARIANTS:
        fields = TrainingParameters.model_fields[variant].annotation.model_fields
        if "n_iter" in fields and "n_kept_samples" in fields:
            overrides[variant] = {"n_iter": 10, "n_kept_samples": 5}
    return overrides


@pytest.mark.slow
def test_two_random_folds_of_ml_latest_small(project_copy):
    params = {
        "ingestion": {"dataset": RELEASE, "raw_dir": str(SHARED_DATA)},
        "processing": {"top_n_movies": None},
        "cross_validation": {
            "scheme": "random",
            "k": 2,
            "max_epochs": 2,
            "training_overrides": short_training(),
        },
    }
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, runtime_params=params) as s:
        s.run(pipeline_names=["cross_validation"])
    summary = json.loads(
        (project_copy / "data/08_reporting/metrics_summary.json").read_text()
    )
    for variant in variants_that("predicts_ratings"):
        rmse = summary["entries"][variant]["test"]["rmse"]
        assert rmse["n"] == 2 and 0.7 < rmse["mean"] < 1.2
    # A ranker (ease): ranking metrics over the folds, no RMSE.
    assert summary["entries"]["ease"]["test"]["ndcg@10"]["n"] == 2
    assert "rmse" not in summary["entries"]["ease"]["test"]
    popularity = summary["entries"]["popularity"]["test"]["ndcg@10"]["mean"]
    assert popularity > summary["entries"]["random"]["test"]["ndcg@10"]["mean"]
    assert summary["comparisons"]["rmse"]["best_baseline"] is not None
