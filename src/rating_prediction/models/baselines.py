"""The two reference predictors every model variant is compared with.

Both baselines are fitted on the training split only and keyed by the mapped ids
(``userIdMapped``, ``movieIdMapped``), so they score the exact rows the models score.

- ``mean_baseline`` predicts the global mean of the training ratings.
- ``bias_baseline`` is the classic baseline predictor ``mu + b_u + b_i`` (Koren 2010,
  Surprise's ``BaselineOnly``), fitted by alternating least squares with separate
  regularisation for user and movie biases. Users and movies absent from the training
  split (see :func:`rating_prediction.data.ids.seen_mask`) get zero bias.

Like every model's, a baseline's predictions are clipped to the data set's rating scale
(:class:`~rating_prediction.data.schema.RatingScale`): ``mu + b_u + b_i`` can leave it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import polars as pl

from rating_prediction.data.ids import seen_mask
from rating_prediction.data.schema import MOVIELENS_SCALE, RatingScale

BASELINES = ("mean_baseline", "bias_baseline")


@dataclass(frozen=True)
class BaselinePredictor:
    """``global_mean + user_bias + movie_bias`` clipped to ``rating_scale``; ids missing
    from the bias tables get 0.

    ``user_biases`` has columns ``userIdMapped``, ``user_bias``; ``movie_biases`` has
    ``movieIdMapped``, ``movie_bias``. The mean baseline is this with empty tables.
    """

    global_mean: float
    user_biases: pl.DataFrame
    movie_biases: pl.DataFrame
    rating_scale: RatingScale = MOVIELENS_SCALE

    def predict(self, ratings: pl.DataFrame) -> pl.Series:
        """Predictions for the ``userIdMapped``, ``movieIdMapped`` pairs of ``ratings``:
        two gathers from dense bias arrays, no join, clipped to the rating scale."""
        user_bias = _gather(self._dense_user_biases, ratings["userIdMapped"])
        movie_bias = _gather(self._dense_movie_biases, ratings["movieIdMapped"])
        predictions = np.clip(
            self.global_mean + user_bias + movie_bias,
            self.rating_scale.min,
            self.rating_scale.max,
        )
        return pl.Series("prediction", predictions, dtype=pl.Float32)

    @cached_property
    def _dense_user_biases(self) -> np.ndarray:
        return _dense(self.user_biases, "userIdMapped", "user_bias")

    @cached_property
    def _dense_movie_biases(self) -> np.ndarray:
        return _dense(self.movie_biases, "movieIdMapped", "movie_bias")


def _dense(table: pl.DataFrame, index_column: str, value_column: str) -> np.ndarray:
    """A table's values at their mapped index; 0 at the indices it lacks."""
    indices = table[index_column].to_numpy()
    dense = np.zeros(int(indices.max()) + 1 if indices.size else 0)
    dense[indices] = table[value_column].to_numpy()
    return dense


def _gather(dense: np.ndarray, indices: pl.Series) -> np.ndarray:
    """``dense[indices]``, 0 for an index past its end (an id the table lacks)."""
    indices = indices.to_numpy()
    largest = int(indices.max()) if indices.size else -1
    if largest >= dense.size:
        dense = np.concatenate([dense, np.zeros(largest + 1 - dense.size)])
    return dense[indices]


def fit_mean_baseline(
    train_ratings: pl.DataFrame, rating_scale: RatingScale = MOVIELENS_SCALE
) -> BaselinePredictor:
    """The global mean of the training ratings, with no biases."""
    return BaselinePredictor(
        global_mean=_global_mean(train_ratings),
        user_biases=pl.DataFrame(
            schema={"userIdMapped": pl.Int32, "user_bias": pl.Float64}
        ),
        movie_biases=pl.DataFrame(
            schema={"movieIdMapped": pl.Int32, "movie_bias": pl.Float64}
        ),
        rating_scale=rating_scale,
    )


def fit_bias_baseline(
    train_ratings: pl.DataFrame,
    reg_user: float,
    reg_movie: float,
    n_epochs: int,
    rating_scale: RatingScale = MOVIELENS_SCALE,
) -> BaselinePredictor:
    """Regularised user and movie biases by alternating least squares.

    Each epoch sets every movie bias to ``sum(r - mu - b_u) / (reg_movie + n_movie)``
    and then every user bias to ``sum(r - mu - b_i) / (reg_user + n_user)``, the update
    order and formulas of Surprise's ``BaselineOnly`` (defaults ``reg_i=10``,
    ``reg_u=15``, 10 epochs). Sums per id are ``np.bincount`` over the dense mapped
    ids, so an epoch is a few vectorised passes over the ratings. Its predictions are
    clipped to ``rating_scale`` (the data set's).
    """
    global_mean = _global_mean(train_ratings)
    # Native-width indices: numpy would convert int32 ids again at every gather and
    # bincount of every epoch.
    users = train_ratings["userIdMapped"].to_numpy().astype(np.intp)
    movies = train_ratings["movieIdMapped"].to_numpy().astype(np.intp)
    residuals = train_ratings["rating"].to_numpy().astype(np.float64) - global_mean
    user_counts = np.bincount(users)
    movie_counts = np.bincount(movies)
    user_bias = np.zeros(user_counts.size)
    movie_bias = np.zeros(movie_counts.size)
    # One buffer for every epoch's residuals less the other side's biases: a fresh
    # array per pass costs more in page faults than the pass itself.
    partial = np.empty_like(residuals)
    for _ in range(n_epochs):
        np.subtract(residuals, np.take(user_bias, users, out=partial), out=partial)
        movie_bias = _shrunk_mean(movies, partial, movie_counts, reg_movie)
        np.subtract(residuals, np.take(movie_bias, movies, out=partial), out=partial)
        user_bias = _shrunk_mean(users, partial, user_counts, reg_user)
    # Ids in the dense range but without training ratings are left out: they are unknown.
    seen_users = np.flatnonzero(seen_mask(users, user_counts.size))
    seen_movies = np.flatnonzero(seen_mask(movies, movie_counts.size))
    return BaselinePredictor(
        global_mean=global_mean,
        user_biases=_bias_table("userIdMapped", seen_users, "user_bias", user_bias),
        movie_biases=_bias_table(
            "movieIdMapped", seen_movies, "movie_bias", movie_bias
        ),
        rating_scale=rating_scale,
    )


def _bias_table(
    id_column: str, ids: np.ndarray, bias_column: str, biases: np.ndarray
) -> pl.DataFrame:
    """The biases of ``ids``, keyed by their mapped id."""
    return pl.DataFrame(
        {id_column: pl.Series(ids, dtype=pl.Int32), bias_column: biases[ids]}
    )


def _global_mean(train_ratings: pl.DataFrame) -> float:
    if train_ratings.is_empty():
        raise ValueError("Cannot fit a baseline on an empty training split.")
    return float(train_ratings["rating"].cast(pl.Float64).mean())


def _shrunk_mean(
    ids: np.ndarray, values: np.ndarray, counts: np.ndarray, reg: float
) -> np.ndarray:
    """``sum(values) / (reg + count)`` per id; 0 for ids without values."""
    sums = np.bincount(ids, weights=values, minlength=counts.size)
    return np.divide(sums, reg + counts, out=np.zeros(counts.size), where=counts > 0)
