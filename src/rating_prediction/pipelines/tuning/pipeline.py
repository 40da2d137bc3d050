"""``tuning`` pipeline: ingestion and processing (so it runs on its own), then the search.

Not part of ``__default__``: ``kedro run --pipelines tuning`` runs it.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from rating_prediction.pipelines import data_ingestion, data_processing
from rating_prediction.pipelines.training.pipeline import TRAINING_INPUTS

from .nodes import tune_hyperparameters


def create_pipeline(**kwargs) -> Pipeline:
    search = Node(
        func=tune_hyperparameters,
        inputs={
            **{name: name for name in TRAINING_INPUTS},
            "tuning_parameters": "params:tuning",
            "training_parameters": "params:training",
            "evaluation_parameters": "params:evaluation",
        },
        outputs=["tuned_parameters", "tuning_trials"],
        name="tune_hyperparameters_node",
    )
    return (
        data_ingestion.create_pipeline()
        + data_processing.create_pipeline()
        + Pipeline([search])
    )
