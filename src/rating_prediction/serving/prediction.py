"""Pair predictions: the served model's predicted rating of (userId, movieId) pairs in
original ids, with whether each id is known."""

from __future__ import annotations

import numpy as np
import polars as pl

from rating_prediction.models.scoring import UserVectors, score_pairs_in_batches

from .bundle import ServedModel
from .request_ids import PAIRS_SCHEMA, pairs_schema, validate_pairs

PAIR_PREDICTIONS_SCHEMA = pl.Schema(
    {
        **PAIRS_SCHEMA,
        "prediction": pl.Float64,
        "known_user": pl.Boolean,
        "known_movie": pl.Boolean,
    }
)


def id_types(served: ServedModel) -> dict[str, str]:
    """The served model's id type of each id column: ``"integer"`` or ``"string"``."""
    return {"userId": served.users.id_type, "movieId": served.movies.id_type}


def pair_predictions_schema(served: ServedModel) -> pl.Schema:
    """``PAIR_PREDICTIONS_SCHEMA`` with the ids in the served model's types."""
    return pl.Schema({**PAIR_PREDICTIONS_SCHEMA, **pairs_schema(id_types(served))})


def score_pairs(
    served: ServedModel,
    users: np.ndarray,
    movies: np.ndarray,
    timestamps: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """``prediction``, ``known_user`` and ``known_movie`` of each pair of validated
    original ids (int64 or strings, as the served model's), by the served model's
    fast path: the dense id lookups and its
    :class:`~rating_prediction.models.scoring.PairScorer`, at each pair's validated
    ``timestamps`` (float64 unix seconds, NaN: none given, the model's default; read
    by a model with a time feature only). The pipeline's pair predictions and the
    MLflow model's both come from here."""
    user_index = served.user_lookup(users)
    movie_index = served.movie_lookup(movies)
    scorer = served.scorer
    return {
        "prediction": score_pairs_in_batches(
            scorer, user_index, movie_index, scorer.batch_rows, timestamps=timestamps
        ),
        "known_user": user_index >= 0,
        "known_movie": movie_index >= 0,
    }


def predict_pairs(served: ServedModel, pairs: pl.DataFrame) -> pl.DataFrame:
    """Predicted rating of each (userId, movieId) pair, in request order, with flags."""
    pairs = validate_pairs(pairs, id_types(served))
    if pairs.is_empty():
        return pl.DataFrame(schema=pair_predictions_schema(served))
    scored = score_pairs(
        served, pairs["userId"].to_numpy(), pairs["movieId"].to_numpy()
    )
    return pairs.with_columns(
        pl.Series(name, values) for name, values in scored.items()
    ).select(PAIR_PREDICTIONS_SCHEMA.names())


def score_folded_pairs(
    served: ServedModel,
    vectors: UserVectors,
    rows: np.ndarray,
    movies: np.ndarray,
    timestamps: np.ndarray | None = None,
) -> np.ndarray:
    """Predictions of pairs of a folded-in user (``rows`` index ``vectors``) and an
    original movieId (validated, of the served model's type) at their ``timestamps``
    (as :func:`score_pairs`'), by the same scorer as :func:`score_pairs`."""
    scorer = served.scorer
    return score_pairs_in_batches(
        scorer,
        rows,
        served.movie_lookup(movies),
        scorer.batch_rows,
        vectors,
        timestamps=timestamps,
    )
