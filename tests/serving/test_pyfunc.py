"""The MLflow model `model`: logged from code with the served model's folder of
safetensors, parquet and JSON, loaded back (no pickle on the way), and served over REST.
"""

import dataclasses
import errno
import os
import pickle
import shutil
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.utils.file_utils import local_file_uri_to_path

from rating_prediction.serving import pyfunc
from rating_prediction.serving.artifacts import FILES, RANKER_FILES, save_served_model
from rating_prediction.serving.pyfunc import ARTIFACT, log_served_model
from rating_prediction.serving.requests import answer_request
from tests.serving.rest import post, serving


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory) -> str:
    """A temporary SQLite store (slow to create, so one per module)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlruns') / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def run_id(served, tmp_path_factory, tracking_uri) -> str:
    """Logs the model in a run of the temporary store, as `ServingHooks` does."""
    folder = tmp_path_factory.mktemp("artifacts") / "served_model"
    save_served_model(served, folder)
    with mlflow.start_run() as run:
        log_served_model(folder)
    return run.info.run_id


@pytest.fixture(scope="module")
def loaded_model(run_id) -> mlflow.pyfunc.PyFuncModel:
    return mlflow.pyfunc.load_model(f"runs:/{run_id}/model")


@pytest.fixture(scope="module")
def model_dir(run_id, tmp_path_factory) -> Path:
    """A local copy of the logged model's folder."""
    return Path(
        mlflow.artifacts.download_artifacts(
            f"runs:/{run_id}/model", dst_path=str(tmp_path_factory.mktemp("model"))
        )
    )


def test_logged_model_predicts_known_pairs_and_flags_unknown_user(loaded_model):
    request = pd.DataFrame({"userId": [10, 20, 30, 999], "movieId": [1, 2, 4, 1]})
    response = loaded_model.predict(request)
    assert list(response.columns) == [
        "userId",
        "movieId",
        "prediction",
        "known_user",
        "known_movie",
        "fallback",
    ]
    assert response["userId"].tolist() == [10, 20, 30, 999]
    assert response["prediction"].between(0.5, 5.0).all()
    assert response["known_user"].tolist() == [True, True, True, False]
    assert response["known_movie"].all()


def test_logged_model_answers_an_empty_request_with_an_empty_table(loaded_model):
    empty = pd.DataFrame({"userId": [], "movieId": []}, dtype="int64")
    response = loaded_model.predict(empty)
    assert response.empty
    assert {"prediction", "known_user", "known_movie"} <= set(response.columns)


def test_logged_model_declares_its_columns_and_checks_them_itself(loaded_model):
    # Declared, optional and `Any`: MLflow passes each value through as sent, so the
    # model's own checks see 1.9999 or true, not what a cast made of them.
    inputs = loaded_model.metadata.get_input_schema()
    assert [(c.name, str(c.type), c.required) for c in inputs.inputs] == [
        ("userId", "Any", False),
        ("movieId", "Any", False),
        ("rating", "Any", False),
        ("timestamp", "Any", False),
    ]
    assert set(loaded_model.metadata.metadata["input_columns"]) == {
        "userId",
        "movieId",
        "rating",
        "timestamp",
    }
    assert [param.name for param in loaded_model.metadata.get_params_schema()] == [
        "task",
        "k",
        "regularization",
        "popularity_weight",
    ]
    with pytest.raises(MlflowException, match="movieId"):
        loaded_model.predict(pd.DataFrame({"userId": [10]}))


@pytest.mark.parametrize(
    ("user_ids", "message"),
    [
        ([1.9999], r"'userId' must hold integer ids; got \[1.9999\]"),
        ([True], "'userId' must hold integer ids, not booleans"),
        ([-1], r"'userId' must hold ids in 0\.\.2147483647; got \[-1\]"),
        ([2**31], r"'userId' must hold ids in 0\.\.2147483647"),
        ([2**70], r"'userId' must hold ids in 0\.\.2147483647"),
        (["10"], "'userId' must hold integer ids"),
        ([None], "'userId' has missing value"),
    ],
)
def test_bad_ids_are_refused_in_process(loaded_model, user_ids, message):
    request = pd.DataFrame({"userId": pd.Series(user_ids, dtype=object), "movieId": 1})
    with pytest.raises(MlflowException, match=message):
        loaded_model.predict(request)
    float_or_bool = pd.DataFrame({"userId": user_ids[:1], "movieId": [1]})
    if float_or_bool["userId"].dtype.kind in "bf":
        with pytest.raises(MlflowException, match=message):
            loaded_model.predict(float_or_bool)


