"""The evaluation and reporting pipelines together, on fake trained models."""

import json

import polars as pl
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset
from kedro_datasets.polars import EagerPolarsDataset
from kedro_datasets.text import TextDataset

from rating_prediction.data.schema import MOVIELENS_SCALE
from rating_prediction.evaluation.names import RANKING_BASELINES, ranking_metric_names
from rating_prediction.models.variants import VARIANTS
from rating_prediction.pipelines.evaluation import (
    create_pipeline as create_evaluation_pipeline,
)
from rating_prediction.pipelines.evaluation.pipeline import TRAIN_VAL_BASELINES
from rating_prediction.pipelines.reporting import (
    create_pipeline as create_reporting_pipeline,
)
from tests.fakes import (
    ALL_ENTRIES,
    bias_splits,
    fake_trained_model,
    fake_training_history,
)

FIGURES = [
    "loss_curves_plot",
    "rating_histograms_plot",
    "rmse_by_rating_plot",
    "rmse_by_popularity_plot",
    "test_rmse_plot",
    "ranking_metrics_plot",
]


@pytest.fixture
def catalog(tmp_path) -> DataCatalog:
    inputs = {f"{split}_ratings": frame for split, frame in bias_splits().items()}
    for variant in VARIANTS:
        config, weights = fake_trained_model(variant)
        inputs[f"{variant}.model_config"] = config
        inputs[f"{variant}.model_weights"] = weights
        inputs[f"{variant}.training_history"] = fake_training_history()
    inputs |= {
        "params:evaluation": {
            "prediction_batch_size": 50,
            "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
        },
        "params:reporting": {
            "popularity_buckets": 4,
            "summary_figures": {"Loss": "loss_curves.png"},
        },
        "params:ingestion.dataset": "synthetic",
        "rating_scale": MOVIELENS_SCALE.to_dict(),
    }
    outputs = {
        "metrics": JSONDataset(filepath=str(tmp_path / "metrics.json")),
        "summary": TextDataset(filepath=str(tmp_path / "summary.md")),
        **{
            figure: MatplotlibDataset(filepath=str(tmp_path / f"{figure}.png"))
            for figure in FIGURES
        },
        **{
            f"{entry}.test_predictions": EagerPolarsDataset(
                filepath=str(tmp_path / entry / "test_predictions.parquet"),
                file_format="parquet",
            )
            for entry in ALL_ENTRIES
        },
    }
    return DataCatalog(
        datasets={name: MemoryDataset(data) for name, data in inputs.items()} | outputs
    )


def test_evaluation_and_reporting_run_on_fake_models(catalog, tmp_path):
    pipeline = create_evaluation_pipeline() + create_reporting_pipeline()
    outputs = SequentialRunner().run(pipeline, catalog)

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    # Every entry, and both baselines fitted on train + val too (as the refitted models).
    fitted_entries = [*ALL_ENTRIES, *TRAIN_VAL_BASELINES]
    assert set(fitted_entries) <= set(metrics)
    for entry in fitted_entries:
        assert list(metrics[entry]) == ["train", "val", "test"]
        for split, values in metrics[entry].items():
            # Model variants also carry test ranking metrics (ndcg@10, ...).
            ranking = set(ranking_metric_names(10)) if split == "test" else set()
            expected = {"mse", "rmse", "mae"}
            assert set(values) in (expected, expected | ranking)
            assert values["rmse"] == pytest.approx(values["mse"] ** 0.5)
    for entry in [*VARIANTS, *RANKING_BASELINES]:
        assert set(ranking_metric_names(10)) <= set(metrics[entry]["test"])
    # A ranker (ease) has ranking metrics only, and "–" for its errors in the summary.
    assert metrics["ease"] == {"test": metrics["ease"]["test"]}
    assert set(metrics["ease"]["test"]) == set(ranking_metric_names(10))
    summary = (tmp_path / "summary.md").read_text()
    assert "| ease | " + " | ".join(["–"] * 9) + " |" in summary
    # The bias baseline learns the synthetic biases; an untrained model does not.
    assert (
        metrics["bias_baseline"]["test"]["rmse"]
        < metrics["mean_baseline"]["test"]["rmse"]
    )

    mlflow_metrics = outputs["mlflow_metrics"].load()
    assert len(mlflow_metrics) >= len(fitted_entries) * 3 * 3
    assert mlflow_metrics["inner_sigmoid.test.rmse"] == {
        "value": metrics["inner_sigmoid"]["test"]["rmse"],
        "step": 0,
    }

    test = catalog.load("test_ratings")
    for entry in ALL_ENTRIES:
        predictions = pl.read_parquet(tmp_path / entry / "test_predictions.parquet")
        assert predictions.columns == ["userId", "movieId", "rating", "prediction"]
        assert predictions.height == test.height
    for figure in FIGURES:
        assert (tmp_path / f"{figure}.png").stat().st_size > 0
    summary = (tmp_path / "summary.md").read_text()
    assert "## Metrics" in summary
    assert "[Loss](loss_curves.png)" in summary
