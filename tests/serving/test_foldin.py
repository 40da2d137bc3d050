"""Fold-in: a user held out of training, folded in from 80% of their own ratings, is
predicted better on the other 20% than by the unknown-user fallback."""

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch

from rating_prediction.data.schema import (
    MAPPED_RATINGS_SCHEMA,
    MOVIES_SCHEMA,
)
from rating_prediction.models.config import build_model
from rating_prediction.serving.bundle import assemble_served_model
from rating_prediction.serving.foldin import fold_in
from rating_prediction.serving.requests import answer_request
from tests.serving.fixtures import identity_mappings

N_USERS, N_MOVIES, RANK, DENSITY = 300, 120, 3, 0.4
HELD_OUT = N_USERS + 1  # userIds 1..N_USERS are trained; this one is not


def learnable_ratings(seed: int = 0) -> pl.DataFrame:
    """Mean + biases + a rank-3 interaction + a little noise, on the half-star scale;
    the held-out user rates every movie."""
    rng = np.random.default_rng(seed)
    users = rng.normal(0, 0.6, (N_USERS + 1, RANK))
    movies = rng.normal(0, 0.6, (N_MOVIES, RANK))
    user_bias, movie_bias = (
        rng.normal(0, 0.4, N_USERS + 1),
        rng.normal(0, 0.4, N_MOVIES),
    )
    true = 3.5 + user_bias[:, None] + movie_bias[None, :] + users @ movies.T
    observed = rng.random(true.shape) < DENSITY
    observed[HELD_OUT - 1] = True
    user, movie = np.nonzero(observed)
    noisy = true[user, movie] + rng.normal(0, 0.2, len(user))
    return pl.DataFrame(
        {
            "userId": user + 1,
            "movieId": movie + 1,
            "rating": (np.round(noisy * 2) / 2).clip(0.5, 5.0),
        }
    )


def train_biased_mf(ratings: pl.DataFrame):
    """The project's biased MF, full-batch Adam on the training users (seconds)."""
    torch.manual_seed(0)
    mean = float(ratings["rating"].mean())
    config = {
        "variant": "biased_mf",
        "n_users": N_USERS,
        "n_movies": N_MOVIES,
        "model_kwargs": {
            "embedding_dim": 8,
            "global_mean": mean,
            "init_std": 0.1,
            "factor_reg": 0.02,
            "bias_reg": 0.01,
        },
    }
    model = build_model(config)
    users = torch.tensor(ratings["userId"].to_numpy() - 1)
    movies = torch.tensor(ratings["movieId"].to_numpy() - 1)
    target = torch.tensor(ratings["rating"].to_numpy(), dtype=torch.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: threads would only contend
    try:
        for _ in range(200):
            optimizer.zero_grad()
            loss = ((model(users, movies) - target) ** 2).mean()
            (loss + model.regularization(users, movies)).backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return config, model.state_dict()


@pytest.fixture(scope="module")
def served_and_held_out():
    ratings = learnable_ratings()
    train = ratings.filter(pl.col("userId") != HELD_OUT)
    config, weights = train_biased_mf(train)
    mapped = train.with_columns(
        timestamp=pl.lit(0),
        userIdMapped=pl.col("userId") - 1,
        movieIdMapped=pl.col("movieId") - 1,
    ).select(MAPPED_RATINGS_SCHEMA.names())
    served = assemble_served_model(
        config,
        weights,
        **identity_mappings(N_USERS, N_MOVIES),
        train_ratings=mapped.cast(MAPPED_RATINGS_SCHEMA),
        movies=pl.DataFrame(
            {
                "movieId": range(1, N_MOVIES + 1),
                "title": [f"Movie {i}" for i in range(1, N_MOVIES + 1)],
                "genres": "Drama",
            },
            schema=MOVIES_SCHEMA,
        ),
    )
    held_out = ratings.filter(pl.col("userId") == HELD_OUT).sample(
        fraction=1.0, shuffle=True, seed=1
    )
    return served, held_out


def rmse(predicted, actual) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - np.asarray(actual)) ** 2)))


def test_folded_in_user_beats_the_fallback(served_and_held_out):
    served, held_out = served_and_held_out
    cut = int(0.8 * held_out.height)
    known, hidden = held_out[:cut], held_out[cut:]
    # One request: the user's own ratings (with `rating`), then the pairs to predict.
    request = pd.concat(
        [
            known.to_pandas(),
            hidden.drop("rating").to_pandas().assign(rating=np.nan),
        ],
        ignore_index=True,
    )
    folded = answer_request(served, request)
    fallback = answer_request(served, hidden.drop("rating").to_pandas())
    assert not fallback["known_user"].any()
    assert folded["movieId"].tolist() == hidden["movieId"].to_list()
    folded_rmse = rmse(folded["prediction"], hidden["rating"])
    fallback_rmse = rmse(fallback["prediction"], hidden["rating"])
    assert folded_rmse < 0.8 * fallback_rmse, (folded_rmse, fallback_rmse)


def test_fold_in_without_known_movies_is_no_user(served_and_held_out):
    served, _ = served_and_held_out
    assert fold_in(served, np.array([99_999]), np.array([4.0]), 5.0) is None
    with pytest.raises(ValueError, match=r"must lie in 0.5\.\.5.0"):
        fold_in(served, np.array([1]), np.array([7.0]), 5.0)
