"""The rankers' serving interface on EASE^R: a new user's scores from their own
interactions (``fold_in_scores``) and a movie's neighbours (``similar_scores``)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from rating_prediction.models.config import load_trained_model
from rating_prediction.models.rankers import EaseRanker
from rating_prediction.models.scoring import score_block
from rating_prediction.parameters import EaseParameters
from rating_prediction.training.data import TrainingData
from rating_prediction.training.ease import fit_variant

# Five users, six movies; movie 5 has no rating, and the cap of four items drops movie 4
# (the least-rated).
RATINGS = [
    (0, 0, 5.0),
    (0, 1, 3.0),
    (0, 2, 4.0),
    (1, 0, 2.0),
    (1, 2, 5.0),
    (1, 4, 4.0),
    (2, 1, 4.0),
    (2, 3, 1.0),
    (3, 0, 4.5),
    (3, 1, 5.0),
    (3, 3, 3.5),
    (4, 2, 3.0),
    (4, 3, 4.0),
]
N_USERS, N_MOVIES = 5, 6


def fitted(**options) -> EaseRanker:
    users, movies, values = zip(*RATINGS)
    ratings = pl.DataFrame(
        {"userIdMapped": users, "movieIdMapped": movies, "rating": values},
        schema={
            "userIdMapped": pl.Int32,
            "movieIdMapped": pl.Int32,
            "rating": pl.Float32,
        },
    )
    data = TrainingData(
        train=ratings, val=ratings.head(2), n_users=N_USERS, n_movies=N_MOVIES
    )
    weights, config, _ = fit_variant("ease", EaseParameters(**options), data)
    return load_trained_model(config.model_dump(), weights)


@pytest.mark.parametrize(
    "options",
    [
        {"regularization": 2.0, "feedback": "binary"},
        {"regularization": 2.0, "feedback": "binary", "max_items": 4},
        {"regularization": 0.5, "feedback": "rating"},
    ],
)
def test_a_user_folded_in_from_their_own_interactions_scores_as_their_row(options):
    model = fitted(**options)
    for user in range(N_USERS):
        own = [(movie, rating) for u, movie, rating in RATINGS if u == user]
        movies = torch.tensor([movie for movie, _ in own], dtype=torch.int64)
        values = torch.tensor(
            [1.0 if options["feedback"] == "binary" else r for _, r in own]
        )
        folded = model.fold_in_scores(movies, values)
        expected = score_block(model, np.array([user]))[0]
        assert folded.shape == (N_MOVIES,)
        torch.testing.assert_close(folded, expected)


def test_fold_in_ignores_movies_without_weights_and_scores_them_minus_infinity():
    model = fitted(regularization=2.0, max_items=4)
    assert model.items.tolist() == [0, 1, 2, 3]
    with_unweighted = model.fold_in_scores(
        torch.tensor([0, 4, 5]), torch.tensor([1.0, 1.0, 1.0])
    )
    alone = model.fold_in_scores(torch.tensor([0]), torch.tensor([1.0]))
    torch.testing.assert_close(with_unweighted, alone)
    torch.testing.assert_close(alone[:4], model.item_weights[0])
    assert torch.isneginf(alone[4:]).all()


def test_similar_scores_are_the_weight_row_without_the_movie_and_unweighted_ones():
    model = fitted(regularization=2.0, max_items=4)
    similar = model.similar_scores(1)
    expected = model.item_weights[1].clone()
    expected[1] = -torch.inf
    torch.testing.assert_close(similar[:4], expected)
    assert torch.isneginf(similar[[1, 4, 5]]).all()
    assert torch.isfinite(similar[[0, 2, 3]]).all()
    # A movie without weights has no neighbours.
    assert torch.isneginf(model.similar_scores(4)).all()
