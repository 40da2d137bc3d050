"""kill -9 anywhere in a run loses nothing: a small ``kedro run`` is killed at eleven
points (in ingestion, processing, training, evaluation, reporting, inference, and
while the model is logged and registered), and each time the next run cleans up
after it and ends with exactly the metrics of a run that was never interrupted."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
import pytest

from tests.project import SMALL_RUN_PARAMS, copy_project, run_project
from tests.runtime.test_run_guard import runs_by_pid, start_kedro_run, wait_for

pytestmark = pytest.mark.slow

# The nodes run before each kill (a default run has about 115), spread over the
# pipelines; None: once every node ran, while the model is logged and registered.
KILL_AFTER_NODES = [1, 6, 12, 14, 17, 30, 60, 90, 100, 110, None]
# The small run, with BPR on one thread: its SGD threads race otherwise (Hogwild), and
# two uninterrupted runs would already differ.
PARAMS = {
    **SMALL_RUN_PARAMS,
    "training": {**SMALL_RUN_PARAMS["training"], "bpr": {"num_threads": 1}},
}
NODE_LINE = re.compile(r"\[(\d+)/\d+\] \S+: ")
LAST_NODE = "Pipeline execution completed"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("kill-points"))


@contextmanager
def in_project(project: Path) -> Iterator[None]:
    """From ``project``, with its own MLflow store; afterwards the process's MLflow
    state and environment as before (kedro-mlflow exports the experiment's id to the
    environment, which later tests with a store of their own must not see)."""
    environment = dict(os.environ)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(project)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{project / 'mlflow.db'}"
        try:
            yield
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.tracking.fluent._active_experiment_id = None
            os.environ.clear()
            os.environ.update(environment)


@pytest.fixture(scope="module")
def uninterrupted(project) -> dict:
    """The metrics of a run that nobody killed, in the same project."""
    with in_project(project):
        run_project(project, PARAMS)
    return _metrics(project)


def _metrics(project: Path) -> dict:
    return json.loads((project / "data" / "08_reporting" / "metrics.json").read_text())


def _nodes_done(project: Path) -> int:
    log = project / "info.log"
    if not log.exists():
        return 0
    text = log.read_text()
    if LAST_NODE in text:
        return 10**6
    return max((int(n) for n in NODE_LINE.findall(text)), default=0)


@pytest.mark.parametrize("after", KILL_AFTER_NODES, ids=lambda n: f"after-{n}")
def test_a_rerun_after_kill_9_ends_with_the_uninterrupted_metrics(
    project, uninterrupted, after
):
    with in_project(project):
        (project / "info.log").unlink(missing_ok=True)
        killed = start_kedro_run(project, PARAMS)
        threshold = 10**6 if after is None else after
        wait_for(lambda: _nodes_done(project) >= threshold, killed, f"node {after}")
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=60)

        (project / "conf" / "local" / "parameters.yml").unlink()
        run_project(project, PARAMS)

        assert _metrics(project) == uninterrupted
        assert not list(project.rglob(".partial-*"))
        [dead_run] = runs_by_pid(killed.pid)
        assert dead_run.info.status == "KILLED"
