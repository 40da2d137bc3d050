"""The MLflow model ``model``: a pyfunc built once, in ``load_context``, from the served
model's folder of safetensors, parquet and JSON; logged from code (``pyfunc_model.py``),
so no pickle is written or read anywhere on its load path."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import INTERNAL_ERROR, INVALID_PARAMETER_VALUE
from mlflow.types import ColSpec, ParamSchema, ParamSpec, Schema
from mlflow.types.schema import AnyType
from mlflow.utils.file_utils import local_file_uri_to_path

from rating_prediction.parameters.inference import RequestParameters

from .artifacts import (
    MODEL_CODE,
    first_known_id,
    load_served_model,
    read_answered_by,
    read_id_types,
    read_popularity_weight,
)
from .requests import answer_request, serving_limits

_logger = logging.getLogger(__name__)

ARTIFACT = "served_model"
MODEL_NAME = "model"

# The request's columns, also declared as the signature's inputs, every one optional
# (`similar` takes movieIds alone, `recommend` userIds alone): MLflow shows them and
# keeps a request to them; the model checks what each task needs (integers in
# 0..2**31-1, or non-empty strings for a data set whose ids are strings; timestamps
# integer unix seconds in 0..MAX_TIMESTAMP or null), answering 400 naming the column
# and quoting the value otherwise. Each is declared `Any`, which
# MLflow passes through as sent: declared `long`, MLflow's REST parser would cast 1.9999
# or true to 1 and 1e29 to -2**63 before the model sees them, and its own type errors
# quote the whole request back. (Checking `Any` costs MLflow about 1.5 s per million
# rows.)
INPUT_COLUMNS = {
    "userId": "integer, original MovieLens id",
    "movieId": "integer, original MovieLens id",
    "rating": "optional float: a rating of the user's own, to fold them in",
    "timestamp": (
        "optional integer: unix seconds of the rating to predict, read by a model "
        "with a time feature; absent or null: its default, the last period of its "
        "training data"
    ),
}
# The signature's type of each kind of id in an answer.
ID_COLSPEC_TYPES = {"integer": "long", "string": "string"}
INTEGER_IDS = {"userId": "integer", "movieId": "integer"}


def input_columns(id_types: dict[str, str] | None = None) -> dict[str, str]:
    """``INPUT_COLUMNS``, each id column described in its type (``id_types``)."""
    columns = dict(INPUT_COLUMNS)
    for column, id_type in (id_types or {}).items():
        if id_type == "string":
            columns[column] = "string, original id (this data set's ids are strings)"
    return columns


def model_signature(
    popularity_weight: float = 0.0, id_types: dict[str, str] | None = None
) -> ModelSignature:
    """The inputs, outputs and ``params`` of the model; ``popularity_weight`` defaults
    to the weight the served model was built with; the ids are ``long`` or ``string``
    as ``id_types`` (``{"userId": "integer" | "string", "movieId": ...}``) says."""
    id_types = INTEGER_IDS | (id_types or {})
    defaults = RequestParameters()
    return ModelSignature(
        inputs=Schema(
            [ColSpec(AnyType(), column, required=False) for column in INPUT_COLUMNS]
        ),
        outputs=Schema(
            [
                ColSpec(ID_COLSPEC_TYPES[id_types["userId"]], "userId"),
                ColSpec(ID_COLSPEC_TYPES[id_types["movieId"]], "movieId"),
                ColSpec("double", "prediction"),
                ColSpec("boolean", "known_user"),
                ColSpec("boolean", "known_movie"),
                ColSpec("string", "fallback", required=False),
            ]
        ),
        params=ParamSchema(
            [
                ParamSpec("task", "string", defaults.task),
                ParamSpec("k", "long", defaults.k),
                ParamSpec("regularization", "double", defaults.regularization),
                ParamSpec("popularity_weight", "double", float(popularity_weight)),
            ]
        ),
    )


INPUT_EXAMPLE = pd.DataFrame({"userId": [1], "movieId": [1]})


def input_example(folder: str | Path) -> pd.DataFrame:
    """``INPUT_EXAMPLE`` for a model with integer ids; with string ids, the first
    known user and movie of the served model in ``folder``."""
    id_types = read_id_types(folder)
    if set(id_types.values()) == {"integer"}:
        return INPUT_EXAMPLE
    return pd.DataFrame(
        {column: [first_known_id(folder, column)] for column in ("userId", "movieId")}
    )


# Marks the model's own error answers (``"source": "model"``), which the verified
# server passes on as they are (see :mod:`.asgi`).
MODEL_ERROR_SOURCE = "model"


class RequestFailed(MlflowException):
    """Why a request got no answer, and only that: MLflow's scoring server puts the
    request's data before the message of an ``MlflowException`` that ``predict`` raises
    ("Failed to predict data '<the request as a table>' ..."), so the JSON it answers
    with holds the model's message alone."""

    def __init__(self, message: str, error_code: int) -> None:
        super().__init__(message, error_code=error_code)
        self.answer = message

    def serialize_as_json(self) -> str:
        return json.dumps(
            json.loads(super().serialize_as_json())
            | {"message": self.answer, "source": MODEL_ERROR_SOURCE}
        )


