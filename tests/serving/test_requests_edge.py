"""The serving edge in process: every ``params`` value and request column checked with
the pipeline's bounds, the work a request asks for capped before any of it starts, no
answer with NaN, and refusals as short messages that quote what was sent; then
property-based: any generated request is answered or refused so."""

import json
import logging
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from mlflow.protos.databricks_pb2 import ErrorCode

from rating_prediction.parameters.inference import (
    FoldInParameters,
    RequestParameters,
    ServingLimits,
)
from rating_prediction.serving import requests
from rating_prediction.serving.pyfunc import RequestFailed, ServedModelPyfunc
from rating_prediction.serving.requests import answer_request, serving_limits

# A new user (999) who rated movie 1, and a pair to predict for them.
FOLD_IN = pd.DataFrame({"userId": [999, 999], "movieId": [1, 2], "rating": [4.0, None]})
PAIRS = pd.DataFrame({"userId": [10, 999], "movieId": [1, 1]})
# Where the server's own files are: no message may name them.
SERVER_PATHS = (str(Path(__file__).parents[2]), sys.prefix, "site-packages", 'File "')
# The functions that do a request's work: a request past a limit calls none of them.
WORK = (
    "score_pairs",
    "score_folded_pairs",
    "fold_in_users",
    "fold_in_to_recommend",
    "recommend_all",
    "similar_movies",
)


def refusal(served, frame, params=None, limits=requests.DEFAULT_LIMITS) -> str:
    """The message ``answer_request`` refuses the request with; checked short and
    free of the server's paths and of any trace."""
    with pytest.raises(ValueError) as refused:
        answer_request(served, frame, params, limits)
    message = str(refused.value)
    assert_clean(message)
    return message


def assert_clean(message: str) -> None:
    assert len(message) < 300, message
    assert "Traceback" not in message
    assert not any(path in message for path in SERVER_PATHS), message


@pytest.mark.parametrize(
    ("value", "quoted"),
    [(math.nan, "nan"), (math.inf, "inf"), (0, "0"), (-5, "-5"), (True, "True")],
)
@pytest.mark.parametrize("task", ["predict", "recommend"])
def test_a_bad_regularization_is_refused_naming_it(served, value, quoted, task):
    message = refusal(served, FOLD_IN, {"task": task, "regularization": value})
    assert message.startswith("'regularization' must be ")
    assert message.endswith(f"got {quoted}.")


def test_the_pipeline_refuses_the_same_regularizations(served):
    # One definition: the fold-in block and the request share the bound.
    for value in (math.nan, math.inf, 0, -5, True):
        with pytest.raises(ValueError, match="regularization"):
            FoldInParameters(regularization=value)
    assert RequestParameters.model_fields["regularization"].metadata == (
        FoldInParameters.model_fields["regularization"].metadata
    )
    assert (
        RequestParameters.model_fields["k"].metadata
        == FoldInParameters.model_fields["top_k"].metadata
    )


def test_a_ridge_too_small_for_the_ratings_is_refused_not_a_linalg_trace(served):
    # Above 0, yet 0 to float64 next to a user's one rating: a singular system.
    message = refusal(served, FOLD_IN, {"regularization": 1e-320})
    assert message.startswith("regularization 1e-320 is too small")
    # A huge one is no problem: the folded user is the model's average one.
    answer = answer_request(served, FOLD_IN, {"regularization": 1e308})
    assert np.isfinite(answer["prediction"]).all()


@pytest.mark.parametrize(
    ("k", "quoted"),
    [
        (0, "got 0."),
        (-1, "got -1."),
        (1e12, "got 1000000000000.0."),
        (10**12, "got 1000000000000."),
        (True, "got True."),
        ("5", "got '5'."),
        (None, "got None."),
    ],
)
@pytest.mark.parametrize("task", ["recommend", "similar"])
def test_a_bad_k_is_refused_quoting_it(served, k, quoted, task):
    message = refusal(served, PAIRS, {"task": task, "k": k})
    assert message.startswith("'k' must be ")
    assert message.endswith(quoted)


@pytest.mark.parametrize("weight", [-0.1, 1.5, math.nan, math.inf, True, "a", None])
def test_a_bad_popularity_weight_is_refused(served, weight):
    message = refusal(served, PAIRS, {"task": "recommend", "popularity_weight": weight})
    assert message.startswith("'popularity_weight' must be ")


def test_numpy_scalars_are_taken_as_the_numbers_they_hold(served):
    params = {"task": "recommend", "k": np.int64(2), "regularization": np.float32(1)}
    assert len(answer_request(served, PAIRS, params)) == 4
    assert "got True" in refusal(served, PAIRS, {"k": np.bool_(True)})


