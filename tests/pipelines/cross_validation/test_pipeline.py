"""``kedro run --pipelines cross_validation`` on a tiny release in ml-100k's format: the
five official folds, every variant and baseline, intervals and paired tests."""

from __future__ import annotations

import json
import logging
import os

import mlflow
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.pipeline import Pipeline

from rating_prediction import pipeline_registry
from rating_prediction.evaluation.names import RANKING_BASELINES
from rating_prediction.models.baselines import BASELINES
from rating_prediction.models.variants import VARIANTS, variants_that
from rating_prediction.pipelines.cross_validation import create_pipeline
from rating_prediction.pipelines.training import create_pipeline as training_pipeline
from tests.ml100k import write_ml_100k
from tests.project import copy_project

ENTRIES = [*VARIANTS, *BASELINES, *RANKING_BASELINES]


@pytest.fixture(scope="module")
def cross_validated(tmp_path_factory):
    """One cross-validation run of the official folds u1..u5, in a project copy."""
    project = copy_project(tmp_path_factory.mktemp("project"))
    write_ml_100k(project / "data" / "01_raw")
    params = {
        "ingestion": {"dataset": "ml-100k"},
        "processing": {"top_n_movies": None},
        "cross_validation": {"scheme": "predefined", "max_epochs": 3},
    }
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("rating_prediction").addHandler(handler)
    environment, tracking_uri = dict(os.environ), mlflow.get_tracking_uri()
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(project)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project / 'mlflow.db'}")
        bootstrap_project(project)
        try:
            with KedroSession.create(project_path=project, runtime_params=params) as s:
                s.run(pipeline_names=["cross_validation"])
        finally:
            logging.getLogger("rating_prediction").removeHandler(handler)
            # kedro-mlflow sets MLflow's experiment and URI for the process: undo it,
            # so later tests with their own MLflow store do not see this one's.
            os.environ.clear()
            os.environ.update(environment)
            mlflow.set_tracking_uri(tracking_uri)
            mlflow.tracking.fluent._active_experiment_id = None
    reporting = project / "data" / "08_reporting"
    return reporting, [record.getMessage() for record in records]


def test_summary_holds_intervals_for_every_entry_over_the_five_folds(cross_validated):
    reporting, _ = cross_validated
    summary = json.loads((reporting / "metrics_summary.json").read_text())
    assert summary["scheme"] == "predefined"
    assert list(summary["fold_descriptions"].values()) == ["u1", "u2", "u3", "u4", "u5"]
    assert set(ENTRIES) <= set(summary["entries"])
    for entry in [*variants_that("predicts_ratings"), *BASELINES]:
        rmse = summary["entries"][entry]["test"]["rmse"]
        assert rmse["n"] == 5
        assert rmse["ci_low"] < rmse["mean"] < rmse["ci_high"]
        assert rmse["sd"] > 0
    assert "ndcg@10" in summary["entries"]["popularity"]["test"]
    # A ranker (ease): ranking metrics over the folds, no invented RMSE.
    for ranker in [v for v in VARIANTS if not VARIANTS[v].predicts_ratings]:
        assert summary["entries"][ranker]["test"]["ndcg@10"]["n"] == 5
        assert "rmse" not in summary["entries"][ranker]["test"]
    rmse = summary["comparisons"]["rmse"]
    # The best of every baseline (those fitted on train + val included).
    assert rmse["best_baseline"] in summary["entries"]
    assert rmse["best_baseline"] not in VARIANTS
    pairs = {(t["first"], t["second"]) for t in rmse["paired_tests"]}
    # The variants with an RMSE: those that predict ratings.
    rating_variants = variants_that("predicts_ratings")
    assert all((v, rmse["best_baseline"]) in pairs for v in rating_variants)
    assert len(pairs) == len(rating_variants) * (len(rating_variants) + 1) // 2
    folds = json.loads((reporting / "cross_validation_folds.json").read_text())
    assert list(folds) == ["fold1", "fold2", "fold3", "fold4", "fold5"]


def test_the_run_prints_mean_and_sd_rmse_per_variant_and_the_lead(cross_validated):
    reporting, messages = cross_validated
    markdown = (reporting / "cross_validation_summary.md").read_text()
    printed = next(m for m in messages if m.startswith("Cross-validation summary"))
    assert markdown in printed
    for variant in VARIANTS:
        assert f"| {variant} | " in markdown
    assert " ± " in markdown
    assert "The best variant by mean test RMSE" in markdown
    assert "significant** at 5%" in markdown


def test_cross_validation_is_not_part_of_the_default_run(monkeypatch):
    """``kedro run`` leaves it out; ``kedro run --pipelines cross_validation`` runs it."""
    found = {
        "training": training_pipeline(),
        "inference": Pipeline([]),
        "cross_validation": create_pipeline(),
    }
    monkeypatch.setattr(pipeline_registry, "find_pipelines", lambda **_: dict(found))
    monkeypatch.setattr(
        pipeline_registry, "environment_pipeline_names", lambda: list(found)
    )
    pipelines = pipeline_registry.register_pipelines()
    assert "cross_validation" in pipelines
    default_nodes = {node.name for node in pipelines["__default__"].nodes}
    assert "cross_validation.cross_validate_node" not in default_nodes
