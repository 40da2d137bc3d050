"""``kedro run`` from ingestion to reporting on a small synthetic release, in a copy of
the project so the repository's data/ and MLflow store stay untouched."""

import json
import subprocess
import sys

import mlflow
import pandas as pd
import pytest

from rating_prediction.evaluation.names import RANKING_BASELINES
from rating_prediction.models.baselines import BASELINES
from rating_prediction.models.variants import VARIANTS, variants_that
from tests.project import SMALL_RUN_PARAMS, run_project
from tests.test_docs import README, code_blocks


@pytest.mark.slow
def test_kedro_run_writes_every_metric_and_beats_the_mean_baseline(project_copy):
    project_path = project_copy
    run_project(project_path, SMALL_RUN_PARAMS)
    # The run is closed: a second session in the same process must get a run of its own.
    assert mlflow.active_run() is None

    reporting = project_path / "data" / "08_reporting"
    metrics = json.loads((reporting / "metrics.json").read_text())
    # Rating entries carry errors on every split; ranking-only entries (popularity,
    # random, popularity blends) carry test ranking metrics only.
    # A ranker (ease) has no rating predictions: ranking metrics only, no RMSE.
    rating_variants = variants_that("predicts_ratings")
    rating_entries = [e for e in metrics if "rmse" in metrics[e].get("test", {})]
    assert rating_entries[: len(rating_variants) + len(BASELINES)] == [
        *rating_variants,
        *BASELINES,
    ]
    assert list(metrics["ease"]) == ["test"]
    assert "rmse" not in metrics["ease"]["test"]
    for entry in rating_entries:
        assert list(metrics[entry]) == ["train", "val", "test"]
        assert all(
            {"mse", "rmse", "mae"} <= set(values) for values in metrics[entry].values()
        )
    for entry in [*VARIANTS, *RANKING_BASELINES]:
        assert "ndcg@10" in metrics[entry]["test"]
    assert (
        metrics["inner_sigmoid"]["test"]["rmse"]
        < metrics["mean_baseline"]["test"]["rmse"]
    )
    assert (
        metrics["bias_baseline"]["test"]["rmse"]
        < metrics["mean_baseline"]["test"]["rmse"]
    )
    for figure in (
        "loss_curves",
        "rating_histograms",
        "rmse_by_rating",
        "rmse_by_popularity",
        "test_rmse",
    ):
        assert (reporting / f"{figure}.png").is_file()
    assert "| inner_sigmoid |" in (reporting / "summary.md").read_text()
    for entry in [*rating_variants, *BASELINES]:
        model_output = project_path / "data" / "07_model_output" / entry
        assert (model_output / "test_predictions.parquet").is_file()

    # The same metrics and figures are in the run's MLflow run.
    run = mlflow.search_runs(search_all_experiments=True, output_format="list")[0]
    assert run.data.metrics["inner_sigmoid.test.rmse"] == pytest.approx(
        metrics["inner_sigmoid"]["test"]["rmse"]
    )
    artifacts = mlflow.MlflowClient().list_artifacts(run.info.run_id, "reporting")
    assert {"reporting/summary.md", "reporting/test_rmse.png"} <= {
        artifact.path for artifact in artifacts
    }

    # The served model is logged last, as `model`, and registered as the first champion.
    request = pd.DataFrame({"userId": [1, 999_999], "movieId": [1, 1]})
    for uri in (
        f"runs:/{run.info.run_id}/model",
        "models:/rating-prediction-synthetic@champion",
    ):
        answer = mlflow.pyfunc.load_model(uri).predict(request)
        assert answer["known_user"].tolist() == [True, False]

    # The README's serving example, as a user runs it from the project's root.
    (example,) = code_blocks(README.read_text(), "python")
    printed = subprocess.run(
        [sys.executable, "-c", example],
        cwd=project_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "known_user" in printed and "rank" in printed
