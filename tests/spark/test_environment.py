"""``--env spark`` without a Spark job: which pipelines each environment gets, the
settings the session is built from, and the runs that stop before Spark starts (no
Java, a master that does not answer, a split Spark cannot run). None starts a JVM."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from rating_prediction import pipeline_registry
from rating_prediction.hooks import RefusedSparkRun, check_spark_split
from rating_prediction.parameters import ParameterError, ProjectParameters, parse
from rating_prediction.runtime import environment
from rating_prediction.runtime.environment import RunEnvironmentStore, run_uses_spark
from rating_prediction.runtime.spark import (
    DRIVER_JAVA_OPTIONS,
    SparkSettings,
    SparkSetupError,
    check_master,
    find_java,
    master_addresses,
    spark_settings,
)
from tests.project import PROJECT_ROOT

SPARK_PIPELINES = {"spark_preparation"}
PLAIN_PIPELINES = {"data_ingestion", "data_processing", "training", "inference"}
SMALL_SYNTHETIC = (
    "ingestion.synthetic.n_users=200,ingestion.synthetic.n_movies=80,"
    "ingestion.synthetic.n_ratings=4000"
)


def kedro_run(project: Path, *arguments: str, **environment_variables: str):
    """``kedro run *arguments`` in its own process in ``project``."""
    return subprocess.run(
        [sys.executable, "-m", "kedro", "run", *arguments],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, **environment_variables},
    )


def refused(result: subprocess.CompletedProcess) -> str:
    """What a refused run printed: one ``Error:`` line, exit status 1, no traceback."""
    printed = (result.stdout + result.stderr).strip()
    assert result.returncode == 1, printed
    assert "Traceback" not in printed, printed
    return printed


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def spark_session_env(monkeypatch, tmp_path):
    """The recorded environment of a session created with ``--env spark`` (and put
    back afterwards)."""
    monkeypatch.setattr(environment, "_latest", None)
    store = RunEnvironmentStore(str(tmp_path), "session")
    store.update({"project_path": Path.cwd(), "env": "spark"})
    yield
    RunEnvironmentStore(str(tmp_path), "next session")


def test_spark_environment_registers_only_the_spark_pipelines(spark_session_env):
    assert run_uses_spark()
    names = set(pipeline_registry.environment_pipeline_names())
    assert names >= SPARK_PIPELINES
    assert all(name.startswith("spark_") for name in names)


def test_default_environment_never_registers_a_spark_pipeline(monkeypatch, tmp_path):
    monkeypatch.setattr(environment, "_latest", None)
    monkeypatch.delenv("KEDRO_ENV", raising=False)
    assert not run_uses_spark()
    RunEnvironmentStore(str(tmp_path), "session").update({"project_path": Path.cwd()})
    assert not run_uses_spark()
    names = set(pipeline_registry.environment_pipeline_names())
    assert names >= PLAIN_PIPELINES
    assert not any(name.startswith("spark_") for name in names)


def test_before_any_session_the_environment_is_kedro_envs(monkeypatch):
    """``KEDRO_ENV=spark kedro registry list`` creates no session."""
    monkeypatch.setattr(environment, "_latest", None)
    monkeypatch.setenv("KEDRO_ENV", "spark")
    assert run_uses_spark()


def test_conf_local_is_never_a_spark_environment(tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "spark.yml").write_text("spark.master: local[2]\n")
    assert not environment.env_uses_spark(tmp_path, "local")
    assert not environment.env_uses_spark(tmp_path, None)


@pytest.mark.parametrize("strategy", ["random", "predefined"])
def test_a_split_spark_cannot_run_is_refused_with_the_alternative(strategy):
    processing = {
        "top_n_movies": 50,
        "split": {"strategy": strategy, "fractions": [0.7, 0.2, 0.1], "seed": 1},
    }
    with pytest.raises(ParameterError, match=f"is '{strategy}'.*use 'hash'"):
        check_spark_split(processing)
    check_spark_split(
        {**processing, "split": {**processing["split"], "strategy": "hash"}}
    )


def test_the_spark_environment_parses_and_splits_by_hash():
    loader = OmegaConfigLoader(
        conf_source=str(PROJECT_ROOT / "conf"),
        base_env="base",
        default_run_env="spark",
        merge_strategy={"parameters": "soft"},
    )
    parameters = parse(ProjectParameters, loader["parameters"], "")
    assert parameters.processing.split.strategy == "hash"
    assert parameters.processing.split.fractions == [0.7, 0.2, 0.1]


def test_conf_local_overrides_the_spark_environment_and_is_named(tmp_path):
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "spark.yml").write_text("spark.master: spark://h:7077\n")
    settings = spark_settings(
        {"spark.master": "local[*]", "spark.ui.enabled": False}, tmp_path, "spark"
    )
    assert settings.properties == {
        "spark.master": "spark://h:7077",
        "spark.ui.enabled": "false",
    }
    assert settings.master_origin == "conf/local/spark.yml"
    with pytest.raises(SparkSetupError, match="'master' is not a Spark property"):
        spark_settings({"master": "local[*]"}, tmp_path / "nowhere", "spark")
    with pytest.raises(SparkSetupError, match="spark.master is set in neither"):
        spark_settings({"spark.app.name": "x"}, tmp_path / "nowhere", "spark")


def test_the_driver_logs_by_the_environments_log4j_file(tmp_path):
    """conf/spark/log4j2.properties reaches the driver's JVM, before other options; a
    conf/local one replaces it; options naming a file of their own keep it."""
    base = {"spark.master": "local[*]"}
    assert DRIVER_JAVA_OPTIONS not in spark_settings(base, tmp_path, "spark").properties
    for env in ("spark", "local"):
        (tmp_path / env).mkdir()
        (tmp_path / env / "log4j2.properties").write_text("rootLogger.level = warn\n")
    options = {**base, DRIVER_JAVA_OPTIONS: "-Xss4m"}
    found = spark_settings(options, tmp_path, "spark").properties[DRIVER_JAVA_OPTIONS]
    assert (
        found
        == f"-Dlog4j2.configurationFile={tmp_path / 'local' / 'log4j2.properties'} -Xss4m"
    )
    (tmp_path / "local" / "log4j2.properties").unlink()
    found = spark_settings(base, tmp_path, "spark").properties[DRIVER_JAVA_OPTIONS]
    assert (
        found
        == f"-Dlog4j2.configurationFile={tmp_path / 'spark' / 'log4j2.properties'}"
    )
    own = {**base, DRIVER_JAVA_OPTIONS: "-Dlog4j2.configurationFile=/mine.xml"}
    assert spark_settings(own, tmp_path, "spark").properties == own
    # The project's own file is there.
    assert (PROJECT_ROOT / "conf" / "spark" / "log4j2.properties").is_file()


def test_master_addresses_of_each_kind_of_cluster():
    assert master_addresses("spark://a:7078,b") == [("a", 7078), ("b", 7077)]
    assert master_addresses("k8s://https://api.example:6443") == [("api.example", 6443)]
    assert master_addresses("local[*]") == master_addresses("yarn") == []


def test_an_unanswering_master_is_named_within_the_timeout():
    settings = SparkSettings(
        {"spark.master": f"spark://127.0.0.1:{closed_port()}"}, "conf/local/spark.yml"
    )
    started = time.monotonic()
    with pytest.raises(
        SparkSetupError, match=r"spark.master 'spark://127.0.0.1:\d+' \(conf/local/"
    ):
        check_master(settings, timeout_s=5)
    assert time.monotonic() - started < 6


def test_java_too_old_or_absent_says_how_to_get_one(tmp_path, monkeypatch):
    java_home = tmp_path / "jdk8"
    (java_home / "bin").mkdir(parents=True)
    fake_java = java_home / "bin" / "java"
    fake_java.write_text("#!/bin/sh\necho 'openjdk version \"1.8.0_292\"' >&2\n")
    fake_java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    with pytest.raises(SparkSetupError, match=r"is Java 8\. Install one.*openjdk-17"):
        find_java()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "none"))
    with pytest.raises(SparkSetupError, match="holds no bin/java"):
        find_java()
    monkeypatch.delenv("JAVA_HOME")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SparkSetupError, match="none was found.*openjdk-17-jre"):
        find_java()


def test_a_spark_run_without_java_stops_at_once_saying_how_to_get_it(
    project_copy, monkeypatch
):
    """The environment's tools without java, as on a machine that has none."""
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="spark") as session:
        with pytest.raises(
            RefusedSparkRun,
            match=r"^pyspark needs Java 17\+, and none was found .*"
            "openjdk-17-jre-headless",
        ):
            session.run()
    assert not (project_copy / "data").exists()