def test_the_torch_model_is_built_once_at_load(run_id, model_builds):
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    assert model_builds == ["biased_mf"]
    request = pd.DataFrame({"userId": [10, 999], "movieId": [1, 1]})
    pd.testing.assert_frame_equal(model.predict(request), model.predict(request))
    assert model_builds == ["biased_mf"]


def test_fold_in_recommend_and_similar_through_the_pyfunc(loaded_model):
    # User 999 is unknown; the rows with a rating are their own ratings.
    request = pd.DataFrame(
        {
            "userId": [999, 999, 999, 999],
            "movieId": [1, 2, 3, 4],
            "rating": [5.0, 1.0, None, None],
        }
    )
    predicted = loaded_model.predict(request)
    assert predicted["movieId"].tolist() == [3, 4]
    fallback = loaded_model.predict(request[["userId", "movieId"]].iloc[2:])
    assert not predicted["prediction"].equals(fallback["prediction"])

    recommended = loaded_model.predict(request, params={"task": "recommend", "k": 5})
    assert set(recommended["movieId"]) == {3, 4}  # not the movies they rated

    similar = loaded_model.predict(
        pd.DataFrame({"userId": [0], "movieId": [1]}),
        params={"task": "similar", "k": 2},
    )
    assert similar["movieId"].tolist() == [1, 1]
    assert similar["title"].str.startswith("Movie ").all()


def test_recommend_takes_a_popularity_weight(loaded_model, served):
    request = pd.DataFrame({"userId": [10, 20, 30, 999], "movieId": 1})
    params = {"task": "recommend", "k": 3}
    assert loaded_model.metadata.get_params_schema().to_dict()[-1] == {
        "name": "popularity_weight",
        "type": "double",
        "default": 0.0,
        "shape": None,
    }
    default = loaded_model.predict(request, params=params)
    pd.testing.assert_frame_equal(
        default, answer_request(served, request, params | {"popularity_weight": 0.0})
    )
    for weight in (0.5, 1.0):
        blended = loaded_model.predict(
            request, params=params | {"popularity_weight": weight}
        )
        pd.testing.assert_frame_equal(
            blended,
            answer_request(served, request, params | {"popularity_weight": weight}),
        )
    # Weight 1: the most-rated unrated known movies (movie 2 and 1 rated twice, then
    # 3 and 4 once; ties to the lower id).
    popular = loaded_model.predict(request, params=params | {"popularity_weight": 1})
    assert popular.groupby("userId")["movieId"].agg(list).to_dict() == {
        10: [3, 4],
        20: [1, 4],
        30: [2, 3],
        999: [1, 2, 3],
    }
    for bad in (-0.1, 1.5):
        with pytest.raises(MlflowException, match="popularity_weight"):
            loaded_model.predict(request, params=params | {"popularity_weight": bad})
    with pytest.raises(MlflowException, match="popularity_weight"):
        loaded_model.predict(request, params=params | {"popularity_weight": "a"})


def test_recommend_defaults_to_the_weight_the_model_was_logged_with(
    served, tmp_path, tracking_uri
):
    folder = tmp_path / "served_model"
    save_served_model(dataclasses.replace(served, popularity_weight=0.5), folder)
    with mlflow.start_run() as run:
        log_served_model(folder)
    model = mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    assert model.metadata.get_params_schema().to_dict()[-1]["default"] == 0.5
    request = pd.DataFrame({"userId": [10, 20, 30], "movieId": 1})
    params = {"task": "recommend", "k": 3}
    pd.testing.assert_frame_equal(
        model.predict(request, params=params),
        answer_request(served, request, params | {"popularity_weight": 0.5}),
    )


@pytest.fixture(scope="module")
def ranked_model_dir(ranked_served, tmp_path_factory, tracking_uri) -> Path:
    """A local copy of the logged model of ``ranked_served`` (ease recommends)."""
    folder = tmp_path_factory.mktemp("ranked") / "served_model"
    save_served_model(ranked_served, folder)
    with mlflow.start_run() as run:
        log_served_model(folder)
    return Path(
        mlflow.artifacts.download_artifacts(
            f"runs:/{run.info.run_id}/model",
            dst_path=str(tmp_path_factory.mktemp("ranked_model")),
        )
    )


