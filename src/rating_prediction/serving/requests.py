"""The MLflow model's requests: a pandas table of original ids in, a pandas table out.

Ids are the served model's type: integers, or strings for a data set whose ids are
strings (a column of Python ``str``, as JSON gives); answers carry them in that type.

``task`` picks the answer: ``predict`` (default; a prediction per row, by the rating
model), ``recommend`` (top-``k`` per distinct userId; above 0, ``popularity_weight``, by
default the served model's, ranks by the popularity blend) or ``similar`` (the ``k``
movies most like each distinct movieId); the served ranker answers these two when there
is one, and their rows name the answering entry (``variant``). Rows that carry a
``rating`` are a user's own ratings: that user is folded in from them (by the ranker for
``recommend`` when there is one, else by a biased MF rating model), then predicted for or
recommended to; they get no row of their own in a ``predict`` answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from .bundle import ServedModel
from .fallback import (
    FALLBACK_COLUMN,
    NO_SIMILAR_MOVIES,
    UNKNOWN_MOVIE,
    pair_fallbacks,
    user_fallbacks,
)
from .foldin import fold_in_to_recommend, fold_in_users
from .prediction import score_folded_pairs, score_pairs
from .recommend import recommend_all, recommendation_exclusions, recommending_users
from .request_ids import PAIR_COLUMNS, check_ids
from .similar import similar_movies

TASKS = ("predict", "recommend", "similar")
DEFAULT_PARAMS: dict[str, Any] = {"task": "predict", "k": 10, "regularization": 5.0}
RATING_COLUMN = "rating"


def _ids(served: ServedModel, frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise ValueError(
            f"The request lacks the column(s) [{column!r}]: expected "
            f"{list(PAIR_COLUMNS)} holding original MovieLens ids, got "
            f"{list(frame.columns)} (a column other than userId, movieId and "
            f"{RATING_COLUMN} is not read)."
        )
    index = served.users if column == "userId" else served.movies
    return check_ids(column, frame[column].to_numpy(), index.id_type)


def _history(frame: pd.DataFrame) -> np.ndarray:
    """Per row, whether it is a rating of the user's own (a fold-in row)."""
    if RATING_COLUMN not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return frame[RATING_COLUMN].notna().to_numpy()


def _own_ratings(
    served: ServedModel, frame: pd.DataFrame, history: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The userIds, movieIds and ratings of the request's fold-in rows."""
    if not history.any():
        return served.users.as_ids([]), served.movies.as_ids([]), np.zeros(0)
    return (
        _ids(served, frame, "userId")[history],
        _ids(served, frame, "movieId")[history],
        frame[RATING_COLUMN].to_numpy(dtype=np.float64)[history],
    )


def predict_frame(served: ServedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The fast path: one prediction per row, no fold-in; ``fallback`` says which
    rows got the model's default for an unknown user or movie."""
    users, movies = _ids(served, frame, "userId"), _ids(served, frame, "movieId")
    answer = pd.DataFrame(
        {"userId": users, "movieId": movies, **score_pairs(served, users, movies)}
    )
    known_user = answer["known_user"].to_numpy()
    no_one = np.zeros(len(answer), dtype=bool)
    reasons = user_fallbacks(known_user, no_one, no_one)
    return _with_fallbacks(
        answer, pair_fallbacks(reasons, answer["known_movie"].to_numpy())
    )


def _predict_folded(
    served: ServedModel, frame: pd.DataFrame, history: np.ndarray, reg: float
) -> pd.DataFrame:
    """Predictions of the rows without a rating, the users who brought ratings of
    their own folded in from them."""
    own = _own_ratings(served, frame, history)
    users = np.unique(own[0])
    folded = fold_in_users(served, users, own, reg)
    answer = predict_frame(served, frame[~history])
    answered = served.users.as_ids(answer["userId"].to_numpy())
    position = np.searchsorted(users, answered)
    mine = users[position.clip(max=len(users) - 1)] == answered
    folded_in = mine & np.isin(position, list(folded.folded_in))
    reasons = user_fallbacks(answer["known_user"].to_numpy(), folded_in, mine)
    answer = _with_fallbacks(
        answer, pair_fallbacks(reasons, answer["known_movie"].to_numpy())
    )
    if folded.vectors is None:
        return answer
    movies = served.movies.as_ids(answer["movieId"].to_numpy())
    answer.loc[mine, "prediction"] = score_folded_pairs(
        served, folded.vectors, position[mine], movies[mine]
    )
    return answer


def _recommend(
    served: ServedModel,
    frame: pd.DataFrame,
    history: np.ndarray,
    params: dict[str, Any],
    popularity_weight: float,
) -> pd.DataFrame:
    users = pd.unique(_ids(served, frame, "userId"))
    own = _own_ratings(served, frame, history)
    folded = fold_in_to_recommend(served, users, own, float(params["regularization"]))
    answer = recommend_all(
        served,
        users,
        recommendation_exclusions(served),
        int(params["k"]),
        folded=folded,
        popularity_weight=popularity_weight,
    ).to_pandas()
    reasons = user_fallbacks(
        recommending_users(served).lookup(users) >= 0,
        np.isin(np.arange(len(users)), list(folded.folded_in)),
        np.isin(users, own[0]),
    )
    by_user = dict(zip(users.tolist(), reasons, strict=True))
    return _with_fallbacks(answer, [by_user[user] for user in answer["userId"]])


def _similar(served: ServedModel, movies: np.ndarray, k: int) -> pd.DataFrame:
    """:func:`similar_movies`, and a row naming the reason for each asked movie that
    has none: an unknown movie, or one the model has no similarities for."""
    answer = similar_movies(served, movies.tolist(), k)
    missing = served.movies.as_ids(movies)
    missing = missing[~np.isin(missing, answer["movieId"].to_numpy())]
    unanswered = pl.DataFrame({"movieId": missing}).cast(
        {"movieId": answer.schema["movieId"]}
    )
    table = pl.concat([answer, unanswered], how="diagonal")
    frame = table.to_pandas()
    for name in table.columns:
        # Nulls as Python None: pandas would make them float NaN (an integer column
        # turning float), which MLflow would answer as a bare NaN.
        if table[name].null_count():
            values = table[name].to_list()
            frame[name] = pd.Series(values, index=frame.index, dtype=object)
    known = served.movies.lookup(missing) >= 0
    reasons = [None] * len(answer) + [
        NO_SIMILAR_MOVIES if seen else UNKNOWN_MOVIE for seen in known
    ]
    return _with_fallbacks(frame, reasons)


def _with_fallbacks(
    answer: pd.DataFrame, reasons: Sequence[str | None]
) -> pd.DataFrame:
    """``answer`` with its ``fallback`` column: Python ``None`` where null (as JSON's
    null, never a float NaN, which would be no JSON at all)."""
    answer[FALLBACK_COLUMN] = pd.Series(list(reasons), index=answer.index, dtype=object)
    return answer


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
        return _similar(served, pd.unique(_ids(served, frame, "movieId")), k)
    history = _history(frame)
    if task == "recommend":
        return _recommend(served, frame, history, params, weight)
    if not history.any():
        return predict_frame(served, frame)
    return _predict_folded(served, frame, history, float(params["regularization"]))
