"""The one scoring and top-K kernel: everything that scores or ranks movies for users,
in evaluation and in serving, goes through here.

- Score matrices (:func:`score_block`): every movie for a block of mapped users. A
  biased MF (``BiasedMatrixFactorization``, whatever variant built it) scores a block as
  ``mu + b_u + b_m + P_u Q^T``, one matrix product, with the users' own parameters or
  folded-in ones (:class:`UserVectors`); a ``SampledFactorization`` scores its expected
  rating at its default time bucket, a few movies at a time (bounded memory), with the
  users' own or folded-in per-sample parameters; other models score every movie with
  their own ``predict_all_movies`` (a ranker's ``-inf`` marks a movie it does not
  score). :func:`score_scored_block` leaves out the columns of a model that scores
  some movies only (a capped EASE^R), for a top K over the others.
- Pair scoring (:class:`PairScorer`, :func:`score_pairs_in_batches`): (user, movie)
  pairs, ``-1`` meaning unknown, with the users' own parameters or folded-in ones, and
  each pair's timestamp where the model has a time feature.
- Top-K (:func:`top_k`, :func:`top_k_indices`): each row's best columns, equal scores to
  the lower column (movie index), so evaluation and serving rank alike.
- The popularity blend (:func:`popularity_blend`, :func:`blended_scorer`): model scores
  and log popularity, each standardised per user.
- Similar movies (:func:`similar_movie_indices`): cosine similarity of movie factors.

Measured speeds of these paths are in the docs (Performance and Serving pages).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rating_prediction.models.factorization import (
    BiasedMatrixFactorization,
    RatingModel,
)
from rating_prediction.models.sampled import SampledFactorization

# Candidates beyond K that top-K keeps to order ties without a key per score.
TIE_CANDIDATES = 32

# A block of user indices -> their scores for every candidate movie.
Scorer = Callable[[np.ndarray], np.ndarray]

# Bounds the pairs scored at once by `score_pairs_in_batches`, so memory does not grow
# with a request beyond its own input and output; small enough for the gathered rows to
# stay in cache (benchmarks/pair_scoring.py). Wider factors take fewer rows
# (`PairScorer.batch_rows`).
SCORE_BATCH_ROWS = 8_192


@dataclass(frozen=True)
class UserVectors:
    """Users' factors ``(n, d)`` and biases: looked up or folded in. The biases are
    ``(n,)`` for a biased MF, ``(n, S)`` (one per sample) for a
    ``SampledFactorization``, whose factors stack its samples' (``d = S * rank``)."""

    factors: torch.Tensor
    biases: torch.Tensor


def is_biased_mf(model: RatingModel) -> bool:
    """Whether ``model`` has the biased MF's factors and biases (fold-in applies)."""
    return isinstance(model, BiasedMatrixFactorization)


def has_user_vectors(model: RatingModel) -> bool:
    """Whether ``model`` scores users from :class:`UserVectors` (its own, looked up,
    or folded-in ones): a biased MF or a ``SampledFactorization``."""
    return isinstance(model, BiasedMatrixFactorization | SampledFactorization)


def movie_factor_table(model: RatingModel) -> torch.Tensor:
    """The model's movie factors ``(n_movies, d)``; a clear error for a model without."""
    for name in ("movie_factors", "movie_embedding"):
        table = getattr(model, name, None)
        if isinstance(table, torch.nn.Embedding):
            return table.weight.detach()
    raise ValueError(f"{type(model).__name__} has no movie factors.")


def movie_count(model: RatingModel) -> int:
    """The number of movies ``model`` scores: its ``n_movies`` (a ranker such as
    EASE^R) or the rows of its movie factors."""
    count = getattr(model, "n_movies", None)
    return int(count) if count is not None else movie_factor_table(model).shape[0]


def lookup_users(
    model: BiasedMatrixFactorization | SampledFactorization, users: np.ndarray
) -> UserVectors:
    """Factors and biases of mapped users; zeros for ``-1`` (unknown)."""
    index = torch.from_numpy(np.asarray(users, dtype=np.int64))
    with torch.no_grad():
        factors = model.embed(model.user_factors, index)
        biases = model.embed(model.user_bias, index)
        return UserVectors(
            factors, biases.squeeze(-1) if is_biased_mf(model) else biases
        )


