"""Rating models: the notebook's inner-product model and a biased matrix factorisation.

Both map (user index, movie index) pairs, as 0-based mapped ids, to a rating. A negative index
means "not seen in training": :meth:`RatingModel.predict` gives such ids zero factors and zero
biases, which is each model's natural fallback (the global mean plus whatever is known).
:meth:`RatingModel.predict` also takes each pair's timestamp (unix seconds), which only a
model with a time feature reads (:class:`~rating_prediction.models.sampled.SampledFactorization`).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class RatingModel(nn.Module):
    """Common interface: ``forward`` for training, ``predict`` for serving and evaluation."""

    def __init__(self, rating_min: float, rating_max: float) -> None:
        super().__init__()
        self.rating_min = rating_min
        self.rating_max = rating_max

    def embed(self, table: nn.Embedding, index: torch.Tensor) -> torch.Tensor:
        """Rows of ``table`` for ``index``, zeros where the index is negative (unknown)."""
        known = index >= 0
        rows = table(index.clamp(min=0))
        return rows * known.unsqueeze(-1).to(rows.dtype)

    def regularization(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        """L2 penalty on the parameters a batch touches (zero for unregularised models)."""
        return torch.zeros((), device=users.device)

    def forward_and_penalty(
        self, users: torch.Tensor, movies: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` and :meth:`regularization` of a training batch together (a
        model may look its rows up once for both)."""
        return self(users, movies), self.regularization(users, movies)

    @torch.no_grad()
    def forget_unseen(
        self, seen_users: torch.Tensor, seen_movies: torch.Tensor
    ) -> None:
        """Zero the parameters of ids absent from training so they get the fallback."""
        for table, seen in self.id_tables(seen_users, seen_movies):
            table.weight[~seen.to(table.weight.device)] = 0.0

    def id_tables(
        self, seen_users: torch.Tensor, seen_movies: torch.Tensor
    ) -> list[tuple[nn.Embedding, torch.Tensor]]:
        raise NotImplementedError

    @torch.no_grad()
    def predict(
        self,
        users: torch.Tensor,
        movies: torch.Tensor,
        timestamps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Ratings clipped to the rating scale; negative ids are treated as unknown.
        ``timestamps``: each pair's unix seconds (NaN or ``None``: none given, the
        model's default), read by a model with a time feature, ignored by others."""
        raise NotImplementedError

    @torch.no_grad()
    def predict_all_movies(self, users: torch.Tensor, n_movies: int) -> torch.Tensor:
        """Predicted ratings ``(len(users), n_movies)`` of movies ``0..n_movies-1`` for
        ``users``: every pair through :meth:`predict` (a model with factor tables
        overrides this with one matrix product)."""
        pairs_users = users.repeat_interleave(n_movies)
        pairs_movies = torch.arange(n_movies).repeat(len(users))
        return self.predict(pairs_users, pairs_movies).reshape(len(users), n_movies)

    def scored_movies(self, n_movies: int) -> torch.Tensor | None:
        """The movies (ascending, below ``n_movies``) that :meth:`predict_scored_movies`
        scores, where the model scores some movies only and every other one scores
        ``-inf`` for every user (EASE^R's kept items); ``None``: every movie."""
        return None

    @torch.no_grad()
    def predict_scored_movies(self, users: torch.Tensor, n_movies: int) -> torch.Tensor:
        """:meth:`predict_all_movies` on the columns of :meth:`scored_movies` only."""
        return self.predict_all_movies(users, n_movies)


def on_every_movie(
    scores: torch.Tensor, movies: torch.Tensor, n_movies: int
) -> torch.Tensor:
    """Scores ``(rows, len(movies))`` of the ascending ``movies`` (a model's
    :meth:`~RatingModel.scored_movies`) placed on every movie ``(rows, n_movies)``,
    ``-inf`` for the others: a column copy, not a masked scatter (half the time at
    128 x 59,047)."""
    every_movie = torch.full((scores.shape[0], n_movies), -torch.inf)
    return every_movie.index_copy_(1, movies, scores)


class InnerSigmoidModel(RatingModel):
    """The notebook's model: ``min + (max - min) * sigmoid(w * <p_u, q_m> + b)``.

    As in the d2l.ai matrix factorisation chapter, without biases or regularisation. The output
    bias starts so that the untrained model predicts ``global_mean`` (the training mean).
    """

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        *,
        embedding_dim: int = 5,
        rating_min: float = 0.5,
        rating_max: float = 5.0,
        global_mean: float = 3.5,
        init_std: float = 0.1,
        sparse: bool = False,
    ) -> None:
        super().__init__(rating_min, rating_max)
        self.user_embedding = nn.Embedding(n_users, embedding_dim, sparse=sparse)
        self.movie_embedding = nn.Embedding(n_movies, embedding_dim, sparse=sparse)
        self.linear = nn.Linear(1, 1)
        nn.init.normal_(self.user_embedding.weight, std=init_std)
        nn.init.normal_(self.movie_embedding.weight, std=init_std)
        fraction = (global_mean - rating_min) / (rating_max - rating_min)
        fraction = min(max(fraction, 1e-3), 1 - 1e-3)
        nn.init.constant_(self.linear.bias, math.log(fraction / (1 - fraction)))

    def _score(
        self, user_vectors: torch.Tensor, movie_vectors: torch.Tensor
    ) -> torch.Tensor:
        dot = (user_vectors * movie_vectors).sum(dim=1, keepdim=True)
        scale = self.rating_max - self.rating_min
        return (self.rating_min + scale * torch.sigmoid(self.linear(dot))).squeeze(1)

    def forward(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        return self._score(self.user_embedding(users), self.movie_embedding(movies))

    def id_tables(self, seen_users, seen_movies):
        return [(self.user_embedding, seen_users), (self.movie_embedding, seen_movies)]

    @torch.no_grad()
    def predict(
        self,
        users: torch.Tensor,
        movies: torch.Tensor,
        timestamps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self._score(
            self.embed(self.user_embedding, users),
            self.embed(self.movie_embedding, movies),
        )

    @torch.no_grad()
    def predict_all_movies(self, users: torch.Tensor, n_movies: int) -> torch.Tensor:
        """:meth:`predict` for every movie at once: a block of users' dot products with
        every movie are one matrix product instead of a gather of each pair's vectors."""
        movies = self.movie_embedding.weight[:n_movies]
        dots = self.embed(self.user_embedding, users) @ movies.T
        logits = self.linear(dots.unsqueeze(-1)).squeeze(-1)
        scale = self.rating_max - self.rating_min
        return self.rating_min + scale * torch.sigmoid(logits)


class BiasedMatrixFactorization(RatingModel):
    """Global mean + user bias + movie bias + ``<p_u, q_m>``, the classic biased MF (SVD-style).

    ``regularization`` returns the L2 penalty of the rows a batch touches, so it works with
    sparse gradients (``SparseAdam``), where optimizer weight decay is not available.
    """

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        *,
        embedding_dim: int = 32,
        rating_min: float = 0.5,
        rating_max: float = 5.0,
        global_mean: float = 3.5,
        init_std: float = 0.01,
        factor_reg: float = 0.0,
        bias_reg: float = 0.0,
        sparse: bool = False,
    ) -> None:
        super().__init__(rating_min, rating_max)
        self.user_factors = nn.Embedding(n_users, embedding_dim, sparse=sparse)
        self.movie_factors = nn.Embedding(n_movies, embedding_dim, sparse=sparse)
        self.user_bias = nn.Embedding(n_users, 1, sparse=sparse)
        self.movie_bias = nn.Embedding(n_movies, 1, sparse=sparse)
        self.register_buffer("global_mean", torch.tensor(float(global_mean)))
        self.factor_reg = factor_reg
        self.bias_reg = bias_reg
        nn.init.normal_(self.user_factors.weight, std=init_std)
        nn.init.normal_(self.movie_factors.weight, std=init_std)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.movie_bias.weight)

    def _score(self, p_u, q_m, b_u, b_m) -> torch.Tensor:
        return (
            self.global_mean
            + b_u.squeeze(-1)
            + b_m.squeeze(-1)
            + (p_u * q_m).sum(dim=1)
        )

    def forward(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        return self._score(*self._rows(users, movies))

    def _rows(
        self, users: torch.Tensor, movies: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return (
            self.user_factors(users),
            self.movie_factors(movies),
            self.user_bias(users),
            self.movie_bias(movies),
        )

    def _penalty(self, p_u, q_m, b_u, b_m) -> torch.Tensor:
        factors = p_u.pow(2).sum(1) + q_m.pow(2).sum(1)
        biases = b_u.pow(2).sum(1) + b_m.pow(2).sum(1)
        return (self.factor_reg * factors + self.bias_reg * biases).mean()

    def regularization(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        return self._penalty(*self._rows(users, movies))

    def forward_and_penalty(
        self, users: torch.Tensor, movies: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's predictions and penalty from one lookup of its rows: a second
        lookup doubles the embeddings' backward, the most of a dense step's time."""
        rows = self._rows(users, movies)
        return self._score(*rows), self._penalty(*rows)

    def id_tables(self, seen_users, seen_movies):
        return [
            (self.user_factors, seen_users),
            (self.user_bias, seen_users),
            (self.movie_factors, seen_movies),
            (self.movie_bias, seen_movies),
        ]

    @torch.no_grad()
    def predict(
        self,
        users: torch.Tensor,
        movies: torch.Tensor,
        timestamps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        raw = self._score(
            self.embed(self.user_factors, users),
            self.embed(self.movie_factors, movies),
            self.embed(self.user_bias, users),
            self.embed(self.movie_bias, movies),
        )
        return raw.clamp(self.rating_min, self.rating_max)