def test_the_answering_variant_is_in_the_metadata_and_each_answer(
    ranked_model_dir, ranked_served, model_builds
):
    model = mlflow.pyfunc.load_model(str(ranked_model_dir))
    assert model.metadata.metadata["answered_by"] == {
        "predict": "biased_mf",
        "recommend": "ease",
        "similar": "ease",
        "fold_in": "ease",
    }
    pairs = pd.DataFrame({"userId": [10, 999], "movieId": [1, 1]})
    # 999 brings ratings of their own: folded in by the ranker.
    request = pd.DataFrame(
        {
            "userId": [10, 20, 999, 999],
            "movieId": [1, 1, 1, 3],
            "rating": [None, None, 5.0, 4.0],
        }
    )
    params = {"task": "recommend", "k": 2}
    predicted = model.predict(pairs)
    recommended = model.predict(request, params=params)
    similar = model.predict(pairs, params={"task": "similar", "k": 2})
    # The rating model and the ranker, each built once, at load.
    assert sorted(model_builds) == ["biased_mf", "ease"]
    assert list(predicted.columns) == [
        "userId",
        "movieId",
        "prediction",
        "known_user",
        "known_movie",
        "fallback",
    ]
    pd.testing.assert_frame_equal(predicted, answer_request(ranked_served, pairs))
    pd.testing.assert_frame_equal(
        recommended, answer_request(ranked_served, request, params)
    )
    assert set(recommended["variant"]) == {"ease"}
    assert not {1, 3} & set(recommended.loc[recommended["userId"] == 999, "movieId"])
    assert set(similar["variant"]) == {"ease"}


@pytest.mark.parametrize("name", RANKER_FILES)
def test_a_malicious_pickle_in_place_of_a_ranker_file_never_runs(
    ranked_model_dir, tmp_path, name
):
    copy = shutil.copytree(ranked_model_dir, tmp_path / "model")
    marker = tmp_path / "pwned"
    (copy / "artifacts" / ARTIFACT / name).write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(Exception, match=f"{name}.*not a valid file"):
        mlflow.pyfunc.load_model(str(copy)).predict(
            pd.DataFrame({"userId": [10], "movieId": [1]})
        )
    assert not marker.exists()


def test_the_logged_model_holds_no_pickle(model_dir):
    files = [path for path in model_dir.rglob("*") if path.is_file()]
    assert {
        path.name for path in (model_dir / "artifacts" / ARTIFACT).iterdir()
    } == set(FILES)
    for path in files:
        assert path.suffix not in {".pkl", ".pickle"}, path
        assert not path.read_bytes().startswith(b"\x80"), path  # pickle's opcode


