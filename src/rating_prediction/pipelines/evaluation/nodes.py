"""Nodes of the ``evaluation`` pipeline: predict every split with a trained model or a
baseline, score the predictions and gather the scores into ``metrics.json``.

A prediction frame holds ``userId``, ``movieId``, ``rating`` and ``prediction``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch

from rating_prediction.metrics import SPLITS, BaselinePredictor, regression_metrics
from rating_prediction.models import load_trained_model

# Columns of the rated pairs that a prediction frame keeps next to its `prediction`.
RATED_PAIR_COLUMNS = ["userId", "movieId", "rating"]


def predict_with_model(
    model_config: dict[str, Any],
    model_weights: dict[str, torch.Tensor],
    ratings: pl.DataFrame,
    batch_size: int,
) -> pl.DataFrame:
    """Predicts ``ratings`` with a trained model, ``batch_size`` rows at a time.

    Batching bounds the memory of the forward pass whatever the split size (MovieLens
    25M included): only the ids and the float32 predictions are held in full.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
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


def collect_metrics(
    **split_metrics: dict[str, dict[str, float]],
) -> dict[str, dict[str, dict[str, float]]]:
    """``metrics.json``: the split metrics of every model and baseline, by entry name."""
    return split_metrics


def flatten_metrics_for_mlflow(
    metrics: dict[str, dict[str, dict[str, float]]],
) -> dict[str, dict[str, float]]:
    """The metrics as flat MLflow keys ``<entry>.<split>.<metric>``.

    Values take the ``{"value": .., "step": 0}`` form ``MlflowMetricsHistoryDataset`` logs.
    """
    return {
        f"{entry}.{split}.{name}": {"value": value, "step": 0}
        for entry, splits in metrics.items()
        for split, values in splits.items()
        for name, value in values.items()
    }
