"""The rankers' scores, their fold-in of a new user and their similar movies, on
hand-made weights (the fits are tested in tests/training/)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rating_prediction.models.rankers import (
    AlsRanker,
    BprRanker,
    EaseRanker,
    FactorRanker,
)
from rating_prediction.models.scoring import PairScorer, score_block

N_USERS, N_MOVIES, N_FACTORS = 5, 7, 3
# Movies 2 and 5 have no training interaction: no factors.
UNFITTED = [2, 5]


def factor_ranker(
    model_class: type[FactorRanker] = AlsRanker, **kwargs
) -> FactorRanker:
    generator = torch.Generator().manual_seed(0)
    model = model_class(N_USERS, N_MOVIES, n_factors=N_FACTORS, **kwargs)
    fitted = torch.ones(N_MOVIES, dtype=torch.bool)
    fitted[UNFITTED] = False
    model.load_state_dict(
        {
            "user_factors": torch.randn(N_USERS, N_FACTORS, generator=generator),
            "item_factors": torch.randn(N_MOVIES, N_FACTORS, generator=generator)
            * fitted[:, None],
            "fitted_movies": fitted,
        }
    )
    return model.eval()


def test_factor_scores_are_dot_products_and_unfitted_movies_minus_infinity():
    model = factor_ranker()
    scores = model.predict_all_movies(torch.arange(N_USERS), N_MOVIES)
    expected = model.user_factors @ model.item_factors.T
    expected[:, UNFITTED] = -torch.inf
    torch.testing.assert_close(scores, expected)
    # The kernel evaluation and serving use scores them the same way.
    torch.testing.assert_close(score_block(model, np.arange(N_USERS)), expected)


def test_factor_pair_scores_agree_with_the_score_matrix_and_handle_unknown_ids():
    model = factor_ranker()
    # Row 5 is the unknown user's (-1).
    scores = model.predict_all_movies(torch.tensor([0, 1, 2, 3, 4, -1]), N_MOVIES)
    users = torch.tensor([0, 1, 2, 3, 4, -1, -1, 3])
    movies = torch.tensor([0, 2, 6, 5, 1, 3, 2, -1])
    rows = torch.where(users >= 0, users, 5)
    expected = scores[rows[:-1], movies[:-1]].tolist() + [-np.inf]
    # Pairs score alike through the model and the kernel serving uses.
    for scorer in (model.predict, PairScorer(model)):
        np.testing.assert_allclose(scorer(users, movies).numpy(), expected, rtol=1e-6)
    # An unknown user has a zero vector: 0 on fitted movies, -inf on the others.
    assert scores[5, [0, 1, 3, 4, 6]].eq(0).all()
    assert scores[5, UNFITTED].isneginf().all()


def test_wider_or_narrower_score_matrices_mark_missing_movies_minus_infinity():
    model = factor_ranker()
    full = model.predict_all_movies(torch.arange(2), N_MOVIES)
    torch.testing.assert_close(
        model.predict_all_movies(torch.arange(2), 4), full[:, :4]
    )
    wider = model.predict_all_movies(torch.arange(2), N_MOVIES + 2)
    torch.testing.assert_close(wider[:, :N_MOVIES], full)
    assert wider[:, N_MOVIES:].isneginf().all()


@pytest.mark.parametrize("model_class", [AlsRanker, BprRanker])
def test_similar_movies_are_cosines_without_the_movie_itself(model_class):
    model = factor_ranker(model_class)
    similar = model.similar_scores(3)
    fitted = [0, 1, 4, 6]
    factors = model.item_factors.double().numpy()
    cosine = factors[fitted] @ factors[3]
    cosine /= np.linalg.norm(factors[fitted], axis=1) * np.linalg.norm(factors[3])
    np.testing.assert_allclose(similar[fitted].numpy(), cosine, rtol=1e-5)
    assert similar[[3, *UNFITTED]].isneginf().all()
    # A movie without factors is like no other.
    assert model.similar_scores(2).isneginf().all()


def test_als_fold_in_is_the_confidence_weighted_user_step():
    model = factor_ranker(AlsRanker, regularization=0.5, alpha=4.0)
    movies = torch.tensor([1, 4, 2])  # 2 has no factors: it adds nothing
    values = torch.tensor([1.0, 3.0, 5.0])
    v = model.item_factors.double().numpy()
    confidence = 1.0 + 4.0 * np.array([1.0, 3.0])
    given = v[[1, 4]]
    system = v.T @ v + given.T @ np.diag(confidence - 1.0) @ given + 0.5 * np.eye(3)
    user = np.linalg.solve(system, given.T @ confidence)
    scores = model.fold_in_scores(movies, values)
    expected = v @ user
    np.testing.assert_allclose(
        scores[[0, 1, 3, 4, 6]].numpy(), expected[[0, 1, 3, 4, 6]], rtol=1e-5
    )
    assert scores[UNFITTED].isneginf().all()
    assert scores.dtype == torch.float32 and scores.shape == (N_MOVIES,)


def test_bpr_fold_in_is_a_ridge_regression_onto_one_that_ignores_values():
    model = factor_ranker(BprRanker, regularization=2.0)
    movies = torch.tensor([0, 6])
    v = model.item_factors.double().numpy()
    given = v[[0, 6]]
    user = np.linalg.solve(given.T @ given + 2.0 * np.eye(3), given.T @ np.ones(2))
    scores = model.fold_in_scores(movies, torch.tensor([1.0, 1.0]))
    np.testing.assert_allclose(
        scores[[0, 1, 3, 4, 6]].numpy(), (v @ user)[[0, 1, 3, 4, 6]], rtol=1e-5
    )
    torch.testing.assert_close(
        model.fold_in_scores(movies, torch.tensor([2.0, 5.0])), scores
    )


@pytest.mark.parametrize("model_class", [AlsRanker, BprRanker])
def test_a_new_user_without_fitted_movies_scores_zero_on_every_fitted_movie(
    model_class,
):
    model = factor_ranker(model_class, regularization=1.0)
    for movies in (torch.tensor([], dtype=torch.int64), torch.tensor([2, 5])):
        scores = model.fold_in_scores(movies, torch.ones(len(movies)))
        assert scores[[0, 1, 3, 4, 6]].eq(0).all()
        assert scores[UNFITTED].isneginf().all()


def ease_ranker() -> EaseRanker:
    """Kept items 0, 2, 3 of five movies; user 0 interacted with 0 (1.0) and 3 (2.0),
    user 1 with 2 (1.0)."""
    model = EaseRanker(2, 5, n_items=3, n_interactions=3)
    weights = torch.tensor([[0.0, 0.5, -0.2], [0.3, 0.0, 0.7], [0.1, -0.4, 0.0]])
    model.load_state_dict(
        {
            "items": torch.tensor([0, 2, 3]),
            "item_weights": weights,
            "user_offsets": torch.tensor([0, 2, 3]),
            "user_items": torch.tensor([0, 2, 2], dtype=torch.int32),
            "user_values": torch.tensor([1.0, 2.0, 1.0]),
        }
    )
    return model.eval()


def test_ease_fold_in_of_a_users_own_interactions_is_their_score_row():
    model = ease_ranker()
    scores = model.fold_in_scores(
        torch.tensor([0, 3, 4]), torch.tensor([1.0, 2.0, 9.0])
    )
    expected = model.predict_all_movies(torch.tensor([0]), 5)[0]
    torch.testing.assert_close(scores, expected)
    # x B on the kept items: 1.0 * B[0] + 2.0 * B[2]; movies 1 and 4 have no weights.
    torch.testing.assert_close(scores[[0, 2, 3]], torch.tensor([0.2, -0.3, -0.2]))
    assert scores[[1, 4]].isneginf().all()


def test_ease_similar_movies_are_the_movies_weight_row():
    model = ease_ranker()
    similar = model.similar_scores(2)
    # Movie 2 is kept item 1: its row of B, itself excluded.
    assert similar[0].item() == pytest.approx(0.3)
    assert similar[3].item() == pytest.approx(0.7)
    assert similar[[1, 2, 4]].isneginf().all()
    assert model.similar_scores(4).isneginf().all()
