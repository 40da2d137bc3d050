"""Recommendations: the one top-K path of the served model, for a few users or for
all of them, with or without the popularity blend, for known or folded-in users.

The served ranker answers when there is one (:attr:`ServedModel.ranker`), the rating
model otherwise. Blocks of users are scored against every movie by the scoring kernel
(:func:`~rating_prediction.models.scoring.score_block`: a matrix product per block for
factor models, the ranker's ``predict_all_movies`` for a ranker, as the ranking
evaluation scores them; a ranker that scores some movies only, such as a capped
EASE^R, on those columns alone), rated pairs masked out, and cut by the kernel's top
K, equal scores to the lower movie index as the evaluation ranks; memory is bounded by
the block.
Each row names the entry that ranked it (``variant``): the rating variant, the ranker,
or ``popularity`` for a user the ranker does not know and who brought no ratings."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import polars as pl
import torch

from rating_prediction.data.ids import IdIndex
from rating_prediction.models import scoring
from rating_prediction.models.factorization import on_every_movie
from rating_prediction.models.scoring import UserVectors

from .bundle import ServedModel
from .foldin import FoldedUsers
from .rated import RatedIndex

logger = logging.getLogger(__name__)

# The entry that ranks a user the served ranker does not know (and who brought no
# ratings of their own): the most-rated movies, the evaluation's `popularity` entry.
POPULARITY = "popularity"

RECOMMENDATIONS_SCHEMA = pl.Schema(
    {
        "userId": pl.Int64,
        "rank": pl.Int32,
        "movieId": pl.Int64,
        "title": pl.String,
        "prediction": pl.Float64,
        "known_user": pl.Boolean,
        "variant": pl.String,
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


def recommendation_exclusions(
    served: ServedModel, rated_pairs: pl.DataFrame | None = None
) -> RatedIndex:
    """The movies never recommended to each user: for a served ranker, its known
    history (train + val, as its ranking evaluation excludes); for the rating model,
    ``rated_pairs`` (original ids) or, without them, the movies rated in training."""
    if served.ranker is not None:
        return served.ranker.history
    if rated_pairs is not None:
        return rated_index(served, rated_pairs)
    return served.rated or RatedIndex.empty(len(served.users))


def recommending_users(served: ServedModel) -> IdIndex:
    """The users the model that recommends knows: the ranker's or the rating
    model's."""
    return served.users if served.ranker is None else served.ranker.users


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
    folded: FoldedUsers | None,
    start: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(row in the block, mapped movie) of every pair never to recommend: ``rated``,
    and the movies the request's own ratings name (``folded.rated``, by position)."""
    rows, movies = rated.block(mapped_positions(served, user_ids))
    if folded is None:
        return rows, movies
    more_rows, more_movies = folded.rated.block(np.arange(start, start + len(user_ids)))
    return np.concatenate([rows, more_rows]), np.concatenate([movies, more_movies])


def _block_scores(
    served: ServedModel, user_ids: np.ndarray, folded: FoldedUsers | None, start: int
) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray, np.ndarray]:
    """The scores of a block of users (rows ``start`` on of a request), the movie of
    each column (``None``: every movie, in order), whether the model that scores them
    knows each user, and the entry that ranks each user's row."""
    if served.ranker is not None:
        return _ranker_block_scores(served, user_ids, folded, start)
    user_index = served.users.lookup(user_ids)
    vectors = None if folded is None else _rows(folded.vectors, start, len(user_ids))
    scores = scoring.score_block(served.model, user_index, vectors)
    return scores, None, user_index >= 0, np.full(len(user_ids), served.variant)


def _ranker_block_scores(
    served: ServedModel, user_ids: np.ndarray, folded: FoldedUsers | None, start: int
) -> tuple[torch.Tensor, torch.Tensor | None, np.ndarray, np.ndarray]:
    """:func:`_block_scores` of the served ranker: the kernel's scores of its known
    users on the movies it scores, the fold-in scores of the users with ratings of their
    own, and the most-rated movies (every known movie's column) for the others."""
    ranker = served.ranker
    user_index = ranker.users.lookup(user_ids)
    scores, movies = scoring.score_scored_block(ranker.model, user_index)
    own = {
        row - start: row_scores
        for row, row_scores in ((folded and folded.scores) or {}).items()
        if start <= row < start + len(user_ids)
    }
    fallback = user_index < 0
    fallback[list(own)] = False
    if fallback.any() and movies is not None:
        scores, movies = on_every_movie(scores, movies, len(served.movies)), None
    for row, row_scores in own.items():
        scores[row] = row_scores if movies is None else row_scores[movies]
    if fallback.any():
        counts = torch.from_numpy(popularity_counts(served)).to(scores.dtype)
        scores[torch.from_numpy(fallback), : len(counts)] = counts
    entries = np.where(fallback, POPULARITY, ranker.variant)
    return scores, movies, user_index >= 0, entries


