"""Project hooks: the checks that must run before any node does, and the MLflow model
logged and registered after the last one."""

from __future__ import annotations

import mlflow
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline

from rating_prediction.parameters import ProjectParameters, parse
from rating_prediction.serving.registry import log_and_register


class ParameterCheckHooks:
    """Checks every parameter once the context exists, so a misspelt key or a
    degenerate value stops ``kedro run`` (or ``kedro jupyter``) before any node writes,
    with a message naming the key."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        parse(ProjectParameters, context.params, "")


class ServingHooks:
    """Logs the served model as the MLflow model ``model`` of the run, last, and
    registers it (see :mod:`rating_prediction.serving.registry`), in any run that built
    it. ``tryfirst``: before kedro-mlflow's own ``after_pipeline_run`` ends the run."""

    @hook_impl(tryfirst=True)
    def after_pipeline_run(
        self, run_params: dict, pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        if "served_model" not in pipeline.all_outputs() or not mlflow.active_run():
            return
        metrics = catalog.load("metrics") if catalog.exists("metrics") else None
        dataset = catalog.load("params:ingestion")["dataset"]
        log_and_register(catalog["served_model"].filepath, metrics, dataset)
