"""Project hooks: the checks that must run before any node does, the guards that keep a
run honest when things go wrong (a lock, lineage, MLflow run status), and the MLflow
model logged and registered after the last node."""

from __future__ import annotations

import atexit
import importlib
import logging
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

import click
import mlflow
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Node, Pipeline
from mlflow.entities import RunStatus

from rating_prediction.data.splitting import SPARK_STRATEGIES
from rating_prediction.movielens.releases import check_release_parameters
from rating_prediction.parameters import (
    ParameterError,
    ProcessingParameters,
    ProjectParameters,
    parse,
)
from rating_prediction.pipeline_registry import RUN_ALONE, environment_pipeline_names
from rating_prediction.runtime.console import FILE_ONLY, narrow_console
from rating_prediction.runtime.environment import env_uses_spark, run_uses_spark
from rating_prediction.runtime.lineage import Lineage, StaleArtifactError
from rating_prediction.runtime.run_guard import (
    RunEndGuard,
    RunLock,
    close_orphaned_runs,
    project_tags,
    remove_partial_files,
)
from rating_prediction.runtime.spark import (
    SPARK_SETTINGS,
    SparkSetupError,
    spark_settings,
    start_session,
)
from rating_prediction.serving.bundle import BEST_VARIANT, select_served_variant
from rating_prediction.serving.ranker import select_served_ranker
from rating_prediction.serving.registry import log_and_register

LINEAGE_MANIFEST = Path("data") / "lineage.json"
# A Spark environment's artifacts have the same names as a plain run's, in other files
# (data/spark/): their lineage is recorded apart, so neither run finds the other's
# files stale.
SPARK_LINEAGE_MANIFEST = Path("data") / "spark" / "lineage.json"
# A node quicker than this gets a line in the file log only (see NodeTimingHooks).
QUICK_NODE_SECONDS = 0.1

logger = logging.getLogger(__name__)


class RefusedParameters(ParameterError, click.ClickException):
    """A :class:`ParameterError` that ``kedro run`` prints as ``Error: <message>``
    and exits 1 on, like any command-line mistake, instead of a page of traceback
    through Kedro's and Click's frames; still a ``ParameterError`` (a
    ``ValueError``) to code that runs a session itself."""

    def __init__(self, message: str) -> None:
        click.ClickException.__init__(self, message)


