"""New users without retraining, from their own ratings.

A biased MF (the rating model) folds a user in with ALS's user step against the fixed
movie parameters: for ratings ``r_j`` of known movies ``j``, the user's bias ``b`` and
factors ``p`` minimise ``sum_j (r_j - mu - b_j - b - q_j . p)^2 + reg * (b^2 + |p|^2)``:
a ``(d + 1)``-dimensional ridge regression, solved in closed form.

A ``SampledFactorization`` (bayesian_fm with ordered probit or time) folds a user in
sample by sample: the same ridge, against each sample's movie factors (plus the default
time bucket's, "now": a new user's ratings carry no date), for the user's per-sample
bias and factors. Under ordered probit each rating is first mapped to the latent score
whose expected rating (under that sample) is the rating, and the ridge fits that score:
an approximation of the probit posterior, which has no closed form
(:meth:`~rating_prediction.models.sampled.SampledFactorization.fold_in_problem`).

A served ranker scores a new user with its own ``fold_in_scores`` from the ratings read
as its fit read them (:class:`~.ranker.RankerFeedback`): it answers the fold-in
recommendations when there is one; ``predict`` always folds in with the rating model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rating_prediction.models.factorization import BiasedMatrixFactorization
from rating_prediction.models.sampled import SampledFactorization
from rating_prediction.models.scoring import UserVectors, lookup_users
from rating_prediction.models.variants import variant

from .bundle import ServedModel
from .rated import RatedIndex
from .request_ids import quote


def fold_in_user(
    model: BiasedMatrixFactorization | SampledFactorization,
    movies: np.ndarray,
    ratings: np.ndarray,
    regularization: float,
) -> UserVectors:
    """One user's bias and factors from ratings of mapped, known ``movies``: one
    ridge for a biased MF, one per sample for a ``SampledFactorization``."""
    if isinstance(model, SampledFactorization):
        regressors, targets = model.fold_in_problem(
            torch.from_numpy(np.asarray(movies, dtype=np.int64)),
            torch.as_tensor(ratings, dtype=torch.float64),
        )
        biases, factors = _ridge(regressors, targets, regularization)
        return UserVectors(factors.reshape(1, -1), biases.reshape(1, -1))
    q = model.movie_factors.weight.detach()[movies].double()
    offsets = (
        model.global_mean.double()
        + model.movie_bias.weight.detach()[movies, 0].double()
    )
    target = torch.as_tensor(ratings, dtype=torch.float64) - offsets
    biases, factors = _ridge(q[None], target[None], regularization)
    return UserVectors(factors, biases)


def _ridge(
    regressors: torch.Tensor, targets: torch.Tensor, regularization: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per problem ``s`` (the first axis), the bias ``b`` and weights ``w`` (float32)
    minimising ``sum_j (targets[s, j] - b - regressors[s, j] . w)^2 + reg * (b^2 +
    |w|^2)``, in closed form (float64)."""
    problems, rows, _ = regressors.shape
    ones = torch.ones(problems, rows, 1, dtype=torch.float64)
    design = torch.cat([ones, regressors.double()], dim=2)
    # A float64 identity: float32's would turn a ridge of 1e-300 into 0 and 1e308 into
    # infinity.
    gram = design.transpose(1, 2) @ design + regularization * torch.eye(
        design.shape[2], dtype=torch.float64
    )
    moments = design.transpose(1, 2) @ targets.double()[:, :, None]
    try:
        solution = torch.linalg.solve(gram, moments)[:, :, 0].float()
    except torch.linalg.LinAlgError:
        raise _too_small(regularization) from None
    if not torch.isfinite(solution).all():
        raise _too_small(regularization)
    return solution[:, 0], solution[:, 1:]


def _too_small(regularization: float) -> ValueError:
    """A ridge too small for a user's ratings (its bounds keep it finite and above 0,
    yet 1e-320 leaves a singular system, or factors beyond float32): the client's to
    change, so a clear error rather than a NaN answer or a linear-algebra trace."""
    return ValueError(
        f"regularization {regularization!r} is too small to fold this user in (the "
        "fold-in has no finite solution): use a larger one, e.g. the default 5.0."
    )


def fold_in(
    served: ServedModel,
    movie_ids: np.ndarray,
    ratings: np.ndarray,
    regularization: float,
) -> UserVectors | None:
    """A new user's parameters from (original movieId, rating) pairs, or ``None`` when
    none of the movies is known (the caller falls back to the unknown-user answer).

    Raises:
        ValueError: If the served variant does not fold in, or a rating lies outside
            the model's scale.
    """
    if not can_fold_in(served):
        raise ValueError(
            f"Fold-in needs a model that folds in new users; the served variant "
            f"{served.variant!r} does not."
        )
    model = served.model
    ratings = check_rating_scale(served, ratings)
    movies = served.movies.lookup(movie_ids)
    known = movies >= 0
    if not known.any():
        return None
    return fold_in_user(model, movies[known], ratings[known], regularization)


