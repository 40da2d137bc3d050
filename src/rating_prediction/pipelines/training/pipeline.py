"""Training pipeline: the same modelling node instantiated once per model variant."""

from __future__ import annotations

import functools

from kedro.pipeline import Node, Pipeline

from rating_prediction.models import MODEL_VARIANTS

from .nodes import train_model


def create_variant_pipeline(variant: str) -> Pipeline:
    """The training node in the ``variant`` namespace, reading ``params:training.<variant>``.

    The node's function is ``train_model`` with ``variant`` bound: a ``functools.partial``
    (picklable, for ``ParallelRunner``) that keeps ``train_model``'s name and docstring.
    """
    train_variant = functools.update_wrapper(
        functools.partial(train_model, variant=variant), train_model
    )
    return Pipeline(
        [
            Node(
                func=train_variant,
                inputs=[
                    "train_ratings",
                    "val_ratings",
                    "user_mapping",
                    "movie_mapping",
                    "params:training_options",
                ],
                outputs=["model_weights", "model_config", "training_history"],
                name="train_model",
            ),
        ],
        namespace=variant,
        inputs={"train_ratings", "val_ratings", "user_mapping", "movie_mapping"},
        parameters={"params:training_options": f"params:training.{variant}"},
    )


def create_pipeline(**kwargs) -> Pipeline:
    return sum(
        (create_variant_pipeline(variant) for variant in MODEL_VARIANTS), Pipeline([])
    )
