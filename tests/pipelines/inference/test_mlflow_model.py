"""The serving pipeline logged as the MLflow model `model`, loaded back and served.

The model is logged as the MlflowHook logs a PipelineML at the end of `kedro run`: a
KedroPipelineModel over the serving pipeline, with the registry's log_model kwargs.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import mlflow
import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro_datasets.pickle import PickleDataset
from kedro_mlflow.mlflow import KedroPipelineModel

from rating_prediction.pipeline_registry import LOG_MODEL_KWARGS
from rating_prediction.pipelines.inference import create_serving_pipeline
from rating_prediction.pipelines.inference.pipeline import INFERENCE_REQUEST

SERVER_START_TIMEOUT_S = 90


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    """A temporary SQLite store (slow to create, so one per module)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def run_id(served, tmp_path_factory, tracking_uri) -> str:
    """Logs the model in a run of the temporary store."""
    folder = tmp_path_factory.mktemp("artifacts")
    served_model = PickleDataset(filepath=str(folder / "served_model.pkl"))
    served_model.save(served)
    model = KedroPipelineModel(
        pipeline=create_serving_pipeline(),
        catalog=DataCatalog(datasets={"served_model": served_model}),
        input_name=INFERENCE_REQUEST,
    )
    with mlflow.start_run() as run:
        mlflow.pyfunc.log_model(
            python_model=model,
            artifacts=model.extract_pipeline_artifacts(folder),
            **LOG_MODEL_KWARGS,
        )
    return run.info.run_id


@pytest.fixture(scope="module")
def loaded_model(run_id) -> mlflow.pyfunc.PyFuncModel:
    return mlflow.pyfunc.load_model(f"runs:/{run_id}/model")


def test_logged_model_predicts_known_pairs_and_flags_unknown_user(loaded_model):
    request = pd.DataFrame({"userId": [10, 20, 30, 999], "movieId": [1, 2, 4, 1]})
    response = loaded_model.predict(request)
    assert len(response) == 4
    assert response["prediction"].between(0.5, 5.0).all()
    assert response["known_user"].tolist() == [True, True, True, False]
    assert response["known_movie"].all()


def test_logged_model_answers_an_empty_request_with_an_empty_table(loaded_model):
    empty = pd.DataFrame({"userId": [], "movieId": []}, dtype="int64")
    response = loaded_model.predict(empty)
    assert response.empty
    assert {"prediction", "known_user", "known_movie"} <= set(response.columns)


def test_logged_model_signature_wants_integer_ids(loaded_model):
    assert loaded_model.metadata.get_input_schema().input_names() == [
        "userId",
        "movieId",
    ]
    with pytest.raises(mlflow.exceptions.MlflowException, match="movieId"):
        loaded_model.predict(pd.DataFrame({"userId": [10]}))
    with pytest.raises(mlflow.exceptions.MlflowException):
        loaded_model.predict(pd.DataFrame({"userId": [10], "movieId": [1.5]}))


def test_requests_to_the_logged_model_build_the_torch_model_once(run_id, model_builds):
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    request = pd.DataFrame({"userId": [10, 999], "movieId": [1, 1]})
    # KedroPipelineModel.predict deep-copies its catalog, the served bundle included,
    # on every call: the copy shares the model the first request model_builds.
    first, second = model.predict(request), model.predict(request)
    pd.testing.assert_frame_equal(first, second)
    assert model_builds == ["biased_mf"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post_json(url: str, payload: dict) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _wait_until_up(server: subprocess.Popen, ping_url: str) -> bool:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(ping_url, timeout=2):
                return True
        except OSError:
            time.sleep(1)
    return False


@pytest.mark.slow
def test_served_model_answers_a_request(run_id, tracking_uri, tmp_path):
    port = _free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve"]
            + ["-m", f"runs:/{run_id}/model", "--env-manager", "local"]
            + ["--host", "127.0.0.1", "-p", str(port)],
            env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so its workers stop with it
        )
    try:
        if not _wait_until_up(server, f"http://127.0.0.1:{port}/ping"):
            pytest.skip(f"`mlflow models serve` did not start:\n{log_path.read_text()}")
        url = f"http://127.0.0.1:{port}/invocations"
        status, body = _post_json(
            url,
            {
                "dataframe_split": {
                    "columns": ["userId", "movieId"],
                    "data": [[10, 1], [999, 1]],
                }
            },
        )
        assert status == 200, body
        predictions = body["predictions"]
        assert [row["known_user"] for row in predictions] == [True, False]
        assert all(0.5 <= row["prediction"] <= 5.0 for row in predictions)

        status, body = _post_json(
            url, {"dataframe_split": {"columns": ["userId"], "data": [[10]]}}
        )
        assert status == 400
        assert "movieId" in body["message"]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
