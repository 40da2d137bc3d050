"""Settings for the whole test session: no telemetry, no plotting window."""

import os
from pathlib import Path

import pytest

from rating_prediction.runtime.library_warnings import ignore_library_warnings
from tests.project import copy_project

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def project_copy(tmp_path, monkeypatch) -> Path:
    """A copy of the project's configuration, run from, with its own SQLite MLflow store."""
    project_path = copy_project(tmp_path)
    monkeypatch.chdir(project_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project_path / 'mlflow.db'}")
    return project_path


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """The library warnings the package ignores, ignored in every test too, from before
    its fixtures (a module's included): pytest restores the warning filters after each
    test, so those set when the package was first imported do not last."""
    ignore_library_warnings()
