"""The MLflow model of a data set whose ids are strings: logged with a signature of
string ids, loaded back, and served over REST answering in string ids."""

from collections.abc import Iterator

import mlflow
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from rating_prediction.serving.artifacts import save_served_model
from rating_prediction.serving.pyfunc import log_served_model
from tests.serving.rest import post, serving
from tests.serving.test_pyfunc import (
    _split,
    tracking_uri,  # noqa: F401 - the module's MLflow store
)


@pytest.fixture(scope="module")
def string_run_id(string_served, tmp_path_factory, tracking_uri) -> str:  # noqa: F811
    folder = tmp_path_factory.mktemp("artifacts") / "served_model"
    save_served_model(string_served, folder)
    with mlflow.start_run() as run:
        log_served_model(folder)
    return run.info.run_id


@pytest.fixture(scope="module")
def string_model(string_run_id) -> mlflow.pyfunc.PyFuncModel:
    return mlflow.pyfunc.load_model(f"runs:/{string_run_id}/model")


def test_the_signature_and_example_are_in_string_ids(string_model, string_run_id):
    outputs = string_model.metadata.get_output_schema().to_dict()
    assert [(spec["name"], spec["type"]) for spec in outputs[:2]] == [
        ("userId", "string"),
        ("movieId", "string"),
    ]
    columns = string_model.metadata.metadata["input_columns"]
    assert columns["userId"].startswith("string")
    example = mlflow.models.Model.load(
        f"runs:/{string_run_id}/model"
    ).load_input_example(
        mlflow.artifacts.download_artifacts(f"runs:/{string_run_id}/model")
    )
    assert example.to_dict("list") == {"userId": ["u10"], "movieId": ["m1"]}


def test_the_loaded_model_answers_in_string_ids(string_model):
    request = pd.DataFrame({"userId": ["u10", "u999"], "movieId": ["m1", "m1"]})
    answer = string_model.predict(request)
    assert answer["userId"].tolist() == ["u10", "u999"]
    assert answer["known_user"].tolist() == [True, False]
    with pytest.raises(MlflowException, match="'movieId' must hold string ids"):
        string_model.predict(pd.DataFrame({"userId": ["u10"], "movieId": [1]}))


@pytest.fixture(scope="module")
def string_invocations(string_run_id, tracking_uri, tmp_path_factory) -> Iterator[str]:  # noqa: F811
    """`mlflow models serve` of the string-id model on 127.0.0.1."""
    with serving(
        f"runs:/{string_run_id}/model", tracking_uri, tmp_path_factory.mktemp("serve")
    ) as server:
        yield server.url


def _with_params(body: str, params: str) -> str:
    return body[:-1] + f', "params": {params}}}'


@pytest.mark.slow
def test_rest_answers_every_task_in_string_ids(string_invocations):
    status, body = post(string_invocations, _split('[["u10", "m1"], ["u999", "m1"]]'))
    assert status == 200, body
    assert [row["userId"] for row in body["predictions"]] == ["u10", "u999"]
    assert [row["known_user"] for row in body["predictions"]] == [True, False]

    recommend = _with_params(_split('[["u10", "m1"]]'), '{"task": "recommend", "k": 2}')
    status, body = post(string_invocations, recommend)
    assert status == 200, body
    assert {row["userId"] for row in body["predictions"]} == {"u10"}
    assert all(row["movieId"].startswith("m") for row in body["predictions"])

    similar = _with_params(_split('[["u10", "m1"]]'), '{"task": "similar", "k": 2}')
    status, body = post(string_invocations, similar)
    assert status == 200, body
    assert [row["movieId"] for row in body["predictions"]] == ["m1", "m1"]
    assert all(row["similarMovieId"] != "m1" for row in body["predictions"])

    fold_in = _split(
        '[["new", "m1", 5.0], ["new", "m2", 1.0], ["new", "m3", null]]',
        '["userId", "movieId", "rating"]',
    )
    status, body = post(string_invocations, fold_in)
    assert status == 200, body
    assert [(row["userId"], row["movieId"]) for row in body["predictions"]] == [
        ("new", "m3")
    ]


@pytest.mark.slow
def test_rest_refuses_integer_ids_with_400(string_invocations):
    status, body = post(string_invocations, _split("[[10, 1]]"))
    assert status == 400, body
    assert "'userId' must hold string ids" in body["message"]
