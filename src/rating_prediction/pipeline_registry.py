"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Pipelines that only `kedro run --pipelines <name>` runs, never `kedro run`:
# cross_validation trains every variant once per fold; tuning runs an Optuna search.
RUN_ALONE = ("cross_validation", "tuning")


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    ``__default__`` runs every pipeline, from ingestion to reporting and inference. The
    MLflow model ``model`` is logged at the end of any run that builds the served model,
    by ``rating_prediction.hooks.ServingHooks`` (not kedro-mlflow's ``PipelineML``,
    whose model runs a Kedro runner and deep-copies its catalog on every request).

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    # `kedro run --pipelines a,b` loads only the pipelines it names.
    if not {"training", "inference"} <= pipelines.keys():
        return pipelines
    pipelines["__default__"] = sum(
        pipeline for name, pipeline in pipelines.items() if name not in RUN_ALONE
    )
    return pipelines
