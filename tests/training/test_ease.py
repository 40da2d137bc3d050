"""EASE^R's closed form against a direct numpy computation, its feedback options, the
``max_items`` cap, and its parameters."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from rating_prediction.models.config import load_trained_model
from rating_prediction.models.rankers import EaseRanker
from rating_prediction.models.scoring import score_block, top_k
from rating_prediction.parameters import EaseParameters, ParameterError, parse
from rating_prediction.parameters.training import TrainingParameters
from rating_prediction.training.data import TrainingData
from rating_prediction.training.ease import (
    MIN_USERS_PER_PART,
    ease_weights,
    fit_variant,
    gram_matrix,
    kept_items,
)
from rating_prediction.training.feedback import implicit_feedback

# Four users, five movies; movie 4 has no training rating.
RATINGS = [
    (0, 0, 5.0),
    (0, 1, 3.0),
    (0, 2, 4.0),
    (1, 0, 2.0),
    (1, 2, 5.0),
    (2, 1, 4.0),
    (2, 3, 1.0),
    (3, 0, 4.5),
    (3, 1, 5.0),
    (3, 3, 3.5),
]
N_USERS, N_MOVIES = 4, 5


def ratings() -> pl.DataFrame:
    users, movies, values = zip(*RATINGS)
    return pl.DataFrame(
        {"userIdMapped": users, "movieIdMapped": movies, "rating": values},
        schema={
            "userIdMapped": pl.Int32,
            "movieIdMapped": pl.Int32,
            "rating": pl.Float32,
        },
    )


def data() -> TrainingData:
    return TrainingData(
        train=ratings(), val=ratings().head(2), n_users=N_USERS, n_movies=N_MOVIES
    )


def reference_b(x: np.ndarray, regularization: float) -> np.ndarray:
    """Steck's closed form, in float64: B = I - P diag(1 / diag(P))."""
    p = np.linalg.inv(x.T @ x + regularization * np.eye(x.shape[1]))
    return np.eye(x.shape[1]) - p / np.diag(p)[None, :]


def interactions(value: str = "binary", min_rating: float = 0.0) -> np.ndarray:
    x = np.zeros((N_USERS, N_MOVIES))
    for user, movie, rating in RATINGS:
        if rating >= min_rating:
            x[user, movie] = 1.0 if value == "binary" else rating
    return x


def fitted(**options) -> tuple[EaseRanker, dict, pl.DataFrame]:
    weights, config, history = fit_variant("ease", EaseParameters(**options), data())
    return load_trained_model(config.model_dump(), weights), weights, history


def test_ease_weights_are_the_closed_form_with_a_zero_diagonal():
    x = np.random.default_rng(0).integers(0, 2, size=(40, 7)).astype(np.float64)
    weights = ease_weights(torch.from_numpy(x.T @ x).float(), 3.0).numpy()
    np.testing.assert_allclose(weights, reference_b(x, 3.0), atol=1e-5)
    assert np.all(np.diag(weights) == 0)


@pytest.mark.parametrize(
    ("options", "x"),
    [
        ({"regularization": 2.0, "feedback": "binary"}, interactions()),
        ({"regularization": 0.5, "feedback": "rating"}, interactions("rating")),
        (
            {"regularization": 1.0, "feedback": "binary", "min_rating": 4.0},
            interactions(min_rating=4.0),
        ),
    ],
)
def test_fit_and_scores_match_numpy(options, x):
    model, weights, history = fitted(**options)
    kept = np.flatnonzero(x.any(axis=0))
    np.testing.assert_array_equal(weights["items"].numpy(), kept)
    b = reference_b(x[:, kept], options["regularization"])
    np.testing.assert_allclose(weights["item_weights"].numpy(), b, atol=1e-5)
    scores = score_block(model, np.arange(N_USERS)).numpy()
    assert scores.shape == (N_USERS, N_MOVIES)
    np.testing.assert_allclose(scores[:, kept], x[:, kept] @ b, atol=1e-5)
    # A movie without weights (no interaction) gets no score: it ranks last.
    assert np.all(np.isneginf(np.delete(scores, kept, axis=1)))
    assert history.columns == ["settings", "n_items", "n_interactions", "fit_seconds"]
    assert history["n_interactions"].item() == np.count_nonzero(x)


def test_pair_scores_are_the_score_matrix_and_unknown_ids_are_handled():
    model, _, _ = fitted(regularization=2.0)
    scores = score_block(model, np.array([0, 1, 2, 3, -1])).numpy()
    users = torch.tensor([0, 1, 2, 3, 3, -1, 0])
    movies = torch.tensor([3, 1, 0, 2, 4, 2, -1])
    pairs = model.predict(users, movies).numpy()
    # Row 4 of ``scores`` is the unknown user's (-1).
    expected = np.append(scores[users.numpy()[:6], movies.numpy()[:6]], -np.inf)
    np.testing.assert_allclose(pairs, expected, atol=1e-6)
    # An unknown user scores zero on every kept movie; an unknown movie is -inf.
    assert np.all(scores[4, :4] == 0)
    assert np.isneginf(pairs[-1])


