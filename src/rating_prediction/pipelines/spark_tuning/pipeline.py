"""``spark_tuning`` pipeline: the Spark data preparation (so it runs on its own), then
the search. Not part of the Spark environment's ``__default__``: ``kedro run --env
spark --pipelines spark_tuning`` runs it."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from rating_prediction.pipelines import spark_preparation

from .nodes import tune_spark_variant


def create_pipeline(**kwargs) -> Pipeline:
    search = Node(
        func=tune_spark_variant,
        inputs={
            "train_ratings": "train_ratings",
            "val_ratings": "val_ratings",
            "user_mapping": "user_mapping",
            "movie_mapping": "movie_mapping",
            "rating_scale": "rating_scale",
            "tuning_parameters": "params:tuning",
            "training_parameters": "params:training",
            "evaluation_parameters": "params:evaluation",
        },
        outputs=["tuned_parameters", "tuning_trials"],
        name="tune_spark_variant_node",
    )
    return spark_preparation.create_pipeline() + Pipeline([search])
