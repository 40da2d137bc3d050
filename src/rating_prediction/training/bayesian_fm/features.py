"""The relation blocks myFM samples from, built from the fitted ratings only: each
user's one-hot and the movies it rated, each movie's one-hot, the users who rated it
and its genres."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sps

with warnings.catch_warnings():  # myFM 0.4 imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import myfm

ID_COLUMNS = ("userIdMapped", "movieIdMapped")


@dataclass(frozen=True)
class RelationBlocks:
    """Per-id feature rows of the two blocks, built from the fitted ratings.

    ``users`` has a row per user: its one-hot, then (``implicit``) the movies it rated;
    ``movies`` a row per movie: its one-hot, then (``flipped``) the users who rated it and
    (genres given) its genres. ``groups`` lists the width of each part, in feature order
    (user parts first): each part gets its own prior in the sampler.
    """

    users: sps.csr_matrix
    movies: sps.csr_matrix
    groups: tuple[int, ...]

    @classmethod
    def from_ratings(
        cls,
        ratings: pl.DataFrame,
        id_counts: tuple[int, int],
        *,
        implicit: bool = True,
        flipped: bool = True,
        genres: sps.csr_matrix | None = None,
    ) -> RelationBlocks:
        """The blocks of ``ratings`` (the fitted ratings only); ``genres`` is
        ``n_movies x n_genres`` (see :func:`genre_matrix`) or ``None``."""
        n_users, n_movies = id_counts
        users, movies = (
            ratings[column].to_numpy().astype(np.int64) for column in ID_COLUMNS
        )
        user_parts = _parts(users, movies, (n_users, n_movies), implicit)
        movie_parts = _parts(movies, users, (n_movies, n_users), flipped)
        if genres is not None:
            movie_parts.append(genres[:n_movies].tocsr())
        return cls(
            users=sps.hstack(user_parts, format="csr"),
            movies=sps.hstack(movie_parts, format="csr"),
            groups=tuple(part.shape[1] for part in [*user_parts, *movie_parts]),
        )

    def for_rows(self, ratings: pl.DataFrame) -> list[myfm.RelationBlock]:
        """myFM's relation blocks for the (user, movie) rows of ``ratings``."""
        users, movies = (ratings[column].to_numpy() for column in ID_COLUMNS)
        return [
            myfm.RelationBlock(users.astype(np.int64), self.users),
            myfm.RelationBlock(movies.astype(np.int64), self.movies),
        ]


def _parts(
    own: np.ndarray, other: np.ndarray, sizes: tuple[int, int], with_other: bool
) -> list[sps.csr_matrix]:
    """``[one-hot]`` or ``[one-hot, 1/sqrt(n) over the other ids rated with it]``; an id
    absent from ``own`` gets an all-zero row (no parameters: the project's fallback)."""
    n_own, n_other = sizes
    seen = np.bincount(own, minlength=n_own) > 0
    parts = [sps.diags(seen.astype(np.float64), format="csr")]
    if with_other:
        pairs = sps.csr_matrix(
            (np.ones(len(own)), (own, other)), shape=(n_own, n_other)
        )
        pairs.data[:] = 1.0  # a pair rated twice counts once
        parts.append(_normalised_rows(pairs))
    return parts


def _normalised_rows(matrix: sps.csr_matrix) -> sps.csr_matrix:
    """Each non-empty row of a 0/1 matrix divided by the square root of its count."""
    counts = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, np.sqrt(counts), out=np.zeros(len(counts)), where=counts > 0)
    return (sps.diags(scale) @ matrix).tocsr()


def genre_matrix(movies: pl.DataFrame, movie_mapping: pl.DataFrame) -> sps.csr_matrix:
    """``n_movies x n_genres``: each mapped movie's genres (``|``-joined in ``movies``,
    null for none), rows normalised like the implicit features."""
    genres = (
        movie_mapping.join(movies.select("movieId", "genres"), on="movieId", how="left")
        .select("movieIdMapped", pl.col("genres").str.split("|"))
        .explode("genres")
        .drop_nulls("genres")
    )
    vocabulary = sorted(genres["genres"].unique().to_list())
    columns = genres["genres"].replace_strict(
        vocabulary, list(range(len(vocabulary))), return_dtype=pl.Int64
    )
    pairs = sps.csr_matrix(
        (np.ones(genres.height), (genres["movieIdMapped"].to_numpy(), columns)),
        shape=(movie_mapping.height, len(vocabulary)),
    )
    pairs.data[:] = 1.0
    return _normalised_rows(pairs)
