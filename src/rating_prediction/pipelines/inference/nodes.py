"""Nodes of the ``inference`` pipeline: bundle the served model, predict pairs, recommend.

The building blocks live in :mod:`rating_prediction.serving`; these nodes adapt them to
the catalog (parameters, split files) and, for the MLflow model, to pandas.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import polars as pl
import torch

from rating_prediction.serving import (
    PAIRS_SCHEMA,
    ServedModel,
    assemble_served_model,
    check_integer_ids,
    predict_pairs,
    recommend_top_k,
    select_served_variant,
)

logger = logging.getLogger(__name__)


def select_trained_model(
    served_variant: str, *configs_and_weights: Any
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The config and weights of the served variant (``best``: lowest held-out val loss).

    ``configs_and_weights`` alternates each variant's config and state dict.
    """
    trained = {
        config["variant"]: (config, weights)
        for config, weights in zip(
            configs_and_weights[::2], configs_and_weights[1::2], strict=True
        )
    }
    held_out_val_mse = {
        variant: config["best_val_loss"] for variant, (config, _) in trained.items()
    }
    variant = select_served_variant(held_out_val_mse, served_variant)
    logger.info("Serving the %s model (served_variant=%s).", variant, served_variant)
    return trained[variant]


def build_served_model(
    *,
    config: dict[str, Any],
    weights: dict[str, torch.Tensor],
    user_mapping: pl.DataFrame,
    movie_mapping: pl.DataFrame,
    train_ratings: pl.DataFrame,
    movies: pl.DataFrame,
) -> ServedModel:
    """One bundle with the model and the id lookups, logged as the MLflow model's artifact."""
    served = assemble_served_model(
        config,
        weights,
        user_mapping=user_mapping,
        movie_mapping=movie_mapping,
        train_ratings=train_ratings,
        movies=movies,
    )
    logger.info(
        "Served model: %s, %d known users, %d known movies.",
        served.variant,
        served.known_users.height,
        served.known_movies.height,
    )
    return served


def pairs_from_parameters(pairs: list[list[int]]) -> pl.DataFrame:
    """The ``inference.pairs`` parameter, ``[[userId, movieId], ...]``, as a table."""
    malformed = [
        pair for pair in pairs if not isinstance(pair, list | tuple) or len(pair) != 2
    ]
    if malformed:
        raise ValueError(
            f"inference.pairs must be a list of [userId, movieId]; got {malformed[:3]}."
        )
    check_integer_ids([id_ for pair in pairs for id_ in pair], "inference.pairs ids")
    return pl.DataFrame(pairs, schema=PAIRS_SCHEMA, orient="row")


def predict_pair_ratings(
    pairs: pl.DataFrame, served_model: ServedModel
) -> pl.DataFrame:
    """Predicted rating and known_user / known_movie flags for each pair."""
    return predict_pairs(served_model, pairs)


def serve_pair_predictions(
    inference_request: pd.DataFrame, served_model: ServedModel
) -> pd.DataFrame:
    """The MLflow model's only node: MLflow passes and expects pandas, polars in between."""
    return predict_pairs(served_model, pl.from_pandas(inference_request)).to_pandas()


def collect_rated_pairs(
    train_ratings: pl.DataFrame, val_ratings: pl.DataFrame, test_ratings: pl.DataFrame
) -> pl.DataFrame:
    """Every (userId, movieId) rated in any split: never recommended again."""
    return pl.concat(
        [
            ratings.select("userId", "movieId")
            for ratings in (train_ratings, val_ratings, test_ratings)
        ]
    )


def recommend_movies(
    served_model: ServedModel,
    rated_pairs: pl.DataFrame,
    user_ids: list[int],
    top_k: int,
) -> pl.DataFrame:
    """Top-``top_k`` unrated movies per user, with titles and predicted ratings."""
    recommendations = recommend_top_k(served_model, user_ids, rated_pairs, top_k)
    unknown = recommendations.filter(~pl.col("known_user"))["userId"].unique().to_list()
    if unknown:
        logger.warning(
            "Users %s are unseen in training: they get the fallback ranking.", unknown
        )
    return recommendations