def score_block(model: RatingModel, users: np.ndarray, vectors=None) -> torch.Tensor:
    """Predicted ratings ``(len(users), n_movies)`` of a block of mapped users.

    ``vectors`` (a model with :func:`has_user_vectors` only) replaces the looked-up
    user parameters, e.g. with folded-in ones.
    """
    with torch.no_grad():
        if isinstance(model, SampledFactorization):
            vectors = vectors or lookup_users(model, users)
            return model.score_users(vectors.factors, vectors.biases)
        if is_biased_mf(model):
            vectors = vectors or lookup_users(model, users)
            # The user's bias and the mean ride in the product as one more factor
            # against a column of ones: one pass over the block's scores fewer.
            ones = torch.ones(model.movie_factors.weight.shape[0], 1)
            scores = torch.addmm(
                model.movie_bias.weight.T,
                torch.cat(
                    [vectors.factors, (vectors.biases + model.global_mean)[:, None]], 1
                ),
                torch.cat([model.movie_factors.weight, ones], 1).T,
            )
            return scores.clamp_(model.rating_min, model.rating_max)
        index = torch.from_numpy(np.asarray(users, dtype=np.int64))
        return model.predict_all_movies(index, movie_count(model))


def score_scored_block(
    model: RatingModel, users: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`score_block` on the movies ``model`` scores (its
    :meth:`~rating_prediction.models.factorization.RatingModel.scored_movies`):
    ``(scores, movies)``, ``movies`` the ascending movie index of each column where
    the model scores some movies only (every other one ranks last for every user),
    else ``None`` and every movie's scores. A top K over the scored columns ranks as
    one over every column, at a fraction of the cost for a capped EASE^R."""
    n_movies = movie_count(model)
    movies = model.scored_movies(n_movies)
    if movies is None:
        return score_block(model, users), None
    index = torch.from_numpy(np.asarray(users, dtype=np.int64))
    return model.predict_scored_movies(index, n_movies), movies


class PairScorer:
    """Scores (mapped user, mapped movie) pairs, ``-1`` meaning unknown, built once.

    A biased MF scores from copies of its tables with one extra zero row at the end,
    which index ``-1`` selects: unknown ids get zero factors and biases without a mask.
    Other models go through their own ``predict``, with each pair's timestamp (a
    ``SampledFactorization`` with folded-in users' vectors too).

    ``batch_rows`` is how many pairs to score at once: ``SCORE_BATCH_ROWS``, fewer for
    wide factors, so the rows gathered from each table (at most
    ``GATHERED_ELEMENTS`` values) stay in cache (benchmarks/pair_scoring.py).
    """

    GATHERED_ELEMENTS = 2**19
    MIN_BATCH_ROWS = 256

    def __init__(self, model: RatingModel) -> None:
        self.model = model
        self.tables = None
        self.batch_rows = SCORE_BATCH_ROWS
        if has_user_vectors(model):
            width = max(1, model.movie_factors.weight.shape[1])
            self.batch_rows = min(
                SCORE_BATCH_ROWS,
                max(self.MIN_BATCH_ROWS, self.GATHERED_ELEMENTS // width),
            )
        if is_biased_mf(model):
            self.tables = [
                _with_zero_row(table.weight.detach())
                for table in (
                    model.user_factors,
                    model.movie_factors,
                    model.user_bias,
                    model.movie_bias,
                )
            ]

    def __call__(
        self,
        users: torch.Tensor,
        movies: torch.Tensor,
        vectors: UserVectors | None = None,
        timestamps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores of the pairs at their ``timestamps`` (unix seconds, NaN: none
        given; read by a model with a time feature only); with ``vectors`` (a model
        with :func:`has_user_vectors` only), ``users`` index its rows (folded-in
        users) instead of the model's users."""
        if isinstance(self.model, SampledFactorization):
            rows = None if vectors is None else (vectors.factors, vectors.biases)
            return self.model.predict(users, movies, timestamps, user_rows=rows)
        if self.tables is None:
            return self.model.predict(users, movies, timestamps)
        model = self.model
        user_factors, movie_factors, user_bias, movie_bias = self.tables
        if vectors is not None:
            user_factors = _with_zero_row(vectors.factors)
            user_bias = _with_zero_row(vectors.biases[:, None])
        users = torch.where(users < 0, len(user_factors) - 1, users)
        movies = torch.where(movies < 0, len(movie_factors) - 1, movies)
        with torch.no_grad():
            # In place on the fresh gathered rows: faster than einsum at wide factors,
            # as fast at narrow ones (benchmarks/pair_scoring.py).
            scores = (
                user_factors.index_select(0, users)
                .mul_(movie_factors.index_select(0, movies))
                .sum(1)
            )
            scores += user_bias.index_select(0, users).squeeze(1)
            scores += movie_bias.index_select(0, movies).squeeze(1)
            scores += model.global_mean
            return scores.clamp_(model.rating_min, model.rating_max)


def score_pairs_in_batches(
    scorer: Callable[..., torch.Tensor],
    users: np.ndarray,
    movies: np.ndarray,
    batch_rows: int = SCORE_BATCH_ROWS,
    vectors: UserVectors | None = None,
    *,
    timestamps: np.ndarray | None = None,
) -> np.ndarray:
    """Predictions (float64) for mapped index pairs (``-1`` unknown), by ``scorer``
    (a model's ``predict`` or a :class:`PairScorer`, which alone takes ``vectors``),
    ``batch_rows`` at a time, at each pair's ``timestamps`` (float64 unix seconds, NaN:
    none given) when given."""
    predictions = np.empty(len(users), dtype=np.float64)
    users, movies = torch.from_numpy(users), torch.from_numpy(movies)
    extra = {} if vectors is None else {"vectors": vectors}
    seconds = None if timestamps is None else torch.from_numpy(timestamps)
    # Row gathers are bound by memory, not arithmetic: one thread is faster than
    # several contending ones, and leaves the other cores to other requests.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            for start in range(0, len(predictions), batch_rows):
                stop = start + batch_rows
                if seconds is not None:
                    extra["timestamps"] = seconds[start:stop]
                predictions[start:stop] = scorer(
                    users[start:stop], movies[start:stop], **extra
                )
    finally:
        torch.set_num_threads(threads)
    return predictions


def _with_zero_row(table: torch.Tensor) -> torch.Tensor:
    return torch.cat([table, table.new_zeros(1, table.shape[1])])


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices of each row's ``k`` best scores, best first, and whether each is
    a real candidate (a finite score); equal scores go to the lower column, as the
    served model's recommendations do (:func:`top_k_indices`)."""
    k = min(k, scores.shape[1])
    top = top_k_indices(torch.from_numpy(np.ascontiguousarray(scores)), k).numpy()
    return top, np.isfinite(np.take_along_axis(scores, top, axis=1))


def top_k_indices(
    scores: torch.Tensor, k: int, spare: int = TIE_CANDIDATES
) -> torch.Tensor:
    """The column indices of each row's ``k`` highest scores, best first, equal scores
    (e.g. predictions clipped at 5 stars) in ascending column order, i.e. to the lower
    movie index. ``torch.topk`` alone leaves the order of ties unspecified.

    ``torch.topk`` of ``k + spare`` candidates, then a stable sort of the candidates by
    (score, column). Where the scores equal to a row's ``k``-th reach past the
    candidates (clamped predictions tie by the thousand), those ties are taken again
    from the whole row, lowest columns first, after the row's higher scores."""
    n_columns = scores.shape[1]
    n_candidates = min(k + spare, n_columns)
    values, indices = torch.topk(scores, n_candidates, dim=1)
    indices, by_column = indices.sort(dim=1)
    values = values.gather(1, by_column)
    values, by_score = values.sort(dim=1, descending=True, stable=True)
    top = indices.gather(1, by_score)[:, :k]
    if n_candidates == n_columns or k == 0:
        return top
    kth = values[:, k - 1]
    overflow = torch.nonzero(torch.isfinite(kth) & (kth == values[:, -1])).ravel()
    if overflow.numel():
        top[overflow] = _ties_to_lower_index(
            scores, overflow, top[overflow], values[overflow, :k], k
        )
    return top


def _ties_to_lower_index(
    scores: torch.Tensor,
    rows: torch.Tensor,
    top: torch.Tensor,
    top_values: torch.Tensor,
    k: int,
) -> torch.Tensor:
    """``top`` (of ``scores``' ``rows``) with the places held by each row's ``k``-th
    score refilled with the lowest columns of the whole row that hold that score: the
    ``j``-th such column is where the running count of ties reaches ``j``."""
    kth = top_values[:, -1:]
    higher = (top_values > kth).sum(dim=1, keepdim=True)
    tie_count = (scores[rows] == kth).cumsum(dim=1, dtype=torch.int32)
    wanted = torch.arange(1, k + 1, dtype=torch.int32).repeat(len(rows), 1)
    lowest_ties = torch.searchsorted(tie_count, wanted).clamp_(max=scores.shape[1] - 1)
    place = torch.arange(k).expand_as(top)
    from_ties = lowest_ties.gather(1, (place - higher).clamp(min=0))
    return torch.where(place < higher, top, from_ties)


def count_scorer(counts: np.ndarray) -> Scorer:
    """The same list for everyone from each candidate's training ratings ``counts``,
    less a tie-break below one rating that orders equal counts by candidate."""
    tie_break = np.arange(counts.size) / (2.0 * counts.size)
    popularity = counts.astype(np.float64) - tie_break
    return lambda users: np.broadcast_to(popularity, (users.size, popularity.size))


def scored_once(scorer: Scorer) -> Scorer:
    """``scorer``, remembering its last block: the scorers built on it (the blends of
    one model with popularity, each weight in turn on a block) score a block once."""
    last: dict[str, np.ndarray] = {}

    def score(users: np.ndarray) -> np.ndarray:
        if "users" not in last or not np.array_equal(last["users"], users):
            last["users"], last["scores"] = users.copy(), scorer(users)
        return last["scores"]

    return score


def blended_scorer(first: Scorer, second: Scorer, weight: float) -> Scorer:
    """``(1 - weight) * z(first) + weight * z(second)``, each standardised per user, so
    a rating scale and a count can be mixed (``weight`` 0 gives ``first``'s order)."""

    def score(users: np.ndarray) -> np.ndarray:
        return (1 - weight) * _standardised(
            np.asarray(first(users), dtype=np.float64)
        ) + weight * _standardised(np.asarray(second(users), dtype=np.float64))

    return score


def log_count_scorer(counts: np.ndarray) -> Scorer:
    """``log(1 + training ratings)`` of each candidate from its training ratings
    ``counts``: popularity on a scale a blend can use."""
    row = np.log1p(count_scorer(counts)(np.zeros(1, dtype=np.int64))[0].clip(min=0))
    return lambda users: np.broadcast_to(row, (users.size, row.size))


def popularity_blend(
    scores: np.ndarray, counts: np.ndarray, weight: float
) -> np.ndarray:
    """A block of model scores ``(users, candidates)`` blended with log popularity as
    the evaluation's ``<variant>_popularity_blend`` ranks: :func:`blended_scorer` of
    the scores and :func:`log_count_scorer` of the candidates' training ``counts``."""
    blended = blended_scorer(lambda users: scores, log_count_scorer(counts), weight)
    return blended(np.arange(scores.shape[0]))


def _standardised(scores: np.ndarray) -> np.ndarray:
    if scores.shape[0] > 1 and scores.strides[0] == 0:
        # The same row for every user (a popularity scorer's broadcast): once is enough.
        return np.broadcast_to(_standardised(scores[:1]), scores.shape)
    finite = np.isfinite(scores)
    if not finite.all():
        return _standardised_finite(scores, finite)
    spread = scores.std(axis=1, keepdims=True)
    return (scores - scores.mean(axis=1, keepdims=True)) / np.where(
        spread > 0, spread, 1.0
    )


def _standardised_finite(scores: np.ndarray, finite: np.ndarray) -> np.ndarray:
    """Each row standardised over its finite scores; ``-inf`` (a movie the model does
    not score, e.g. beyond EASE's ``max_items``) stays, so it still ranks last."""
    count = np.maximum(finite.sum(axis=1, keepdims=True), 1)
    values = np.where(finite, scores, 0.0)
    mean = values.sum(axis=1, keepdims=True) / count
    spread = np.sqrt(
        (np.where(finite, values - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / count
    )
    return np.where(finite, (values - mean) / np.where(spread > 0, spread, 1.0), scores)


def similar_movie_indices(
    model: RatingModel, candidates: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """For each position in ``candidates`` (mapped movie indices) listed in
    ``queries``, the positions of its ``k`` most similar candidates by cosine similarity
    of the movie factors (itself excluded), best first, equal similarities to the
    lower position, and their similarities."""
    factors = torch.nn.functional.normalize(
        movie_factor_table(model)[torch.from_numpy(candidates)], dim=1
    )
    positions = torch.from_numpy(np.asarray(queries, dtype=np.int64))
    similarity = factors[positions] @ factors.T
    similarity[torch.arange(len(positions)), positions] = -torch.inf
    best = top_k_indices(similarity, min(k, len(candidates) - 1))
    return best.numpy(), similarity.gather(1, best).double().numpy()
