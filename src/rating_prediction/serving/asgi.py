"""The verified model's HTTP server: MLflow's scoring server (the same ``/invocations``,
``/ping``, ``/health``, ``/version``) with every error answer kept short.

MLflow answers some requests that never reach the model with its own stack trace, paths
of the server included (a CSV it cannot read, a body that is no parquet), and others by
quoting the request back (a body that is no JSON, params of another type than declared).
:func:`scrubbed` keeps the model's own refusals, which name the parameter or column and
quote the offending value, and answers MLflow's with a short message of what the server
reads; MLflow's full answer goes to the server's log. ``verify-and-serve`` runs it with
uvicorn (``--factory``), as ``mlflow models serve`` runs MLflow's own app.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from mlflow.pyfunc import scoring_server

from .pyfunc import MODEL_ERROR_SOURCE
from .verify import MODEL_PATH_VARIABLE

_logger = logging.getLogger(__name__)

UNREADABLE_REQUEST = (
    "The scoring server could not read this request: send JSON (Content-Type "
    "application/json) with dataframe_split, dataframe_records, instances or inputs, "
    "and params of their declared types (task a string, k an integer, regularization "
    "and popularity_weight numbers). The server's log has MLflow's own message."
)
UNSUPPORTED_TYPE = (
    "Unsupported Content-Type: send application/json (UTF-8), text/csv or "
    "application/vnd.apache.parquet."
)
SERVER_ERROR = "Internal error of the scoring server: see the server's log."


def create_app() -> FastAPI:
    """MLflow's scoring app for the model in :data:`MODEL_PATH_VARIABLE`, scrubbed."""
    model_path = os.environ[MODEL_PATH_VARIABLE]
    return scrubbed(
        scoring_server.init(scoring_server.load_model_with_mlflow_config(model_path))
    )


def scrubbed(app: FastAPI) -> FastAPI:
    """``app`` with each error answer of ``/invocations`` passed through
    :func:`scrub_error`."""

    @app.middleware("http")
    async def short_errors(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        if response.status_code < 400 or request.url.path != "/invocations":
            return response
        body = b"".join([chunk async for chunk in response.body_iterator])
        return Response(
            scrub_error(body, response.status_code),
            status_code=response.status_code,
            media_type="application/json",
        )

    return app


def scrub_error(body: bytes, status: int) -> bytes:
    """An error answer as the client gets it: the model's own (marked with
    ``MODEL_ERROR_SOURCE``) as it is; MLflow's, logged whole here, replaced by a short
    message for its status, its ``error_code`` kept."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("source") == MODEL_ERROR_SOURCE:
        return body
    _logger.warning("The scoring server answered %d: %s", status, body[:4000])
    error_code = answer.get("error_code") if isinstance(answer, dict) else None
    if status == 415:
        message = UNSUPPORTED_TYPE
    elif status < 500:
        message = UNREADABLE_REQUEST
    else:
        message = SERVER_ERROR
    fallback_code = "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"
    code = error_code if isinstance(error_code, str) else fallback_code
    return json.dumps({"error_code": code, "message": message}).encode()