def check_rating_scale(served: ServedModel, ratings: np.ndarray) -> np.ndarray:
    """``ratings`` as float64, each on the served rating model's scale (the data
    set's); a ``ValueError`` otherwise."""
    model = served.model
    ratings = np.asarray(ratings, dtype=np.float64)
    outside = ratings[~((ratings >= model.rating_min) & (ratings <= model.rating_max))]
    if outside.size:
        raise ValueError(
            f"Fold-in ratings must lie in {model.rating_min}..{model.rating_max}; "
            f"got {quote(outside)}."
        )
    return ratings


def can_fold_in(served: ServedModel) -> bool:
    """Whether the served variant folds in new users (the variant registry says)."""
    return variant(served.variant).folds_in


@dataclass(frozen=True)
class FoldedUsers:
    """Users answered with their own ratings taken into account.

    Attributes:
        vectors: One row of parameters per user (folded in for those whose ratings
            name a known movie, looked up for the others); ``None`` when nobody was
            folded in, so every user keeps the model's own parameters.
        rated: By position, the known movies each user rated (never recommended).
        scores: By position, the served ranker's scores of every movie for each user
            it folded in; ``None`` when it folded nobody in (or the rating model did).
        folded_in: The positions of the users folded in from their ratings.
    """

    vectors: UserVectors | None
    rated: RatedIndex
    scores: dict[int, torch.Tensor] | None = None
    folded_in: frozenset[int] = frozenset()


def fold_in_users(
    served: ServedModel,
    user_ids: np.ndarray,
    own: tuple[np.ndarray, np.ndarray, np.ndarray],
    regularization: float,
) -> FoldedUsers:
    """``user_ids`` (distinct original ids) with each user of ``own`` (their original
    userIds, movieIds and ratings, one entry per rating) folded in from those ratings.

    Raises:
        ValueError: As :func:`fold_in`.
    """
    own_users, own_movies, own_ratings = own
    rows = _rows_of(user_ids, own_users)
    rated = _rated_by_row(served, rows, own_movies, len(user_ids))
    folded = {
        row: fold_in(
            served, own_movies[rows == row], own_ratings[rows == row], regularization
        )
        for row in np.unique(rows)
    }
    folded = {row: vectors for row, vectors in folded.items() if vectors is not None}
    if not folded:
        return FoldedUsers(None, rated)
    vectors = lookup_users(served.model, served.users.lookup(user_ids))
    for row, own_vectors in folded.items():
        vectors.factors[row] = own_vectors.factors[0]
        vectors.biases[row] = own_vectors.biases[0]
    return FoldedUsers(vectors, rated, folded_in=frozenset(map(int, folded)))


def fold_in_ranker_users(
    served: ServedModel,
    user_ids: np.ndarray,
    own: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> FoldedUsers:
    """:func:`fold_in_users` by the served ranker: each user of ``own`` with at least
    one interaction among their ratings of known movies (ratings below the ranker's
    ``min_rating`` are none) scored by its ``fold_in_scores``.

    Raises:
        ValueError: If a rating lies outside the rating model's scale.
    """
    ranker = served.ranker
    own_users, own_movies, own_ratings = own
    own_ratings = check_rating_scale(served, own_ratings)
    rows = _rows_of(user_ids, own_users)
    movies = served.movies.lookup(own_movies)
    known = movies >= 0
    scores = {}
    for row in np.unique(rows[known]):
        mine = known & (rows == row)
        interacted, values = ranker.feedback.interactions(
            movies[mine], own_ratings[mine]
        )
        if len(interacted):
            scores[int(row)] = ranker.model.fold_in_scores(interacted, values)
    rated = RatedIndex.from_indices(rows[known], movies[known], len(user_ids))
    return FoldedUsers(None, rated, scores or None, frozenset(scores))


def fold_in_to_recommend(
    served: ServedModel,
    user_ids: np.ndarray,
    own: tuple[np.ndarray, np.ndarray, np.ndarray],
    regularization: float,
) -> FoldedUsers:
    """``user_ids`` folded in from ``own`` by the model that recommends: the served
    ranker (:func:`fold_in_ranker_users`) or the rating model (:func:`fold_in_users`,
    ``regularization`` its ridge)."""
    if served.ranker is not None:
        return fold_in_ranker_users(served, user_ids, own)
    return fold_in_users(served, user_ids, own, regularization)


def own_rated(
    served: ServedModel,
    user_ids: np.ndarray,
    own_users: np.ndarray,
    own_movies: np.ndarray,
) -> RatedIndex:
    """By position in ``user_ids``, the known movies of the (user, movie) pairs of a
    request's own ratings: never recommended to that user."""
    return _rated_by_row(
        served, _rows_of(user_ids, own_users), own_movies, len(user_ids)
    )


def _rated_by_row(
    served: ServedModel, rows: np.ndarray, own_movies: np.ndarray, n_users: int
) -> RatedIndex:
    """The known movies of ``own_movies``, each under its user's row."""
    movies = served.movies.lookup(own_movies)
    known = movies >= 0
    return RatedIndex.from_indices(rows[known], movies[known], n_users)


def _rows_of(user_ids: np.ndarray, users: np.ndarray) -> np.ndarray:
    """The position in ``user_ids`` of each of ``users`` (all of which it holds):
    integer or string ids alike."""
    position = {user: row for row, user in enumerate(np.asarray(user_ids).tolist())}
    return np.array(
        [position[user] for user in np.asarray(users).tolist()], dtype=np.int64
    )
