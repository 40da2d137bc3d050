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
recommended to; they get no row of their own in a ``predict`` answer. A ``predict``
row may carry a ``timestamp`` (unix seconds) of the rating to predict, which a model
with a time feature reads (a missing column or a null: its default bucket, the last of
its training data); other models, and the other tasks, ignore it.

This is the serving edge: ``params`` are checked with the bounds of the pipeline's own
parameter models (:class:`~rating_prediction.parameters.inference.RequestParameters`),
every column it reads with the served model's id type and rating scale, and the work a
request asks for against :class:`~rating_prediction.parameters.inference.ServingLimits`,
all before any scoring starts. A bad request is a ``ValueError`` with a short message
naming the param, column or limit and quoting what was sent; no answer holds NaN or
infinity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
from pydantic import ValidationError

from rating_prediction.parameters.bounds import MAX_TIMESTAMP
from rating_prediction.parameters.inference import RequestParameters, ServingLimits

from .bundle import ServedModel
from .fallback import (
    FALLBACK_COLUMN,
    NO_SIMILAR_MOVIES,
    UNKNOWN_MOVIE,
    pair_fallbacks,
    user_fallbacks,
)
from .foldin import check_rating_scale, fold_in_to_recommend, fold_in_users
from .prediction import score_folded_pairs, score_pairs
from .recommend import recommend_all, recommendation_exclusions, recommending_users
from .request_ids import PAIR_COLUMNS, check_ids, quote, quote_value
from .similar import similar_movies

RATING_COLUMN = "rating"
TIMESTAMP_COLUMN = "timestamp"
# Where the model is served, each limit of `ServingLimits` is set by an environment
# variable, read when the model is loaded: the limits guard the serving host, so they
# are its operator's to set, for any logged model, without retraining or logging again.
LIMIT_VARIABLE_PREFIX = "RATING_PREDICTION_"
# The answer's columns of scores: finite in every answer (JSON has no NaN), null only
# where a row has no score (an unknown movie's `similar` row).
SCORE_COLUMNS = ("prediction", "similarity")
# At most this many problems are listed in one message, so it stays short.
MAX_PROBLEMS = 3
DEFAULT_LIMITS = ServingLimits()


def limit_variable(limit: str) -> str:
    """The environment variable that sets ``limit`` (a field of ``ServingLimits``)."""
    return f"{LIMIT_VARIABLE_PREFIX}{limit.upper()}"


def serving_limits(environ: Mapping[str, str]) -> ServingLimits:
    """The limits set in ``environ`` (``RATING_PREDICTION_MAX_REQUEST_ROWS``, ...), the
    defaults of ``ServingLimits`` for those it does not set.

    Raises:
        ValueError: Naming a variable that does not hold a positive integer.
    """
    values = {}
    for limit in ServingLimits.model_fields:
        text = environ.get(limit_variable(limit))
        if text is None:
            continue
        try:
            values[limit] = int(text)
            ServingLimits.model_validate({limit: values[limit]})
        except ValueError:
            raise ValueError(
                f"{limit_variable(limit)} must be a positive integer (ServingLimits."
                f"{limit}), got {quote_value(text)}."
            ) from None
    return ServingLimits.model_validate(values)


def request_parameters(
    served: ServedModel, params: Mapping[str, Any] | None
) -> RequestParameters:
    """``params`` checked with the bounds of the pipeline's parameter models; the
    served model's ``popularity_weight`` when not given."""
    if params is not None and not isinstance(params, Mapping):
        raise ValueError(
            f"params must be a mapping of names to values, got {quote_value(params)}."
        )
    values = {
        name: value.item() if isinstance(value, np.generic) else value
        for name, value in (params or {}).items()
    }
    try:
        return RequestParameters.model_validate(
            {"popularity_weight": served.popularity_weight, **values}
        )
    except ValidationError as error:
        raise ValueError(_params_refusal(error)) from None


def _params_refusal(error: ValidationError) -> str:
    """One short sentence per bad param, naming it, saying what it must be (in the
    words of the failed bound) and quoting the value sent."""
    problems = []
    for detail in error.errors()[:MAX_PROBLEMS]:
        name = quote_value(".".join(map(str, detail["loc"])))
        if detail["type"] == "extra_forbidden":
            valid = ", ".join(RequestParameters.model_fields)
            problems.append(f"unknown param {name} (the params are {valid})")
        else:
            must = detail["msg"].removeprefix("Input should be ")
            problems.append(
                f"{name} must be {must}, got {quote_value(detail['input'])}"
            )
    more = len(error.errors()) - MAX_PROBLEMS
    return "; ".join(problems) + (f"; and {more} more." if more > 0 else ".")


def _over_limit(limit: str, asked: str, limits: ServingLimits) -> ValueError:
    return ValueError(
        f"{asked}; one request may ask for at most {getattr(limits, limit):,} "
        f"({limit}: set {limit_variable(limit)} where the model is served to change "
        "it)."
    )


