"""Small inputs for the evaluation and reporting tests: splits and fake trained models."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch

from rating_prediction.metrics import BASELINES
from rating_prediction.models import MODEL_VARIANTS, build_model
from rating_prediction.pipelines.data_processing.nodes import MAPPED_RATINGS_SCHEMA

N_USERS = 30
N_MOVIES = 20
ALL_ENTRIES = [*MODEL_VARIANTS, *BASELINES]


def make_split(rows: list[tuple[int, int, float]]) -> pl.DataFrame:
    """A split frame from (userIdMapped, movieIdMapped, rating) triples; the original
    ids are the mapped ids plus 100 (users) and 1000 (movies)."""
    return pl.DataFrame(
        [(u + 100, m + 1000, r, 0, u, m) for u, m, r in rows],
        schema=MAPPED_RATINGS_SCHEMA,
        orient="row",
    )


def make_splits(seed: int = 0) -> dict[str, pl.DataFrame]:
    """Train/val/test splits of ratings ``3 + user bias + movie bias + noise`` rounded to
    half stars, so the bias baseline has something to learn."""
    rng = np.random.default_rng(seed)
    user_bias = rng.normal(0, 0.6, N_USERS)
    movie_bias = rng.normal(0, 0.6, N_MOVIES)
    pairs = [
        (u, m) for u in range(N_USERS) for m in range(N_MOVIES) if rng.random() < 0.6
    ]
    order = rng.permutation(len(pairs))
    rows = []
    for index in order:
        user, movie = pairs[index]
        rating = 3 + user_bias[user] + movie_bias[movie] + rng.normal(0, 0.3)
        rows.append((user, movie, float(np.clip(np.round(rating * 2) / 2, 0.5, 5.0))))
    n_train, n_val = int(0.7 * len(rows)), int(0.2 * len(rows))
    return {
        "train": make_split(rows[:n_train]),
        "val": make_split(rows[n_train : n_train + n_val]),
        "test": make_split(rows[n_train + n_val :]),
    }


def fake_trained_model(
    variant: str, seed: int = 0
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The config and weights a training run would save, for an untrained model."""
    torch.manual_seed(seed)
    config = {
        "variant": variant,
        "n_users": N_USERS,
        "n_movies": N_MOVIES,
        "model_kwargs": {},
        "best_epoch": 2,
        "best_val_loss": 1.0,
    }
    return config, build_model(config).state_dict()


def fake_training_history(n_epochs: int = 4) -> pl.DataFrame:
    """A decreasing training loss and a validation loss that is best at epoch 3."""
    val_loss = [1.2, 1.0, 0.9, 0.95, 1.0, 1.1][:n_epochs]
    return pl.DataFrame(
        {
            "epoch": pl.Series(range(1, n_epochs + 1), dtype=pl.Int64),
            "train_loss": [1.5 / epoch for epoch in range(1, n_epochs + 1)],
            "val_loss": val_loss,
        }
    )


def fake_test_predictions(
    test_ratings: pl.DataFrame, entries: list[str]
) -> dict[str, pl.DataFrame]:
    """Test predictions of each entry: the true rating plus entry-specific noise."""
    predictions = {}
    for index, entry in enumerate(entries):
        rng = np.random.default_rng(index)
        noise = rng.normal(0, 0.3 * (index + 1), test_ratings.height)
        predictions[entry] = test_ratings.select(
            "userId", "movieId", "rating"
        ).with_columns(
            prediction=(pl.col("rating") + noise).clip(0.5, 5.0).cast(pl.Float32)
        )
    return predictions
