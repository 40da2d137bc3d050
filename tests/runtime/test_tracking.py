"""kedro-mlflow's hook is replaced by one that records no absolute path and no URL
credentials, and still does everything kedro-mlflow does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import mlflow
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro_mlflow.framework.hooks import MlflowHook
from mlflow import MlflowClient

from rating_prediction.runtime.redaction import OUTSIDE_PROJECT
from rating_prediction.runtime.tracking import RedactingMlflowHook
from tests.project import SMALL_RUN_PARAMS, run_project

CREDENTIALS = ("alice", "s3cret")


def test_the_redacting_hook_replaces_kedro_mlflows_own(project_copy):
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy) as session:
        context = session.load_context()  # what `kedro mlflow ui` and others do
        hooks = [
            plugin
            for plugin in session._hook_manager.get_plugins()
            if isinstance(plugin, MlflowHook)
        ]
    assert [type(hook) for hook in hooks] == [RedactingMlflowHook]
    assert (
        context.mlflow.server.mlflow_tracking_uri == os.environ["MLFLOW_TRACKING_URI"]
    )


@pytest.mark.slow
def test_a_run_records_no_absolute_path_and_no_credentials(
    project_copy, tmp_path_factory
):
    raw_dir = tmp_path_factory.mktemp("movielens-outside-the-project")
    base_url = f"https://{':'.join(CREDENTIALS)}@mirror.example.org/movielens"
    ingestion = {**SMALL_RUN_PARAMS["ingestion"], "raw_dir": str(raw_dir)}
    run_project(
        project_copy,
        {**SMALL_RUN_PARAMS, "ingestion": {**ingestion, "base_url": base_url}},
    )

    client = MlflowClient()
    recorded = _everything_recorded(client)
    forbidden = [
        *CREDENTIALS,
        str(project_copy),
        str(raw_dir),
        sys.prefix,
        str(Path.home()),
    ]
    for where, value in recorded:
        assert not value.startswith(("/", "~")), (where, value)
        assert not any(text in value for text in forbidden), (where, value)

    run = mlflow.search_runs(search_all_experiments=True, output_format="list")[0]
    # Parameters are scalars of their own (kedro-mlflow's flatten), redacted one by one.
    assert run.data.params["ingestion.raw_dir"] == OUTSIDE_PROJECT
    assert (
        run.data.params["ingestion.base_url"]
        == "https://***@mirror.example.org/movielens"
    )
    assert run.data.params["training.biased_mf.optimizer.learning_rate"] == "0.05"
    assert run.info.run_name == "synthetic · local"
    # Runs can be filtered by data set, splits and what answers each task.
    assert run.data.tags["dataset"] == "synthetic"
    assert run.data.tags["split_fingerprint"]
    assert {"served.predict", "served.recommend"} <= run.data.tags.keys()
    assert run.data.tags["project_path"] == "."
    assert run.data.tags["mlflow.source.name"] == OUTSIDE_PROJECT
    # kedro-mlflow still did its work: parameters, metrics, artifacts, the model.
    assert "biased_mf.test.rmse" in run.data.metrics
    artifacts = client.list_artifacts(run.info.run_id, "reporting")
    assert "reporting/summary.md" in {artifact.path for artifact in artifacts}
    assert mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model") is not None


def _everything_recorded(client: MlflowClient) -> list[tuple[str, str]]:
    """(where, value) of every parameter and tag in the store: runs, logged models,
    registered model versions."""
    experiments = [e.experiment_id for e in client.search_experiments()]
    recorded = []
    for run in client.search_runs(experiments):
        for kind, values in (("param", run.data.params), ("tag", run.data.tags)):
            recorded += [(f"run {kind} {k}", v) for k, v in values.items()]
    for model in client.search_logged_models(experiments):
        for kind, values in (("param", model.params), ("tag", model.tags)):
            recorded += [(f"model {kind} {k}", v) for k, v in values.items()]
    for version in client.search_model_versions():
        recorded += [(f"version tag {k}", v) for k, v in version.tags.items()]
    assert any(where.startswith("model param") for where, _ in recorded)
    return recorded
