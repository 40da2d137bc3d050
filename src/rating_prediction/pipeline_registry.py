"""Project pipelines."""

from __future__ import annotations

import pandas as pd
from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline
from kedro_mlflow.pipeline import pipeline_ml_factory

from rating_prediction.pipelines.inference import (
    INFERENCE_REQUEST,
    create_serving_pipeline,
)
from rating_prediction.serving import PAIR_PREDICTIONS_SIGNATURE

# `name` (MLflow 3) makes the model resolvable as `runs:/<run_id>/model`. An explicit
# signature, because `signature: auto` would need a request table in the catalog. MLflow
# takes the input example as pandas, hence the pandas import.
LOG_MODEL_KWARGS = {
    "name": "model",
    "signature": PAIR_PREDICTIONS_SIGNATURE,
    "input_example": pd.DataFrame({"userId": [1], "movieId": [1]}),
}


def register_pipelines() -> dict[str, Pipeline]:
    """Register the project's pipelines.

    ``__default__`` runs every pipeline, from ingestion to reporting and inference, as a
    kedro-mlflow ``PipelineML``: at the end of the run it logs the serving pipeline, with
    the served-model bundle as its artifact, as the MLflow model ``model``.

    Returns:
        A mapping from pipeline names to ``Pipeline`` objects.
    """
    pipelines = find_pipelines(raise_errors=True)
    # `kedro run --pipelines a,b` loads only the pipelines it names; the bound model
    # needs both its training side and its serving side.
    if not {"training", "inference"} <= pipelines.keys():
        return pipelines
    pipelines["__default__"] = pipeline_ml_factory(
        training=sum(pipelines.values()),
        inference=create_serving_pipeline(),
        input_name=INFERENCE_REQUEST,
        log_model_kwargs=LOG_MODEL_KWARGS,
    )
    return pipelines
