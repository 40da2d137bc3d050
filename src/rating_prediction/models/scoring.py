"""Score matrices: every movie for a block of users, by matrix products where the model
has factors, and the per-user parameters a fold-in produces.

A biased MF (``BiasedMatrixFactorization``, whatever variant built it) scores a block of
users as ``mu + b_u + b_m + P_u Q^T``: one matrix product per block. Other models score
every movie with their own ``predict_all_movies`` (a matrix product for the notebook's
model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rating_prediction.models.factorization import (
    BiasedMatrixFactorization,
    RatingModel,
)

# Bounds the pairs scored at once by `score_indices`, so memory does not grow with a
# request beyond its own input and output; small enough for the gathered rows to stay
# in cache (measured: 8,192 rows per batch on one thread scored 1M pairs 3x faster than
# 65,536 rows on two threads, for 32 factors). Wider factors take fewer rows
# (`PairScorer.batch_rows`).
SCORE_BATCH_ROWS = 8_192


@dataclass(frozen=True)
class UserVectors:
    """Users' factors ``(n, d)`` and biases ``(n,)``: looked up or folded in."""

    factors: torch.Tensor
    biases: torch.Tensor


def is_biased_mf(model: RatingModel) -> bool:
    """Whether ``model`` has the biased MF's factors and biases (fold-in applies)."""
    return isinstance(model, BiasedMatrixFactorization)


def movie_factor_table(model: RatingModel) -> torch.Tensor:
    """The model's movie factors ``(n_movies, d)``; a clear error for a model without."""
    for name in ("movie_factors", "movie_embedding"):
        table = getattr(model, name, None)
        if isinstance(table, torch.nn.Embedding):
            return table.weight.detach()
    raise ValueError(f"{type(model).__name__} has no movie factors.")


def lookup_users(model: BiasedMatrixFactorization, users: np.ndarray) -> UserVectors:
    """Factors and biases of mapped users; zeros for ``-1`` (unknown)."""
    index = torch.from_numpy(np.asarray(users, dtype=np.int64))
    with torch.no_grad():
        return UserVectors(
            model.embed(model.user_factors, index),
            model.embed(model.user_bias, index).squeeze(-1),
        )


def score_block(model: RatingModel, users: np.ndarray, vectors=None) -> torch.Tensor:
    """Predicted ratings ``(len(users), n_movies)`` of a block of mapped users.

    ``vectors`` (biased MF only) replaces the looked-up user parameters, e.g. with
    folded-in ones.
    """
    with torch.no_grad():
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
        n_movies = movie_factor_table(model).shape[0]
        index = torch.from_numpy(np.asarray(users, dtype=np.int64))
        return model.predict_all_movies(index, n_movies)


class PairScorer:
    """Scores (mapped user, mapped movie) pairs, ``-1`` meaning unknown, built once.

    A biased MF scores from copies of its tables with one extra zero row at the end,
    which index ``-1`` selects: unknown ids get zero factors and biases without a mask.
    Other models go through their own ``predict``.

    ``batch_rows`` is how many pairs to score at once: ``SCORE_BATCH_ROWS``, fewer for
    a biased MF's wide factors, so the rows gathered from each table (at most
    ``GATHERED_ELEMENTS`` values) stay in cache (benchmarks/pair_scoring.py: at 1,040
    factors, 504 rows per batch score 1M pairs about 4x faster than 8,192).
    """

    GATHERED_ELEMENTS = 2**19
    MIN_BATCH_ROWS = 256

    def __init__(self, model: RatingModel) -> None:
        self.model = model
        self.tables = None
        self.batch_rows = SCORE_BATCH_ROWS
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
            width = max(1, model.movie_factors.weight.shape[1])
            self.batch_rows = min(
                SCORE_BATCH_ROWS,
                max(self.MIN_BATCH_ROWS, self.GATHERED_ELEMENTS // width),
            )

    def __call__(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        if self.tables is None:
            return self.model.predict(users, movies)
        model = self.model
        user_factors, movie_factors, user_bias, movie_bias = self.tables
        users = torch.where(users < 0, len(user_factors) - 1, users)
        movies = torch.where(movies < 0, len(movie_factors) - 1, movies)
        with torch.no_grad():
            # In place on the fresh gathered rows: 3x faster than einsum at 1,040
            # factors, as fast at 32 (benchmarks/pair_scoring.py).
            scores = (
                user_factors.index_select(0, users)
                .mul_(movie_factors.index_select(0, movies))
                .sum(1)
            )
            scores += user_bias.index_select(0, users).squeeze(1)
            scores += movie_bias.index_select(0, movies).squeeze(1)
            scores += model.global_mean
            return scores.clamp_(model.rating_min, model.rating_max)


def _with_zero_row(table: torch.Tensor) -> torch.Tensor:
    return torch.cat([table, table.new_zeros(1, table.shape[1])])


class DenseLookup:
    """Original id to index through a table indexed by id (``-1`` unknown): one gather
    per request instead of a binary search. Used where the largest id is at most
    ``MAX_TABLE_FACTOR`` times the number of ids (MovieLens ids are dense)."""

    MAX_TABLE_FACTOR = 16

    def __init__(self, ids: np.ndarray, seen: np.ndarray) -> None:
        size = int(ids.max()) + 1 if len(ids) else 0
        self.table = np.full(size, -1, dtype=np.int64)
        self.table[ids[seen]] = np.flatnonzero(seen)

    @classmethod
    def fits(cls, ids: np.ndarray) -> bool:
        return len(ids) == 0 or int(ids.max()) < cls.MAX_TABLE_FACTOR * len(ids) + 2**20

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """Indices of non-negative ``ids`` (validated requests hold no other)."""
        inside = ids < len(self.table)
        if inside.all():
            return self.table[ids]
        found = np.full(len(ids), -1, dtype=np.int64)
        found[inside] = self.table[ids[inside]]
        return found