def _checked_frame(frame: Any, limits: ServingLimits) -> pd.DataFrame:
    """``frame``, a table of at most ``max_request_rows`` rows and distinct columns."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(
            "The request must be a table with columns userId, movieId and optionally "
            f"rating and timestamp, got a {type(frame).__name__}."
        )
    if len(frame) > limits.max_request_rows:
        raise _over_limit(
            "max_request_rows", f"The request has {len(frame):,} rows", limits
        )
    repeated = frame.columns[frame.columns.duplicated()].unique()
    if len(repeated):
        raise ValueError(
            f"The request has the column(s) {quote(repeated)} more than once: send "
            "each column once."
        )
    return frame


def _check_answer_rows(count: int, what: str, k: int, limits: ServingLimits) -> None:
    if count * k > limits.max_answer_rows:
        raise _over_limit(
            "max_answer_rows",
            f"The request asks for {count * k:,} answer rows ({count:,} {what} x k "
            f"{k:,})",
            limits,
        )


def _ids(served: ServedModel, frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        raise ValueError(
            f"The request lacks the column(s) [{column!r}]: expected "
            f"{list(PAIR_COLUMNS)} holding original MovieLens ids, got "
            f"{quote(list(frame.columns))} (a column other than userId, movieId, "
            f"{RATING_COLUMN} and {TIMESTAMP_COLUMN} is not read)."
        )
    index = served.users if column == "userId" else served.movies
    return check_ids(column, frame[column].to_numpy(), index.id_type)


def _ratings(frame: pd.DataFrame) -> np.ndarray:
    """Per row, the rating of the user's own it carries, NaN where none (a null, or
    no rating column): numbers only, a boolean or a string is no rating."""
    if RATING_COLUMN not in frame.columns:
        return np.full(len(frame), np.nan)
    values = frame[RATING_COLUMN].to_numpy()
    if values.dtype.kind in "iuf":
        return values.astype(np.float64)
    values = values.astype(object)
    missing = pd.isna(values)
    bad = [value for value in values[~missing] if not _is_number(value)]
    if bad:
        raise ValueError(
            f"Column {RATING_COLUMN!r} must hold numbers (a rating of the user's own) "
            f"or nulls, got {quote(bad)}."
        )
    ratings = np.full(len(values), np.nan)
    try:
        ratings[~missing] = values[~missing].astype(np.float64)
    except OverflowError:  # an integer beyond float64: no rating scale reaches it
        raise ValueError(
            f"Column {RATING_COLUMN!r} holds a number beyond any rating scale, got "
            f"{quote([value for value in values[~missing] if abs(value) > 1e300])}."
        ) from None
    return ratings


def _timestamps(frame: pd.DataFrame) -> np.ndarray | None:
    """Per row, the unix seconds of the rating to predict (float64; NaN where null:
    the model's default), ``None`` without a timestamp column: integers (or whole
    floats) in 0..``MAX_TIMESTAMP`` only, never a boolean, a string or a date."""
    if TIMESTAMP_COLUMN not in frame.columns:
        return None
    values = frame[TIMESTAMP_COLUMN].to_numpy()
    if values.dtype.kind == "O":
        values = _object_seconds(values)
    if values.dtype.kind not in "iuf":
        raise _bad_timestamps(values)
    seconds = values.astype(np.float64)
    valid = (seconds >= 0) & (seconds <= MAX_TIMESTAMP) & (seconds == np.floor(seconds))
    bad = ~np.isnan(seconds) & ~valid
    if bad.any():
        raise _bad_timestamps(values[bad])
    return seconds


def _object_seconds(values: np.ndarray) -> np.ndarray:
    """Python objects (JSON mixing types, nulls, huge integers) as float64 seconds,
    NaN where null; a number beyond the bounds refused as sent (before a cast would
    round or overflow it)."""
    missing = pd.isna(values)
    given = values[~missing]
    bad = [
        value
        for value in given
        if not _is_number(value) or not 0 <= value <= MAX_TIMESTAMP
    ]
    if bad:
        raise _bad_timestamps(bad)
    seconds = np.full(len(values), np.nan)
    seconds[~missing] = np.asarray(given.tolist(), dtype=np.float64)
    return seconds


def _bad_timestamps(bad: Sequence | np.ndarray) -> ValueError:
    return ValueError(
        f"Column {TIMESTAMP_COLUMN!r} must hold the rating's time as integer unix "
        f"seconds in 0..{MAX_TIMESTAMP}, or null for the model's default; got "
        f"{quote(bad)}."
    )


def _is_number(value: object) -> bool:
    """Whether ``value`` is a real number: a boolean is none (``True`` is no 1.0
    rating), nor a duration (numpy counts it an integer)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_, np.timedelta64)
    )


