"""What the rankers share: implicit feedback from the training ratings, and the log of a
fit that has one row of history (no epochs).

Every ranker (``ease``, ``als``, ``bpr``) reads the training ratings as interactions:
each rated (user, movie) pair of at least ``min_rating`` is one, valued 1 (``binary``)
or its rating (``rating``). Its fit is one pass (a closed form, or a fixed number of
iterations with nothing chosen on val), so its history is one row (its settings, sizes
and seconds), which the training node logs with :func:`log_fit` once the ranker is
scored on val and refitted.
"""

from __future__ import annotations

import logging
import time
from typing import Literal

import mlflow
import polars as pl
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

Feedback = Literal["binary", "rating"]


def implicit_feedback(
    ratings: pl.DataFrame, feedback: Feedback, min_rating: float | None
) -> pl.DataFrame:
    """``userIdMapped``, ``movieIdMapped`` and ``value`` (float32) of each interaction:
    every rating of at least ``min_rating`` (``None``: every rating), valued 1
    (``binary``) or its rating (``rating``)."""
    if min_rating is not None:
        ratings = ratings.filter(pl.col("rating") >= min_rating)
    value = pl.lit(1.0) if feedback == "binary" else pl.col("rating")
    return ratings.select(
        "userIdMapped", "movieIdMapped", value.cast(pl.Float32).alias("value")
    )


def log_fit(variant: str, history: pl.DataFrame, note: str = "") -> None:
    """Log the fit in one line (its ``settings``, movies with weights, interactions,
    seconds, then ``note``), and its numbers into the active MLflow run (if any) as
    ``<variant>.<column>``."""
    row = history.row(0, named=True)
    logger.info(
        "%s: %s, %s items, %s interactions; %.1f s%s",
        variant,
        row["settings"],
        f"{row['n_items']:,}",
        f"{row['n_interactions']:,}",
        row["fit_seconds"],
        note,
    )
    run = mlflow.active_run()
    if run is None:
        return
    stamp = int(time.time() * 1000)
    metrics = [
        Metric(f"{variant}.{name}", float(value), stamp, 0)
        for name, value in row.items()
        if name != "settings"
    ]
    MlflowClient().log_batch(run.info.run_id, metrics=metrics)
