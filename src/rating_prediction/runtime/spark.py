"""The Spark session of ``kedro run --env spark``: its settings, the checks that stop
a run at once when Spark cannot start (no Java 17+, a master that does not answer),
and the session itself.

pyspark is imported only by the functions that start or fetch a session: a run without
``--env spark`` never loads it (nor starts a JVM).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from kedro.config import MissingConfigException, OmegaConfigLoader

from rating_prediction.runtime.environment import LOCAL_ENV

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)

SPARK_SETTINGS = "spark"
MASTER_KEY = "spark.master"
PYTHON_KEY = "spark.pyspark.python"
# The driver's logging: a log4j 2 file beside spark.yml, handed to the driver's JVM.
LOG4J_FILE = "log4j2.properties"
LOG4J_OPTION = "-Dlog4j2.configurationFile"
DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
MIN_JAVA_VERSION = 17
JAVA_VERSION_TIMEOUT_S = 30
# How long the master's address may take to accept a connection before the run stops.
MASTER_CONNECT_TIMEOUT_S = 10
STANDALONE_PORT = 7077
KUBERNETES_PORT = 443
JAVA_ADVICE = (
    "Install one, e.g. `sudo apt-get install openjdk-17-jre-headless` (Debian, "
    "Ubuntu) or any JDK/JRE 17+ (adoptium.net), then put its `java` on PATH or set "
    "JAVA_HOME to its folder."
)


class SparkSetupError(RuntimeError):
    """Spark cannot start: no Java 17+, a master that does not answer, or settings that
    are not Spark's."""


@dataclass(frozen=True)
class Java:
    """The Java that pyspark will launch: its executable and major version."""

    executable: Path
    version: int


def find_java() -> Java:
    """The Java pyspark will use (``$JAVA_HOME/bin/java``, else ``java`` on PATH),
    checked to be 17 or newer.

    Raises:
        SparkSetupError: If there is none, or it is older, saying how to get one.
    """
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        executable = Path(java_home) / "bin" / "java"
        if not executable.is_file():
            raise SparkSetupError(
                f"pyspark needs Java {MIN_JAVA_VERSION}+, but JAVA_HOME ({java_home}) "
                f"holds no bin/java. {JAVA_ADVICE}"
            )
    else:
        found = shutil.which("java")
        if found is None:
            raise SparkSetupError(
                f"pyspark needs Java {MIN_JAVA_VERSION}+, and none was found "
                f"(JAVA_HOME is unset and no `java` is on PATH). {JAVA_ADVICE}"
            )
        executable = Path(found)
    version = java_version(executable)
    if version < MIN_JAVA_VERSION:
        raise SparkSetupError(
            f"pyspark needs Java {MIN_JAVA_VERSION}+, but {executable} is Java "
            f"{version}. {JAVA_ADVICE}"
        )
    return Java(executable, version)


