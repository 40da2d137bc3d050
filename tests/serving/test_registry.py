"""Each run's model as a new registered version; `champion` only for a better one on the
same split fingerprint; never tagged with metrics made from other weights. In a
temporary SQLite store."""

import dataclasses
import json

import mlflow
import pandas as pd
import polars as pl
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Node, Pipeline
from kedro_datasets.json import JSONDataset

from rating_prediction.datasets import ServedModelDataset
from rating_prediction.hooks import LINEAGE_MANIFEST, LineageHooks, ServingHooks
from rating_prediction.runtime.lineage import Lineage
from rating_prediction.serving.artifacts import save_served_model
from rating_prediction.serving.registry import (
    CHAMPION,
    NOT_REGISTERED_TAG,
    log_and_register,
    registered_model_name,
    split_fingerprint,
)

NAME = registered_model_name("synthetic")


def metrics(test_rmse: float) -> dict:
    split = {"mse": test_rmse**2, "rmse": test_rmse, "mae": test_rmse * 0.8}
    return {"biased_mf": {"train": split, "val": split, "test": split}}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path_factory.mktemp('reg') / 'm.db'}")
    yield
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def run(store, served, tmp_path_factory):
    """Logs and registers the served model with a fingerprint and a test RMSE;
    returns the new version's number."""

    def log(fingerprint: str, test_rmse: float) -> str:
        folder = tmp_path_factory.mktemp("served") / "served_model"
        save_served_model(
            dataclasses.replace(served, split_fingerprint=fingerprint), folder
        )
        with mlflow.start_run():
            log_and_register(folder, metrics(test_rmse), "synthetic")
        versions = mlflow.MlflowClient().search_model_versions(f"name='{NAME}'")
        return max(versions, key=lambda version: int(version.version)).version

    return log


def champion() -> str:
    return mlflow.MlflowClient().get_model_version_by_alias(NAME, CHAMPION).version


def test_the_champion_moves_only_to_a_better_model_on_the_same_splits(run):
    first = run("splits-a", 0.90)
    assert champion() == first  # no champion yet: the first run takes the alias
    tags = mlflow.MlflowClient().get_model_version(NAME, first).tags
    assert tags["test.rmse"] == "0.9"
    assert tags["split_fingerprint"] == "splits-a"
    assert tags["variant"] == "biased_mf"

    worse = run("splits-a", 0.95)
    assert worse != first
    assert champion() == first

    better = run("splits-a", 0.85)
    assert champion() == better

    other_splits = run("splits-b", 0.10)  # far better, but not comparable
    assert other_splits != better
    assert champion() == better

    model = mlflow.pyfunc.load_model(f"models:/{NAME}@{CHAMPION}")
    answer = model.predict(pd.DataFrame({"userId": [10], "movieId": [1]}))
    assert answer["known_user"].tolist() == [True]


def test_split_fingerprint_is_the_splits_content(train_ratings, val_ratings):
    same = split_fingerprint(train_ratings, val_ratings)
    assert same == split_fingerprint(train_ratings.clone(), val_ratings.clone())
    changed = train_ratings.with_columns(pl.col("rating") + 0.5)
    assert split_fingerprint(changed, val_ratings) != same
    assert split_fingerprint(val_ratings, train_ratings) != same


def test_a_version_carries_the_served_rankers_name_and_ranking_metrics(
    store, ranked_served, tmp_path
):
    folder = tmp_path / "served_model"
    save_served_model(
        dataclasses.replace(ranked_served, split_fingerprint="splits-r"), folder
    )
    ranking = {"ndcg@10": 0.31, "precision@10": 0.12, "coverage": 0.4}
    with mlflow.start_run():
        log_and_register(folder, metrics(0.9) | {"ease": {"test": ranking}}, "ranked")
    name = registered_model_name("ranked")
    tags = mlflow.MlflowClient().get_model_version(name, "1").tags
    assert (tags["variant"], tags["ranker"]) == ("biased_mf", "ease")
    assert tags["test.rmse"] == "0.9"  # the champion is still chosen on it
    assert tags["ranker.test.ndcg_at_10"] == "0.31"
    # The run says which variant answers each task, and on which splits.
    (logged,) = mlflow.search_runs(
        filter_string="tags.`served.recommend` = 'ease'", output_format="list"
    )
    assert logged.data.tags["served.predict"] == "biased_mf"
    assert logged.data.tags["served.similar"] == "ease"
    assert logged.data.tags["split_fingerprint"] == "splits-r"
    assert tags["ranker.test.precision_at_10"] == "0.12"
    assert tags["ranker.test.coverage"] == "0.4"


