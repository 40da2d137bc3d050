"""Top-K ranking metrics of what a model would recommend, scored in blocks of users.

The protocol (the usual one of LensKit, RecBole or Microsoft Recommenders), over a
*history* (the ratings known when the list is made) and a *target* split:

- **candidates**: the movies seen in training (the catalogue every model was fitted
  on), minus the ones the user rated in the history;
- **relevant**: the user's target ratings of at least ``relevance_threshold`` stars;
- **users**: every user with at least one relevant target rating;
- each user's top ``k`` candidates by score are compared with the relevant set.

On test, the history is train + val: everything known before test, which is what a
model refitted on train + val has seen, and what the served model excludes. On val
(choosing a ranker's settings), the history is train.

Per user, with ``hit_i`` = 1 when the movie at rank ``i`` (1-based) is relevant and
``R`` the number of relevant test ratings:

- ``precision@K`` = hits / K;
- ``recall@K`` = hits / R;
- ``ndcg@K`` = sum(hit_i / log2(i + 1)) / sum_{i <= min(R, K)} 1 / log2(i + 1);
- ``map@K`` = sum(hit_i * precision@i) / min(R, K) (average precision at K);

each averaged over users; ``coverage`` is the share of the candidate catalogue (movies
seen in training) that appears in at least one user's top K.

Scores come from a *scorer*: a function of a block of user indices returning a
``(block, n_candidates)`` float matrix. Blocks hold at most ``max_pairs`` (user,
movie) pairs, so scoring every user against every movie stays bounded in memory on
any data size.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import polars as pl
import torch

from rating_prediction.evaluation.names import ranking_metric_names
from rating_prediction.models.factorization import RatingModel
from rating_prediction.models.scoring import (
    Scorer,
    movie_count,
    score_block,
    top_k,
)

# The key of a scorer among several scored in one pass.
Key = TypeVar("Key", bound=Hashable)


@dataclass(frozen=True)
class RankingTask:
    """Who is ranked, over which movies, and what counts as a hit.

    Attributes:
        candidates: Sorted mapped ids of the catalogue's movies (the columns).
        users: Sorted mapped ids of the ranked users (with a relevant target rating).
        history_keys: Sorted ``user * n_keys + movie`` of the ranked users' history
            pairs (never candidates for them).
        relevant_keys: Sorted ``user * n_keys + movie`` of every relevant target pair.
        n_relevant: The number of relevant target ratings of each of ``users``.
        n_keys: The key multiplier (above every movie index).
        candidate_counts: The history's ratings of each candidate (popularity).
    """

    candidates: np.ndarray
    users: np.ndarray
    history_keys: np.ndarray
    relevant_keys: np.ndarray
    n_relevant: np.ndarray
    n_keys: int
    candidate_counts: np.ndarray


def ranking_task(
    history_ratings: pl.DataFrame,
    target_ratings: pl.DataFrame,
    relevance_threshold: float,
    max_users: int | None = None,
    seed: int = 0,
    *,
    catalogue: pl.DataFrame | None = None,
) -> RankingTask:
    """The ranking task of a target split: the history (train for val; train + val
    for test) never recommended, relevance from the target, candidates the movies of
    ``catalogue`` (the ratings the models were fitted on, train; default: the
    history).

    With ``max_users``, a seeded sample of at most that many of the users with a
    relevant target rating is ranked: the metrics are means over users, so a sample of
    tens of thousands estimates them closely at a fraction of the cost of scoring
    every user against every movie (480,189 x 17,770 at the Netflix Prize's size).
    """
    catalogue = history_ratings if catalogue is None else catalogue
    # Above every movie a key may hold: a candidate of the catalogue too (it may
    # hold movies that no ranked user rated), or its key would be another user's.
    n_keys = 1 + int(
        max(
            history_ratings["movieIdMapped"].max(),
            target_ratings["movieIdMapped"].max(),
            catalogue["movieIdMapped"].max(),
        )
    )
    relevant = target_ratings.filter(pl.col("rating") >= relevance_threshold)
    per_user = relevant.group_by("userIdMapped").len().sort("userIdMapped")
    if max_users is not None and per_user.height > max_users:
        per_user = per_user.sample(max_users, seed=seed).sort("userIdMapped")
        relevant = relevant.join(per_user, on="userIdMapped", how="semi")
    ranked = history_ratings.join(per_user, on="userIdMapped", how="semi")
    candidates = np.unique(catalogue["movieIdMapped"].to_numpy())
    return RankingTask(
        candidates=candidates,
        users=per_user["userIdMapped"].to_numpy().astype(np.int64),
        history_keys=_sorted_keys(ranked, n_keys),
        relevant_keys=_sorted_keys(relevant, n_keys),
        n_relevant=per_user["len"].to_numpy(),
        n_keys=n_keys,
        candidate_counts=candidate_rating_counts(history_ratings, candidates),
    )


def ranking_metrics(
    task: RankingTask, scorer: Scorer, k: int, max_pairs: int
) -> dict[str, float]:
    """NDCG, precision, recall and MAP at ``k`` (means over ``task.users``) and the
    catalogue coverage of the top-``k`` lists that ``scorer`` gives."""
    return ranking_metrics_of(task, {"scorer": scorer}, k, max_pairs)["scorer"]


def ranking_metrics_of(
    task: RankingTask, scorers: Mapping[Key, Scorer], k: int, max_pairs: int
) -> dict[Key, dict[str, float]]:
    """:func:`ranking_metrics` of each of ``scorers``, in one pass over the blocks of
    users: scorers built on one :func:`~rating_prediction.models.scoring.scored_once`
    scorer (a model's popularity blends) score each block with it once."""
    by_scorer = user_ranking_metrics_of(task, scorers, k, max_pairs)
    summaries = {}
    for key, (per_user, recommended) in by_scorer.items():
        summaries[key] = {
            name: float(values.mean()) for name, values in per_user.items()
        }
        summaries[key]["coverage"] = float(recommended.mean())
    return summaries


def user_ranking_metrics(
    task: RankingTask, scorer: Scorer, k: int, max_pairs: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each ranked user's NDCG, precision, recall and average precision at ``k`` (in
    ``task.users`` order: two scorers' figures pair user by user), and whether some
    top-``k`` list recommends each candidate."""
    return user_ranking_metrics_of(task, {"scorer": scorer}, k, max_pairs)["scorer"]


def user_ranking_metrics_of(
    task: RankingTask, scorers: Mapping[Key, Scorer], k: int, max_pairs: int
) -> dict[Key, tuple[dict[str, np.ndarray], np.ndarray]]:
    """:func:`user_ranking_metrics` of each of ``scorers``, block by block of users."""
    names = ranking_metric_names(k)[:4]
    per_user = {key: {name: [] for name in names} for key in scorers}
    recommended = {key: np.zeros(task.candidates.size, dtype=bool) for key in scorers}
    for start, block in _user_blocks(task, max_pairs):
        n_relevant = task.n_relevant[start : start + block.size]
        for key, scorer in scorers.items():
            top, valid = top_k(_mask_history(task, block, scorer(block)), k)
            recommended[key][top[valid]] = True
            keys = block[:, None] * task.n_keys + task.candidates[top]
            hits = _is_relevant(task, keys) & valid
            figures = _per_user_metrics(hits, n_relevant, k)
            for name, values in zip(names, figures):
                per_user[key][name].append(values)
    return {
        key: (
            {name: np.concatenate(values) for name, values in per_user[key].items()},
            recommended[key],
        )
        for key in scorers
    }


def ranked_lists(
    task: RankingTask, scorer: Scorer, k: int, max_pairs: int
) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """The top-``k`` lists that the metrics score, block by block of ``task.users``:
    ``(start, users, top, valid)`` with ``top`` the positions in ``task.candidates``
    of each user's ``k`` best unrated candidates (best first; ``valid`` false where a
    row ran out of candidates)."""
    for start, block in _user_blocks(task, max_pairs):
        top, valid = top_k(_mask_history(task, block, scorer(block)), k)
        yield start, block, top, valid


def model_scorer(model: RatingModel, candidates: np.ndarray) -> Scorer:
    """Scores of a trained model: its predicted ratings of every candidate movie, as the
    served model ranks them (:func:`rating_prediction.models.scoring.score_block`: one
    matrix product per block for factor models, batched ``predict`` otherwise)."""
    columns = torch.from_numpy(candidates.astype(np.int64))
    every_movie = torch.equal(columns, torch.arange(movie_count(model)))

    def score(users: np.ndarray) -> np.ndarray:
        block = score_block(model, users.astype(np.int64))
        if not every_movie:
            block = block.index_select(1, columns)
        # float32, as predicted: ranked without widening (see _mask_history).
        return block.numpy()

    return score


def candidate_rating_counts(
    history_ratings: pl.DataFrame, candidates: np.ndarray
) -> np.ndarray:
    """The number of history ratings of each candidate movie, in candidate order."""
    counts = np.bincount(
        history_ratings["movieIdMapped"].to_numpy(), minlength=candidates.max() + 1
    )
    return counts[candidates]


def random_scorer(n_candidates: int, seed: int) -> Scorer:
    """Independent uniform scores per user and movie, each user's from a generator
    seeded by ``(seed, user)``: a user's list is the same whichever block, partition or
    engine ranks it (the Spark evaluation's partitions give one machine's figures)."""

    def score(users: np.ndarray) -> np.ndarray:
        scores = np.empty((users.size, n_candidates))
        for row, user in enumerate(users):
            scores[row] = np.random.default_rng((seed, int(user))).random(n_candidates)
        return scores

    return score


def _per_user_metrics(
    hits: np.ndarray, n_relevant: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """NDCG, precision, recall and average precision at ``k`` of each row of ``hits``."""
    ranks = np.arange(1, hits.shape[1] + 1)
    discounts = 1.0 / np.log2(ranks + 1)
    ideal = np.cumsum(1.0 / np.log2(np.arange(1, k + 1) + 1))
    n_ideal = np.minimum(n_relevant, k)
    ndcg = (hits * discounts).sum(axis=1) / ideal[n_ideal - 1]
    n_hits = hits.sum(axis=1)
    precision_at_rank = np.cumsum(hits, axis=1) / ranks
    average_precision = (hits * precision_at_rank).sum(axis=1) / n_ideal
    return ndcg, n_hits / k, n_hits / n_relevant, average_precision


def _user_blocks(task: RankingTask, max_pairs: int) -> Iterator[tuple[int, np.ndarray]]:
    block_size = max(1, max_pairs // max(1, task.candidates.size))
    for start in range(0, task.users.size, block_size):
        yield start, task.users[start : start + block_size]


def _mask_history(
    task: RankingTask, users: np.ndarray, scores: np.ndarray
) -> np.ndarray:
    """``scores`` with -inf where the user rated the movie in the history (not a
    candidate).

    ``users`` are sorted, so their history pairs are one slice of the sorted keys:
    the cost is the block's history ratings, not its users times the candidates. A
    history movie outside the catalogue (rated in val only) has no column to mask.
    """
    low, high = np.searchsorted(
        task.history_keys, [users[0] * task.n_keys, (users[-1] + 1) * task.n_keys]
    )
    keys = task.history_keys[low:high]
    key_users, key_movies = keys // task.n_keys, keys % task.n_keys
    rows = np.searchsorted(users, key_users)
    columns = np.searchsorted(task.candidates, key_movies)
    kept = (users[rows.clip(max=users.size - 1)] == key_users) & (
        task.candidates[columns.clip(max=task.candidates.size - 1)] == key_movies
    )
    # A copy in the scores' own floating type: float32 scores rank as their float64
    # values do, and copy in half the time.
    masked = np.array(scores, dtype=np.result_type(scores.dtype, np.float32))
    masked[rows[kept], columns[kept]] = -np.inf
    return masked


def _is_relevant(task: RankingTask, keys: np.ndarray) -> np.ndarray:
    """Whether each ``user * n_keys + movie`` key is a relevant target pair: a binary
    search in the sorted keys (``np.isin`` would hash all of them for every block)."""
    if task.relevant_keys.size == 0:
        return np.zeros(keys.shape, dtype=bool)
    position = np.searchsorted(task.relevant_keys, keys)
    return task.relevant_keys[position.clip(max=task.relevant_keys.size - 1)] == keys


def _sorted_keys(ratings: pl.DataFrame, n_keys: int) -> np.ndarray:
    """``user * n_keys + movie`` of ``ratings``, sorted (splits already are)."""
    keys = ratings.select(
        pl.col("userIdMapped").cast(pl.Int64) * n_keys + pl.col("movieIdMapped")
    ).to_series()
    return (keys if keys.is_sorted() else keys.sort()).to_numpy()