def test_unknown_params_and_tasks_are_refused_naming_them(served):
    message = refusal(served, PAIRS, {"user": 1, "x" * 10_000: 2, "k": 3})
    assert message.startswith("unknown param 'user' (the params are task, k, ")
    assert "unknown param 'xxxxxxxxxxxxxxxxx...xxxxxxxxxxxxxxxxxx'" in message
    assert refusal(served, PAIRS, {"task": "fold_in"}) == (
        "'task' must be 'predict', 'recommend' or 'similar', got 'fold_in'."
    )
    assert "must be a mapping" in refusal(served, PAIRS, [("k", 3)])


@pytest.mark.parametrize(
    ("ratings", "message"),
    [
        (pd.Series([True, None], dtype=object), "must hold numbers .* got \\[True\\]"),
        (pd.Series([True, False]), "must hold numbers .* got \\[True, False\\]"),
        (pd.Series(["4", None], dtype=object), "must hold numbers .* got \\['4'\\]"),
        (pd.Series([10**400, None], dtype=object), "beyond any rating scale"),
        (pd.Series([6.0, None]), "must lie in 0.5..5.0; got \\[6.0\\]"),
        (pd.Series([-math.inf, None]), "must lie in 0.5..5.0; got \\[-inf\\]"),
    ],
)
def test_a_rating_must_be_a_finite_number_on_the_scale(served, ratings, message):
    frame = FOLD_IN.assign(rating=ratings)
    for task in ("predict", "recommend"):
        assert "Traceback" not in refusal(served, frame, {"task": task})
        with pytest.raises(ValueError, match=message):
            answer_request(served, frame, {"task": task})


def test_a_missing_rating_is_no_rating(served):
    # NaN, None and pd.NA alike: the row is a pair to predict.
    for missing in (math.nan, None, pd.NA):
        frame = PAIRS.assign(rating=pd.Series([missing, missing], dtype=object))
        pd.testing.assert_frame_equal(
            answer_request(served, frame), answer_request(served, PAIRS)
        )


@pytest.mark.parametrize(
    ("ids", "quoted"),
    [
        (pd.Series([1e29]), "[1e+29]"),
        (pd.Series([1e29], dtype=object), "[1e+29]"),
        (pd.Series([2**64 - 1], dtype=np.uint64), "[18446744073709551615]"),
        (pd.Series([2**64 - 1], dtype=object), "[18446744073709551615]"),
        (
            pd.Series([10**400], dtype=object),
            "[100000000000000000...0000000000000000000]",
        ),
        (pd.Series([-1]), "[-1]"),
        (pd.Series([2**31]), "[2147483648]"),
        (pd.Series([-3.0]), "[-3.0]"),
    ],
)
def test_an_id_out_of_range_is_quoted_as_sent(served, ids, quoted):
    frame = pd.DataFrame({"userId": ids, "movieId": 1})
    assert refusal(served, frame) == (
        f"Column 'userId' must hold ids in 0..2147483647; got {quoted}."
    )


def test_a_long_string_is_quoted_by_its_ends(served):
    frame = pd.DataFrame({"userId": ["/" * 100_000], "movieId": 1})
    assert refusal(served, frame).endswith(f"not ['{'/' * 17}...{'/' * 18}'].")


def test_duplicate_columns_and_tables_of_another_kind_are_refused(served):
    twice = pd.DataFrame([[10, 1, 10]], columns=["userId", "movieId", "userId"])
    assert refusal(served, twice) == (
        "The request has the column(s) ['userId'] more than once: send each column "
        "once."
    )
    assert refusal(served, [[10, 1]]).endswith("got a list.")


SMALL = ServingLimits(max_request_rows=4, max_answer_rows=6, max_fold_in_users=1)


@pytest.fixture
def no_work(monkeypatch):
    """Every function that does a request's work fails if called."""

    def fail(*args, **kwargs):
        raise AssertionError("a request past a limit started its work")

    for name in WORK:
        monkeypatch.setattr(requests, name, fail)