class _Payload:
    """Unpickling this creates ``marker``: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("name", FILES)
def test_a_malicious_pickle_in_place_of_an_artifact_never_runs(
    model_dir, tmp_path, name
):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    marker = tmp_path / "pwned"
    (copy / "artifacts" / ARTIFACT / name).write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(Exception, match=f"{name}.*not a valid file"):
        model = mlflow.pyfunc.load_model(str(copy))
        model.predict(pd.DataFrame({"userId": [10], "movieId": [1]}))
    assert not marker.exists()


def test_a_malicious_pickle_in_place_of_any_model_file_never_runs(model_dir, tmp_path):
    for path in sorted(model_dir.rglob("*")):
        if not path.is_file():
            continue
        copy = shutil.copytree(model_dir, tmp_path / path.name / "model")
        marker = tmp_path / f"pwned-{path.name}"
        (copy / path.relative_to(model_dir)).write_bytes(pickle.dumps(_Payload(marker)))
        try:
            mlflow.pyfunc.load_model(str(copy)).predict(
                pd.DataFrame({"userId": [10], "movieId": [1]})
            )
        except Exception:  # noqa: BLE001, S110 - any error will do; running is the failure
            pass
        assert not marker.exists(), path


@pytest.fixture(scope="module")
def invocations(run_id, tracking_uri, tmp_path_factory) -> Iterator[str]:
    """`mlflow models serve` of the logged model on 127.0.0.1, one per module."""
    with serving(
        f"runs:/{run_id}/model", tracking_uri, tmp_path_factory.mktemp("serve")
    ) as server:
        yield server.url


def _split(rows: str, columns: str = '["userId", "movieId"]') -> str:
    """A `dataframe_split` body; rows as JSON text, so `true` stays a boolean."""
    return f'{{"dataframe_split": {{"columns": {columns}, "data": {rows}}}}}'


@pytest.mark.slow
def test_served_model_answers_a_request(invocations):
    status, body = post(invocations, _split("[[10, 1], [999, 1]]"))
    assert status == 200, body
    predictions = body["predictions"]
    assert [row["known_user"] for row in predictions] == [True, False]
    assert [row["fallback"] for row in predictions] == [None, "unknown user"]

    # A new user whose only rating names an unknown movie, and an unknown movie's
    # similar movies: answered, and the answers say they fell back.
    fold_in = _split(
        "[[999, 777, 4.0], [999, 1, null]]", '["userId", "movieId", "rating"]'
    )
    status, body = post(invocations, fold_in)
    assert status == 200, body
    assert body["predictions"][0]["fallback"].startswith("unknown user, not folded in")
    similar = _split("[[777]]", '["movieId"]')[:-1] + ', "params": {"task": "similar"}}'
    status, body = post(invocations, similar)
    assert status == 200, body
    assert body["predictions"] == [
        {
            "movieId": 777,
            "rank": None,
            "similarMovieId": None,
            "title": None,
            "similarity": None,
            "variant": None,
            "fallback": "unknown movie",
        }
    ]
    assert all(0.5 <= row["prediction"] <= 5.0 for row in predictions)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("[[1.9999, 31]]", "'userId' must hold integer ids; got [1.9999]"),
        ("[[true, false]]", "'userId' must hold integer ids, not booleans"),
        ("[[10, -3]]", "'movieId' must hold ids in 0..2147483647; got [-3]"),
        ("[[10, 1e12]]", "'movieId' must hold ids in 0..2147483647"),
    ],
)
def test_served_model_refuses_bad_ids_with_400(invocations, rows, message):
    status, body = post(invocations, _split(rows))
    assert status == 400, body
    assert message in body["message"]


@pytest.mark.slow
def test_served_model_refuses_a_missing_or_misnamed_column_and_serves_other_tasks(
    invocations,
):
    status, body = post(invocations, _split("[[10]]", '["userId"]'))
    assert status == 400
    assert "movieId" in body["message"]

    status, body = post(invocations, _split("[[10, 1]]", '["user_id", "movieId"]'))
    assert status == 400
    assert "lacks the column(s) ['userId']" in body["message"]

    similar = _split("[[0, 1]]")[:-1] + ', "params": {"task": "similar", "k": 2}}'
    status, body = post(invocations, similar)
    assert status == 200, body
    assert [row["rank"] for row in body["predictions"]] == [1, 2]


def test_mlflows_artifact_progress_bar_is_off_without_a_terminal(monkeypatch):
    """Under pytest stderr is no terminal: the bar is off while the model is logged,
    and the variable is as it was afterwards."""
    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    with pyfunc.artifact_progress_on_a_terminal():
        assert os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] == "false"
    assert "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR" not in os.environ


def test_the_mlmodel_records_no_path_of_the_project_or_the_installation(model_dir):
    """MLflow writes the paths a model was logged from into MLmodel; they are those of
    a temporary staging folder, not the served model's nor the package's."""
    mlmodel = (model_dir / "MLmodel").read_text()
    assert str(pyfunc.MODEL_CODE.parent) not in mlmodel
    assert "served_model" in mlmodel  # the artifact is there, under its name
    logged_from = mlflow.models.Model.load(model_dir).flavors["python_function"]
    assert "served-model-" in logged_from["artifacts"][ARTIFACT]["uri"]
    assert "served-model-" in logged_from["model_code_path"]


def test_a_model_whose_logging_fails_part_way_leaves_no_files(
    served, tmp_path, tracking_uri, monkeypatch
):
    """A full artifact store: the upload stops after some files. MLflow marks the
    model FAILED; none of the files it had copied stay behind."""
    folder = tmp_path / "served_model"
    save_served_model(served, folder)
    upload = mlflow.tracking.MlflowClient.log_model_artifacts

    def fill_the_disk(self, model_id, local_dir):
        upload(self, model_id, local_dir)  # every file copied, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(
        mlflow.tracking.MlflowClient, "log_model_artifacts", fill_the_disk
    )
    with mlflow.start_run(), pytest.raises(OSError, match="No space left"):
        log_served_model(folder)
    model = mlflow.last_logged_model()
    assert model.status == LoggedModelStatus.FAILED
    assert not Path(local_file_uri_to_path(model.artifact_location)).exists()
