"""What every variant's fit reads, in one value: :class:`TrainingData`."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class TrainingData:
    """The splits a variant is fitted (train) and tuned or stopped (val) on, the sizes of
    the id mappings, and the movies table with its mapping (side features).

    Attributes:
        train: The train split, with ``userIdMapped`` and ``movieIdMapped``.
        val: The val split.
        n_users: The size of ``user_mapping`` (ids ``0..n_users-1``).
        n_movies: The size of ``movie_mapping``.
        movies: ``movieId``, ``title``, ``genres`` (``None`` where no variant needs it).
        movie_mapping: ``movieId`` to ``movieIdMapped``.
    """

    train: pl.DataFrame
    val: pl.DataFrame
    n_users: int
    n_movies: int
    movies: pl.DataFrame | None = None
    movie_mapping: pl.DataFrame | None = None

    @classmethod
    def from_catalog(
        cls,
        train_ratings: pl.DataFrame,
        val_ratings: pl.DataFrame,
        user_mapping: pl.DataFrame,
        movie_mapping: pl.DataFrame,
        movies: pl.DataFrame,
    ) -> TrainingData:
        """From the catalog's splits, id mappings and movies table."""
        return cls(
            train=train_ratings,
            val=val_ratings,
            n_users=user_mapping.height,
            n_movies=movie_mapping.height,
            movies=movies,
            movie_mapping=movie_mapping,
        )

    @property
    def id_counts(self) -> tuple[int, int]:
        return self.n_users, self.n_movies
