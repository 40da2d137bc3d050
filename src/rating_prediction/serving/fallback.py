"""Why an answer of the MLflow model is not the model's own: its ``fallback`` column,
null where the model answered from what it learnt (or from the user's own ratings, folded
in), else the reason it fell back, so that a client can tell a real answer from a
default one."""

from __future__ import annotations

import numpy as np

FALLBACK_COLUMN = "fallback"
UNKNOWN_USER = "unknown user"
UNKNOWN_MOVIE = "unknown movie"
# A user who brought ratings of their own, none of which could be folded in: none
# names a known movie (or, for a ranker, none is an interaction: a rating at or above
# its `min_rating`).
NOT_FOLDED_IN = "unknown user, not folded in: none of their ratings names a known movie"
NO_SIMILAR_MOVIES = "no similar movies: the model has no similarities for this movie"


def user_fallbacks(
    known: np.ndarray, folded_in: np.ndarray, brought_ratings: np.ndarray
) -> np.ndarray:
    """Per user: null when the model knows them or folded them in, else
    ``NOT_FOLDED_IN`` for those who brought ratings and ``UNKNOWN_USER`` for the rest."""
    reasons = np.where(brought_ratings, NOT_FOLDED_IN, UNKNOWN_USER).astype(object)
    reasons[known | folded_in] = None
    return reasons


def pair_fallbacks(user_reasons: np.ndarray, known_movie: np.ndarray) -> np.ndarray:
    """Per (user, movie) pair: the user's reason (:func:`user_fallbacks`) and
    ``UNKNOWN_MOVIE`` when the movie is unknown, joined by "; "; null when neither."""
    reasons = user_reasons.astype(object).copy()
    unknown_movie = ~np.asarray(known_movie, dtype=bool)
    alone = unknown_movie & np.equal(reasons, None)
    both = unknown_movie & ~alone
    reasons[alone] = UNKNOWN_MOVIE
    reasons[both] = [f"{reason}; {UNKNOWN_MOVIE}" for reason in reasons[both]]
    return reasons
