"""Error metrics of predicted against true ratings, accumulated in float64."""

from __future__ import annotations

import polars as pl

METRICS = ("mse", "rmse", "mae")


def regression_metrics(ratings: pl.Series, predictions: pl.Series) -> dict[str, float]:
    """MSE, RMSE and MAE of ``predictions`` against ``ratings``, accumulated in float64."""
    if ratings.len() == 0:
        raise ValueError("Cannot compute metrics on an empty split.")
    error = predictions.cast(pl.Float64) - ratings.cast(pl.Float64)
    mse = float((error * error).mean())
    return {"mse": mse, "rmse": mse**0.5, "mae": float(error.abs().mean())}


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
