"""``inference`` pipeline: the served-model bundle, pair predictions, recommendations.

``create_serving_pipeline`` is the single-node pipeline that kedro-mlflow packages as
the MLflow model (see ``pipeline_registry``).
"""

from kedro.pipeline import Node, Pipeline

from rating_prediction.models import MODEL_VARIANTS
from rating_prediction.serving import assemble_served_model, predict_pairs

from .nodes import (
    collect_rated_pairs,
    pairs_from_parameters,
    recommend_movies,
    select_trained_model,
    serve_pair_predictions,
)

# The name of the request table inside the MLflow model (kedro-mlflow's `input_name`).
INFERENCE_REQUEST = "inference_request"

# Every variant's config and weights, alternating, as `select_trained_model` takes them.
TRAINED_MODELS = [
    f"{variant}.{artifact}"
    for variant in MODEL_VARIANTS
    for artifact in ("model_config", "model_weights")
]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=select_trained_model,
                inputs=["params:inference", *TRAINED_MODELS],
                outputs=["served_model_config", "served_model_weights"],
                name="select_trained_model_node",
            ),
            Node(
                func=assemble_served_model,
                inputs={
                    "config": "served_model_config",
                    "state_dict": "served_model_weights",
                    "user_mapping": "user_mapping",
                    "movie_mapping": "movie_mapping",
                    "train_ratings": "train_ratings",
                    "movies": "movies",
                },
                outputs="served_model",
                name="build_served_model_node",
            ),
            Node(
                func=pairs_from_parameters,
                inputs="params:inference",
                outputs="inference_pairs",
                name="pairs_from_parameters_node",
            ),
            Node(
                func=predict_pairs,
                inputs=["served_model", "inference_pairs"],
                outputs="pair_predictions",
                name="predict_pair_ratings_node",
            ),
            Node(
                func=collect_rated_pairs,
                inputs=["train_ratings", "val_ratings", "test_ratings"],
                outputs="rated_pairs",
                name="collect_rated_pairs_node",
            ),
            Node(
                func=recommend_movies,
                inputs=["served_model", "rated_pairs", "params:inference"],
                outputs="recommendations",
                name="recommend_movies_node",
            ),
        ]
    )


def create_serving_pipeline() -> Pipeline:
    """The MLflow model: original-id pairs in, ``pair_predictions_output`` out."""
    return Pipeline(
        [
            Node(
                func=serve_pair_predictions,
                inputs=[INFERENCE_REQUEST, "served_model"],
                outputs="pair_predictions_output",
                name="serve_pair_predictions_node",
            )
        ]
    )
