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

Every ranker has the interface the served model answers with: ``predict_all_movies``
(known users, through the scoring kernel), ``fold_in_scores`` (a new user from their own
implicit feedback, without refitting) and ``similar_scores`` (the movies like one).
"""

from __future__ import annotations

import torch

from rating_prediction.models.factorization import RatingModel


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

    def _expanded(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For each interaction of ``users`` (``-1``: none), its row in ``users`` and
        its place in ``user_items``."""
        known = users >= 0
        index = users.clamp(min=0)
        starts = self.user_offsets[index]
        lengths = (self.user_offsets[index + 1] - starts) * known
        rows = torch.repeat_interleave(torch.arange(len(users)), lengths)
        firsts = torch.cumsum(lengths, 0) - lengths
        places = torch.arange(int(lengths.sum())) + torch.repeat_interleave(
            starts - firsts, lengths
        )
        return rows, places

    def interactions(self, users: torch.Tensor) -> torch.Tensor:
        """``users``' interactions with the kept items, dense ``(len(users), n_items)``;
        a zero row for ``-1`` (unknown)."""
        rows, places = self._expanded(users)
        dense = torch.zeros(len(users), len(self.items))
        dense[rows, self.user_items[places].long()] = self.user_values[places]
        return dense

    @torch.no_grad()
    def predict_all_movies(self, users: torch.Tensor, n_movies: int) -> torch.Tensor:
        """Scores ``(len(users), n_movies)``: ``x_u B`` on the kept items, ``-inf``
        elsewhere."""
        scores = torch.full((len(users), n_movies), -torch.inf)
        kept = self.items < n_movies
        scores[:, self.items[kept]] = (self.interactions(users) @ self.item_weights)[
            :, kept
        ]
        return scores

    @torch.no_grad()
    def predict(self, users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
        """The ranking score of each (user, movie) pair, ``-inf`` for a movie without
        weights (or ``-1``): ``sum_j x_uj B[j, movie]`` over the user's items, with
        memory bounded by the pairs' users' interactions, not by the catalogue."""
        positions = self.item_positions()
        columns = positions[movies.clamp(min=0)].masked_fill(movies < 0, -1)
        rows, places = self._expanded(users)
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
        """Scores ``(n_movies,)`` of a new user from their interactions: mapped
        ``movies`` (int64) and their implicit-feedback ``values`` (float32). ``x B``
        over the kept items, with ``x`` the user's row as the fit would have built it
        (movies without weights dropped); ``-inf`` elsewhere."""
        positions = self.item_positions()[movies]
        kept = positions >= 0
        row = torch.zeros(len(self.items))
        row[positions[kept]] = values[kept].float()
        scores = torch.full((self.n_movies,), -torch.inf)
        scores[self.items] = row @ self.item_weights
        return scores

    @torch.no_grad()
    def similar_scores(self, movie: int) -> torch.Tensor:
        """Scores ``(n_movies,)`` of every movie as like ``movie`` (mapped): row
        ``B[movie]``, each kept item's weight from having interacted with ``movie``;
        ``-inf`` for ``movie`` itself and for movies without weights (all of them when
        ``movie`` has none)."""
        scores = torch.full((self.n_movies,), -torch.inf)
        position = int(self.item_positions()[movie])
        if position < 0:
            return scores
        row = self.item_weights[position].clone()
        row[position] = -torch.inf
        scores[self.items] = row
        return scores
