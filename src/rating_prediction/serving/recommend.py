"""Recommendations: the one top-K path of the served model, for a few users or for
all of them, with or without the popularity blend, for known or folded-in users.

Blocks of users are scored against every movie by the scoring kernel
(:func:`~rating_prediction.models.scoring.score_block`: a matrix product per block for
factor models), rated pairs masked out, and cut by the kernel's top K, equal scores to
the lower movie index as the evaluation ranks; memory is bounded by the block."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import polars as pl
import torch

from rating_prediction.models import scoring
from rating_prediction.models.scoring import UserVectors

from .bundle import ServedModel
from .rated import RatedIndex

logger = logging.getLogger(__name__)

RECOMMENDATIONS_SCHEMA = pl.Schema(
    {
        "userId": pl.Int64,
        "rank": pl.Int32,
        "movieId": pl.Int64,
        "title": pl.String,
        "prediction": pl.Float64,
        "known_user": pl.Boolean,
    }
)


def recommendations_schema(served: ServedModel) -> pl.Schema:
    """``RECOMMENDATIONS_SCHEMA`` with the ids in the served model's types."""
    return pl.Schema(
        {
            **RECOMMENDATIONS_SCHEMA,
            "userId": served.users.dtype,
            "movieId": served.movies.dtype,
        }
    )


def mapped_positions(served: ServedModel, user_ids: np.ndarray) -> np.ndarray:
    """The mapping index of each original user id (``-1`` when not in the mapping),
    whether or not the user was seen in training: rated pairs are kept by it."""
    return served.users.positions(user_ids)


def rated_index(served: ServedModel, rated_pairs: pl.DataFrame) -> RatedIndex:
    """(userId, movieId) pairs in original ids as a :class:`RatedIndex`."""
    users = mapped_positions(
        served, rated_pairs["userId"].cast(served.users.dtype).to_numpy()
    )
    movies = served.movies.lookup(
        rated_pairs["movieId"].cast(served.movies.dtype).to_numpy()
    )
    keep = (users >= 0) & (movies >= 0)
    return RatedIndex.from_indices(users[keep], movies[keep], len(served.users))


