"""Error metrics of predicted against true ratings, accumulated in float64."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

METRICS = ("mse", "rmse", "mae")


def regression_metrics(ratings: pl.Series, predictions: pl.Series) -> dict[str, float]:
    """MSE, RMSE and MAE of ``predictions`` against ``ratings``, accumulated in float64."""
    if ratings.len() == 0:
        raise ValueError("Cannot compute metrics on an empty split.")
    error = predictions.cast(pl.Float64) - ratings.cast(pl.Float64)
    mse = float((error * error).mean())
    return {"mse": mse, "rmse": mse**0.5, "mae": float(error.abs().mean())}


def batched_regression_metrics(
    ratings: pl.DataFrame,
    predict: Callable[[pl.DataFrame], np.ndarray | pl.Series],
    batch_size: int,
) -> dict[str, float]:
    """:func:`regression_metrics` of ``predict``'s predictions of ``ratings``, made and
    summed (in float64) ``batch_size`` rows at a time: no prediction column is ever
    held whole, whatever the number of ratings (70 million training ratings at the
    Netflix Prize's size)."""
    if ratings.height == 0:
        raise ValueError("Cannot compute metrics on an empty split.")
    squared_error = absolute_error = 0.0
    for start in range(0, ratings.height, batch_size):
        batch = ratings.slice(start, batch_size)
        error = np.asarray(predict(batch), dtype=np.float64) - batch[
            "rating"
        ].to_numpy().astype(np.float64)
        squared_error += float(error @ error)
        absolute_error += float(np.abs(error).sum())
    mse = squared_error / ratings.height
    return {"mse": mse, "rmse": mse**0.5, "mae": absolute_error / ratings.height}


def grouped_rmse(predictions: pl.DataFrame, by: str | list[str]) -> pl.DataFrame:
    """RMSE and number of ratings per value of the ``by`` column(s), sorted by them.

    ``predictions`` holds ``rating`` and ``prediction`` columns.
    """
    squared_error = (pl.col("prediction").cast(pl.Float64) - pl.col("rating")).pow(2)
    return (
        predictions.group_by(by)
        .agg(squared_error.mean().sqrt().alias("rmse"), pl.len().alias("n_ratings"))
        .sort(by)
    )