def test_top_k_ranks_by_the_scores_and_never_recommends_a_movie_without_weights():
    model, _, _ = fitted(regularization=2.0, max_items=2)
    # Movies 0 and 1 have three interactions each; 2 and 3 two: the cap keeps 0, 1.
    np.testing.assert_array_equal(model.items.numpy(), [0, 1])
    scores = score_block(model, np.arange(N_USERS)).numpy()
    top, valid = top_k(scores, 4)
    assert valid.sum(axis=1).tolist() == [2] * N_USERS
    assert set(top[valid].tolist()) <= {0, 1}
    for row, columns, real in zip(scores, top, valid):
        ranked = columns[real]
        assert list(row[ranked]) == sorted(row[ranked], reverse=True)


@pytest.mark.parametrize("feedback", ["binary", "rating"])
def test_sparse_scoring_ranks_every_user_as_the_dense_product_does(feedback):
    # The model scores each user from their own interactions (a sparse product): the
    # scores, and so every top-10 list, are those of the dense x_u B.
    rng = np.random.default_rng(7)
    n_users, n_movies = 300, 120
    pairs = np.unique(
        np.stack([rng.integers(0, n_users, 4000), rng.zipf(1.3, 4000) % n_movies]),
        axis=1,
    )
    train = pl.DataFrame(
        {
            "userIdMapped": pairs[0],
            "movieIdMapped": pairs[1],
            "rating": rng.choice([1.0, 2.5, 4.0, 5.0], pairs.shape[1]),
        },
        schema={
            "userIdMapped": pl.Int32,
            "movieIdMapped": pl.Int32,
            "rating": pl.Float32,
        },
    )
    options = EaseParameters(regularization=5.0, feedback=feedback, max_items=80)
    data = TrainingData(
        train=train, val=train.head(2), n_users=n_users, n_movies=n_movies
    )
    weights, config, _ = fit_variant("ease", options, data)
    model = load_trained_model(config.model_dump(), weights)
    x = np.zeros((n_users, 80))
    offsets = weights["user_offsets"].numpy()
    for user in range(n_users):
        low, high = offsets[user], offsets[user + 1]
        x[user, weights["user_items"][low:high].numpy()] = weights["user_values"][
            low:high
        ].numpy()
    dense = np.full((n_users, n_movies), -np.inf)
    dense[:, weights["items"].numpy()] = x @ weights["item_weights"].double().numpy()
    scores = score_block(model, np.arange(n_users)).numpy()
    np.testing.assert_allclose(scores, dense, atol=1e-5)
    np.testing.assert_array_equal(top_k(scores, 10)[0], top_k(dense, 10)[0])


def test_the_cap_keeps_the_most_rated_movies_ties_to_the_lower_index():
    feedback = implicit_feedback(ratings(), "binary", None)
    assert kept_items(feedback, 2).tolist() == [0, 1]
    assert kept_items(feedback, 3).tolist() == [0, 1, 2]
    assert kept_items(feedback, 100).tolist() == [0, 1, 2, 3]


def test_weights_are_plain_tensors_a_fresh_model_loads():
    model, weights, _ = fitted(regularization=2.0)
    assert all(isinstance(tensor, torch.Tensor) for tensor in weights.values())
    assert set(weights) == set(model.state_dict())


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"regularization": 0}, "training.ease.regularization"),
        ({"regularization": -5.0}, "greater than 0"),
        ({"feedback": "implicit"}, "'binary' or 'rating'"),
        ({"max_items": 0}, "training.ease.max_items"),
        ({"max_items": 60_000}, "lower training.ease.max_items"),
        ({"lambda": 100}, "training.ease.lambda"),
    ],
)
def test_unusable_parameters_are_refused_naming_their_key(values, message):
    with pytest.raises(ParameterError, match=message):
        parse(EaseParameters, values, "training.ease")


def test_the_training_block_defaults_to_the_documented_settings():
    options = TrainingParameters.model_fields["ease"].default
    assert options == EaseParameters()
    assert options.feedback == "rating"
    assert options.max_items == 10_000


@pytest.mark.parametrize("threads", [1, 3])
def test_the_gram_matrix_summed_over_parts_of_the_users_is_x_transpose_x(threads):
    """Parts of the users summed on several threads, users without interactions
    included: the dense ``X^T X``."""
    rng = np.random.default_rng(7)
    n_users, n_items = 3 * MIN_USERS_PER_PART + 5, 40
    dense = np.where(
        rng.random((n_users, n_items)) < 0.1,
        rng.integers(1, 11, (n_users, n_items)) / 2,
        0,
    ).astype(np.float32)
    dense[::7] = 0
    rows, columns = np.nonzero(dense)
    offsets = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_users))])
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gram = gram_matrix(
            offsets, columns.astype(np.int32), dense[rows, columns], n_items
        )
    finally:
        torch.set_num_threads(previous)
    assert gram.dtype == torch.float32
    np.testing.assert_allclose(
        gram.numpy(), dense.T.astype(np.float64) @ dense, rtol=1e-6
    )
