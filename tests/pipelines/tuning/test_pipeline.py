"""The tuning pipeline: an Optuna study in SQLite that a second run resumes, each trial
a nested MLflow run, and the best parameters written as a Kedro environment's file."""

from __future__ import annotations

import mlflow
import optuna
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

TINY_RUN = {
    "ingestion": {"synthetic": {"n_users": 300, "n_movies": 100, "n_ratings": 10_000}},
    "tuning": {"n_trials": 2},
}


def _tune(project_path) -> None:
    bootstrap_project(project_path)
    with KedroSession.create(
        project_path=project_path, runtime_params=TINY_RUN
    ) as session:
        session.run(pipeline_names=["tuning"])


@pytest.mark.slow
def test_tuning_resumes_its_study_with_nested_runs_and_writes_best_parameters(
    project_copy,
):
    _tune(project_copy)
    _tune(project_copy)

    study = optuna.load_study(
        study_name="bayesian_fm", storage=f"sqlite:///{project_copy / 'optuna.db'}"
    )
    assert len(study.trials) == 4  # the second run added two trials
    runs = mlflow.search_runs(search_all_experiments=True)
    parents = runs[runs["tags.mlflow.parentRunId"].isna()]
    trials = runs[runs["tags.mlflow.parentRunId"].notna()]
    assert len(parents) == 2 and len(trials) == 4
    assert set(trials["tags.mlflow.parentRunId"]) == set(parents["run_id"])
    assert trials["metrics.bayesian_fm.val_mse"].notna().all()

    tuned = yaml.safe_load(
        (project_copy / "conf/tuned/parameters_tuned.yml").read_text()
    )
    assert tuned["_tuning"]["complete_trials"] == 4
    assert tuned["_tuning"]["best_val_mse"] == pytest.approx(study.best_value)
    best = tuned["training"]["bayesian_fm"]
    assert best["rank"] == study.best_params["rank"]
    assert best["features"]["genres"] == study.best_params["features.genres"]
    assert not list((project_copy / "conf/tuned").glob("*.partial"))
    assert (project_copy / "data/08_reporting/tuning_trials.csv").is_file()
