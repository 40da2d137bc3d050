"""Nodes of the ``inference`` pipeline that adapt :mod:`rating_prediction.serving` to the
catalog: the ``inference`` parameters, parsed once per node, the split files and, for
the MLflow model, pandas.

The other nodes are the library functions themselves (``assemble_served_model``,
``predict_pairs``); see :mod:`.pipeline`.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
import polars as pl
import torch

from rating_prediction.parameters import InferenceParameters, parse
from rating_prediction.serving import (
    PAIRS_SCHEMA,
    ServedModel,
    predict_pairs,
    recommend_top_k,
    select_served_variant,
)

logger = logging.getLogger(__name__)


def select_trained_model(
    inference: dict[str, Any], *configs_and_weights: Any
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The config and weights of ``inference.served_variant`` (``best``: the lowest
    held-out val loss).

    ``configs_and_weights`` alternates each variant's config and state dict.
    """
    served_variant = parse(InferenceParameters, inference, "inference").served_variant
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


def pairs_from_parameters(inference: dict[str, Any]) -> pl.DataFrame:
    """``inference.pairs``, ``[[userId, movieId], ...]``, as a table."""
    pairs = parse(InferenceParameters, inference, "inference").pairs
    return pl.DataFrame(pairs, schema=PAIRS_SCHEMA, orient="row")


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
    served_model: ServedModel, rated_pairs: pl.DataFrame, inference: dict[str, Any]
) -> pl.DataFrame:
    """Top-``inference.recommend.top_k`` unrated movies for each of
    ``inference.recommend.user_ids``, with titles and predicted ratings."""
    recommend = parse(InferenceParameters, inference, "inference").recommend
    return recommend_top_k(
        served_model, recommend.user_ids, rated_pairs, recommend.top_k
    )