class ParameterCheckHooks:
    """Checks every parameter once the context exists, so a misspelt key or a
    degenerate value stops ``kedro run`` (or ``kedro jupyter``) before any node writes
    and before an MLflow run opens, with a message naming the key."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        try:
            parameters = parse(ProjectParameters, context.params, "")
            check_release_parameters(parameters)
            check_served_variant(parameters.inference.served_variant)
            check_served_ranker(parameters.inference.served_ranker)
        except ParameterError as error:
            raise RefusedParameters(str(error)) from None


def check_served_variant(served_variant: str) -> None:
    """``inference.served_variant`` against the variant registry, before any node runs
    (the parameter model knows the variants' names, not what each can do).

    Raises:
        ParameterError: If it names a variant the served model cannot answer
            ``predict`` with (a ranker), listing the valid values.
    """
    if served_variant == BEST_VARIANT:
        return
    try:
        select_served_variant({}, served_variant)
    except ValueError as error:
        raise ParameterError(f"'inference.served_variant': {error}") from None


def check_served_ranker(served_ranker: str) -> None:
    """``inference.served_ranker`` against the variant registry, before any node runs.

    Raises:
        ParameterError: If it names a variant that is not a ranker (a rating model),
            listing the valid values.
    """
    try:
        select_served_ranker({}, served_ranker)
    except ValueError as error:
        raise ParameterError(f"'inference.served_ranker': {error}") from None


class RefusedSparkRun(SparkSetupError, click.ClickException):
    """A :class:`~rating_prediction.runtime.spark.SparkSetupError` (no Java, a master
    that does not answer) or a parameter Spark cannot honour, printed by ``kedro run``
    as ``Error: <message>`` with exit status 1, before anything is written."""

    def __init__(self, message: str) -> None:
        click.ClickException.__init__(self, message)


class SparkHooks:
    """Starts the SparkSession of a Spark environment (``kedro run --env spark``, or
    a notebook's session in it) from its ``spark.yml`` and ``conf/local/spark.yml``, as
    Kedro's PySpark starter does; in any other environment it does nothing, and
    nothing imports pyspark. ``trylast``: after the parameters are checked, so a bad
    one is refused without starting a JVM."""

    @hook_impl(trylast=True)
    def after_context_created(self, context: KedroContext) -> None:
        conf_source = Path(context.config_loader.conf_source)
        if not env_uses_spark(conf_source, context.env):
            return
        try:
            check_spark_split(context.params.get("processing", {}))
            settings = spark_settings(
                context.config_loader[SPARK_SETTINGS], conf_source, context.env
            )
            start_session(settings)
        except (SparkSetupError, ParameterError) as error:
            raise RefusedSparkRun(str(error)) from None


def check_spark_split(processing: dict[str, Any]) -> None:
    """``processing.split.strategy`` against the strategies Spark runs.

    Raises:
        ParameterError: For ``random`` or ``predefined``, saying to use ``hash``.
    """
    strategy = parse(ProcessingParameters, processing, "processing").split.strategy
    if strategy not in SPARK_STRATEGIES:
        raise ParameterError(
            f"'processing.split.strategy' is {strategy!r}, which Spark does not run "
            "(it needs the ratings in one place and one order); use 'hash', which "
            "partitions and gives the same split on one machine, or 'temporal'."
        )


class RunGuardHooks:
    """One ``kedro run`` per project at a time: the lock is taken before anything else
    (before kedro-mlflow opens a run) and released after everything else. With the lock
    held, partial files of killed runs are removed. Until the run ends, Ctrl-C or
    SIGTERM ends the MLflow run KILLED and any other exit ends it FAILED (see
    :class:`rating_prediction.runtime.run_guard.RunEndGuard`)."""

    def __init__(self) -> None:
        self._lock: RunLock | None = None
        self._end_guard = RunEndGuard()

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any]) -> None:
        project_path = Path(run_params["project_path"])
        self._lock = RunLock(project_path)
        self._lock.acquire()
        remove_partial_files(project_path)
        self._end_guard = RunEndGuard()
        self._end_guard.install()
        # Registered after MLflow's own exit handler (which ends a run FINISHED), so
        # it runs first.
        atexit.register(self._at_exit)

    @hook_impl(wrapper=True)
    def after_pipeline_run(self) -> Generator[None, Any, Any]:
        try:
            return (yield)
        except Exception:
            # A hook (the model's logging, kedro-mlflow's own) failed after the nodes:
            # Kedro does not call on_pipeline_error then.
            while mlflow.active_run():
                mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
            raise
        finally:
            self._release()

    @hook_impl(trylast=True)
    def on_pipeline_error(self) -> None:
        self._release()

    def _at_exit(self) -> None:
        """The process ends before the run did (Ctrl-C, ``sys.exit``)."""
        self._end_guard.end_unfinished_run()
        self._release()

    def _release(self) -> None:
        atexit.unregister(self._at_exit)
        self._end_guard.uninstall()
        if self._lock is not None:
            self._lock.release()
            self._lock = None


class RunStatusHooks:
    """Tags the MLflow run kedro-mlflow opened with this project and process, and marks
    KILLED the runs of this project that a killed process left RUNNING."""

    @hook_impl(trylast=True)
    def before_pipeline_run(
        self, run_params: dict[str, Any], catalog: DataCatalog
    ) -> None:
        run = mlflow.active_run()
        if run is None:
            return
        project_path = Path(run_params["project_path"])
        dataset = str(catalog.load("params:ingestion")["dataset"])
        mlflow.set_tags(project_tags(project_path) | {"dataset": dataset})
        mlflow.set_tag("mlflow.runName", run_name(run_params, dataset))
        close_orphaned_runs(project_path, run.info.run_id)


def run_name(run_params: dict[str, Any], dataset: str) -> str:
    """What a run is, as the MLflow runs page lists it: the data set, the configuration
    environment and, when not all of them, the pipelines run (``ml-latest-small · local
    · training``)."""
    parts = [dataset, run_params.get("env") or "local"]
    if run_params.get("pipeline_names"):
        parts.append("+".join(run_params["pipeline_names"]))
    elif run_params.get("pipeline_name") not in (None, "__default__"):
        parts.append(run_params["pipeline_name"])
    return " · ".join(parts)


class NodeTimingHooks:
    """A line per node: its place in the run, its name and its time (the console shows
    these instead of Kedro's running and completed banners, which
    :func:`~rating_prediction.runtime.console.narrow_console` leaves to the file log).
    Nodes quicker than ``QUICK_NODE_SECONDS`` are listed in the file log only, and
    counted in one console line at the end: a run has over a hundred of them, most
    taking milliseconds, and the console would be a list of zeros.
    """

    @hook_impl
    def after_context_created(self) -> None:
        narrow_console()

    def __init__(self) -> None:
        self._started: dict[str, float] = {}
        self._total = 0
        self._done = 0
        self._quick: list[float] = []

    @hook_impl
    def before_pipeline_run(self, pipeline: Pipeline) -> None:
        self._total, self._done, self._quick = len(pipeline.nodes), 0, []

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        now = time.perf_counter()
        seconds = now - self._started.pop(node.name, now)
        self._done += 1
        quick = seconds < QUICK_NODE_SECONDS
        if quick:
            self._quick.append(seconds)
        logger.info(
            "[%d/%d] %s: %.1f s",
            self._done,
            self._total,
            node.name,
            seconds,
            extra=FILE_ONLY if quick else None,
        )

    @hook_impl
    def after_pipeline_run(self) -> None:
        if self._quick:
            logger.info(
                "%d of %d nodes took under %.1f s each (%.1f s in all); info.log "
                "lists every node with its time.",
                len(self._quick),
                self._done,
                QUICK_NODE_SECONDS,
                sum(self._quick),
            )


class LineageHooks:
    """Records what every file output was made from and refuses to read a stale one
    (see :mod:`rating_prediction.runtime.lineage`)."""

    def __init__(self) -> None:
        self._lineage: Lineage | None = None

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], catalog: DataCatalog
    ) -> None:
        rebuilt_by = _pipelines_writing_each_dataset()
        manifest = SPARK_LINEAGE_MANIFEST if run_uses_spark() else LINEAGE_MANIFEST
        self._lineage = Lineage(
            manifest_path=Path(run_params["project_path"]) / manifest,
            filepaths=_local_paths(catalog, rebuilt_by),
            rebuilt_by=rebuilt_by,
            run_id=run_params["run_id"],
        )

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str) -> None:
        if self._lineage is not None:
            self._lineage.check_load(dataset_name)

    @hook_impl
    def before_node_run(self, node: Node, inputs: dict[str, Any]) -> None:
        if self._lineage is not None:
            self._lineage.start_node(node.name, node.outputs, inputs)

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        if self._lineage is not None:
            self._lineage.finish_node(node.name, node.outputs)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str) -> None:
        if self._lineage is not None:
            self._lineage.record_saved(dataset_name)

    def why_stale(self, dataset: str) -> str | None:
        """Why this run may not read ``dataset`` (the check every load passes, for a
        read the catalog makes outside the hooks); ``None`` when it is current."""
        if self._lineage is None:
            return None
        try:
            self._lineage.check_load(dataset)
        except StaleArtifactError as error:
            return str(error)
        return None


def _pipelines_writing_each_dataset() -> dict[str, str]:
    """For every dataset some node of the run's environment writes, the pipeline to
    rerun for it (`kedro run --pipelines x` registers only x, so the modules are read
    directly)."""
    names = environment_pipeline_names()
    writers: dict[str, str] = {}
    for name in sorted(names, key=lambda name: name in RUN_ALONE):
        module = importlib.import_module(f"rating_prediction.pipelines.{name}")
        for output in module.create_pipeline().all_outputs():
            writers.setdefault(output, name)
    return writers


def _local_paths(catalog: DataCatalog, datasets: dict[str, str]) -> dict[str, Path]:
    """The local file or folder of each of ``datasets`` that has one."""
    paths = {}
    for name in datasets:
        filepath = getattr(catalog.get(name), "_filepath", None)
        if filepath is not None:
            paths[name] = Path(str(filepath))
    return paths


class ServingHooks:
    """Logs the served model as the MLflow model ``model`` of the run, last, and
    registers it (see :mod:`rating_prediction.serving.registry`), in any run that built
    it. ``tryfirst``: before kedro-mlflow's own ``after_pipeline_run`` ends the run.

    The metrics that tag the version and decide the champion are metrics.json only
    when the run's ``lineage`` finds it current, as it finds every input it reads:
    made from the content now on disk of every file upstream of it, the served
    variant's weights among them, which this run's served model was built from. A
    metrics.json from other weights (a variant retrained since the last evaluation)
    leaves the model logged but not registered, saying why."""

    def __init__(self, lineage: LineageHooks) -> None:
        self._lineage = lineage

    @hook_impl(tryfirst=True)
    def after_pipeline_run(
        self, run_params: dict, pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        if "served_model" not in pipeline.all_outputs() or not mlflow.active_run():
            return
        metrics, stale = None, None
        if catalog.exists("metrics"):
            stale = self._lineage.why_stale("metrics")
            if stale is None:
                metrics = catalog.load("metrics")
            else:
                stale = (
                    f"metrics.json was not computed from the weights served. {stale}"
                )
        dataset = catalog.load("params:ingestion")["dataset"]
        folder = catalog["served_model"].filepath
        log_and_register(folder, metrics, dataset, stale)
