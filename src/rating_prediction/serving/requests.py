"""The MLflow model's requests: a pandas table of original ids in, a pandas table out.

``task`` picks the answer: ``predict`` (default; a prediction per row), ``recommend``
(top-``k`` per distinct userId; above 0, ``popularity_weight``, by default the served
model's, ranks by the popularity blend) or ``similar`` (the ``k`` movies most like each
distinct movieId). Rows that carry a ``rating`` are a user's own ratings: that user is
folded in from them (biased MF variants), then predicted for or recommended to; they get
no row of their own in a ``predict`` answer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from rating_prediction.models.scoring import UserVectors, lookup_users

from .foldin import fold_in
from .model import PAIR_COLUMNS, ServedModel, check_ids, score_pairs
from .rated import RatedIndex
from .recommend_all import recommend_all
from .similar import similar_movies

TASKS = ("predict", "recommend", "similar")
DEFAULT_PARAMS: dict[str, Any] = {"task": "predict", "k": 10, "regularization": 5.0}
RATING_COLUMN = "rating"


def _ids(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise ValueError(
            f"The request lacks the column(s) [{column!r}]: expected "
            f"{list(PAIR_COLUMNS)} holding original MovieLens ids, got "
            f"{list(frame.columns)}."
        )
    return check_ids(column, frame[column].to_numpy())


def _history(frame: pd.DataFrame) -> np.ndarray:
    """Per row, whether it is a rating of the user's own (a fold-in row)."""
    if RATING_COLUMN not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[RATING_COLUMN].notna().to_numpy()


def _fold_in_users(
    served: ServedModel, frame: pd.DataFrame, history: np.ndarray, reg: float
) -> dict[int, UserVectors]:
    users = _ids(frame, "userId")[history]
    movies = _ids(frame, "movieId")[history]
    ratings = frame[RATING_COLUMN].to_numpy(dtype=np.float64)[history]
    folded = {}
    for user in np.unique(users):
        mine = users == user
        vectors = fold_in(served, movies[mine], ratings[mine], reg)
        if vectors is not None:
            folded[int(user)] = vectors
    return folded


def predict_frame(served: ServedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The fast path: one prediction per row, no fold-in."""
    users, movies = _ids(frame, "userId"), _ids(frame, "movieId")
    return pd.DataFrame(
        {"userId": users, "movieId": movies, **score_pairs(served, users, movies)}
    )


def _predict_folded(
    served: ServedModel, answer: pd.DataFrame, folded: dict[int, UserVectors]
) -> pd.DataFrame:
    model = served.model
    for user, vectors in folded.items():
        rows = (answer["userId"] == user).to_numpy()
        movies = torch.from_numpy(
            served.movies.lookup(answer["movieId"].to_numpy()[rows])
        )
        with torch.no_grad():
            q = model.embed(model.movie_factors, movies)
            b = model.embed(model.movie_bias, movies).squeeze(-1)
            raw = model.global_mean + vectors.biases + b + q @ vectors.factors[0]
        answer.loc[rows, "prediction"] = (
            raw.clamp(model.rating_min, model.rating_max).double().numpy()
        )
    return answer


def _recommend(
    served: ServedModel,
    frame: pd.DataFrame,
    history: np.ndarray,
    folded: dict[int, UserVectors],
    k: int,
    *,
    popularity_weight: float,
) -> pd.DataFrame:
    request_users = _ids(frame, "userId")
    users = pd.unique(request_users)
    vectors, request_rated = None, None
    if folded:
        vectors = lookup_users(served.model, served.users.lookup(users))
        position = {int(user): i for i, user in enumerate(users)}
        for user, own in folded.items():
            vectors.factors[position[user]] = own.factors[0]
            vectors.biases[position[user]] = own.biases[0]
        movies = served.movies.lookup(_ids(frame, "movieId")[history])
        rows = np.array(
            [position[int(u)] for u in request_users[history]], dtype=np.int64
        )
        known = movies >= 0
        request_rated = RatedIndex.from_indices(rows[known], movies[known], len(users))
    rated = served.rated or RatedIndex.empty(len(served.users))
    return recommend_all(
        served,
        users,
        rated,
        k,
        vectors=vectors,
        request_rated=request_rated,
        popularity_weight=popularity_weight,
    ).to_pandas()


def check_popularity_weight(weight: object, name: str) -> float:
    """``weight`` as a float in [0, 1]; a clear error naming ``name`` otherwise (the
    request edge: the pipeline's weight is checked by its parameter model)."""
    if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)):
        raise ValueError(f"{name} must be a number in [0, 1], got {weight!r}.")
    if not 0 <= weight <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {weight!r}.")
    return float(weight)


def answer_request(
    served: ServedModel, frame: pd.DataFrame, params: dict[str, Any] | None = None
) -> pd.DataFrame:
    """The answer to one request (see the module's docstring); ``ValueError`` with a
    clear message for a bad request."""
    params = {
        **DEFAULT_PARAMS,
        "popularity_weight": served.popularity_weight,
        **(params or {}),
    }
    task, k = params["task"], int(params["k"])
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r}; valid tasks: {', '.join(TASKS)}.")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    weight = check_popularity_weight(params["popularity_weight"], "popularity_weight")
    if task == "similar":
        movies = pd.unique(_ids(frame, "movieId"))
        return similar_movies(served, movies.tolist(), k).to_pandas()
    history = _history(frame)
    if not history.any() and task == "predict":
        return predict_frame(served, frame)
    folded = (
        _fold_in_users(served, frame, history, float(params["regularization"]))
        if history.any()
        else {}
    )
    if task == "recommend":
        return _recommend(served, frame, history, folded, k, popularity_weight=weight)
    answer = predict_frame(served, frame[~history])
    return _predict_folded(served, answer, folded)
