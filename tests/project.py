"""Running the whole project in a temporary copy, so the repository's data/ and MLflow
store stay untouched."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from mlflow.tracking import MlflowClient

from rating_prediction.models.variants import LIGHTNING_FIT, VARIANTS

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
# The variants trained with Lightning (bayesian_fm is Gibbs-sampled by myFM).
LIGHTNING_VARIANTS = tuple(
    name for name, entry in VARIANTS.items() if entry.fit == LIGHTNING_FIT
)

# About 10k ratings after the top-50 filter; a higher learning rate so a few epochs
# are enough to learn something.
SMALL_RUN_PARAMS = {
    "ingestion": {"synthetic": {"n_users": 400, "n_movies": 150, "n_ratings": 20_000}},
    "training": {
        **{
            variant: {
                "max_epochs": 8,
                "min_epochs": 1,
                "optimizer": {"learning_rate": 0.05},
            }
            for variant in LIGHTNING_VARIANTS
        },
        "bayesian_fm": {"n_iter": 20, "n_kept_samples": 10},
    },
}


def copy_project(destination: Path) -> Path:
    """The project's configuration in ``destination``; the package is the installed one.

    Kedro requires the source directory to exist, so an empty ``src/`` stands in for it.
    """
    shutil.copytree(PROJECT_ROOT / "conf", destination / "conf")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", destination)
    (destination / "src").mkdir()
    return destination


@contextmanager
def scratch_project(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[Path]:
    """:func:`copy_project` in a new temporary folder, deleted when the block ends.

    For fixtures wider than a test: pytest keeps their folders until the session ends,
    and a whole run writes hundreds of MB (bayesian_fm's sampled model three times:
    trained, served, logged to MLflow), more than a CI machine's disk may hold summed
    over the suite.
    """
    folder = tmp_path_factory.mktemp(name)
    try:
        yield copy_project(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run_project(
    project_path: Path,
    runtime_params: dict[str, Any],
    pipeline_names: list[str] | None = None,
) -> None:
    """``kedro run`` (every pipeline, or ``pipeline_names``) with ``runtime_params``
    merged into the parameters."""
    bootstrap_project(project_path)
    with KedroSession.create(
        project_path=project_path, runtime_params=runtime_params
    ) as session:
        session.run(pipeline_names=pipeline_names)


LOCATION_KEYS = ("filepath", "path")


def file_dataset(entry: dict[str, Any]) -> dict[str, Any]:
    """The file (or folder) dataset inside a catalog entry's wrappers (AtomicDataset,
    MLflow)."""
    while not any(key in entry for key in LOCATION_KEYS):
        entry = entry["dataset"]
    return entry


def relocated(entry: dict[str, Any], filepath: Path) -> dict[str, Any]:
    """A catalog entry whose file (or folder) dataset writes to ``filepath``."""
    for key in LOCATION_KEYS:
        if key in entry:
            return {**entry, key: str(filepath)}
    return {**entry, "dataset": relocated(entry["dataset"], filepath)}


def refused_kedro_run(project_path: Path, *arguments: str) -> str:
    """``kedro run *arguments`` in its own process in ``project_path``, refused as a
    bad command line is: exit status 1, no traceback, and no MLflow run opened.
    Returns what it printed."""
    refused = subprocess.run(
        [sys.executable, "-m", "kedro", "run", *arguments],
        cwd=project_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    printed = (refused.stdout + refused.stderr).strip()
    assert refused.returncode == 1, printed
    assert "Traceback" not in printed, printed
    store = project_path / "mlflow.db"
    if store.exists():
        client = MlflowClient(f"sqlite:///{store}")
        experiments = [e.experiment_id for e in client.search_experiments()]
        assert client.search_runs(experiments) == []
    return printed