class ServedModelPyfunc(mlflow.pyfunc.PythonModel):
    """Answers requests with :func:`~rating_prediction.serving.requests.answer_request`,
    within the limits the serving host sets (``RATING_PREDICTION_MAX_*``, read at load);
    a bad request is a :class:`RequestFailed` with ``INVALID_PARAMETER_VALUE`` (HTTP
    400), any other error one with ``INTERNAL_ERROR`` (HTTP 500) and a short message,
    its trace in the server's log only."""

    def load_context(self, context: Any) -> None:
        self.limits = serving_limits(os.environ)
        self.served = load_served_model(context.artifacts[ARTIFACT])

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict | None = None
    ) -> pd.DataFrame:
        try:
            return answer_request(self.served, model_input, params, self.limits)
        except ValueError as error:
            raise RequestFailed(str(error), INVALID_PARAMETER_VALUE) from None
        except Exception:  # any other error is the server's own
            # Not the client's to see: a trace names the server's files and code.
            _logger.exception("The served model failed to answer a request")
            raise RequestFailed(
                "Internal error of the served model while answering the request: see "
                "the server's log.",
                INTERNAL_ERROR,
            ) from None


def log_served_model(folder: str | Path, **kwargs: Any) -> Any:
    """Logs the served model in ``folder`` as the MLflow model ``model`` of the active
    run; ``kwargs`` go to ``mlflow.pyfunc.log_model`` (e.g. ``registered_model_name``).
    Its signature, input columns and example fit the served model's id types; its
    metadata says which variant answers each task (``answered_by``)."""
    id_types = read_id_types(folder)
    with (
        artifact_progress_on_a_terminal(),
        _staged(folder) as (staged, code),
        _no_files_of_a_failed_model(),
    ):
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=str(code),
            artifacts={ARTIFACT: str(staged)},
            signature=model_signature(read_popularity_weight(folder), id_types),
            input_example=input_example(folder),
            pip_requirements=_requirements(),
            metadata={
                "input_columns": input_columns(id_types),
                "answered_by": read_answered_by(folder),
            },
            **kwargs,
        )


@contextmanager
def _staged(folder: str | Path) -> Iterator[tuple[Path, Path]]:
    """The served model folder and the code file, from a temporary directory: MLmodel
    records the paths the model was logged from (the artifact's ``uri``,
    ``model_code_path``), which would otherwise be the project's and the
    installation's. The folder's files are hard links where the file system allows
    (MLflow refuses a symbolic link out of the folder), copies elsewhere."""
    with tempfile.TemporaryDirectory(prefix="served-model-") as staging:
        code = Path(staging) / MODEL_CODE.name
        shutil.copyfile(MODEL_CODE, code)
        staged = Path(staging) / ARTIFACT
        shutil.copytree(folder, staged, copy_function=_link_or_copy)
        yield staged, code


@contextmanager
def _no_files_of_a_failed_model() -> Iterator[None]:
    """A model whose logging fails part way (a full artifact store) is marked FAILED
    by MLflow, which leaves the files it had copied; in a local store they are removed
    (a remote store's are the store's to clean)."""
    try:
        yield
    except Exception:
        model = mlflow.last_logged_model()
        if model is not None and model.status == LoggedModelStatus.FAILED:
            location = model.artifact_location
            if "://" not in location or location.startswith("file:"):
                shutil.rmtree(local_file_uri_to_path(location), ignore_errors=True)
        raise


def _link_or_copy(source: str, destination: str) -> None:
    try:
        os.link(source, destination)
    except OSError:  # another file system
        shutil.copy2(source, destination)


@contextmanager
def artifact_progress_on_a_terminal() -> Iterator[None]:
    """MLflow draws a progress bar while it downloads the artifacts it validates the
    input example with; without a terminal (a log file, CI) each update would land in
    the output."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    if not sys.stderr.isatty():
        os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


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
