"""The training nodes: Kedro's side of :func:`rating_prediction.training.fit_variant`
(the Lightning variants) and :func:`rating_prediction.training.bayesian_fm.fit_bayesian_fm`."""

from __future__ import annotations

from typing import Any

import polars as pl
import torch

from rating_prediction.parameters import (
    BayesianFMParameters,
    parse,
    variant_parameters_model,
)
from rating_prediction.training import bayesian_fm
from rating_prediction.training.fit import fit_variant


def train_model(
    train_ratings: pl.DataFrame,
    val_ratings: pl.DataFrame,
    user_mapping: pl.DataFrame,
    movie_mapping: pl.DataFrame,
    parameters: dict[str, Any],
    *,
    variant: str,
) -> tuple[dict[str, torch.Tensor], dict[str, Any], pl.DataFrame]:
    """Train ``variant`` with ``parameters`` (``training.<variant>``), keeping the best
    epoch on val (and, if asked, refitting on train + val).

    Returns:
        The weights (a state dict), the model config as ``config.json`` holds it
        (:class:`~rating_prediction.models.factorization.ModelConfig`) and the per-epoch history.

    Raises:
        ParameterError: If ``parameters`` has an unknown key or an unusable value,
            naming its full key, e.g. ``training.biased_mf.max_epoch``.
    """
    options = parse(
        variant_parameters_model(variant), parameters, f"training.{variant}"
    )
    weights, config, history = fit_variant(
        variant,
        options,
        train_ratings,
        val_ratings,
        n_users=user_mapping.height,
        n_movies=movie_mapping.height,
    )
    return weights, config.model_dump(), history


def train_bayesian_fm(
    *,
    train_ratings: pl.DataFrame,
    val_ratings: pl.DataFrame,
    user_mapping: pl.DataFrame,
    movie_mapping: pl.DataFrame,
    movies: pl.DataFrame,
    parameters: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any], pl.DataFrame]:
    """Sample myFM's Bayesian FM (``training.bayesian_fm``), choosing the number of
    samples on val, and export its posterior mean as a biased MF.

    Returns:
        The weights (a ``BiasedMatrixFactorization`` state dict), the model config and
        the per-sample history (train and val MSE of the running posterior mean).
    """
    options = parse(BayesianFMParameters, parameters, "training.bayesian_fm")
    genres = (
        bayesian_fm.genre_matrix(movies, movie_mapping)
        if options.features.genres
        else None
    )
    weights, config, history = bayesian_fm.fit_bayesian_fm(
        options,
        (train_ratings, val_ratings),
        (user_mapping.height, movie_mapping.height),
        genres,
    )
    return weights, config.model_dump(), history
