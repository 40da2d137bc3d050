"""Settings for the whole test session: no telemetry, no plotting window."""

import os
from pathlib import Path

import pytest

from tests.project import copy_project

# Fixtures that library tests and pipeline tests share, defined once in the library
# package's test folder and registered here for the whole tree (a conftest.py would
# reach only its own folder).
pytest_plugins = [
    "tests.movielens.fixtures",
    "tests.serving.fixtures",
    "tests.training.fixtures",
]

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def project_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the project's configuration, run from, with its own SQLite MLflow store."""
    project_path = copy_project(tmp_path)
    monkeypatch.chdir(project_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project_path / 'mlflow.db'}")
    return project_path
