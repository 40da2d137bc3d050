"""The tuning node: Kedro's side of :func:`rating_prediction.training.tuning.run_study`."""

from __future__ import annotations

from typing import Any

import polars as pl

from rating_prediction.parameters import TuningParameters, parse
from rating_prediction.training import tuning
from rating_prediction.training.data import TrainingData


def tune_hyperparameters(
    *,
    train_ratings: pl.DataFrame,
    val_ratings: pl.DataFrame,
    user_mapping: pl.DataFrame,
    movie_mapping: pl.DataFrame,
    movies: pl.DataFrame,
    rating_scale: dict[str, Any],
    tuning_parameters: dict[str, Any],
    training_parameters: dict[str, Any],
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Add ``tuning.n_trials`` trials to the study of ``tuning.variant`` (created or
    resumed), each trained on train and scored on val.

    Returns:
        The best parameters as a Kedro parameters file (``training.<variant>``
        overrides and a ``_tuning`` record) and every trial of the study.
    """
    settings = parse(TuningParameters, tuning_parameters, "tuning")
    data = TrainingData.from_catalog(
        train_ratings=train_ratings,
        val_ratings=val_ratings,
        user_mapping=user_mapping,
        movie_mapping=movie_mapping,
        movies=movies,
        rating_scale=rating_scale,
    )
    study = tuning.run_study(settings, training_parameters[settings.variant], data)
    return tuning.best_parameters(study, settings), tuning.trials_table(study)
