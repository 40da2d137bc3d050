"""``inference`` pipeline: the served model (a folder of safetensors, parquet and JSON,
logged as the MLflow model at the end of the run by ``ServingHooks``: the best rating
model answers pairs, the best ranker recommendations, fold-in and similar movies), pair
predictions (a few from the parameters, any number from the ``pair_requests`` file),
recommendations for a few users, for a new user (fold-in) and for every user (or those
of the ``user_requests`` file), and similar movies."""

from kedro.pipeline import Node, Pipeline, pipeline

from rating_prediction.models.variants import variants_that
from rating_prediction.pipelines import handed_out
from rating_prediction.serving.bundle import assemble_served_model
from rating_prediction.serving.prediction import predict_pairs
from rating_prediction.serving.ranker import ranker_variants
from rating_prediction.serving.registry import split_fingerprint

from .nodes import (
    collect_rated_pairs,
    find_similar_movies,
    offer_trained_model,
    pairs_from_parameters,
    popularity_weight_from_parameters,
    predict_pair_requests,
    recommend_for_all_users,
    recommend_for_new_user,
    recommend_movies,
    select_trained_model,
    select_trained_ranker,
)

# Each variant's config and weights, handed out of its namespace to the choice of the
# served variant (catalog_inference.yml holds them without a copy).
TRAINED_MODEL = "trained_model"
# The variants the served model may answer `predict` with: the rating models.
SERVABLE_VARIANTS = variants_that("predicts_ratings")
# The variants it may answer `recommend`, fold-in and `similar` with: the rankers (they
# rank but predict no ratings, e.g. EASE^R).
SERVABLE_RANKERS = ranker_variants()


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(_served_model_nodes() + _pair_nodes() + _recommendation_nodes())


def _served_model_nodes() -> list[Node | Pipeline]:
    """The served model: the chosen rating variant and ranker, the id lookups, titles,
    fingerprint, training-rating counts, popularity weight and known history."""
    return [
        *_choice_nodes(),
        Node(
            func=split_fingerprint,
            inputs=["train_ratings", "val_ratings", "test_ratings"],
            outputs="split_fingerprint",
            name="split_fingerprint_node",
        ),
        Node(
            func=popularity_weight_from_parameters,
            inputs="params:inference",
            outputs="served_popularity_weight",
            name="popularity_weight_node",
        ),
        Node(
            func=assemble_served_model,
            inputs={
                "config": "served_model_config",
                "state_dict": "served_model_weights",
                "user_mapping": "user_mapping",
                "movie_mapping": "movie_mapping",
                "train_ratings": "train_ratings",
                "val_ratings": "val_ratings",
                "ranker": "served_ranker_choice",
                "movies": "movies",
                "split_fingerprint": "split_fingerprint",
                "popularity_weight": "served_popularity_weight",
            },
            outputs="served_model",
            name="build_served_model_node",
        ),
    ]


def _choice_nodes() -> list[Node | Pipeline]:
    """Every rating variant and ranker offered, and the choice of each: the rating
    model that predicts, the ranker (or none) that recommends."""
    return [
        *(_offer(variant) for variant in SERVABLE_VARIANTS + SERVABLE_RANKERS),
        Node(
            func=select_trained_model,
            inputs=[
                "params:inference",
                *(handed_out(v, TRAINED_MODEL) for v in SERVABLE_VARIANTS),
            ],
            outputs=["served_model_config", "served_model_weights"],
            name="select_trained_model_node",
        ),
        Node(
            func=select_trained_ranker,
            inputs=[
                "params:inference",
                "params:training",
                *(handed_out(v, TRAINED_MODEL) for v in SERVABLE_RANKERS),
            ],
            outputs="served_ranker_choice",
            name="select_trained_ranker_node",
        ),
    ]


def _offer(variant: str) -> Pipeline:
    """``variant``'s config and weights, handed out of its namespace to the choice."""
    return pipeline(
        [
            Node(
                func=offer_trained_model,
                inputs=["model_config", "model_weights"],
                outputs=TRAINED_MODEL,
                name="offer_trained_model_node",
            )
        ],
        namespace=variant,
        outputs={TRAINED_MODEL: handed_out(variant, TRAINED_MODEL)},
    )


def _pair_nodes() -> list[Node]:
    """Pair predictions: a few from the parameters, any number from a request file."""
    return [
        Node(
            func=pairs_from_parameters,
            inputs=["params:inference", "served_model"],
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
            func=predict_pair_requests,
            inputs=["served_model", "pair_requests", "params:inference"],
            outputs="pair_request_predictions",
            name="predict_pair_requests_node",
        ),
    ]


def _recommendation_nodes() -> list[Node]:
    """Top-K for a few users, for a new user (fold-in) and for every user (or those of
    a request file), and similar movies."""
    return [
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
        Node(
            func=find_similar_movies,
            inputs=["served_model", "params:inference"],
            outputs="similar_movies",
            name="find_similar_movies_node",
        ),
        Node(
            func=recommend_for_new_user,
            inputs=["served_model", "params:inference"],
            outputs="new_user_recommendations",
            name="recommend_for_new_user_node",
        ),
        Node(
            func=recommend_for_all_users,
            inputs=["served_model", "rated_pairs", "user_requests", "params:inference"],
            outputs="all_user_recommendations",
            name="recommend_for_all_users_node",
        ),
    ]