@pytest.mark.parametrize(
    ("frame", "params", "message"),
    [
        (
            pd.DataFrame({"userId": range(5), "movieId": 1}),
            {},
            "The request has 5 rows; one request may ask for at most 4 "
            "(max_request_rows: set RATING_PREDICTION_MAX_REQUEST_ROWS where the "
            "model is served to change it).",
        ),
        (
            pd.DataFrame({"userId": [10, 20, 30, 20]}),
            {"task": "recommend", "k": 3},
            "The request asks for 9 answer rows (3 distinct userIds x k 3); one "
            "request may ask for at most 6 (max_answer_rows: set "
            "RATING_PREDICTION_MAX_ANSWER_ROWS where the model is served to change "
            "it).",
        ),
        (
            pd.DataFrame({"movieId": [1, 2]}),
            {"task": "similar", "k": 4},
            "The request asks for 8 answer rows (2 distinct movieIds x k 4)",
        ),
        (
            pd.DataFrame({"userId": [998, 999], "movieId": 1, "rating": 4.0}),
            {},
            "The request folds in 2 users from ratings of their own; one request "
            "may ask for at most 1 (max_fold_in_users: set "
            "RATING_PREDICTION_MAX_FOLD_IN_USERS",
        ),
    ],
)
@pytest.mark.usefixtures("no_work")
def test_a_request_past_a_limit_is_refused_before_any_work(
    served, ranked_served, frame, params, message
):
    for model in (served, ranked_served):
        assert refusal(model, frame, params, SMALL).startswith(message)


def test_the_issues_oversized_recommend_is_refused_at_once(served):
    # 300,000 distinct users and k 10,000: 14,961,614 rows were built before.
    users = pd.DataFrame({"userId": np.arange(300_000)})
    big_k = refusal(served, users, {"task": "recommend", "k": 10_000})
    assert big_k == "'k' must be less than or equal to 1000, got 10000."
    assert "3,000,000 answer rows" in refusal(served, users, {"task": "recommend"})


def test_limits_are_set_by_environment_variables():
    assert serving_limits({}) == ServingLimits()
    assert ServingLimits() == ServingLimits(
        max_request_rows=1_000_000, max_answer_rows=100_000, max_fold_in_users=1_000
    )
    environ = {
        "RATING_PREDICTION_MAX_ANSWER_ROWS": "50",
        "RATING_PREDICTION_MAX_REQUEST_ROWS": "2_000_000",
    }
    assert serving_limits(environ) == ServingLimits(
        max_request_rows=2_000_000, max_answer_rows=50
    )
    for bad in ("0", "-1", "1.5", "many", ""):
        with pytest.raises(ValueError) as refused:
            serving_limits({"RATING_PREDICTION_MAX_FOLD_IN_USERS": bad})
        assert str(refused.value) == (
            "RATING_PREDICTION_MAX_FOLD_IN_USERS must be a positive integer "
            f"(ServingLimits.max_fold_in_users), got {bad!r}."
        )


@pytest.fixture
def pyfunc(served, monkeypatch) -> ServedModelPyfunc:
    """The MLflow model's class around ``served``, loaded as ``load_context`` would
    load it, with the answer-rows limit set by the environment."""
    monkeypatch.setenv("RATING_PREDICTION_MAX_ANSWER_ROWS", "3")
    model = ServedModelPyfunc()
    model.limits = serving_limits(os.environ)
    model.served = served
    return model


def test_the_pyfunc_refuses_with_400_and_only_its_own_message(pyfunc):
    with pytest.raises(RequestFailed) as refused:
        pyfunc.predict(None, FOLD_IN, {"regularization": math.nan})
    error = refused.value
    assert error.get_http_status_code() == 400
    # MLflow's scoring server puts the request before the message it answers with.
    error.message = f"Failed to predict data '{FOLD_IN}'. \nError: {error.message}"
    assert json.loads(error.serialize_as_json())["message"] == (
        "'regularization' must be a finite number, got nan."
    )
    with pytest.raises(RequestFailed, match="RATING_PREDICTION_MAX_ANSWER_ROWS"):
        pyfunc.predict(None, PAIRS, {"task": "recommend", "k": 2})


def test_an_unexpected_error_is_logged_and_answered_in_short(
    pyfunc, monkeypatch, caplog
):
    def broken(*args, **kwargs):
        raise RuntimeError(f"disk full at {SERVER_PATHS[0]}/data")

    monkeypatch.setattr(requests, "score_pairs", broken)
    with caplog.at_level(logging.ERROR), pytest.raises(RequestFailed) as failed:
        pyfunc.predict(None, PAIRS)
    error = failed.value
    assert error.get_http_status_code() == 500
    assert error.error_code == ErrorCode.Name(ErrorCode.INTERNAL_ERROR)
    body = error.serialize_as_json()
    assert_clean(body)
    assert "see the server's log" in json.loads(body)["message"]
    # The trace, with the server's paths, is in the server's log only.
    assert "disk full" in caplog.text
    assert caplog.records[-1].exc_info is not None


