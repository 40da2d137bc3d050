"""The MLflow model of bayesian_fm's kept samples (ordered probit with time): logged and
loaded back without myFM or a pickle, it predicts at a request's ``timestamp`` column
(declared, optional, ``Any``) or, without one or for a null, at the model's default
bucket; a bad timestamp is a 400 naming the column."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from mlflow.exceptions import MlflowException

from rating_prediction.serving.artifacts import save_served_model
from rating_prediction.serving.bundle import assemble_served_model
from rating_prediction.serving.pyfunc import log_served_model
from tests.models.sampled_fixtures import (
    HALF_STARS,
    TIME,
    random_weights,
    sampled_config,
)

IN_THE_FIRST_BUCKET = TIME["origin"] + 3_600


@pytest.fixture(scope="module")
def served(served_inputs):
    config = sampled_config(4, 5, levels=HALF_STARS, time=TIME)
    return assemble_served_model(
        config, random_weights(config, seed=5), **served_inputs
    )


@pytest.fixture(scope="module")
def loaded_model(served, tmp_path_factory) -> mlflow.pyfunc.PyFuncModel:
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path_factory.mktemp('mlruns')}/mlflow.db")
    folder = tmp_path_factory.mktemp("artifacts") / "served_model"
    save_served_model(served, folder)
    try:
        with mlflow.start_run() as run:
            log_served_model(folder)
        yield mlflow.pyfunc.load_model(f"runs:/{run.info.run_id}/model")
    finally:
        mlflow.set_tracking_uri(None)


def expected(served, timestamps: list | None) -> np.ndarray:
    seconds = None
    if timestamps is not None:
        seconds = torch.tensor(
            [np.nan if t is None else t for t in timestamps], dtype=torch.float64
        )
    users, movies = torch.tensor([0, 1, -1]), torch.tensor([0, 1, 2])
    return served.model.predict(users, movies, seconds).numpy()


def test_the_logged_model_predicts_at_the_timestamp_column(loaded_model, served):
    request = pd.DataFrame({"userId": [10, 20, 999], "movieId": [1, 2, 3]})
    without = loaded_model.predict(request)
    np.testing.assert_allclose(without["prediction"], expected(served, None))
    times = [IN_THE_FIRST_BUCKET, None, TIME["origin"] + 5 * TIME["width"]]
    timed = request.assign(timestamp=pd.Series(times, dtype=object))
    answer = loaded_model.predict(timed)
    np.testing.assert_allclose(answer["prediction"], expected(served, times))
    assert answer["prediction"][1] == without["prediction"][1]
    assert answer["prediction"][0] != without["prediction"][0]
    assert answer["known_user"].tolist() == [True, True, False]
    assert "timestamp" in loaded_model.metadata.metadata["input_columns"]


@pytest.mark.parametrize(
    ("value", "quoted"),
    [(-5, r"\[-5\]"), (1.5, r"\[1.5\]"), ("yesterday", r"\['yesterday'\]")],
)
def test_a_bad_timestamp_is_a_400_in_process(loaded_model, value, quoted):
    request = pd.DataFrame(
        {"userId": [10], "movieId": [1], "timestamp": pd.Series([value], dtype=object)}
    )
    with pytest.raises(
        MlflowException, match=rf"Column 'timestamp' .*got {quoted}"
    ) as refused:
        loaded_model.predict(request)
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