def _own_ratings(
    served: ServedModel, frame: pd.DataFrame, ratings: np.ndarray, limits: ServingLimits
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The userIds, movieIds and ratings of the request's fold-in rows (those with a
    rating), each on the served model's scale, from at most ``max_fold_in_users``
    users."""
    history = ~np.isnan(ratings)
    if not history.any():
        return served.users.as_ids([]), served.movies.as_ids([]), np.zeros(0)
    users = _ids(served, frame, "userId")[history]
    movies = _ids(served, frame, "movieId")[history]
    own = check_rating_scale(served, ratings[history])
    folding = len(pd.unique(users))
    if folding > limits.max_fold_in_users:
        raise _over_limit(
            "max_fold_in_users",
            f"The request folds in {folding:,} users from ratings of their own",
            limits,
        )
    return users, movies, own


def predict_frame(served: ServedModel, frame: pd.DataFrame) -> pd.DataFrame:
    """The fast path: one prediction per row (at its ``timestamp``, when the frame
    has one), no fold-in; ``fallback`` says which rows got the model's default for an
    unknown user or movie."""
    users, movies = _ids(served, frame, "userId"), _ids(served, frame, "movieId")
    scores = score_pairs(served, users, movies, _timestamps(frame))
    answer = pd.DataFrame({"userId": users, "movieId": movies, **scores})
    known_user = answer["known_user"].to_numpy()
    no_one = np.zeros(len(answer), dtype=bool)
    reasons = user_fallbacks(known_user, no_one, no_one)
    return _with_fallbacks(
        answer, pair_fallbacks(reasons, answer["known_movie"].to_numpy())
    )


def _predict_folded(
    served: ServedModel,
    frame: pd.DataFrame,
    ratings: np.ndarray,
    request: RequestParameters,
    limits: ServingLimits,
) -> pd.DataFrame:
    """Predictions of the rows without a rating (at their timestamps), the users who
    brought ratings of their own folded in from them."""
    history = ~np.isnan(ratings)
    # Every row's checked, the fold-in rows' too, though only the others are read.
    seconds = _timestamps(frame)
    seconds = None if seconds is None else seconds[~history]
    own = _own_ratings(served, frame, ratings, limits)
    users = np.unique(own[0])
    folded = fold_in_users(served, users, own, request.regularization)
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
        served,
        folded.vectors,
        position[mine],
        movies[mine],
        None if seconds is None else seconds[mine],
    )
    return answer


def _recommend(
    served: ServedModel,
    frame: pd.DataFrame,
    ratings: np.ndarray,
    request: RequestParameters,
    limits: ServingLimits,
) -> pd.DataFrame:
    users = pd.unique(_ids(served, frame, "userId"))
    _check_answer_rows(len(users), "distinct userIds", request.k, limits)
    own = _own_ratings(served, frame, ratings, limits)
    folded = fold_in_to_recommend(served, users, own, request.regularization)
    answer = recommend_all(
        served,
        users,
        recommendation_exclusions(served),
        request.k,
        folded=folded,
        popularity_weight=request.popularity_weight,
    ).to_pandas()
    reasons = user_fallbacks(
        recommending_users(served).lookup(users) >= 0,
        np.isin(np.arange(len(users)), list(folded.folded_in)),
        np.isin(users, own[0]),
    )
    by_user = dict(zip(users.tolist(), reasons, strict=True))
    return _with_fallbacks(answer, [by_user[user] for user in answer["userId"]])


def _similar(
    served: ServedModel,
    frame: pd.DataFrame,
    request: RequestParameters,
    limits: ServingLimits,
) -> pd.DataFrame:
    """:func:`similar_movies` of each distinct movieId, and a row naming the reason
    for each asked movie that has none: an unknown movie, or one the model has no
    similarities for."""
    movies = pd.unique(_ids(served, frame, "movieId"))
    _check_answer_rows(len(movies), "distinct movieIds", request.k, limits)
    answer = similar_movies(served, movies.tolist(), request.k)
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


def _finite(answer: pd.DataFrame) -> pd.DataFrame:
    """``answer``, its scores checked finite: NaN or infinity would be no JSON, and a
    wrong answer. Not the client's doing (its inputs are checked), so not a
    ``ValueError``: the server logs it as an error of its own."""
    for column in SCORE_COLUMNS:
        if column in answer.columns:
            scores = answer[column].to_numpy()
            if scores.dtype.kind == "O":  # nullable: its nulls are None, never NaN
                scores = np.array([score for score in scores if score is not None])
            if not np.isfinite(scores.astype(np.float64)).all():
                raise ArithmeticError(f"The answer's {column!r} holds NaN or infinity.")
    return answer


def answer_request(
    served: ServedModel,
    frame: pd.DataFrame,
    params: Mapping[str, Any] | None = None,
    limits: ServingLimits = DEFAULT_LIMITS,
) -> pd.DataFrame:
    """The answer to one request (see the module's docstring), within ``limits``;
    ``ValueError`` with a short message for a bad request or one past a limit, raised
    before any scoring starts."""
    request = request_parameters(served, params)
    frame = _checked_frame(frame, limits)
    if request.task == "similar":
        return _finite(_similar(served, frame, request, limits))
    ratings = _ratings(frame)
    if request.task == "recommend":
        return _finite(_recommend(served, frame, ratings, request, limits))
    if np.isnan(ratings).all():
        return _finite(predict_frame(served, frame))
    return _finite(_predict_folded(served, frame, ratings, request, limits))
