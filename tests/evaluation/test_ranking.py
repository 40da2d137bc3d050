"""Ranking metrics against hand-computed examples (src/rating_prediction/ranking.py)."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from rating_prediction.evaluation.ranking import (
    candidate_rating_counts,
    random_scorer,
    ranking_metrics,
    ranking_metrics_of,
    ranking_task,
)
from rating_prediction.models.scoring import (
    blended_scorer,
    count_scorer,
    log_count_scorer,
    scored_once,
    top_k,
)


def frame(rows: list[tuple[int, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={
            "userIdMapped": pl.Int32,
            "movieIdMapped": pl.Int32,
            "rating": pl.Float32,
        },
        orient="row",
    )


# Movies 0..5 are seen in training. User 0 rated 0 in train; user 1 rated 1 and 2.
TRAIN = frame(
    [(0, 0, 3.0), (1, 1, 4.0), (1, 2, 2.0), (2, 3, 5.0), (2, 4, 1.0), (2, 5, 3.0)]
)
# User 0: relevant 1 and 3 (rating >= 4); 2 is rated 3.5: not relevant.
# User 1: relevant 5 and 6 (6 is unseen in training: never recommendable).
# User 2: nothing relevant, so not evaluated.
TEST = frame(
    [(0, 1, 4.0), (0, 3, 5.0), (0, 2, 3.5), (1, 5, 4.5), (1, 6, 4.0), (2, 0, 2.0)]
)
# Fixed scores per movie column (candidates 0..5), the same for every user.
SCORES = np.array([9.0, 1.0, 8.0, 7.0, 6.0, 5.0])


def fixed_scorer(users: np.ndarray) -> np.ndarray:
    return np.broadcast_to(SCORES, (users.size, SCORES.size))


def log2(rank: int) -> float:
    return math.log2(rank + 1)


@pytest.mark.parametrize("max_pairs", [1, 6, 1000])
def test_metrics_match_a_hand_computed_example(max_pairs):
    """K = 3. User 0's candidates (0 is rated in train): 2, 3, 4, 5, 1 by score, so
    the top 3 is [2, 3, 4]: a hit at rank 2. User 1's candidates (1, 2 rated): 0, 3,
    4, 5: top 3 [0, 3, 4], no hit. Blocks of any size give the same figures."""
    task = ranking_task(TRAIN, TEST, relevance_threshold=4.0)
    assert task.users.tolist() == [0, 1]
    metrics = ranking_metrics(task, fixed_scorer, k=3, max_pairs=max_pairs)
    ndcg_user0 = (1 / log2(2)) / (1 / log2(1) + 1 / log2(2))
    assert metrics["ndcg@3"] == pytest.approx((ndcg_user0 + 0) / 2)
    assert metrics["precision@3"] == pytest.approx((1 / 3 + 0) / 2)
    assert metrics["recall@3"] == pytest.approx((1 / 2 + 0) / 2)
    # User 0: precision at the hit's rank 2 is 1/2, over min(R=2, K=3) = 2.
    assert metrics["map@3"] == pytest.approx(((1 / 2) / 2 + 0) / 2)
    # Recommended: {2, 3, 4} and {0, 3, 4}: 4 of the 6 candidate movies.
    assert metrics["coverage"] == pytest.approx(4 / 6)


def test_perfect_ranking_scores_one():
    """A scorer that puts user 0's relevant movies first: every metric is 1 there."""
    train = frame([(0, 0, 3.0), (1, 1, 3.0), (1, 2, 3.0), (1, 3, 3.0)])
    test = frame([(0, 2, 5.0), (0, 3, 4.0)])
    scores = np.array([0.0, 0.0, 2.0, 1.0])
    task = ranking_task(train, test, relevance_threshold=4.0)
    metrics = ranking_metrics(
        task, lambda users: np.broadcast_to(scores, (users.size, 4)), 2, 100
    )
    for name in ("ndcg@2", "precision@2", "recall@2", "map@2"):
        assert metrics[name] == pytest.approx(1.0)
    assert metrics["coverage"] == pytest.approx(2 / 4)


def test_fewer_candidates_than_k_count_only_real_recommendations():
    train = frame([(0, 0, 3.0), (0, 1, 3.0), (1, 2, 3.0)])
    test = frame([(0, 2, 5.0)])
    task = ranking_task(train, test, relevance_threshold=4.0)
    metrics = ranking_metrics(
        task, lambda users: np.zeros((users.size, 3)), k=5, max_pairs=10
    )
    # Only movie 2 is a candidate: one hit of 5 slots; recall and NDCG are 1.
    assert metrics["precision@5"] == pytest.approx(1 / 5)
    assert metrics["recall@5"] == pytest.approx(1.0)
    assert metrics["ndcg@5"] == pytest.approx(1.0)
    assert metrics["coverage"] == pytest.approx(1 / 3)


