"""What every variant's fit reads, in one value: :class:`TrainingData`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import polars as pl

from rating_prediction.data.schema import MOVIELENS_SCALE, RatingScale
from rating_prediction.models.factorization import RatingModel


@dataclass(frozen=True)
class TrainingData:
    """The splits a variant is fitted (train) and tuned or stopped (val) on, the sizes of
    the id mappings, and the movies and users tables with their mappings (side
    features).

    Attributes:
        train: The train split, with ``userIdMapped`` and ``movieIdMapped``.
        val: The val split.
        n_users: The size of ``user_mapping`` (ids ``0..n_users-1``).
        n_movies: The size of ``movie_mapping``.
        movies: ``movieId``, ``title``, ``genres`` (``None`` where no variant needs it).
        movie_mapping: ``movieId`` to ``movieIdMapped``.
        users: ``userId``, ``age``, ``gender``, ``occupation``, ``zip`` (the
            ``users`` dataset: null demographics for a release without them; ``None``
            where no variant needs it). It may hold users outside ``user_mapping``
            (filtered out, or never rated) and lack some of it: join on ``userId``.
        user_mapping: ``userId`` to ``userIdMapped``.
        rating_scale: The data set's rating scale (the ``rating_scale`` dataset): every
            variant's model squashes or clips its predictions to it.
        on_fitted_on_train: Called by a fit function with the model fitted on train,
            before any refit on train + val, and this data (the training node
            measures what it ranks on val); ``None``: nobody asks.
    """

    train: pl.DataFrame
    val: pl.DataFrame
    n_users: int
    n_movies: int
    movies: pl.DataFrame | None = None
    movie_mapping: pl.DataFrame | None = None
    users: pl.DataFrame | None = None
    user_mapping: pl.DataFrame | None = None
    rating_scale: RatingScale = MOVIELENS_SCALE
    on_fitted_on_train: Callable[[RatingModel, TrainingData], None] | None = None

    @classmethod
    def from_catalog(
        cls,
        *,
        train_ratings: pl.DataFrame,
        val_ratings: pl.DataFrame,
        user_mapping: pl.DataFrame,
        movie_mapping: pl.DataFrame,
        movies: pl.DataFrame,
        rating_scale: dict[str, Any],
        users: pl.DataFrame | None = None,
    ) -> TrainingData:
        """From the catalog's splits, id mappings, movies and users tables and rating
        scale (the ``rating_scale`` dataset, a JSON dict)."""
        return cls(
            train=train_ratings,
            val=val_ratings,
            n_users=user_mapping.height,
            n_movies=movie_mapping.height,
            movies=movies,
            movie_mapping=movie_mapping,
            users=users,
            user_mapping=user_mapping,
            rating_scale=RatingScale.from_dict(rating_scale),
        )

    def report_fitted_on_train(self, model: RatingModel) -> float:
        """Hand ``model``, fitted on train before any refit, to ``on_fitted_on_train``;
        the seconds that took (the caller's work, which a fit's ``fit_seconds``
        leaves out)."""
        started = time.perf_counter()
        if self.on_fitted_on_train is not None:
            self.on_fitted_on_train(model, self)
        return time.perf_counter() - started

    def with_val_in_train(self) -> TrainingData:
        """The same data with val appended to train: what a refit on train + val
        fits on."""
        train = pl.concat([self.train, self.val], how="vertical_relaxed")
        return replace(self, train=train)

    @property
    def id_counts(self) -> tuple[int, int]:
        return self.n_users, self.n_movies
