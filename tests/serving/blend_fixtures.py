"""The popularity blend's served model, shared by the serving tests
(tests/serving/test_popularity_blend.py) and the inference node tests
(tests/pipelines/inference/test_popularity_blend.py); tests/conftest.py registers its
fixtures for both.

A biased MF of 30 users and 40 movies (movies 36-40 unseen in training), its global
mean high enough that many predictions clip at 5 stars (ties), and skewed, often equal,
training-rating counts.
"""

import numpy as np
import polars as pl
import pytest

from rating_prediction.data.schema import (
    MAPPED_RATINGS_SCHEMA,
    MOVIES_SCHEMA,
)
from rating_prediction.evaluation.ranking import candidate_rating_counts, model_scorer
from rating_prediction.models.config import build_model
from rating_prediction.models.scoring import blended_scorer, log_count_scorer, top_k
from rating_prediction.serving.bundle import assemble_served_model
from tests.serving.fixtures import identity_mappings

N_USERS, N_MOVIES, N_TRAIN_MOVIES = 30, 40, 35
K = 8


@pytest.fixture(scope="module")
def train() -> pl.DataFrame:
    """Ratings of the first 35 movies, movie ``m`` drawn with weight ``1 / (1 + m //
    4)`` (runs of equal counts); ids are mapped index + 1."""
    rng = np.random.default_rng(7)
    popularity = 1.0 / (1 + np.arange(N_TRAIN_MOVIES) // 4)
    rows = set()
    for user in range(N_USERS):
        n = int(rng.integers(3, 12))
        movies = rng.choice(
            N_TRAIN_MOVIES, n, replace=False, p=popularity / popularity.sum()
        )
        rows.update((user, int(movie)) for movie in movies)
    rows |= {(0, movie) for movie in range(N_TRAIN_MOVIES)}
    rows -= {(0, 1), (0, 2)}
    pairs = sorted(rows)
    return pl.DataFrame(
        [(u + 1, m + 1, 4.0, 0, u, m) for u, m in pairs],
        schema=MAPPED_RATINGS_SCHEMA,
        orient="row",
    )


@pytest.fixture(scope="module")
def blend_served(train):
    config = {
        "variant": "biased_mf",
        "n_users": N_USERS,
        "n_movies": N_MOVIES,
        "model_kwargs": {"embedding_dim": 4, "global_mean": 4.6},
        "best_epoch": 1,
        "best_val_loss": 0.8,
    }
    model = build_model(config)
    generator = np.random.default_rng(3)
    state = {
        name: tensor.new_tensor(generator.normal(0, 0.4, tuple(tensor.shape)))
        if name.endswith(".weight")
        else tensor
        for name, tensor in model.state_dict().items()
    }
    model.load_state_dict(state)
    ids = np.arange(1, N_MOVIES + 1)
    return assemble_served_model(
        config,
        model.state_dict(),
        **identity_mappings(N_USERS, N_MOVIES),
        train_ratings=train,
        movies=pl.DataFrame(
            {"movieId": ids, "title": [f"M{i}" for i in ids], "genres": "Drama"},
            schema=MOVIES_SCHEMA,
        ),
    )


def evaluation_top_k(served, train, scorer_of) -> list[tuple[int, int, int]]:
    """(userId, rank, movieId) of the evaluation's top-K: candidates the movies seen in
    training, the user's training movies masked, :func:`top_k`'s ties rule."""
    candidates = np.unique(train["movieIdMapped"].to_numpy())
    users = np.arange(N_USERS)
    scores = scorer_of(candidates)(users).copy()
    column = {movie: i for i, movie in enumerate(candidates)}
    for user, movie in train.select("userIdMapped", "movieIdMapped").iter_rows():
        scores[user, column[movie]] = -np.inf
    top, valid = top_k(scores, K)
    return [
        (user + 1, rank + 1, int(candidates[top[user, rank]]) + 1)
        for user in users
        for rank in range(top.shape[1])
        if valid[user, rank]
    ]


def served_top_k(recommendations: pl.DataFrame) -> list[tuple[int, int, int]]:
    return recommendations.select("userId", "rank", "movieId").rows()


def blended(served, train, weight):
    return lambda candidates: blended_scorer(
        model_scorer(served.model, candidates),
        log_count_scorer(candidate_rating_counts(train, candidates)),
        weight,
    )
