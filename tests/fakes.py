"""Small inputs shared by the tests, built from the project's own schemas
(:mod:`rating_prediction.data.schema`), so a change of contract shows up here once."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch

from rating_prediction.data.schema import (
    MAPPED_RATINGS_SCHEMA,
    MOVIE_MAPPING_SCHEMA,
    MOVIES_SCHEMA,
    RATING_MAX,
    RATING_MIN,
    RATINGS_SCHEMA,
    USER_MAPPING_SCHEMA,
)
from rating_prediction.models.baselines import BASELINES
from rating_prediction.models.config import build_model
from rating_prediction.models.variants import variants_that
from rating_prediction.training.data import TrainingData

# The evaluation and reporting fakes: mapped ids 0..N-1, original ids offset from them.
N_USERS = 30
N_MOVIES = 20
USER_ID_OFFSET = 100
MOVIE_ID_OFFSET = 1000
# The variants with rating predictions (a ranker such as ease has none): with the
# baselines, every entry of the error metrics and of the figures of test predictions.
RATING_VARIANTS = variants_that("predicts_ratings")
ALL_ENTRIES = [*RATING_VARIANTS, *BASELINES]


def ratings_frame(rows: list[tuple[int, int, float, int]]) -> pl.DataFrame:
    """A ``ratings`` frame, as data_ingestion writes it, from (userId, movieId, rating,
    timestamp) tuples."""
    return pl.DataFrame(rows, schema=RATINGS_SCHEMA, orient="row")


def mapped_split(rows: list[tuple[int, int, float]]) -> pl.DataFrame:
    """A split frame from (userIdMapped, movieIdMapped, rating) triples; the original
    ids are the mapped ids plus ``USER_ID_OFFSET`` and ``MOVIE_ID_OFFSET``."""
    return pl.DataFrame(
        [(u + USER_ID_OFFSET, m + MOVIE_ID_OFFSET, r, 0, u, m) for u, m, r in rows],
        schema=MAPPED_RATINGS_SCHEMA,
        orient="row",
    )


def id_mappings(
    n_users: int, n_movies: int, user_offset: int, movie_offset: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``user_mapping`` and ``movie_mapping`` of contiguous ids starting at the offsets."""
    user_mapping = pl.DataFrame(
        {
            "userId": np.arange(user_offset, user_offset + n_users),
            "userIdMapped": np.arange(n_users),
        },
        schema=USER_MAPPING_SCHEMA,
    )
    movie_mapping = pl.DataFrame(
        {
            "movieId": np.arange(movie_offset, movie_offset + n_movies),
            "movieIdMapped": np.arange(n_movies),
        },
        schema=MOVIE_MAPPING_SCHEMA,
    )
    return user_mapping, movie_mapping


def bias_splits(seed: int = 0) -> dict[str, pl.DataFrame]:
    """Train/val/test splits (70/20/10) of ratings ``3 + user bias + movie bias +
    noise`` on ``N_USERS`` x ``N_MOVIES``, so the bias baseline has something to learn."""
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
        rows.append((user, movie, _half_stars(rating)))
    n_train, n_val = int(0.7 * len(rows)), int(0.2 * len(rows))
    return {
        "train": mapped_split(rows[:n_train]),
        "val": mapped_split(rows[n_train : n_train + n_val]),
        "test": mapped_split(rows[n_train + n_val :]),
    }


def learnable_splits(
    n_users: int = 400, n_movies: int = 60, n_ratings: int = 12_000, seed: int = 0
) -> dict[str, pl.DataFrame]:
    """The training pipeline's inputs: ratings with user and movie biases plus rank-3
    structure, split 70/20/10, and the id mappings (users from 1, movies from 10)."""
    rng = np.random.default_rng(seed)
    pairs = rng.choice(n_users * n_movies, size=n_ratings, replace=False)
    users, movies = pairs // n_movies, pairs % n_movies
    user_factors = rng.normal(0, 0.7, (n_users, 3))
    movie_factors = rng.normal(0, 0.7, (n_movies, 3))
    raw = (
        3.6
        + rng.normal(0, 0.4, n_users)[users]
        + rng.normal(0, 0.4, n_movies)[movies]
        + (user_factors[users] * movie_factors[movies]).sum(1)
        + rng.normal(0, 0.3, n_ratings)
    )
    ratings = pl.DataFrame(
        {
            "userId": users + 1,
            "movieId": movies + 10,
            "rating": _half_stars(raw),
            "timestamp": np.arange(n_ratings),
            "userIdMapped": users,
            "movieIdMapped": movies,
        },
        schema=MAPPED_RATINGS_SCHEMA,
    )
    user_mapping, movie_mapping = id_mappings(n_users, n_movies, 1, 10)
    order = rng.permutation(n_ratings)
    cut_val, cut_test = int(0.7 * n_ratings), int(0.9 * n_ratings)
    return {
        "train_ratings": ratings[order[:cut_val]],
        "val_ratings": ratings[order[cut_val:cut_test]],
        "test_ratings": ratings[order[cut_test:]],
        "user_mapping": user_mapping,
        "movie_mapping": movie_mapping,
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
            prediction=(pl.col("rating") + noise)
            .clip(RATING_MIN, RATING_MAX)
            .cast(pl.Float32)
        )
    return predictions


def _half_stars(rating: Any) -> Any:
    return np.clip(np.round(np.asarray(rating) * 2) / 2, RATING_MIN, RATING_MAX)


def fake_movies(movie_mapping: pl.DataFrame) -> pl.DataFrame:
    """A ``movies`` table for ``movie_mapping``: a title each, genres from a small
    vocabulary (every fifth movie without genres, as GroupLens's "(no genres listed)")."""
    vocabulary = ["Action", "Comedy", "Drama", "Romance"]
    ids = movie_mapping["movieId"].to_list()
    genres = [
        None if index % 5 == 4 else "|".join(vocabulary[: 1 + index % 3])
        for index in range(len(ids))
    ]
    return pl.DataFrame(
        {"movieId": ids, "title": [f"Movie {i}" for i in ids], "genres": genres},
        schema=MOVIES_SCHEMA,
    )


def training_data(splits: dict[str, pl.DataFrame]) -> TrainingData:
    """What a variant's fit function reads, from :func:`learnable_splits`' splits."""
    return TrainingData(
        train=splits["train_ratings"],
        val=splits["val_ratings"],
        n_users=splits["user_mapping"].height,
        n_movies=splits["movie_mapping"].height,
        movies=fake_movies(splits["movie_mapping"]),
        movie_mapping=splits["movie_mapping"],
    )
