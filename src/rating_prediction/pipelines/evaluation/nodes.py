"""Nodes of the ``evaluation`` pipeline: predict every split with a trained model or a
baseline, score the predictions and gather the scores into ``metrics.json``.

A prediction frame holds ``userId``, ``movieId``, ``rating`` and ``prediction``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch

from rating_prediction import baselines
from rating_prediction.baselines import BaselinePredictor
from rating_prediction.metrics import regression_metrics
from rating_prediction.models import load_trained_model
from rating_prediction.parameters import EvaluationParameters, parse
from rating_prediction.schema import SPLITS

# Columns of the rated pairs that a prediction frame keeps next to its `prediction`.
RATED_PAIR_COLUMNS = ["userId", "movieId", "rating"]


def predict_with_model(
    model_config: dict[str, Any],
    model_weights: dict[str, torch.Tensor],
    ratings: pl.DataFrame,
    evaluation: dict[str, Any],
) -> pl.DataFrame:
    """Predicts ``ratings`` with a trained model, ``evaluation.prediction_batch_size``
    rows at a time.

    Batching bounds the memory of the forward pass whatever the split size (MovieLens
    25M included): only the ids and the float32 predictions are held in full.
    """
    batch_size = parse(
        EvaluationParameters, evaluation, "evaluation"
    ).prediction_batch_size
    model = load_trained_model(model_config, model_weights)
    users = ratings["userIdMapped"].to_numpy()
    movies = ratings["movieIdMapped"].to_numpy()
    predictions = np.empty(ratings.height, dtype=np.float32)
    with torch.no_grad():
        for start in range(0, ratings.height, batch_size):
            batch = slice(start, start + batch_size)
            predictions[batch] = model.predict(
                torch.from_numpy(users[batch].astype(np.int64)),
                torch.from_numpy(movies[batch].astype(np.int64)),
            ).numpy()
    return ratings.select(RATED_PAIR_COLUMNS).with_columns(
        prediction=pl.Series(predictions, dtype=pl.Float32)
    )


def fit_bias_baseline(
    train_ratings: pl.DataFrame, evaluation: dict[str, Any]
) -> BaselinePredictor:
    """The bias baseline with ``evaluation.bias_baseline``'s regularisation and epochs."""
    settings = parse(EvaluationParameters, evaluation, "evaluation").bias_baseline
    return baselines.fit_bias_baseline(
        train_ratings, settings.reg_user, settings.reg_movie, settings.n_epochs
    )


def predict_with_baseline(
    baseline: BaselinePredictor, ratings: pl.DataFrame
) -> pl.DataFrame:
    """Predicts ``ratings`` with a fitted baseline."""
    return ratings.select(RATED_PAIR_COLUMNS).with_columns(
        prediction=baseline.predict(ratings)
    )


def compute_split_metrics(
    train_predictions: pl.DataFrame,
    val_predictions: pl.DataFrame,
    test_predictions: pl.DataFrame,
) -> dict[str, dict[str, float]]:
    """MSE, RMSE and MAE on each split: ``{"train": {"mse": ..}, "val": .., "test": ..}``."""
    predictions = dict(
        zip(SPLITS, [train_predictions, val_predictions, test_predictions])
    )
    return {
        split: regression_metrics(frame["rating"], frame["prediction"])
        for split, frame in predictions.items()
    }


def gather_metrics(
    **split_metrics: dict[str, dict[str, float]],
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, float]]]:
    """``metrics.json`` (every entry's split metrics, by entry name) and the same
    figures as flat MLflow keys ``<entry>.<split>.<metric>``.

    MLflow values take the ``{"value": .., "step": 0}`` form ``MlflowMetricsHistoryDataset``
    logs.
    """
    mlflow_metrics = {
        f"{entry}.{split}.{name}": {"value": value, "step": 0}
        for entry, splits in split_metrics.items()
        for split, values in splits.items()
        for name, value in values.items()
    }
    return split_metrics, mlflow_metrics
