"""Training pipeline: one modelling node per entry of the variant registry, each in its
own namespace, reading ``params:training.<variant>``."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from rating_prediction.models.variants import VARIANTS

from .nodes import train_node

TRAINING_INPUTS = [
    "train_ratings",
    "val_ratings",
    "user_mapping",
    "movie_mapping",
    "movies",
    "users",
    "rating_scale",
]


def create_variant_pipeline(variant: str) -> Pipeline:
    """The training node in the ``variant`` namespace, reading
    ``params:training.<variant>`` and ``params:evaluation`` (what the fit on train
    ranks on val is measured with the evaluation's ranking settings)."""
    return Pipeline(
        [
            Node(
                func=train_node(variant),
                inputs={
                    **{name: name for name in TRAINING_INPUTS},
                    "parameters": "params:training_options",
                    "evaluation": "params:evaluation",
                },
                outputs=["model_weights", "model_config", "training_history"],
                name="train_model",
            ),
        ],
        namespace=variant,
        inputs=set(TRAINING_INPUTS),
        parameters={
            "params:training_options": f"params:training.{variant}",
            "params:evaluation": "params:evaluation",
        },
    )


def create_pipeline(**kwargs) -> Pipeline:
    return sum((create_variant_pipeline(variant) for variant in VARIANTS), Pipeline([]))