def java_version(executable: Path) -> int:
    """The major version ``executable -version`` reports (``1.8`` is 8).

    Raises:
        SparkSetupError: If it does not run or says no version.
    """
    try:
        answer = subprocess.run(
            [str(executable), "-version"],
            capture_output=True,
            text=True,
            timeout=JAVA_VERSION_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SparkSetupError(
            f"{executable} -version failed ({error}). {JAVA_ADVICE}"
        ) from None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', answer.stderr + answer.stdout)
    if match is None:
        raise SparkSetupError(
            f"{executable} -version says no version: {answer.stderr.strip()!r}. "
            f"{JAVA_ADVICE}"
        )
    major, minor = int(match.group(1)), int(match.group(2) or 0)
    return minor if major == 1 else major


@dataclass(frozen=True)
class SparkSettings:
    """The Spark properties a session is built from, and where ``spark.master`` was
    set (named by the errors about it)."""

    properties: dict[str, str]
    master_origin: str

    @property
    def master(self) -> str:
        return self.properties[MASTER_KEY]


def spark_settings(
    env_settings: Mapping[str, Any], conf_source: Path, env: str
) -> SparkSettings:
    """The environment's ``spark.yml`` (``env_settings``) with ``conf/local/spark.yml``
    over it: the Spark environment's defaults, then this machine's (a cluster's
    ``spark.master``). Values become Spark's strings (``true``, not ``True``).

    Raises:
        SparkSetupError: If a key is not a Spark property (``spark.`` ...), a value is
            not a single value, or ``spark.master`` is set nowhere.
    """
    local = local_spark_settings(conf_source)
    merged = {**env_settings, **local}
    origin = f"conf/{env}/{SPARK_SETTINGS}.yml"
    local_origin = f"conf/{LOCAL_ENV}/{SPARK_SETTINGS}.yml"
    for key, value in merged.items():
        where = local_origin if key in local else origin
        if not str(key).startswith("spark."):
            raise SparkSetupError(
                f"{where}: {key!r} is not a Spark property; they all start with "
                "'spark.' (e.g. spark.master, spark.driver.memory)."
            )
        if isinstance(value, dict | list) or value is None:
            raise SparkSetupError(f"{where}: {key} needs one value, got {value!r}.")
    if MASTER_KEY not in merged:
        raise SparkSetupError(
            f"{MASTER_KEY} is set in neither {origin} nor {local_origin}; set it "
            "(local[*] runs on this machine)."
        )
    properties = {str(key): _spark_value(value) for key, value in merged.items()}
    properties = with_driver_logging(properties, conf_source, env)
    return SparkSettings(properties, local_origin if MASTER_KEY in local else origin)


def with_driver_logging(
    properties: dict[str, str], conf_source: Path, env: str
) -> dict[str, str]:
    """``properties`` with the driver's JVM started on the ``log4j2.properties`` of
    ``conf/local`` or else of the environment (``-Dlog4j2.configurationFile``, before
    any other ``spark.driver.extraJavaOptions``); as they are where neither has one,
    or where those options name a log4j file of their own."""
    options = properties.get(DRIVER_JAVA_OPTIONS, "")
    found = [
        folder / LOG4J_FILE
        for folder in (conf_source / LOCAL_ENV, conf_source / env)
        if (folder / LOG4J_FILE).is_file()
    ]
    if not found or LOG4J_OPTION in options:
        return properties
    option = f"{LOG4J_OPTION}={found[0].resolve()}"
    return {**properties, DRIVER_JAVA_OPTIONS: f"{option} {options}".strip()}


def local_spark_settings(conf_source: Path) -> dict[str, Any]:
    """``conf/local/spark.yml``: this machine's overrides of the Spark environment's
    settings (empty without one). Kedro loads conf/local only for runs without
    ``--env``, so it is read here."""
    loader = OmegaConfigLoader(
        conf_source=str(conf_source),
        base_env=LOCAL_ENV,
        default_run_env=LOCAL_ENV,
        config_patterns={SPARK_SETTINGS: [f"{SPARK_SETTINGS}*"]},
    )
    try:
        return dict(loader[SPARK_SETTINGS])
    except MissingConfigException:
        return {}


def _spark_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def master_addresses(master: str) -> list[tuple[str, int]]:
    """The host and port of each master a ``spark://`` URL names (several for a
    standby setup: ``spark://a:7077,b:7077``), or of a ``k8s://`` API server; none for
    ``local[...]`` or ``yarn`` (whose address Hadoop's configuration holds)."""
    if master.startswith("spark://"):
        addresses = []
        for part in master.removeprefix("spark://").split(","):
            host, _, port = part.strip().rpartition(":")
            if not host:
                host, port = port, ""
            addresses.append((host, int(port) if port.isdigit() else STANDALONE_PORT))
        return addresses
    if master.startswith("k8s://"):
        url = urlsplit(master.removeprefix("k8s://"))
        default_port = KUBERNETES_PORT if url.scheme != "http" else 80
        return [(url.hostname or "", url.port or default_port)]
    return []


def check_master(settings: SparkSettings, timeout_s: float) -> None:
    """Stops the run at once when ``spark.master`` names a cluster that does not
    accept a connection within ``timeout_s`` (Spark itself would retry for minutes).

    Raises:
        SparkSetupError: Naming ``spark.master``, its value and where it was set.
    """
    addresses = master_addresses(settings.master)
    failures = []
    for host, port in addresses:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return
        except OSError as error:
            failures.append(f"{host}:{port}: {error}")
    if failures:
        raise SparkSetupError(
            f"{MASTER_KEY} {settings.master!r} ({settings.master_origin}) does not "
            f"answer ({'; '.join(failures)}). Start the cluster, or point "
            f"{MASTER_KEY} at a running one in conf/{LOCAL_ENV}/{SPARK_SETTINGS}.yml "
            "(local[*] runs on this machine). Nothing was run."
        )


def start_session(
    settings: SparkSettings, connect_timeout_s: float = MASTER_CONNECT_TIMEOUT_S
) -> SparkSession:
    """The SparkSession built from ``settings`` (the running one if the process has
    one already: a notebook's, or a test's), once Java and the master are checked.

    Raises:
        SparkSetupError: See :func:`find_java` and :func:`check_master`.
    """
    java = find_java()
    check_master(settings, connect_timeout_s)
    try:
        from pyspark.sql import SparkSession  # noqa: PLC0415 (only Spark runs load it)
    except ImportError:
        raise SparkSetupError(
            "pyspark is not installed: `pip install -e '.[spark]'` installs it."
        ) from None

    # The evaluation and batch recommendations run this project's code in the
    # executors' Python workers: by default the interpreter of this run, whose
    # environment has it (a cluster whose workers keep it elsewhere names theirs).
    properties = {PYTHON_KEY: sys.executable, **settings.properties}
    builder = SparkSession.builder
    for key, value in properties.items():
        builder = builder.config(key, value)
    logger.info(
        "Starting Spark (%s = %s, Java %d at %s)",
        MASTER_KEY,
        settings.master,
        java.version,
        java.executable,
    )
    session = builder.getOrCreate()
    _quiet_single_partition_windows(session)
    return session


def _quiet_single_partition_windows(session: SparkSession) -> None:
    """Leaves out Spark's warning about windows without a partition: the id mappings
    number the distinct ids in one partition on purpose (ids, never ratings), and the
    warning would come once per plan that reads a mapping."""
    jvm = getattr(session.sparkContext, "_jvm", None)
    if jvm is not None:
        log4j = jvm.org.apache.logging.log4j
        log4j.core.config.Configurator.setLevel(
            "org.apache.spark.sql.execution.window.WindowExec", log4j.Level.ERROR
        )


def active_session() -> SparkSession:
    """The SparkSession the run's hook started (what the Spark nodes run on).

    Raises:
        SparkSetupError: If none was started: the Spark pipelines run under
            ``--env spark``.
    """
    from pyspark.errors import PySparkRuntimeError  # noqa: PLC0415
    from pyspark.sql import SparkSession  # noqa: PLC0415

    try:
        return SparkSession.active()
    except PySparkRuntimeError:
        raise SparkSetupError(
            "No Spark session is running: the Spark pipelines run under `kedro run "
            "--env spark`, whose hook starts one from conf/spark/spark.yml."
        ) from None