def _model_top_k(
    served: ServedModel,
    scores: torch.Tensor,
    movies: torch.Tensor | None,
    rated: tuple[np.ndarray, np.ndarray],
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Movie indices, predictions and validity of each row's ``k`` best predictions
    (``scores`` of the movies ``movies``, ``None``: every movie); equal predictions go
    to the lower movie index, as the evaluation's top K orders them (``torch.topk``
    alone leaves the order of ties unspecified)."""
    seen = served.movies.seen
    rated_rows, rated_columns = rated
    if movies is not None:
        seen = seen[movies.numpy()]
        rated_rows, rated_columns = _rated_on_columns(served, rated, movies.numpy())
    if not seen.all():
        scores[:, torch.from_numpy(~seen)] = -torch.inf
    scores[torch.from_numpy(rated_rows), torch.from_numpy(rated_columns)] = -torch.inf
    top = scoring.top_k_indices(scores, min(k, scores.shape[1]))
    values = scores.gather(1, top)
    indices = top if movies is None else movies[top]
    return indices.numpy(), values.double().numpy(), torch.isfinite(values).numpy()


def _rated_on_columns(
    served: ServedModel, rated: tuple[np.ndarray, np.ndarray], columns: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The ``rated`` (row, movie index) pairs whose movie is one of ``columns``
    (ascending movie indices, the columns of a block's scores), as (row, column)."""
    position = np.full(len(served.movies), -1, dtype=np.int64)
    position[columns] = np.arange(columns.size)
    rows, movies = rated
    on_columns = position[movies]
    kept = on_columns >= 0
    return rows[kept], on_columns[kept]


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
    blended[_rated_on_columns(served, rated, known)] = -np.inf
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
    folded: FoldedUsers | None,
    start: int,
    popularity_weight: float,
) -> pl.DataFrame:
    scores, movies, known, entries = _block_scores(served, user_ids, folded, start)
    excluded = _rated_in_block(served, user_ids, rated, folded, start)
    if popularity_weight > 0:
        if movies is not None:
            scores = on_every_movie(scores, movies, len(served.movies))
        indices, values, valid = _blended_top_k(
            served, scores, excluded, top_k, popularity_weight
        )
    else:
        indices, values, valid = _model_top_k(served, scores, movies, excluded, top_k)
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
            "known_user": np.repeat(known, k)[valid],
            "variant": np.repeat(entries, k)[valid],
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
    folded: FoldedUsers | None = None,
    popularity_weight: float = 0.0,
) -> pl.DataFrame:
    """The ``top_k`` best-scored known movies of each user of ``user_ids`` (original
    ids, in that order), excluding ``rated`` pairs
    (:func:`recommendation_exclusions`), ``block_size`` users at a time, by the served
    ranker when there is one, else by the rating model.

    ``folded`` (indexed by position in ``user_ids``) scores the users who brought
    ratings of their own from those ratings (fold-in) and excludes the movies they
    rated. Above 0, ``popularity_weight`` ranks each user's unrated known movies by the
    evaluation's popularity blend
    (:func:`rating_prediction.models.scoring.popularity_blend`, standardised over every
    known movie) instead of the score; ``prediction`` stays the score: the predicted
    rating of a rating model, a ranker's score (not a rating), or a movie's training
    ratings for the ``popularity`` rows."""
    user_ids = served.users.as_ids(user_ids)
    blocks = [
        _block_top_k(
            served,
            user_ids[start : start + block_size],
            rated,
            top_k=top_k,
            folded=folded,
            start=start,
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
    recommending what :func:`recommendation_exclusions` excludes (``rated_pairs``,
    original ids, for the rating model); users unseen in training get the fallback
    ranking (the served ranker's: the most-rated movies; a rating model's: its own, for
    biased models the movie biases), with a warning."""
    distinct = np.unique(served.users.as_ids(user_ids))
    unknown = distinct[recommending_users(served).lookup(distinct) < 0]
    if unknown.size:
        logger.warning(
            "Users %s are unseen in training: they get the fallback ranking.",
            unknown.tolist(),
        )
    return recommend_all(
        served,
        distinct,
        recommendation_exclusions(served, rated_pairs),
        top_k,
        popularity_weight=popularity_weight,
    )
