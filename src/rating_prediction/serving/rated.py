"""The movies each user rated, as a compressed sparse row index over mapped ids."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RatedIndex:
    """Per mapped user index ``u``, the mapped movies ``movies[indptr[u]:indptr[u+1]]``.

    Attributes:
        indptr: int64, one more entry than there are users.
        movies: int32 mapped movie indices, grouped by user.
    """

    indptr: np.ndarray
    movies: np.ndarray

    @classmethod
    def from_indices(
        cls, users: np.ndarray, movies: np.ndarray, n_users: int
    ) -> RatedIndex:
        users = np.asarray(users, dtype=np.int64)
        order = np.argsort(users, kind="stable")
        counts = np.bincount(users, minlength=n_users)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(indptr, np.asarray(movies, dtype=np.int32)[order])

    @classmethod
    def empty(cls, n_users: int) -> RatedIndex:
        return cls(np.zeros(n_users + 1, dtype=np.int64), np.zeros(0, dtype=np.int32))

    def block(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row in the block, mapped movie) of every rated pair of a block of users;
        users outside the index (``-1``) have none."""
        users = np.asarray(users, dtype=np.int64)
        inside = (users >= 0) & (users < len(self.indptr) - 1)
        starts = np.where(inside, self.indptr[users.clip(0, len(self.indptr) - 2)], 0)
        stops = np.where(
            inside, self.indptr[users.clip(0, len(self.indptr) - 2) + 1], 0
        )
        lengths = stops - starts
        rows = np.repeat(np.arange(len(users)), lengths)
        positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        positions += np.arange(lengths.sum())
        return rows, self.movies[positions].astype(np.int64)
