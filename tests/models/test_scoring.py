"""Top-K over every movie (the evaluation's ranking, the served recommendations) keeps a
few candidates past K and orders them by (score, column); rows whose ties at the K-th
score reach past the candidates take the lowest columns of the row holding that
score. Either way the order is (score descending, column ascending)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rating_prediction.models.scoring import popularity_blend, top_k, top_k_indices


def reference_top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Each row's columns sorted by (score descending, column ascending), first k."""
    columns = np.arange(scores.shape[1])
    return np.stack([np.lexsort((columns, -row))[:k] for row in scores])


@pytest.mark.parametrize("spare", [0, 3, 32])
@pytest.mark.parametrize("k", [1, 10, 40])
def test_half_star_scores_full_of_ties_rank_as_the_reference(k, spare):
    generator = np.random.default_rng(k * 100 + spare)
    scores = generator.integers(1, 11, size=(64, 300)).astype(np.float32) / 2
    scores[3, :] = 4.5  # one tie across the whole row
    scores[5, 100:] = -np.inf  # rated or unseen movies
    scores[7, :] = -np.inf
    top = top_k_indices(torch.from_numpy(scores.copy()), k, spare)
    expected = reference_top_k(scores, k)
    finite = np.isfinite(np.take_along_axis(scores, expected, axis=1))
    assert np.array_equal(top.numpy()[finite], expected[finite])
    assert top.shape == (64, k)


def test_more_wanted_than_columns_ranks_every_column():
    scores = np.array([[1.0, 3.0, 3.0, 2.0]], dtype=np.float32)
    top = top_k_indices(torch.from_numpy(scores), 4)
    assert top.tolist() == [[1, 2, 3, 0]]


def test_distinct_scores_need_no_fallback_and_match_topk():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(32, 5_000, generator=generator)
    top = top_k_indices(scores, 10)
    assert torch.equal(top, torch.topk(scores, 10, dim=1).indices)


def test_the_evaluations_top_k_takes_float64_and_flags_missing_candidates():
    scores = np.array([[2.0, -np.inf, 2.0, 1.0], [-np.inf] * 4])
    top, valid = top_k(scores, 3)
    assert top[0].tolist() == [0, 2, 3]
    assert valid.tolist() == [[True, True, True], [False, False, False]]


def test_the_popularity_blend_keeps_a_movie_without_a_score_last():
    """A ranker's ``-inf`` (a movie beyond EASE's ``max_items``) stays ``-inf``; the
    other scores are standardised over the finite ones, as without it."""
    scores = np.array([[1.0, 3.0, -np.inf, 2.0], [-np.inf] * 4])
    counts = np.array([10, 1, 100, 5])
    blended = popularity_blend(scores, counts, 0.5)
    assert np.isneginf(blended[0, 2]) and np.all(np.isneginf(blended[1]))
    assert np.all(np.isfinite(blended[0, [0, 1, 3]]))
    # Weight 0: the model's own scores, standardised over its finite ones.
    own = popularity_blend(scores, counts, 0.0)[0, [0, 1, 3]]
    np.testing.assert_allclose(own, (np.array([1.0, 3.0, 2.0]) - 2.0) / np.sqrt(2 / 3))