def test_top_k_orders_best_first_and_breaks_ties_by_column():
    scores = np.array([[1.0, 3.0, 3.0, -np.inf], [0.0, -np.inf, 2.0, 1.0]])
    top, valid = top_k(scores, 3)
    assert top.tolist() == [[1, 2, 0], [2, 3, 0]]
    assert valid.all()
    top, valid = top_k(scores, 4)
    assert valid.tolist() == [[True, True, True, False], [True, True, True, False]]


def test_popularity_ranks_by_training_count_and_random_is_seeded():
    task = ranking_task(TRAIN, TEST, relevance_threshold=4.0)
    train = pl.concat([TRAIN, frame([(3, 4, 4.0), (4, 4, 4.0), (3, 5, 1.0)])])
    counts = candidate_rating_counts(train, task.candidates)
    scores = count_scorer(counts)(np.array([0, 1]))
    assert np.argsort(-scores[0], kind="stable").tolist()[:2] == [4, 5]
    first = random_scorer(6, seed=3)(np.array([0, 1]))
    again = random_scorer(6, seed=3)(np.array([0, 1]))
    np.testing.assert_array_equal(first, again)


def test_a_users_random_scores_are_the_same_in_any_block():
    """Seeded by the seed and the user: Spark's partitions rank a user as one
    machine's blocks do."""
    scorer = random_scorer(6, seed=3)
    together = scorer(np.array([0, 1, 2]))
    np.testing.assert_array_equal(scorer(np.array([2]))[0], together[2])
    np.testing.assert_array_equal(
        random_scorer(6, seed=3)(np.array([1, 2]))[0], together[1]
    )
    assert not np.array_equal(together[0], together[1])
    assert not np.array_equal(random_scorer(6, seed=4)(np.array([0]))[0], together[0])


def test_blend_weights_interpolate_between_the_two_orders():
    users = np.array([0])
    first = lambda u: np.tile([3.0, 2.0, 1.0], (u.size, 1))  # noqa: E731
    second = lambda u: np.tile([1.0, 2.0, 30.0], (u.size, 1))  # noqa: E731
    assert np.argmax(blended_scorer(first, second, 0.0)(users)) == 0
    assert np.argmax(blended_scorer(first, second, 1.0)(users)) == 2


def test_a_blend_with_a_broadcast_popularity_equals_one_with_a_full_copy():
    """A popularity scorer broadcasts one row to every user; the blend standardises
    that row once, with the result of standardising every copy."""
    users = np.arange(4)
    model = random_scorer(7, seed=1)
    counts = np.array([5.0, 0.0, 9.0, 9.0, 1.0, 30.0, 2.0])
    broadcast = lambda u: np.broadcast_to(counts, (u.size, counts.size))  # noqa: E731
    copied = lambda u: np.tile(counts, (u.size, 1))  # noqa: E731
    np.testing.assert_allclose(
        blended_scorer(random_scorer(7, seed=1), broadcast, 0.3)(users),
        blended_scorer(model, copied, 0.3)(users),
        rtol=0,
        atol=1e-15,
    )


def reference_metrics(train, test, scores, k):
    """Per user, one at a time: the protocol of the module docstring, written plainly."""
    candidates = sorted(set(train["movieIdMapped"].to_list()))
    rated = {}
    for user, movie in train.select("userIdMapped", "movieIdMapped").iter_rows():
        rated.setdefault(user, set()).add(movie)
    relevant = {}
    for user, movie, rating in test.iter_rows():
        if rating >= 4.0:
            relevant.setdefault(user, set()).add(movie)
    ndcg, recommended = [], set()
    for user in sorted(relevant):
        # Best score first; equal scores to the lower movie.
        ranked = sorted(
            (m for m in candidates if m not in rated.get(user, set())),
            key=lambda movie: (-scores[user, candidates.index(movie)], movie),
        )[:k]
        recommended.update(ranked)
        gains = sum(1 / log2(i) for i, m in enumerate(ranked, 1) if m in relevant[user])
        ideal = sum(1 / log2(i) for i in range(1, min(len(relevant[user]), k) + 1))
        ndcg.append(gains / ideal)
    return float(np.mean(ndcg)), len(recommended) / len(candidates)


