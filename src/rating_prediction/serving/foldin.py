"""New users without retraining: ALS's user step against the fixed movie parameters.

For ratings ``r_j`` of known movies ``j``, the user's bias ``b`` and factors ``p``
minimise ``sum_j (r_j - mu - b_j - b - q_j . p)^2 + reg * (b^2 + |p|^2)``: a
``(d + 1)``-dimensional ridge regression, solved in closed form.
"""

from __future__ import annotations

import numpy as np
import torch

from rating_prediction.models.factorization import BiasedMatrixFactorization
from rating_prediction.models.scoring import UserVectors, is_biased_mf

from .model import ServedModel


def fold_in_user(
    model: BiasedMatrixFactorization,
    movies: np.ndarray,
    ratings: np.ndarray,
    regularization: float,
) -> UserVectors:
    """One user's bias and factors from ratings of mapped, known ``movies``."""
    q = model.movie_factors.weight.detach()[movies].double()
    offsets = (
        model.global_mean.double()
        + model.movie_bias.weight.detach()[movies, 0].double()
    )
    design = torch.cat([torch.ones(len(movies), 1, dtype=torch.float64), q], dim=1)
    target = torch.as_tensor(ratings, dtype=torch.float64) - offsets
    gram = design.T @ design + regularization * torch.eye(design.shape[1])
    solution = torch.linalg.solve(gram, design.T @ target)
    return UserVectors(solution[1:].float().unsqueeze(0), solution[:1].float())


def fold_in(
    served: ServedModel,
    movie_ids: np.ndarray,
    ratings: np.ndarray,
    regularization: float,
) -> UserVectors | None:
    """A new user's parameters from (original movieId, rating) pairs, or ``None`` when
    none of the movies is known (the caller falls back to the unknown-user answer).

    Raises:
        ValueError: If the served variant is not a biased MF, or a rating lies outside
            the model's scale.
    """
    model = served.model
    if not is_biased_mf(model):
        raise ValueError(
            f"Fold-in needs a biased MF model; the served variant {served.variant!r} "
            "is not one."
        )
    ratings = np.asarray(ratings, dtype=np.float64)
    outside = ratings[~((ratings >= model.rating_min) & (ratings <= model.rating_max))]
    if outside.size:
        raise ValueError(
            f"Fold-in ratings must lie in {model.rating_min}..{model.rating_max}; "
            f"got {outside[:3].tolist()}."
        )
    movies = served.movies.lookup(np.asarray(movie_ids, dtype=np.int64))
    known = movies >= 0
    if not known.any():
        return None
    return fold_in_user(model, movies[known], ratings[known], regularization)
