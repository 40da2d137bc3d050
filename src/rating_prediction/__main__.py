"""rating-prediction file for ensuring the package is executable
as `rating-prediction` and `python -m rating_prediction`: `kedro run` with its options,
or `verify-and-serve MODEL_URI` (see :mod:`rating_prediction.serving.verify`).
"""

import sys
from pathlib import Path
from typing import Any

import click
from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project
from mlflow.exceptions import MlflowException

from rating_prediction.serving.verify import IntegrityError, serve_verified

VERIFY_AND_SERVE = "verify-and-serve"


@click.command(name=VERIFY_AND_SERVE)
@click.argument("model_uri")
@click.option("--host", "-h", default="127.0.0.1", show_default=True)
@click.option("--port", "-p", default=5001, show_default=True, type=int)
def verify_and_serve(model_uri: str, host: str, port: int) -> None:
    """Serve a registered model only if every file of it matches the SHA-256 manifest
    in its registry version's tags.

    MODEL_URI is models:/<name>@<alias> or models:/<name>/<version>; the store is
    MLFLOW_TRACKING_URI's. The version is downloaded into a private folder, checked,
    then served from it by MLflow's scoring server (as `mlflow models serve
    --env-manager local` serves it), whose own error answers are kept short.
    """
    try:
        status = serve_verified(model_uri, host, port)
    except (IntegrityError, MlflowException) as error:
        raise click.ClickException(str(error)) from None
    sys.exit(status)


def main(*args, **kwargs) -> Any:
    if not args and sys.argv[1:2] == [VERIFY_AND_SERVE]:
        return verify_and_serve(sys.argv[2:], **kwargs)

    package_name = Path(__file__).parent.name
    configure_project(package_name)

    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive

    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
