"""Settings for the whole test session: no telemetry, no plotting window."""

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pytest

from rating_prediction.runtime.library_warnings import ignore_library_warnings
from tests.project import copy_project, scratch_project

# Fixtures that library tests and pipeline tests share, defined once in the library
# package's test folder and registered here for the whole tree (a conftest.py would
# reach only its own folder). A module another one imports comes first, so that pytest
# rewrites its asserts before the import.
pytest_plugins = [
    "tests.movielens.fixtures",
    "tests.serving.fixtures",
    "tests.serving.blend_fixtures",
    "tests.training.fixtures",
]

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def project_copy(tmp_path, monkeypatch) -> Iterator[Path]:
    """A copy of the project's configuration, run from, with its own SQLite MLflow store."""
    project_path = copy_project(tmp_path)
    monkeypatch.chdir(project_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project_path / 'mlflow.db'}")
    environment = dict(os.environ)
    yield project_path
    # kedro-mlflow sets MLflow's experiment and URI for the process (MLflow exports the
    # experiment's id to the environment): undo it, so later tests with their own
    # MLflow store do not see this one's.
    mlflow.set_tracking_uri(None)
    mlflow.tracking.fluent._active_experiment_id = None
    os.environ.clear()
    os.environ.update(environment)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """The library warnings the package ignores, ignored in every test too, from before
    its fixtures (a module's included): pytest restores the warning filters after each
    test, so those set when the package was first imported do not last."""
    ignore_library_warnings()


@dataclass(frozen=True)
class DefaultRun:
    """A project after a default ``kedro run`` as a user starts it, and what it printed
    (decoded by hand: text mode would turn a progress bar's carriage returns into line
    breaks, which neither a terminal nor a log file shows)."""

    project: Path
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def default_kedro_run(tmp_path_factory) -> Iterator[DefaultRun]:
    """One default ``kedro run`` for the tests that read such a run (its console, the
    served model's examples), run once: it takes over a minute. The MLflow store is
    the default ``mlflow.db`` in the project's root and no warning filter is inherited,
    as a user has them. Tests must not change the project."""
    with scratch_project(tmp_path_factory, "default_run") as project:
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in {"MLFLOW_TRACKING_URI", "PYTHONWARNINGS"}
        }
        run = subprocess.run(
            [sys.executable, "-m", "kedro", "run"],
            cwd=project,
            env=environment,
            capture_output=True,
            check=False,
            timeout=900,
        )
        yield DefaultRun(
            project, run.returncode, run.stdout.decode(), run.stderr.decode()
        )