def test_kedro_run_against_an_unanswering_master_stops_naming_it(project_copy):
    port = closed_port()
    (project_copy / "conf" / "local").mkdir(exist_ok=True)
    (project_copy / "conf" / "local" / "spark.yml").write_text(
        f"spark.master: spark://127.0.0.1:{port}\n"
    )
    started = time.monotonic()
    printed = refused(kedro_run(project_copy, "--env", "spark"))
    assert time.monotonic() - started < 60
    assert (
        f"Error: spark.master 'spark://127.0.0.1:{port}' (conf/local/spark.yml) does "
        "not answer"
    ) in printed
    assert not (project_copy / "data" / "spark").exists()


NO_PYSPARK_RUN = textwrap.dedent(
    """
    import sys
    # As if pyspark were not installed: any import of it fails. (MLflow imports it
    # when it can, and copes when it cannot.)
    sys.modules["pyspark"] = None
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(".")
    with KedroSession.create(runtime_params=PARAMS) as session:
        session.run(pipeline_names=["data_ingestion"])
    pipelines.set_requested(None)
    assert "__default__" in pipelines
    print("PY4J", [name for name in sys.modules if name.startswith("py4j")])
    """
)


def test_a_default_run_needs_no_pyspark_and_starts_no_jvm(project_copy):
    """A run without ``--env spark``, hooks and registry (``__default__``) included,
    in a process where pyspark cannot be imported: it runs, and py4j (the JVM's
    gateway) is never loaded."""
    params = {
        "ingestion": {"synthetic": {"n_users": 200, "n_movies": 80, "n_ratings": 4000}}
    }
    result = subprocess.run(
        [sys.executable, "-c", f"PARAMS = {params!r}\n{NO_PYSPARK_RUN}"],
        cwd=project_copy,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    printed = result.stdout + result.stderr
    assert result.returncode == 0, printed
    assert "PY4J []" in printed, printed


def test_a_notebook_session_in_the_spark_environment_gets_its_pipelines(
    project_copy, monkeypatch
):
    """``KedroSession.create(env="spark")`` after a default session in the same
    process (a notebook's ``%reload_kedro --env spark``): the registry follows."""
    from kedro.framework.project import pipelines  # noqa: PLC0415

    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy):
        assert "data_ingestion" in pipelines
    with KedroSession.create(project_path=project_copy, env="spark"):
        assert "spark_preparation" in pipelines
        assert "data_ingestion" not in pipelines
        default = pipelines["__default__"]
        assert {node.name for node in default.nodes} >= {
            "spark_split_ratings_node",
            "spark_check_ratings_node",
        }
        # The search runs alone: `kedro run --env spark --pipelines spark_tuning`.
        assert "tune_spark_variant_node" in {
            node.name for node in pipelines["spark_tuning"].nodes
        }
        assert "tune_spark_variant_node" not in {node.name for node in default.nodes}
    with KedroSession.create(project_path=project_copy):
        assert "spark_preparation" not in pipelines


def test_a_spark_session_of_kedro_starts_spark_from_the_environment(
    spark, project_copy
):
    """``KedroSession.create(env="spark")`` and its context (a notebook's, a run's):
    the hook checks Java and builds the session from spark.yml (here the test run's
    own, which Spark hands back, taking spark.yml's runtime settings)."""
    bootstrap_project(project_copy)
    try:
        with KedroSession.create(project_path=project_copy, env="spark") as session:
            session.load_context()
            assert spark.conf.get("spark.sql.shuffle.partitions") == "16"
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "4")


def test_the_executors_run_this_interpreter_unless_the_settings_name_one(spark):
    """The evaluation runs the project's code in the executors' Python workers: they
    must start the interpreter whose environment holds it, not the first on PATH."""
    assert spark.conf.get("spark.pyspark.python") == sys.executable
