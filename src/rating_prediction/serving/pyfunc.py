"""The MLflow model ``model``: a pyfunc built once, in ``load_context``, from the served
model's folder of safetensors, parquet and JSON; logged from code (``pyfunc_model.py``),
so no pickle is written or read anywhere on its load path."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema

from .artifacts import load_served_model, read_popularity_weight
from .requests import DEFAULT_PARAMS, answer_request

ARTIFACT = "served_model"
MODEL_NAME = "model"
# The file MLflow runs to get the model (models from code), copied into the model.
MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")

# The request's columns, declared in the model's metadata rather than as an input schema:
# with `long` ids MLflow's scoring server casts 1.9999 to 1 and true to 1 before the model
# sees them; with `double` it refuses integers; with `Any` it checks every value in Python
# (seconds for 1M rows). Without an input schema the model sees what the client sent and
# checks it itself (integers in 0..2**31-1), answering 400 otherwise.
INPUT_COLUMNS = {
    "userId": "integer, original MovieLens id",
    "movieId": "integer, original MovieLens id",
    "rating": "optional float: a rating of the user's own, to fold them in",
}


def model_signature(popularity_weight: float = 0.0) -> ModelSignature:
    """The outputs and ``params`` of the model; ``popularity_weight`` defaults to the
    weight the served model was built with."""
    return ModelSignature(
        inputs=None,
        outputs=Schema(
            [
                ColSpec("long", "userId"),
                ColSpec("long", "movieId"),
                ColSpec("double", "prediction"),
                ColSpec("boolean", "known_user"),
                ColSpec("boolean", "known_movie"),
            ]
        ),
        params=ParamSchema(
            [
                ParamSpec("task", "string", DEFAULT_PARAMS["task"]),
                ParamSpec("k", "long", DEFAULT_PARAMS["k"]),
                ParamSpec("regularization", "double", DEFAULT_PARAMS["regularization"]),
                ParamSpec("popularity_weight", "double", float(popularity_weight)),
            ]
        ),
    )


INPUT_EXAMPLE = pd.DataFrame({"userId": [1], "movieId": [1]})


class ServedModelPyfunc(mlflow.pyfunc.PythonModel):
    """Answers requests with :func:`~rating_prediction.serving.requests.answer_request`;
    a bad request is an ``MlflowException`` with ``INVALID_PARAMETER_VALUE`` (HTTP 400)."""

    def load_context(self, context: Any) -> None:
        self.served = load_served_model(context.artifacts[ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        try:
            return answer_request(self.served, model_input, params)
        except ValueError as error:
            raise MlflowException(
                str(error), error_code=INVALID_PARAMETER_VALUE
            ) from None


def log_served_model(folder: str | Path, **kwargs: Any) -> Any:
    """Logs the served model in ``folder`` as the MLflow model ``model`` of the active
    run; ``kwargs`` go to ``mlflow.pyfunc.log_model`` (e.g. ``registered_model_name``)."""
    return mlflow.pyfunc.log_model(
        name=MODEL_NAME,
        python_model=str(MODEL_CODE),
        artifacts={ARTIFACT: str(folder)},
        signature=model_signature(read_popularity_weight(folder)),
        input_example=INPUT_EXAMPLE,
        pip_requirements=_requirements(),
        metadata={"input_columns": INPUT_COLUMNS},
        **kwargs,
    )


def _requirements() -> list[str]:
    """The packages the model imports, pinned as installed (not inferred: inferring
    loads the model in a subprocess, slowly)."""
    pins = []
    for package in ("mlflow", "torch", "safetensors", "polars", "pandas", "pyarrow"):
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins
