"""Top-K for many users at once: blocks of users scored against every movie by matrix
products, rated pairs masked out, ``torch.topk`` per block; memory bounded by the block."""

from __future__ import annotations

import numpy as np
import polars as pl
import torch

from .model import RECOMMENDATIONS_SCHEMA, ServedModel
from .rated import RatedIndex
from .scores import UserVectors, score_block


def mapped_positions(served: ServedModel, user_ids: np.ndarray) -> np.ndarray:
    """The mapping index of each original user id (``-1`` when not in the mapping),
    whether or not the user was seen in training: rated pairs are kept by it."""
    ids = served.users.ids
    if len(ids) == 0:
        return np.full(len(user_ids), -1, dtype=np.int64)
    position = np.searchsorted(ids, user_ids).clip(max=len(ids) - 1)
    return np.where(ids[position] == user_ids, position, -1).astype(np.int64)


def rated_index(served: ServedModel, rated_pairs: pl.DataFrame) -> RatedIndex:
    """(userId, movieId) pairs in original ids as a :class:`RatedIndex`."""
    users = mapped_positions(served, rated_pairs["userId"].cast(pl.Int64).to_numpy())
    movies = served.movies.lookup(rated_pairs["movieId"].cast(pl.Int64).to_numpy())
    keep = (users >= 0) & (movies >= 0)
    return RatedIndex.from_indices(users[keep], movies[keep], len(served.users))


def _block_top_k(
    served: ServedModel,
    user_ids: np.ndarray,
    rated: RatedIndex,
    *,
    top_k: int,
    vectors: UserVectors | None,
    request_rated: tuple[RatedIndex, int] | None,
) -> pl.DataFrame:
    scoring = served.users.lookup(user_ids)
    scores = score_block(served.model, scoring, vectors)
    scores[:, torch.from_numpy(~served.movies.seen)] = -torch.inf
    masks = [rated.block(mapped_positions(served, user_ids))]
    if request_rated is not None:
        extra, start = request_rated
        masks.append(extra.block(np.arange(start, start + len(user_ids))))
    for rows, movies in masks:
        scores[torch.from_numpy(rows), torch.from_numpy(movies)] = -torch.inf
    values, indices = torch.topk(scores, min(top_k, scores.shape[1]), dim=1)
    valid = torch.isfinite(values).numpy().ravel()
    k = values.shape[1]
    movie_index = indices.numpy().ravel()[valid]
    titles = served.movie_titles.to_numpy()
    title_position = np.cumsum(served.movies.seen) - 1
    return pl.DataFrame(
        {
            "userId": np.repeat(user_ids, k)[valid],
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(user_ids))[valid],
            "movieId": served.movies.ids[movie_index],
            "title": titles[title_position[movie_index]],
            "prediction": values.double().numpy().ravel()[valid],
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
    block_size: int = 1024,
    vectors: UserVectors | None = None,
    request_rated: RatedIndex | None = None,
) -> pl.DataFrame:
    """The ``top_k`` best-predicted known movies of each user of ``user_ids``
    (original ids, in that order), excluding ``rated`` pairs, ``block_size`` users at a
    time.

    ``vectors`` (one row per user) replaces the users' parameters (fold-in);
    ``request_rated``, indexed by position in ``user_ids``, excludes more movies (those
    a request's new users rated)."""
    user_ids = np.asarray(user_ids, dtype=np.int64)
    blocks = [
        _block_top_k(
            served,
            user_ids[start : start + block_size],
            rated,
            top_k=top_k,
            vectors=_rows(vectors, start, block_size),
            request_rated=None if request_rated is None else (request_rated, start),
        )
        for start in range(0, len(user_ids), block_size)
    ]
    return pl.concat(blocks) if blocks else pl.DataFrame(schema=RECOMMENDATIONS_SCHEMA)


def _rows(vectors: UserVectors | None, start: int, size: int) -> UserVectors | None:
    if vectors is None:
        return None
    stop = start + size
    return UserVectors(vectors.factors[start:stop], vectors.biases[start:stop])
