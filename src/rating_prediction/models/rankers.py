"""Rankers: models whose scores order movies for a user but are not ratings.

:class:`EaseRanker` is EASE^R (Steck 2019, "Embarrassingly Shallow Autoencoders for
Sparse Data"): an items x items weight matrix ``B`` with a zero diagonal, fitted in
closed form on implicit feedback (:mod:`rating_prediction.training.ease`). User
``u``'s score of every item is ``x_u B``, with ``x_u`` the user's training
interactions, which the model holds as a compressed sparse row table (plain tensors:
the weights stay safetensors-friendly, no pickle).

Only the ``n_items`` items the fit kept (the most-rated training movies, up to
``training.ease.max_items``) have weights; every other movie scores ``-inf`` and so
ranks last (the top-K kernel counts such a movie as no candidate at all).

:class:`FactorRanker` is a user and a movie factor table fitted on implicit feedback
by benfred's ``implicit`` library (:mod:`rating_prediction.training.implicit_rankers`):
user ``u``'s score of movie ``m`` is ``U[u] . V[m]``. :class:`AlsRanker` (implicit
ALS, Hu, Koren & Volinsky 2008) and :class:`BprRanker` (BPR, Rendle et al. 2009)
differ only in how a new user is folded in. A movie without a training interaction
has no factors: it scores ``-inf``.

Every ranker also answers the serving questions without retraining:
``fold_in_scores`` (every movie's score for a new user, from the movies they
interacted with) and ``similar_scores`` (every movie's similarity to one movie); both
give ``-inf`` to a movie without weights.
"""

from __future__ import annotations

import warnings

import torch

from rating_prediction.models.factorization import RatingModel, on_every_movie


def sparse_rows(
    lengths: torch.Tensor, columns: torch.Tensor, values: torch.Tensor, n_columns: int
) -> torch.Tensor:
    """A sparse CSR matrix of ``len(lengths)`` rows, row ``i`` the next
    ``lengths[i]`` ``columns`` (ascending, distinct: unchecked) and ``values``. torch
    multiplies a CSR matrix by a dense one on every thread (a COO one on one)."""
    with warnings.catch_warnings():
        # torch says once per process that its sparse CSR support is "in beta"; the
        # product with a dense matrix used here is the one it has long had.
        warnings.filterwarnings(
            "ignore", "Sparse CSR tensor support is in beta", UserWarning
        )
        return torch.sparse_csr_tensor(
            torch.cat([torch.zeros(1, dtype=torch.int64), lengths.cumsum(0)]),
            columns,
            values,
            (len(lengths), n_columns),
            check_invariants=False,
        )


