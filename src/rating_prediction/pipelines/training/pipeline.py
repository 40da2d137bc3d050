"""Training pipeline: the same modelling nodes instantiated once per model variant."""

from kedro.pipeline import Node, Pipeline

from rating_prediction.models import MODEL_VARIANTS

from .nodes import train_model


def create_variant_pipeline(variant: str) -> Pipeline:
    """The training nodes in the ``variant`` namespace, reading ``params:training.<variant>``."""
    return Pipeline(
        [
            Node(
                func=train_model,
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
