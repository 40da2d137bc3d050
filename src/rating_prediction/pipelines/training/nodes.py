"""The training node: Kedro's side of :func:`rating_prediction.training.fit_variant`."""

from __future__ import annotations

from typing import Any

import polars as pl
import torch

from rating_prediction.parameters import parse, variant_parameters_model
from rating_prediction.training import fit_variant


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
        (:class:`~rating_prediction.models.ModelConfig`) and the per-epoch history.

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