def _rated_in_block(
    served: ServedModel,
    user_ids: np.ndarray,
    rated: RatedIndex,
    request_rated: tuple[RatedIndex, int] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """(row in the block, mapped movie) of every pair never to recommend."""
    rows, movies = rated.block(mapped_positions(served, user_ids))
    if request_rated is None:
        return rows, movies
    extra, start = request_rated
    more_rows, more_movies = extra.block(np.arange(start, start + len(user_ids)))
    return np.concatenate([rows, more_rows]), np.concatenate([movies, more_movies])


def _model_top_k(
    served: ServedModel,
    scores: torch.Tensor,
    rated: tuple[np.ndarray, np.ndarray],
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Movie indices, predictions and validity of each row's ``k`` best predictions;
    equal predictions go to the lower movie index, as the evaluation's top K orders
    them (``torch.topk`` alone leaves the order of ties unspecified)."""
    rows, movies = rated
    if not served.movies.seen.all():
        scores[:, torch.from_numpy(~served.movies.seen)] = -torch.inf
    scores[torch.from_numpy(rows), torch.from_numpy(movies)] = -torch.inf
    indices = scoring.top_k_indices(scores, min(k, scores.shape[1]))
    values = scores.gather(1, indices)
    return indices.numpy(), values.double().numpy(), torch.isfinite(values).numpy()


def _blended_top_k(
    served: ServedModel,
    scores: torch.Tensor,
    rated: tuple[np.ndarray, np.ndarray],
    k: int,
    weight: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_model_top_k` ranked by the evaluation's popularity blend: the known
    movies are the candidates, blended and cut by the kernel."""
    known = np.flatnonzero(served.movies.seen)
    if known.size == 0:
        empty = np.zeros((scores.shape[0], 0))
        return empty.astype(np.int64), empty, empty.astype(bool)
    predictions = scores.index_select(1, torch.from_numpy(known)).double().numpy()
    blended = scoring.popularity_blend(
        predictions, popularity_counts(served)[known], weight
    )
    column = np.full(len(served.movies), -1, dtype=np.int64)
    column[known] = np.arange(known.size)
    rows, movies = rated
    candidate = column[movies] >= 0
    blended[rows[candidate], column[movies[candidate]]] = -np.inf
    top, valid = scoring.top_k(blended, k)
    return known[top], np.take_along_axis(predictions, top, axis=1), valid


def popularity_counts(served: ServedModel) -> np.ndarray:
    """The training ratings of each movie index; a clear error for a served model
    built without them."""
    if served.movie_rating_counts is None:
        raise ValueError(
            "The served model has no per-movie training-rating counts, which the "
            "popularity blend needs; rebuild it with `kedro run --pipelines inference`."
        )
    return served.movie_rating_counts


def _block_top_k(
    served: ServedModel,
    user_ids: np.ndarray,
    rated: RatedIndex,
    *,
    top_k: int,
    vectors: UserVectors | None,
    request_rated: tuple[RatedIndex, int] | None,
    popularity_weight: float,
) -> pl.DataFrame:
    user_index = served.users.lookup(user_ids)
    scores = scoring.score_block(served.model, user_index, vectors)
    excluded = _rated_in_block(served, user_ids, rated, request_rated)
    if popularity_weight > 0:
        indices, values, valid = _blended_top_k(
            served, scores, excluded, top_k, popularity_weight
        )
    else:
        indices, values, valid = _model_top_k(served, scores, excluded, top_k)
    k = indices.shape[1]
    valid = valid.ravel()
    movie_index = indices.ravel()[valid]
    title_position = np.cumsum(served.movies.seen) - 1
    return pl.DataFrame(
        {
            "userId": np.repeat(user_ids, k)[valid],
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(user_ids))[valid],
            "movieId": served.movies.ids[movie_index],
            "title": served.movie_titles.gather(title_position[movie_index]),
            "prediction": values.ravel()[valid],
            "known_user": np.repeat(user_index >= 0, k)[valid],
        },
        schema=recommendations_schema(served),
    )


def recommend_all(
    served: ServedModel,
    user_ids: np.ndarray,
    rated: RatedIndex,
    top_k: int,
    *,
    block_size: int = 128,
    vectors: UserVectors | None = None,
    request_rated: RatedIndex | None = None,
    popularity_weight: float = 0.0,
) -> pl.DataFrame:
    """The ``top_k`` best-predicted known movies of each user of ``user_ids``
    (original ids, in that order), excluding ``rated`` pairs, ``block_size`` users at a
    time.

    ``vectors`` (one row per user) replaces the users' parameters (fold-in);
    ``request_rated``, indexed by position in ``user_ids``, excludes more movies (those
    a request's new users rated). Above 0, ``popularity_weight`` ranks each user's
    unrated known movies by the evaluation's popularity blend
    (:func:`rating_prediction.models.scoring.popularity_blend`, standardised over every
    known movie) instead of the predicted rating; ``prediction`` stays the predicted rating."""
    user_ids = served.users.as_ids(user_ids)
    blocks = [
        _block_top_k(
            served,
            user_ids[start : start + block_size],
            rated,
            top_k=top_k,
            vectors=_rows(vectors, start, block_size),
            request_rated=None if request_rated is None else (request_rated, start),
            popularity_weight=popularity_weight,
        )
        for start in range(0, len(user_ids), block_size)
    ]
    if not blocks:
        return pl.DataFrame(schema=recommendations_schema(served))
    return pl.concat(blocks)


def _rows(vectors: UserVectors | None, start: int, size: int) -> UserVectors | None:
    if vectors is None:
        return None
    stop = start + size
    return UserVectors(vectors.factors[start:stop], vectors.biases[start:stop])


def recommend_users(
    served: ServedModel,
    user_ids: Sequence[int] | Sequence[str],
    rated_pairs: pl.DataFrame,
    top_k: int,
    popularity_weight: float = 0.0,
) -> pl.DataFrame:
    """:func:`recommend_all` for the distinct ``user_ids``, ascending, never
    recommending ``rated_pairs`` (original ids); users unseen in training get the
    model's fallback ranking (for biased models, the movie biases), with a warning."""
    distinct = np.unique(served.users.as_ids(user_ids))
    unknown = distinct[served.users.lookup(distinct) < 0]
    if unknown.size:
        logger.warning(
            "Users %s are unseen in training: they get the fallback ranking.",
            unknown.tolist(),
        )
    return recommend_all(
        served,
        distinct,
        rated_index(served, rated_pairs),
        top_k,
        popularity_weight=popularity_weight,
    )
