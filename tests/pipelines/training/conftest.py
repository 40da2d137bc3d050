"""Small learnable rating splits for training tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

TRAINING_PARAMETERS = (
    Path(__file__).resolve().parents[3] / "conf" / "base" / "parameters_training.yml"
)


def make_splits(
    n_users: int = 400, n_movies: int = 60, n_ratings: int = 12_000, seed: int = 0
) -> dict[str, pl.DataFrame]:
    """Ratings with user and movie biases plus rank-3 structure, split 70/20/10."""
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
            "userId": (users + 1).astype(np.int32),
            "movieId": (movies + 10).astype(np.int32),
            "rating": np.clip(np.round(raw * 2) / 2, 0.5, 5.0).astype(np.float32),
            "timestamp": np.arange(n_ratings, dtype=np.int64),
            "userIdMapped": users.astype(np.int32),
            "movieIdMapped": movies.astype(np.int32),
        }
    )
    order = rng.permutation(n_ratings)
    cut_val, cut_test = int(0.7 * n_ratings), int(0.9 * n_ratings)
    return {
        "train_ratings": ratings[order[:cut_val]],
        "val_ratings": ratings[order[cut_val:cut_test]],
        "test_ratings": ratings[order[cut_test:]],
        "user_mapping": pl.DataFrame(
            {
                "userId": np.arange(1, n_users + 1, dtype=np.int32),
                "userIdMapped": np.arange(n_users, dtype=np.int32),
            }
        ),
        "movie_mapping": pl.DataFrame(
            {
                "movieId": np.arange(10, n_movies + 10, dtype=np.int32),
                "movieIdMapped": np.arange(n_movies, dtype=np.int32),
            }
        ),
    }


@pytest.fixture(scope="session")
def splits() -> dict[str, pl.DataFrame]:
    return make_splits()


@pytest.fixture
def training_parameters() -> dict[str, Any]:
    """The project's training parameters, quiet and on the CPU."""
    parameters = yaml.safe_load(TRAINING_PARAMETERS.read_text())["training"]
    for options in parameters.values():
        options["progress_bar_refresh_rate"] = 0
        options["trainer"]["accelerator"] = "cpu"
        options["batch_size"] = 512
    return copy.deepcopy(parameters)