def test_without_a_served_ranker_no_ranker_tags(run):
    tags = mlflow.MlflowClient().get_model_version(NAME, run("splits-c", 0.7)).tags
    assert not any(tag.startswith("ranker") for tag in tags)


# The metrics that tag a version are lineage-checked against the weights served.

WEIGHTS = "biased_mf.model_weights"


def lineage_run(project, run_id: str) -> Lineage:
    return Lineage(
        manifest_path=project / LINEAGE_MANIFEST,
        filepaths={
            WEIGHTS: project / "weights.pt",
            "metrics": project / "metrics.json",
        },
        rebuilt_by={WEIGHTS: "training", "metrics": "evaluation"},
        run_id=run_id,
    )


def train(project, run_id: str, n_iter: int, weights: bytes) -> None:
    """What the hooks record of a training run that writes ``weights``."""
    lineage = lineage_run(project, run_id)
    node, outputs = "biased_mf.train_model", [WEIGHTS]
    lineage.start_node(node, outputs, {"params:training": {"n_iter": n_iter}})
    lineage.finish_node(node, outputs)
    (project / "weights.pt").write_bytes(weights)
    lineage.record_saved(WEIGHTS)


def evaluate(project, run_id: str, test_rmse: float) -> None:
    """What the hooks record of an evaluation run that reads the weights on disk."""
    lineage = lineage_run(project, run_id)
    lineage.check_load(WEIGHTS)
    lineage.start_node("gather_metrics_node", ["metrics"], {WEIGHTS: None})
    lineage.finish_node("gather_metrics_node", ["metrics"])
    (project / "metrics.json").write_text(json.dumps(metrics(test_rmse)))
    lineage.record_saved("metrics")


def register_through_the_hook(project, served, dataset: str) -> dict[str, str]:
    """``ServingHooks`` at the end of a run that built ``served``; the run's tags."""
    save_served_model(served, project / "served_model")
    catalog = DataCatalog(
        datasets={
            "served_model": ServedModelDataset(filepath=str(project / "served_model")),
            "metrics": JSONDataset(filepath=str(project / "metrics.json")),
            "params:ingestion": MemoryDataset({"dataset": dataset}),
        }
    )
    pipeline = Pipeline([Node(lambda: None, None, "served_model", name="build")])
    run_params = {"project_path": str(project), "run_id": "inference"}
    lineage = LineageHooks()
    lineage.before_pipeline_run(run_params, catalog)
    with mlflow.start_run() as run:
        ServingHooks(lineage).after_pipeline_run(run_params, pipeline, catalog)
    return mlflow.MlflowClient().get_run(run.info.run_id).data.tags


@pytest.mark.parametrize(
    "retrain",
    [
        pytest.param({"n_iter": 120, "weights": b"w120"}, id="other parameters"),
        pytest.param({"n_iter": 100, "weights": b"w100'"}, id="same, other bytes"),
    ],
)
def test_metrics_made_from_other_weights_never_tag_a_version(
    store, served, tmp_path, retrain
):
    (tmp_path / "data").mkdir()
    train(tmp_path, "run-1", 100, b"w100")
    evaluate(tmp_path, "run-1", 0.5901)
    train(tmp_path, "run-2", **retrain)  # one variant retrained, not evaluated

    tags = register_through_the_hook(tmp_path, served, "retrained")

    name = registered_model_name("retrained")
    assert not mlflow.MlflowClient().search_model_versions(f"name='{name}'")
    assert (
        "metrics.json was not computed from the weights served"
        in (tags[NOT_REGISTERED_TAG])
    )
    assert "kedro run --pipelines evaluation" in tags[NOT_REGISTERED_TAG]


def test_metrics_made_from_the_weights_served_tag_the_version(store, served, tmp_path):
    (tmp_path / "data").mkdir()
    train(tmp_path, "run-1", 100, b"w100")
    evaluate(tmp_path, "run-1", 0.5901)
    train(tmp_path, "run-2", 120, b"w120")
    evaluate(tmp_path, "run-3", 0.5869)  # evaluated again: its metrics are current

    tags = register_through_the_hook(tmp_path, served, "reevaluated")

    assert NOT_REGISTERED_TAG not in tags
    name = registered_model_name("reevaluated")
    version = mlflow.MlflowClient().get_model_version_by_alias(name, CHAMPION)
    assert version.tags["test.rmse"] == "0.5869"
