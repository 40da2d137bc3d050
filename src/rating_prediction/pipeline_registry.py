"""Project pipelines."""

from __future__ import annotations

import pkgutil

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

import rating_prediction.pipelines
from rating_prediction.runtime.environment import run_uses_spark

# Pipelines that only `kedro run --pipelines <name>` runs, never `kedro run`:
# cross_validation trains every variant once per fold; tuning and spark_tuning run an
# Optuna search.
RUN_ALONE = ("cross_validation", "tuning", "spark_tuning")
# The pipeline packages named so run on Spark DataFrames: they are the pipelines of a
# Spark environment (`--env spark`), and only of one. The others run on one machine,
# never under `--env spark`, whose catalog holds Spark datasets.
SPARK_PREFIX = "spark_"


def environment_pipeline_names() -> list[str]:
    """The pipeline packages of this run's environment: the ``spark_`` ones under a
    Spark environment (``rating_prediction.runtime.environment``), the others
    otherwise. Only these are imported, so a run without ``--env spark`` never
    imports pyspark."""
    spark = run_uses_spark()
    return sorted(
        module.name
        for module in pkgutil.iter_modules(rating_prediction.pipelines.__path__)
        if module.ispkg and module.name.startswith(SPARK_PREFIX) == spark
    )


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    ``__default__`` runs every pipeline of the run's environment but those run alone
    (``RUN_ALONE``: cross-validation and the searches): from ingestion to reporting
    and inference, or under ``--env spark`` the Spark pipelines (``spark_*``: data
    preparation, Spark ALS, batch recommendations). The MLflow model ``model`` is
    logged at the end of any run that builds the served model, by
    ``rating_prediction.hooks.ServingHooks`` (not kedro-mlflow's ``PipelineML``, whose
    model runs a Kedro runner and deep-copies its catalog on every request).

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    names = environment_pipeline_names()
    found = find_pipelines(raise_errors=True, pipelines_to_find=names)
    # `kedro run --pipelines a,b` makes Kedro load a and b alone, in any environment:
    # a pipeline of the other environment is then left out (not found), and there is
    # no `__default__` to build.
    pipelines = {name: found[name] for name in names if name in found}
    if len(pipelines) < len(names):
        return pipelines
    pipelines["__default__"] = sum(
        pipeline for name, pipeline in pipelines.items() if name not in RUN_ALONE
    )
    return pipelines