class EaseRanker(RatingModel):
    """EASE^R's item weights and the users' training interactions.

    Buffers (the state dict):

    - ``items`` ``(n_items,)``: the kept movie indices, ascending;
    - ``item_weights`` ``(n_items, n_items)``: ``B``, zero on the diagonal;
    - ``user_offsets`` ``(n_users + 1,)``, ``user_items`` and ``user_values``
      ``(n_interactions,)``: each user's interactions with kept items, as CSR
      (columns are positions in ``items``).

    ``rating_min`` and ``rating_max`` are kept for the common interface only: the
    scores are not ratings and are never clipped.
    """

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        *,
        n_items: int = 0,
        n_interactions: int = 0,
        rating_min: float = 0.5,
        rating_max: float = 5.0,
    ) -> None:
        super().__init__(rating_min, rating_max)
        self.n_users = n_users
        self.n_movies = n_movies
        self.register_buffer("items", torch.zeros(n_items, dtype=torch.int64))
        self.register_buffer("item_weights", torch.zeros(n_items, n_items))
        self.register_buffer(
            "user_offsets", torch.zeros(n_users + 1, dtype=torch.int64)
        )
        self.register_buffer(
            "user_items", torch.zeros(n_interactions, dtype=torch.int32)
        )
        self.register_buffer("user_values", torch.zeros(n_interactions))

    def item_positions(self) -> torch.Tensor:
        """Each movie's position in ``items``, ``-1`` where it has no weights."""
        positions = torch.full((self.n_movies,), -1, dtype=torch.int64)
        positions[self.items] = torch.arange(len(self.items))
        return positions

    def _expanded(
        self, users: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For each of ``users`` (``-1``: none) its number of interactions, and for
        each of their interactions its row in ``users`` and its place in
        ``user_items``."""
        known = users >= 0
        index = users.clamp(min=0)
        starts = self.user_offsets[index]
        lengths = (self.user_offsets[index + 1] - starts) * known
        rows = torch.repeat_interleave(torch.arange(len(users)), lengths)
        firsts = torch.cumsum(lengths, 0) - lengths
        places = torch.arange(int(lengths.sum())) + torch.repeat_interleave(
            starts - firsts, lengths
        )
        return lengths, rows, places

    def interactions(self, users: torch.Tensor) -> torch.Tensor:
        """``users``' interactions with the kept items, a sparse CSR matrix
        ``(len(users), n_items)``; an empty row for ``-1`` (unknown)."""
        lengths, _, places = self._expanded(users)
        # Each user's items ascending and distinct: a valid CSR row as it is.
        return sparse_rows(
            lengths,
            self.user_items[places].long(),
            self.user_values[places],
            len(self.items),
        )

    @torch.no_grad()
    def predict_all_movies(self, users: torch.Tensor, n_movies: int) -> torch.Tensor:
        """Scores ``(len(users), n_movies)``: ``x_u B`` on the kept items, ``-inf``
        elsewhere. A sparse product: each user's scores sum the rows of ``B`` of
        their own interactions only, interactions x items multiply-adds instead of
        items^2 for a dense ``x_u`` (at MovieLens 25M's shape about 138 x 10,000
        instead of 10,000^2). CSR, not COO: torch multiplies a CSR matrix on every
        thread, a COO one on one (``benchmarks/serving_latency.py --ranker ease``)."""
        return on_every_movie(
            self.predict_scored_movies(users, n_movies),
            self.scored_movies(n_movies),
            n_movies,
        )

    def scored_movies(self, n_movies: int) -> torch.Tensor:
        """The kept items below ``n_movies``: every other movie scores ``-inf``."""
        return self.items[self.items < n_movies]

    @torch.no_grad()
    def predict_scored_movies(self, users: torch.Tensor, n_movies: int) -> torch.Tensor:
        """Scores ``(len(users), len(scored_movies(n_movies)))``: ``x_u B`` on the kept
        items alone: :meth:`predict_all_movies` without the ``-inf`` columns of the
        others, which a capped catalogue makes most of its width."""
        kept_scores = self.interactions(users) @ self.item_weights
        kept = self.items < n_movies
        return kept_scores if kept.all() else kept_scores[:, kept]

    @torch.no_grad()
    def predict(
        self,
        users: torch.Tensor,
        movies: torch.Tensor,
        timestamps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The ranking score of each (user, movie) pair, ``-inf`` for a movie without
        weights (or ``-1``): ``sum_j x_uj B[j, movie]`` over the user's items, with
        memory bounded by the pairs' users' interactions, not by the catalogue."""
        positions = self.item_positions()
        columns = positions[movies.clamp(min=0)].masked_fill(movies < 0, -1)
        _, rows, places = self._expanded(users)
        weights = self.item_weights[
            self.user_items[places].long(), columns[rows].clamp(min=0)
        ]
        scores = torch.zeros(len(users)).index_add_(
            0, rows, weights * self.user_values[places]
        )
        return scores.masked_fill_(columns < 0, -torch.inf)

    @torch.no_grad()
    def fold_in_scores(
        self, movies: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        """Scores ``(n_movies,)`` for a new user who interacted with the mapped
        ``movies`` (each at most once) with feedback ``values`` (1.0 each for binary
        feedback): ``x B`` with ``x`` those values on the kept items, as a training
        user's scores are. Movies without weights score ``-inf``; given movies
        without weights add nothing."""
        positions = self.item_positions()[movies.long()]
        kept = positions >= 0
        # Only the rows of B of the user's own items: x B without a dense x.
        weight_rows = self.item_weights.index_select(0, positions[kept])
        return self._on_kept_items(values.float()[kept] @ weight_rows)

    @torch.no_grad()
    def similar_scores(self, movie: int) -> torch.Tensor:
        """Each movie's similarity ``(n_movies,)`` to ``movie``: the row
        ``B[movie]``, how much an interaction with ``movie`` adds to each other
        movie's score. ``movie`` itself and movies without weights get ``-inf``
        (every movie, when ``movie`` has none)."""
        position = int(self.item_positions()[movie])
        if position < 0:
            return torch.full((self.n_movies,), -torch.inf)
        scores = self._on_kept_items(self.item_weights[position].clone())
        scores[movie] = -torch.inf
        return scores

    def _on_kept_items(self, kept_scores: torch.Tensor) -> torch.Tensor:
        """``(n_movies,)`` scores: ``kept_scores`` on the kept items, ``-inf``
        elsewhere."""
        scores = torch.full((self.n_movies,), -torch.inf)
        scores[self.items] = kept_scores
        return scores


class FactorRanker(RatingModel):
    """User and movie factors from ``implicit``: a score is ``U[u] . V[m]``.

    Buffers (the state dict):

    - ``user_factors`` ``(n_users, n_factors)`` and ``item_factors``
      ``(n_movies, n_factors)``, float32: zero rows for users and movies without a
      training interaction;
    - ``fitted_movies`` ``(n_movies,)``, bool: the movies with factors (a training
      interaction); every other movie scores ``-inf``.

    An unknown user (``-1``) or one without a training interaction has a zero
    vector: it scores 0 on every fitted movie (all tied). ``regularization`` is the
    L2 weight of the least-squares step that folds a new user in
    (:meth:`fold_in_user`): ALS's own, BPR's ``fold_in_regularization``. ``rating_min`` and ``rating_max`` are kept for the
    common interface only: the scores are not ratings and are never clipped.
    Subclasses define :meth:`fold_in_user`.
    """

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        *,
        n_factors: int = 0,
        regularization: float = 0.0,
        rating_min: float = 0.5,
        rating_max: float = 5.0,
    ) -> None:
        super().__init__(rating_min, rating_max)
        self.n_users = n_users
        self.n_movies = n_movies
        self.regularization = regularization
        self.register_buffer("user_factors", torch.zeros(n_users, n_factors))
        self.register_buffer("item_factors", torch.zeros(n_movies, n_factors))
        self.register_buffer("fitted_movies", torch.zeros(n_movies, dtype=torch.bool))

    @torch.no_grad()
    def predict(
        self,
        users: torch.Tensor,
        movies: torch.Tensor,
        timestamps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The ranking score of each (user, movie) pair: ``U[user] . V[movie]``; 0
        for an unknown user (``-1``), ``-inf`` for an unknown movie (``-1``) or one
        without factors."""
        user_rows = self.user_factors[users.clamp(min=0)] * (users >= 0)[:, None]
        known = movies >= 0
        index = movies.clamp(min=0)
        scores = (user_rows * self.item_factors[index]).sum(1)
        return scores.masked_fill_(~(known & self.fitted_movies[index]), -torch.inf)

    @torch.no_grad()
    def predict_all_movies(self, users: torch.Tensor, n_movies: int) -> torch.Tensor:
        """Scores ``(len(users), n_movies)``: ``U[users] V^T``, ``-inf`` for movies
        without factors (or beyond the model's); a zero row of factors for ``-1``."""
        user_rows = self.user_factors[users.clamp(min=0)] * (users >= 0)[:, None]
        scores = self._masked(user_rows @ self.item_factors.T)
        if n_movies == self.n_movies:
            # The product itself: allocating and filling a second matrix of the
            # block's size cost four times the product (128 users x 59,047 movies,
            # 17 factors: 33 ms a block instead of 6, mostly the new pages).
            return scores
        wider = torch.full((len(users), n_movies), -torch.inf)
        shared = min(n_movies, self.n_movies)
        wider[:, :shared] = scores[:, :shared]
        return wider

    @torch.no_grad()
    def fold_in_scores(
        self, movies: torch.Tensor, values: torch.Tensor
    ) -> torch.Tensor:
        """Scores ``(n_movies,)`` for a new user who interacted with the mapped
        ``movies`` (each at most once) with feedback ``values`` (1.0 each for binary
        feedback), without retraining: ``V u`` with ``u`` from
        :meth:`fold_in_user`. Movies without factors score ``-inf``; given movies
        without factors add nothing."""
        movies = movies.long()
        fitted = self.fitted_movies[movies]
        user = self.fold_in_user(movies[fitted], values.double()[fitted])
        return self._masked(self.item_factors.double() @ user).float()

    def fold_in_user(self, movies: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """The new user's factors (float64) from their fitted ``movies`` and
        ``values``."""
        raise NotImplementedError

    @torch.no_grad()
    def similar_scores(self, movie: int) -> torch.Tensor:
        """Each movie's cosine similarity ``(n_movies,)`` to ``movie``, over their
        factors. ``movie`` itself and movies without factors get ``-inf`` (every
        movie, when ``movie`` has none)."""
        if not self.fitted_movies[movie]:
            return torch.full((self.n_movies,), -torch.inf)
        unit = self.item_factors / self.item_factors.norm(dim=1, keepdim=True).clamp(
            min=torch.finfo(torch.float32).tiny
        )
        scores = self._masked(unit @ unit[movie])
        scores[movie] = -torch.inf
        return scores

    def _masked(self, scores: torch.Tensor) -> torch.Tensor:
        """``scores`` (movies last) with ``-inf`` for movies without factors."""
        return scores.masked_fill_(~self.fitted_movies, -torch.inf)


class AlsRanker(FactorRanker):
    """Implicit ALS (Hu, Koren & Volinsky 2008): every movie is a preference ``p``
    (1 for an interaction, else 0) of confidence ``c = 1 + alpha * value`` (1 for
    a movie without an interaction), and the factors minimise
    ``sum c (p - U[u] . V[m])^2 + regularization (|U|^2 + |V|^2)``."""

    def __init__(
        self,
        n_users: int,
        n_movies: int,
        *,
        n_factors: int = 0,
        regularization: float = 0.0,
        alpha: float = 1.0,
        rating_min: float = 0.5,
        rating_max: float = 5.0,
    ) -> None:
        super().__init__(
            n_users,
            n_movies,
            n_factors=n_factors,
            regularization=regularization,
            rating_min=rating_min,
            rating_max=rating_max,
        )
        self.alpha = alpha

    def fold_in_user(self, movies: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """ALS's own user step against the movie factors, as ``implicit``'s
        ``recalculate_user`` (exactly, not by conjugate gradient):
        ``u = (V^T C V + regularization I)^-1 V^T C p`` with ``C`` the confidences
        (``1 + alpha * value`` on the given movies, 1 on every other) and ``p`` 1 on
        the given movies, 0 elsewhere."""
        factors = self.item_factors.double()
        given = factors[movies]
        confidence = 1.0 + self.alpha * values
        system = factors.T @ factors + (given.T * (confidence - 1.0)) @ given
        system.diagonal().add_(self.regularization)
        return torch.linalg.solve(system, given.T @ confidence)


class BprRanker(FactorRanker):
    """BPR (Rendle et al. 2009): factors fitted by SGD so that a user's movies
    outscore sampled others. ``implicit`` appends an item bias to the movie factors
    and a constant 1 to the user factors (so ``n_factors`` is the requested factors
    plus one; a user without interactions keeps a zero row)."""

    def fold_in_user(self, movies: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """BPR has no closed-form user step: the user whose score of each given movie
        is closest to 1, by ridge regression on those movies' factors (bias column
        included): ``u = (V_S^T V_S + regularization I)^-1 V_S^T 1``. Scaling the
        target would scale every score alike, so only the direction matters; the
        values play no part (BPR's feedback is binary). A strong ridge
        (``training.bpr.fold_in_regularization``, chosen on val) pulls ``u`` towards
        the sum of the given movies' factors, which ranked val better than the
        fitted users' own factors on ml-latest-small."""
        given = self.item_factors.double()[movies]
        system = given.T @ given
        system.diagonal().add_(self.regularization)
        return torch.linalg.solve(system, given.T @ torch.ones(len(movies)).double())