@pytest.mark.parametrize("max_pairs", [1, 37, 10**6])
def test_random_data_matches_a_plain_per_user_computation(max_pairs):
    """Blocks of users whose training pairs are masked by slices of the sorted keys
    give what a plain loop over users gives, for any block size."""
    rng = np.random.default_rng(5)
    pairs = rng.choice(40 * 30, size=500, replace=False)
    ratings = frame(
        [(int(p // 30), int(p % 30), float(rng.integers(1, 6))) for p in pairs]
    )
    train, test = ratings.head(350), ratings.tail(150)
    task = ranking_task(train, test, relevance_threshold=4.0)
    scores = rng.integers(0, 4, (40, task.candidates.size)).astype(float)
    metrics = ranking_metrics(task, lambda users: scores[users], 5, max_pairs)
    ndcg, coverage = reference_metrics(train, test, scores, 5)
    assert metrics["ndcg@5"] == pytest.approx(ndcg)
    assert metrics["coverage"] == pytest.approx(coverage)


@pytest.mark.parametrize("max_pairs", [1, 37, 10**6])
def test_blends_in_one_pass_score_each_block_once_and_match_one_at_a_time(max_pairs):
    """A model's popularity blends ranked together (val's choice of the blend weight)
    give each weight's figures alone, from one model score per block of users."""
    rng = np.random.default_rng(7)
    pairs = rng.choice(40 * 30, size=500, replace=False)
    ratings = frame(
        [(int(p // 30), int(p % 30), float(rng.integers(1, 6))) for p in pairs]
    )
    task = ranking_task(ratings.head(350), ratings.tail(150), relevance_threshold=4.0)
    scores = rng.normal(size=(40, task.candidates.size))
    blocks = []

    def model(users: np.ndarray) -> np.ndarray:
        blocks.append(users.copy())
        return scores[users]

    own = scored_once(model)
    popularity = log_count_scorer(task.candidate_counts)
    weights = (0.0, 0.3, 1.0)
    together = ranking_metrics_of(
        task,
        {w: blended_scorer(own, popularity, w) if w else own for w in weights},
        5,
        max_pairs,
    )
    n_blocks = len(blocks)
    assert n_blocks == len({tuple(block) for block in blocks})
    for weight in weights:
        alone = blended_scorer(lambda users: scores[users], popularity, weight)
        assert together[weight] == ranking_metrics(
            task, alone if weight else (lambda users: scores[users]), 5, max_pairs
        )
    assert len(blocks) == n_blocks


def test_a_user_sample_keeps_the_sampled_users_pairs_only():
    rng = np.random.default_rng(6)
    pairs = rng.choice(60 * 20, size=600, replace=False)
    ratings = frame([(int(p // 20), int(p % 20), 4.0) for p in pairs])
    train, test = ratings.head(400), ratings.tail(200)
    full = ranking_task(train, test, relevance_threshold=4.0)
    sample = ranking_task(train, test, 4.0, max_users=10, seed=1)
    assert sample.users.size == 10 and set(sample.users) <= set(full.users)
    kept = np.isin(full.relevant_keys // full.n_keys, sample.users)
    np.testing.assert_array_equal(sample.relevant_keys, full.relevant_keys[kept])
    train_keys = np.sort(
        train["userIdMapped"].to_numpy().astype(np.int64) * full.n_keys
        + train["movieIdMapped"].to_numpy()
    )
    np.testing.assert_array_equal(
        sample.history_keys,
        train_keys[np.isin(train_keys // full.n_keys, sample.users)],
    )
    np.testing.assert_array_equal(sample.candidates, full.candidates)
    np.testing.assert_array_equal(sample.candidate_counts, full.candidate_counts)


def test_catalogue_movies_beyond_the_history_and_target_are_never_hits():
    """A catalogue (the ratings the models were fitted on) may hold higher movie
    indices than the ranked users' history and target (new users folded in): a
    recommended catalogue movie is a hit only when it is that user's relevant
    movie, never another user's by an overlapping key."""
    history = frame([(0, 1, 3.0), (1, 1, 3.0)])
    target = frame([(0, 0, 5.0), (1, 0, 5.0)])
    catalogue = frame([(5, movie, 3.0) for movie in range(4)])
    task = ranking_task(history, target, 4.0, catalogue=catalogue)
    assert task.candidates.tolist() == [0, 1, 2, 3]
    # Movies 2 and 3 first: neither is relevant to anyone.
    scores = np.array([1.0, 0.0, 3.0, 2.0])
    metrics = ranking_metrics(
        task, lambda users: np.broadcast_to(scores, (users.size, 4)), 2, 100
    )
    assert metrics["precision@2"] == 0.0
    assert metrics["ndcg@2"] == 0.0


@pytest.mark.parametrize("unlisted_movie", [1, 5])
def test_history_movies_outside_the_catalogue_mask_no_candidate(unlisted_movie):
    """A history movie the catalogue lacks (rated in val only, or by a new user only)
    is no candidate, so masking it masks nothing: not the candidate next to it (1),
    and no column past the last (5)."""
    history = frame([(0, unlisted_movie, 3.0)])
    target = frame([(0, 2, 5.0)])
    catalogue = frame([(1, 0, 3.0), (1, 2, 3.0), (1, 3, 3.0)])
    task = ranking_task(history, target, 4.0, catalogue=catalogue)
    assert task.candidates.tolist() == [0, 2, 3]
    scores = np.array([1.0, 3.0, 2.0])
    metrics = ranking_metrics(
        task, lambda users: np.broadcast_to(scores, (users.size, 3)), 1, 100
    )
    assert metrics["ndcg@1"] == 1.0
