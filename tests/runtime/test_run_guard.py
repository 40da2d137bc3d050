"""Fault tests with real processes: a second run is refused while one holds the lock,
Ctrl-C ends the MLflow run KILLED, and after kill -9 the next run cleans up and marks
the dead run KILLED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.entities import LoggedModelStatus

from rating_prediction.runtime.run_guard import (
    CHECKPOINT_PREFIX,
    HOLDER_FILE,
    close_orphaned_runs,
    project_tags,
)
from tests.project import LIGHTNING_VARIANTS, SMALL_RUN_PARAMS, run_project

pytestmark = pytest.mark.slow

# Training that lasts until the test stops it.
ENDLESS_TRAINING = {
    "ingestion": SMALL_RUN_PARAMS["ingestion"],
    "training": {
        variant: {"max_epochs": 100_000, "min_epochs": 100_000}
        for variant in LIGHTNING_VARIANTS
    },
}


def start_kedro_run(project_path: Path, parameters: dict) -> subprocess.Popen:
    (project_path / "conf" / "local" / "parameters.yml").write_text(
        yaml.safe_dump(parameters)
    )
    # A file, not a pipe: nobody reads a pipe while training runs, and a full one
    # would block the process.
    with (project_path / "kedro-run.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kedro", "run"],
            cwd=project_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    process.cwd = project_path
    return process


def checkpoint_folders(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{CHECKPOINT_PREFIX}{pid}-*"))


def wait_for(condition, process: subprocess.Popen, what: str, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            log = Path(process.cwd, "kedro-run.log").read_text()
            pytest.fail(f"kedro run ended before {what}:\n{log[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def store() -> mlflow.MlflowClient:
    """The test's own store (an earlier test may have set another tracking URI)."""
    return mlflow.MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])


def runs_by_pid(pid: int) -> list:
    return store().search_runs(
        [experiment.experiment_id for experiment in store().search_experiments()],
        filter_string=f"tags.`rating_prediction.pid` = '{pid}'",
    )


def test_a_second_run_is_refused_and_ctrl_c_ends_the_run_killed(project_copy):
    first = start_kedro_run(project_copy, ENDLESS_TRAINING)
    wait_for(lambda: checkpoint_folders(first.pid), first, "training started")

    second = subprocess.run(
        [sys.executable, "-m", "kedro", "run"],
        cwd=project_copy,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode != 0
    message = " ".join((second.stdout + second.stderr).split())
    assert f"Another kedro run (PID {first.pid}," in message
    assert ".kedro-run.lock" in message

    first.send_signal(signal.SIGINT)
    first.wait(timeout=120)
    assert first.returncode != 0
    [run] = runs_by_pid(first.pid)
    assert run.info.status == "KILLED"
    assert not checkpoint_folders(first.pid)
    for variant in LIGHTNING_VARIANTS:
        assert not (project_copy / "data" / "06_models" / variant).exists()
    assert not (project_copy / HOLDER_FILE).exists()


def test_after_kill_9_the_next_run_cleans_up_and_marks_the_dead_run_killed(
    project_copy,
):
    killed = start_kedro_run(project_copy, ENDLESS_TRAINING)
    wait_for(lambda: checkpoint_folders(killed.pid), killed, "training started")
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(timeout=60)
    [dead_run] = runs_by_pid(killed.pid)
    assert dead_run.info.status == "RUNNING"
    # What a kill during a save leaves behind.
    partial = project_copy / "data" / "08_reporting" / ".partial-4242-metrics.json"
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_text('{"half": ')

    (project_copy / "conf" / "local" / "parameters.yml").unlink()
    run_project(project_copy, SMALL_RUN_PARAMS)

    assert store().get_run(dead_run.info.run_id).info.status == "KILLED"
    [rerun] = runs_by_pid(os.getpid())
    assert rerun.info.status == "FINISHED"
    assert not checkpoint_folders(killed.pid)
    assert not list(project_copy.rglob(".partial-*"))
    # Every output of the rerun is consistent: a later evaluation accepts them all.
    run_project(project_copy, SMALL_RUN_PARAMS, pipeline_names=["evaluation"])


def test_a_run_left_running_is_killed_with_its_pending_model(project_copy):
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    client = mlflow.MlflowClient()
    experiment = client.create_experiment("orphans")
    tags = project_tags(project_copy)
    orphan = client.create_run(experiment, tags=tags)
    trial = client.create_run(
        experiment, tags={"mlflow.parentRunId": orphan.info.run_id}
    )
    model = client.create_logged_model(experiment, source_run_id=orphan.info.run_id)
    elsewhere = client.create_run(
        experiment, tags={**tags, "rating_prediction.host": "x"}
    )
    current = client.create_run(experiment, tags=tags)

    closed = close_orphaned_runs(project_copy, current.info.run_id)

    assert closed == [orphan.info.run_id]
    assert client.get_run(orphan.info.run_id).info.status == "KILLED"
    assert client.get_run(trial.info.run_id).info.status == "KILLED"
    assert client.get_logged_model(model.model_id).status == LoggedModelStatus.FAILED
    assert client.get_run(elsewhere.info.run_id).info.status == "RUNNING"
    assert client.get_run(current.info.run_id).info.status == "RUNNING"
