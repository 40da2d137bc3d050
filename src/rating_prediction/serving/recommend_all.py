"""Top-K for many users at once: blocks of users scored against every movie by matrix
products, rated pairs masked out, ``torch.topk`` per block with ties to the lower movie
index (or, with a popularity weight, the evaluation's popularity blend and top K,
:mod:`rating_prediction.evaluation.ranking`); memory bounded by the block."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import torch

from rating_prediction.data.ids import positions
from rating_prediction.evaluation import ranking
from rating_prediction.models.scoring import UserVectors, score_block

from .model import RECOMMENDATIONS_SCHEMA, ServedModel, recommend_top_k, users_to_rank
from .rated import RatedIndex


def mapped_positions(served: ServedModel, user_ids: np.ndarray) -> np.ndarray:
    """The mapping index of each original user id (``-1`` when not in the mapping),
    whether or not the user was seen in training: rated pairs are kept by it."""
    return positions(served.users.ids, np.asarray(user_ids, dtype=np.int64))


def rated_index(served: ServedModel, rated_pairs: pl.DataFrame) -> RatedIndex:
    """(userId, movieId) pairs in original ids as a :class:`RatedIndex`."""
    users = mapped_positions(served, rated_pairs["userId"].cast(pl.Int64).to_numpy())
    movies = served.movies.lookup(rated_pairs["movieId"].cast(pl.Int64).to_numpy())
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
    equal predictions go to the lower movie index, as :func:`ranking.top_k` orders them
    (``torch.topk`` alone leaves the order of ties unspecified)."""
    rows, movies = rated
    if not served.movies.seen.all():
        scores[:, torch.from_numpy(~served.movies.seen)] = -torch.inf
    scores[torch.from_numpy(rows), torch.from_numpy(movies)] = -torch.inf
    indices = ranking.top_k_indices(scores, min(k, scores.shape[1]))
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
    movies are the candidates, blended and cut by :mod:`rating_prediction.evaluation.ranking`."""
    known = np.flatnonzero(served.movies.seen)
    if known.size == 0:
        empty = np.zeros((scores.shape[0], 0))
        return empty.astype(np.int64), empty, empty.astype(bool)
    predictions = scores.index_select(1, torch.from_numpy(known)).double().numpy()
    blended = ranking.popularity_blend(
        predictions, popularity_counts(served)[known], weight
    )
    column = np.full(len(served.movies), -1, dtype=np.int64)
    column[known] = np.arange(known.size)
    rows, movies = rated
    candidate = column[movies] >= 0
    blended[rows[candidate], column[movies[candidate]]] = -np.inf
    top, valid = ranking.top_k(blended, k)
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
    scoring = served.users.lookup(user_ids)
    scores = score_block(served.model, scoring, vectors)
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
            "known_user": np.repeat(scoring >= 0, k)[valid],
        },
        schema=RECOMMENDATIONS_SCHEMA,
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
    (:func:`rating_prediction.evaluation.ranking.popularity_blend`, standardised over every known
    movie) instead of the predicted rating; ``prediction`` stays the predicted rating."""
    user_ids = np.asarray(user_ids, dtype=np.int64)
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
    return pl.concat(blocks) if blocks else pl.DataFrame(schema=RECOMMENDATIONS_SCHEMA)


def _rows(vectors: UserVectors | None, start: int, size: int) -> UserVectors | None:
    if vectors is None:
        return None
    stop = start + size
    return UserVectors(vectors.factors[start:stop], vectors.biases[start:stop])


def recommend_users(
    served: ServedModel,
    user_ids: Sequence[int],
    rated_pairs: pl.DataFrame,
    top_k: int,
    popularity_weight: float = 0.0,
) -> pl.DataFrame:
    """:func:`~rating_prediction.serving.model.recommend_top_k` (the distinct
    ``user_ids``, ascending; ``rated_pairs`` in original ids never recommended), or,
    above 0, its lists ranked by the popularity blend of weight ``popularity_weight``
    (see :func:`recommend_all`)."""
    if popularity_weight == 0:
        return recommend_top_k(served, user_ids, rated_pairs, top_k)
    if not user_ids:
        return pl.DataFrame(schema=RECOMMENDATIONS_SCHEMA)
    users = users_to_rank(served, user_ids)["userId"].to_numpy()
    return recommend_all(
        served,
        users,
        rated_index(served, rated_pairs),
        top_k,
        popularity_weight=popularity_weight,
    )
