"""A real cluster: a standalone master and two workers on 127.0.0.1, started with
pyspark's own ``bin/spark-class``; ``kedro run --env spark`` runs the data preparation
on them (``spark.master`` in conf/local/spark.yml, as a user points a run at their
cluster) and gives the mappings and the split membership of the one-machine ``kedro
run`` with the same hash split and seed. The master and workers are stopped by their
process ids, whatever happens.

On ml-latest-small where ../shared/data has it, else on a small synthetic sample.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pyspark
import pytest
import yaml

from rating_prediction.pipelines.data_processing import nodes
from rating_prediction.runtime.spark import SparkSetupError, find_java
from tests.project import SHARED_DATA
from tests.spark.test_ingestion import polars_ingestion

SPARK_HOME = Path(pyspark.__file__).parent
RELEASE = SHARED_DATA / "ml-latest-small"
WORKERS = 2
STARTUP_TIMEOUT_S = 120
SPLIT_FILES = ("train_ratings", "val_ratings", "test_ratings")
MAPPINGS = {"user_mapping": "userId", "movie_mapping": "movieId"}
SMALL_SYNTHETIC = {"n_users": 300, "n_movies": 120, "n_ratings": 6000}

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def alive_workers(ui_port: int) -> int:
    """How many workers the master's status page counts (0 while it is not up)."""
    try:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{ui_port}/json/", timeout=5
        ) as r:
            return int(json.load(r).get("aliveworkers", 0))
    except OSError:
        return 0


def master_status(ui_port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=5) as r:
        return json.load(r)


@contextmanager
def standalone_cluster(folder: Path) -> Iterator[tuple[str, int]]:
    """A master and ``WORKERS`` workers (one core, 1 GB each) on free ports: yields the
    master's URL and its status page's port; stops every process by its id."""
    environment = {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    port, ui_port = free_port(), free_port()
    url = f"spark://127.0.0.1:{port}"
    commands = [
        [spark_class, "org.apache.spark.deploy.master.Master"]
        + ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port)]
    ]
    for index in range(WORKERS):
        work_dir = folder / f"worker{index}"
        commands.append(
            [spark_class, "org.apache.spark.deploy.worker.Worker", url]
            + ["--host", "127.0.0.1", "--port", str(free_port())]
            + ["--webui-port", str(free_port()), "--cores", "1", "--memory", "1g"]
            + ["--work-dir", str(work_dir)]
        )
    processes: list[subprocess.Popen] = []
    try:
        for index, command in enumerate(commands):
            log = (folder / f"process{index}.log").open("w")
            processes.append(
                subprocess.Popen(
                    command, stdout=log, stderr=subprocess.STDOUT, env=environment
                )
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while alive_workers(ui_port) < WORKERS:
            assert time.monotonic() < deadline, "the cluster did not start"
            assert all(process.poll() is None for process in processes)
            time.sleep(1)
        yield url, ui_port
    finally:
        for process in processes:
            os.kill(process.pid, 15)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, 9)
                process.wait()


# What Spark's default log4j profile prints on every run, which conf/spark's
# log4j2.properties leaves out.
DEFAULT_PROFILE_NOTICES = (
    "Using Spark's default log4j profile",
    "Setting default log level",
    "NativeCodeLoader",
    "resolves to a loopback address",
)


def kedro_run(project: Path, *arguments: str) -> str:
    """What ``kedro run *arguments`` printed; it must succeed."""
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", *arguments],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=400,
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed[-5000:]
    return printed


def one_machine_preparation(
    project: Path, ingestion: dict[str, Any]
) -> dict[str, pl.DataFrame]:
    """The one-machine pipelines' mappings and splits (data_ingestion's and
    data_processing's nodes, in memory) of the release the cluster read, with the hash
    split and the seed the run used."""
    parameters = yaml.safe_load(
        (project / "conf" / "base" / "parameters_data_ingestion.yml").read_text()
    )["ingestion"]
    parameters["synthetic"].update(ingestion.get("synthetic", {}))
    parameters["dataset"] = ingestion.get("dataset", parameters["dataset"])
    parameters["raw_dir"] = str(project / parameters["raw_dir"])
    ratings, _, _ = polars_ingestion(parameters)
    processing = {
        "top_n_movies": 50,
        "split": {"strategy": "hash", "fractions": [0.7, 0.2, 0.1], "seed": 42},
    }
    filtered = nodes.filter_top_movies(ratings, processing)
    users = nodes.create_user_mapping(filtered)
    movies = nodes.create_movie_mapping(filtered)
    mapped = nodes.apply_id_mappings(filtered, users, movies)
    splits = nodes.split_ratings(mapped, processing)
    return {
        "user_mapping": users,
        "movie_mapping": movies,
        **dict(zip(SPLIT_FILES, splits, strict=True)),
    }


def release_to_read(project: Path) -> tuple[dict[str, Any], str]:
    """ml-latest-small copied into the project's raw folder where ../shared/data has
    it, else a small synthetic sample: the ``ingestion`` overrides, and as ``--params``.
    """
    if not (RELEASE / "ratings.csv").is_file():
        params = ",".join(
            f"ingestion.synthetic.{key}={value}"
            for key, value in SMALL_SYNTHETIC.items()
        )
        return {"synthetic": SMALL_SYNTHETIC}, params
    (project / "data" / "01_raw").mkdir(parents=True, exist_ok=True)
    shutil.copytree(RELEASE, project / "data" / "01_raw" / RELEASE.name)
    return {"dataset": RELEASE.name}, f"ingestion.dataset={RELEASE.name}"


def parquet(path: Path) -> pl.DataFrame:
    """A parquet file, or a folder of parts as Spark writes one."""
    return pl.read_parquet(path / "*.parquet" if path.is_dir() else path)


def test_a_two_worker_cluster_prepares_the_data_as_one_machine_does(
    project_copy, tmp_path
):
    try:
        find_java()
    except SparkSetupError as error:
        pytest.skip(str(error))
    ingestion, params = release_to_read(project_copy)
    cluster_folder = tmp_path / "cluster"
    cluster_folder.mkdir()
    with standalone_cluster(cluster_folder) as (url, ui_port):
        local = project_copy / "conf" / "local"
        local.mkdir(exist_ok=True)
        (local / "spark.yml").write_text(
            f"spark.master: {url}\n"
            "spark.executor.memory: 512m\n"
            "spark.driver.memory: 1g\n"
            "spark.ui.enabled: false\n"
            "spark.sql.shuffle.partitions: 4\n"
        )
        printed = kedro_run(
            project_copy,
            "--env",
            "spark",
            "--pipelines",
            "spark_preparation",
            "--params",
            params,
        )
        applications = master_status(ui_port)["completedapps"]
    assert [n for n in DEFAULT_PROFILE_NOTICES if n in printed] == [], printed[-3000:]
    assert [app["name"] for app in applications] == ["rating-prediction"]

    expected = one_machine_preparation(project_copy, ingestion)
    spark_data = project_copy / "data" / "spark"
    for name, column in MAPPINGS.items():
        found = parquet(spark_data / "03_primary" / name).sort(column)
        assert found.equals(expected[name]), name
    for name in SPLIT_FILES:
        found = parquet(spark_data / "05_model_input" / name)
        assert found.height == expected[name].height > 0, name
        assert set(found.select("userId", "movieId").rows()) == set(
            expected[name].select("userId", "movieId").rows()
        ), name