def test_an_answer_with_nan_is_an_error_of_the_server(served, monkeypatch):
    def nan_scores(served, users, movies, timestamps=None):
        return {
            "prediction": np.full(len(users), np.nan),
            "known_user": np.ones(len(users), bool),
            "known_movie": np.ones(len(users), bool),
        }

    monkeypatch.setattr(requests, "score_pairs", nan_scores)
    with pytest.raises(ArithmeticError, match="'prediction' holds NaN"):
        answer_request(served, PAIRS)


# Property-based: any request, answered or refused, never a NaN or a trace. Each
# request is clean or hostile in its params, its columns or both, so that about a
# quarter are valid requests, answered, and every check is reached.
ANY_VALUE = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)
VALID_ID = st.integers(0, 45)  # known (users 10-40, movies 1-5) and unknown ids
VALID_RATING = st.one_of(st.sampled_from([0.5, 2.0, 4.5, 5.0]), st.none())
VALID_PARAMS = {
    "task": st.sampled_from(["predict", "recommend", "similar"]),
    "k": st.integers(1, 12),
    "regularization": st.floats(0.01, 100),
    "popularity_weight": st.floats(0, 1),
}
HOSTILE_PARAMS = {
    name: st.one_of(valid, ANY_VALUE, st.integers(-5, 1_500))
    for name, valid in VALID_PARAMS.items()
} | {"user": ANY_VALUE}
ANY_LIMITS = st.sampled_from(
    [requests.DEFAULT_LIMITS, SMALL, ServingLimits(max_answer_rows=20)]
)
COLUMNS = ["userId", "movieId", "rating"]


@st.composite
def any_request(draw) -> tuple[pd.DataFrame, dict]:
    """A request table and its params. A hostile table has any of the columns (one
    maybe twice), each of values of any kind, as pandas infers its type or as Python
    objects (as MLflow may pass them)."""
    hostile = draw(st.sampled_from(["none", "params", "table", "both"]))
    params = draw(
        st.fixed_dictionaries(
            {},
            optional=HOSTILE_PARAMS if hostile in ("params", "both") else VALID_PARAMS,
        )
    )
    clean = hostile in ("none", "params")
    columns = draw(
        st.sampled_from([COLUMNS[:2], COLUMNS])
        if clean
        else st.lists(st.sampled_from(COLUMNS), max_size=4)
    )
    rows = draw(st.integers(0, 6))
    series = []
    for column in columns:
        kind = VALID_RATING if column == "rating" else VALID_ID
        if not clean:
            kind = st.one_of(kind, ANY_VALUE)
        values = draw(st.lists(kind, min_size=rows, max_size=rows))
        try:
            series.append(pd.Series(values, dtype=None if clean else object))
        except (OverflowError, ValueError):
            series.append(pd.Series(values, dtype=object))
    frame = pd.concat(series, axis=1) if series else pd.DataFrame(index=range(rows))
    frame.columns = columns
    return frame, params


def check_answered_or_refused(served, request, limits) -> None:
    frame, params = request
    try:
        answer = answer_request(served, frame, params, limits)
    except ValueError as refused:
        assert_clean(str(refused))
        event(f"refused: {str(refused)[:25]}")  # --hypothesis-show-statistics
        return
    event(f"answered: {params.get('task', 'predict')}")
    records = answer.to_dict(orient="records")
    # Strict JSON, as a client parses it: NaN or infinity would fail here.
    json.dumps(records, allow_nan=False, default=lambda value: value.item())
    if params.get("task", "predict") == "predict":
        own_ratings = frame["rating"].notna().sum() if "rating" in frame else 0
        assert len(answer) == len(frame) - own_ratings


PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


@PROPERTY_SETTINGS
@given(request=any_request(), limits=ANY_LIMITS)
def test_any_request_is_answered_or_refused_clearly(served, request, limits):
    check_answered_or_refused(served, request, limits)


@PROPERTY_SETTINGS
@given(request=any_request(), limits=ANY_LIMITS)
def test_any_request_to_a_ranker_is_answered_or_refused_clearly(
    ranked_served, request, limits
):
    check_answered_or_refused(ranked_served, request, limits)


@PROPERTY_SETTINGS
@given(request=any_request(), limits=ANY_LIMITS)
def test_any_request_to_string_ids_is_answered_or_refused_clearly(
    string_served, request, limits
):
    check_answered_or_refused(string_served, request, limits)
