"""The training node: Kedro's side of each variant's fit function, which the variant
registry (:mod:`rating_prediction.models.variants`) names."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import polars as pl
import torch

from rating_prediction.models.variants import variant
from rating_prediction.parameters import parse
from rating_prediction.training.data import TrainingData

from .val_ranking import fit_with_val_ranking

FitOutputs = tuple[dict[str, torch.Tensor], dict[str, Any], pl.DataFrame]


def train_model(
    *,
    train_ratings: pl.DataFrame,
    val_ratings: pl.DataFrame,
    user_mapping: pl.DataFrame,
    movie_mapping: pl.DataFrame,
    movies: pl.DataFrame,
    rating_scale: dict[str, Any],
    parameters: dict[str, Any],
    variant_name: str,
    evaluation: dict[str, Any] | None = None,
    users: pl.DataFrame | None = None,
) -> FitOutputs:
    """Fit ``variant_name`` with ``parameters`` (``training.<variant>``) by its fit
    function: the Lightning variants keep their best epoch on val, ``bayesian_fm``
    chooses its number of samples on val; each refits on train + val if asked. With
    ``evaluation`` (its ranking settings), what the fit on train ranks on val is
    recorded before any refit (:mod:`~.val_ranking`): ``best_val_ndcg`` and the
    popularity blend's ``popularity_weight``; a ranker needs it. Every model predicts
    on ``rating_scale`` (the data set's, as ingestion recorded it). ``movies`` and
    ``users`` (the demographics, null where the release has none) reach the fit
    function as side information.

    Returns:
        The weights (a state dict), the model config as ``config.json`` holds it
        (:class:`~rating_prediction.models.config.ModelConfig`) and the per-epoch (or
        per-sample) history.

    Raises:
        UnknownVariantError: If ``variant_name`` is not in the registry.
        ParameterError: If ``parameters`` has an unknown key or an unusable value,
            naming its full key, e.g. ``training.biased_mf.max_epoch``.
    """
    entry = variant(variant_name)
    options = parse(entry.parameters, parameters, f"training.{variant_name}")
    data = TrainingData.from_catalog(
        train_ratings=train_ratings,
        val_ratings=val_ratings,
        user_mapping=user_mapping,
        movie_mapping=movie_mapping,
        movies=movies,
        rating_scale=rating_scale,
        users=users,
    )
    weights, config, history = fit_with_val_ranking(entry, options, data, evaluation)
    return weights, config.model_dump(), history


def train_node(variant_name: str) -> Callable[..., FitOutputs]:
    """:func:`train_model` for one variant, as a node function: a plain function, so
    kedro-viz shows :func:`train_model`'s code (through ``__wrapped__``), whose inputs
    are :func:`train_model`'s keyword arguments."""

    @functools.wraps(train_model)
    def train_variant(**inputs: Any) -> FitOutputs:
        return train_model(**inputs, variant_name=variant_name)

    return train_variant
