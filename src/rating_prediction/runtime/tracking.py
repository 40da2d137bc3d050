"""kedro-mlflow's hook, recording no absolute path and no URL credentials in MLflow.

kedro-mlflow logs every parameter block a node reads (the ``ingestion`` block holds
``raw_dir`` and ``base_url``) and sets a tag per run parameter (``project_path``,
``runtime_params``); MLflow adds ``mlflow.source.name``, the absolute path of the
script, to runs and logged models. :class:`RedactingMlflowHook` replaces kedro-mlflow's
own hook instance (see ``settings.py``) and passes every such value through
:func:`rating_prediction.runtime.redaction.redact`: URL credentials and query values become
``***``; absolute paths become relative to the project, or ``<outside the project>``.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline
from kedro_mlflow.framework.hooks import MlflowHook
from mlflow import MlflowClient

from rating_prediction.runtime.redaction import redact


class RedactingMlflowHook(MlflowHook):
    """:class:`kedro_mlflow.framework.hooks.MlflowHook`, with parameters redacted
    before they are logged (MLflow cannot change a logged parameter) and tags
    redacted before they are set, then rewritten where MLflow set them itself: on the
    run right after it starts, and on the run, its nested runs and the models logged
    in it before it ends (successfully or not)."""

    def __init__(self) -> None:
        super().__init__()
        self._project_path: Path | None = None

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        self._project_path = Path(context.project_path)
        super().after_context_created(context)

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        super().before_pipeline_run(
            redact(run_params, self._project_path), pipeline, catalog
        )
        self._redact_recorded_tags()
        # Ctrl-C and sys.exit reach neither hook below; registered after the run
        # guard's exit handler, this runs before it ends the run KILLED.
        atexit.register(self._redact_recorded_tags)

    @hook_impl
    def after_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: DataCatalog
    ) -> None:
        atexit.unregister(self._redact_recorded_tags)
        self._redact_recorded_tags()
        super().after_pipeline_run(run_params, pipeline, catalog)

    @hook_impl
    def on_pipeline_error(
        self,
        error: Exception,
        run_params: dict[str, Any],
        pipeline: Pipeline,
        catalog: DataCatalog,
    ) -> None:
        atexit.unregister(self._redact_recorded_tags)
        self._redact_recorded_tags()
        super().on_pipeline_error(error, run_params, pipeline, catalog)

    def _log_param(self, name: str, value: Any) -> None:
        super()._log_param(name, redact(value, self._project_path))

    def _redact_recorded_tags(self) -> None:
        """Rewrite the tags of this run, its nested runs and its logged models that
        hold an absolute path or a URL credential."""
        if not self._is_mlflow_enabled or self.run_id is None:
            return
        client = MlflowClient()
        run = client.get_run(self.run_id)
        experiment = [run.info.experiment_id]
        nested = client.search_runs(
            experiment, filter_string=f"tags.mlflow.parentRunId = '{self.run_id}'"
        )
        for each in [run, *nested]:
            self._rewrite(
                each.data.tags,
                lambda key, value, run_id=each.info.run_id: client.set_tag(
                    run_id, key, value
                ),
            )
        models = client.search_logged_models(
            experiment, filter_string=f"source_run_id = '{self.run_id}'"
        )
        for model in models:
            self._rewrite(
                model.tags,
                lambda key, value, model_id=model.model_id: (
                    client.set_logged_model_tags(model_id, {key: value})
                ),
            )

    def _rewrite(
        self, tags: Mapping[str, str], set_tag: Callable[[str, str], None]
    ) -> None:
        for key, value in tags.items():
            redacted = redact(value, self._project_path)
            if redacted != value:
                set_tag(key, redacted)
