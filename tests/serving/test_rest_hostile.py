"""The served model over REST, attacked: `mlflow models serve` on 127.0.0.1 gets
hundreds of malformed or hostile requests, the issue's oversized `recommend` among them.
Every answer the model gives is a 200 whose JSON parses strictly, or a 4xx with a short
JSON message that carries no trace, no server path and no echo of the request; the
server's memory stays put and it answers a normal request afterwards.

Some requests never reach the model: MLflow 3.17's scoring server refuses them itself,
and for a few of them its answer quotes the request back or carries its own stack trace
(docs/serving.md lists them). Those are checked for what MLflow does (a 4xx, a server
that goes on) and kept apart, so that the model's own answers are held to the rule.
"""

import asyncio
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow.pyfunc import scoring_server

from rating_prediction.serving import asgi, requests
from tests.serving.rest import Server, serving, strict_json
from tests.serving.test_pyfunc import (  # noqa: F401 - module-scoped fixtures
    run_id,
    tracking_uri,
)

pytestmark = pytest.mark.slow

REQUEST_TIMEOUT_S = 60
# The oversized request's time is nearly all MLflow's, before the model: it decodes the
# 3.5 MB of JSON twice and checks each `Any` value, 1.1 to 1.4 s on a 2-core machine.
# The model's own share is what this project controls, so that share is bounded,
# against the same request refused by MLflow after that work (best of three tries
# each); a bound on the whole would time the machine. The server's memory grows by
# less than 200 MB over all of this module's requests.
MODEL_SHARE_SECONDS = 0.25
RSS_GROWTH_MB = 200
OWN_MESSAGE_CHARS = 300  # the model's own refusals
MLFLOW_MESSAGE_CHARS = 1_000  # MLflow's (its protocol notice alone is 650)
SERVER_PATHS = (str(Path(__file__).parents[2]), sys.prefix, "site-packages", 'File "')
JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"


@pytest.fixture(scope="module")
def server(run_id, tracking_uri, tmp_path_factory) -> Iterator[Server]:  # noqa: F811
    """`mlflow models serve` of the logged model on 127.0.0.1."""
    with serving(
        f"runs:/{run_id}/model", tracking_uri, tmp_path_factory.mktemp("hostile")
    ) as running:
        yield running


def post(
    server: Server, body: str | bytes, content_type: str = JSON
) -> tuple[int, bytes, float]:
    """The status, body and seconds of one POST of ``body``."""
    data = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(
        server.url, data=data, headers={"Content-Type": content_type}
    )
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            status, answer = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, answer = error.code, error.read()
    return status, answer, time.monotonic() - start


def tree_rss_mb(pid: int) -> float:
    """The resident memory of ``pid`` and its descendants, from /proc (psutil is not
    a dependency of the project)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    total_kb, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total_kb += sum(
            int(line.split()[1])
            for line in status.splitlines()
            if line.startswith("VmRSS:")
        )
    return total_kb / 1024


def split(rows: str, columns: str = '["userId", "movieId"]', params: str = "") -> str:
    """A `dataframe_split` body; rows, columns and params as JSON text, so that `true`,
    NaN or a 400-digit integer go as written."""
    tail = f', "params": {params}' if params else ""
    return f'{{"dataframe_split": {{"columns": {columns}, "data": {rows}}}{tail}}}'


RATED = '["userId", "movieId", "rating"]'
HUGE = "1" + "0" * 400
# Values of every kind for an id, a rating or a param, as JSON text.
ID_VALUES = [
    "1.9999", "true", "false", "-1", "-3", "2147483648", "9223372036854775808",
    "18446744073709551615", "1e29", "-1e29", "1e308", '"10"', '""', '"abc"', "null",
    "[1]", '{"a": 1}', HUGE, "-0.5", "NaN", "Infinity", "-Infinity",
]  # fmt: skip
RATING_VALUES = [
    "true", "false", '"4"', '""', "[4]", '{"a": 4}', "-1", "0", "6", "5.5", "0.49",
    "1e400", "-Infinity", "Infinity", HUGE, "NaN", "null", "4.5",
]  # fmt: skip
REGULARIZATIONS = [
    "NaN", "Infinity", "-Infinity", "0", "-5", "0.0", "-1e-300", "1e-320", "null",
    "1e308", "5",
]  # fmt: skip
KS = ["0", "-1", "1001", "10000", "1000000000000", "1" + "0" * 30, "null", "1000"]
WEIGHTS = ["-0.1", "1.5", "NaN", "Infinity", "-Infinity", "null", "1e308", "1", "0"]
TASKS = ['"x"', '""', '"PREDICT"', "null", '"fold_in"', f'"{"a" * 10_000}"']
OTHER_FORMATS = [
    '{"inputs": {"userId": 10}}',
    '{"inputs": "abc"}',
    '{"inputs": [1, 2, 3]}',
    '{"inputs": {}}',
    '{"inputs": []}',
    '{"inputs": [{"userId": 10, "movieId": 1}]}',
    '{"inputs": {"userId": [[10]], "movieId": [[1]]}}',
    '{"inputs": {"userId": {"a": 1}}}',
    '{"inputs": {"userId": [10], "movieId": [1], "rating": [true]}}',
    '{"instances": 5}',
    '{"instances": [[10, 1]]}',
    '{"instances": [{"userId": 10, "movieId": 1}]}',
    '{"dataframe_records": [5]}',
    '{"dataframe_records": [[1, 2]]}',
    '{"dataframe_records": [{"userId": 10, "movieId": 1}, {"userId": 10}]}',
    '{"dataframe_split": {"columns": [1, 2], "data": [[10, 1]]}}',
    '{"dataframe_split": {"data": [[10, 1]]}}',
    '{"dataframe_split": {"columns": null, "data": [[10, 1]]}}',
    split("[[10, 1]]", '["user_id", "movieId"]'),
    split("[]"),
    split("[[10]]", '["userId"]'),
    '{"dataframe_split": {"columns": ["userId", "movieId"], "data": [[10, 1]], '
    '"index": [0, 0]}}',
]
NORMAL = [
    split("[[10, 1], [999, 1]]"),
    split("[[999, 1, 5.0], [999, 2, null]]", RATED, '{"regularization": 1}'),
    split("[[10, 1]]", params='{"task": "recommend", "k": 3}'),
    split("[[1]]", '["movieId"]', '{"task": "similar", "k": 2}'),
]


def model_requests() -> list[str]:
    """Requests that reach the model (MLflow passes them on): each answered, or
    refused by the model's own checks."""
    fold_in = "[[999, 1, 4.0], [999, 2, null]]"
    bodies = [split(f"[[{value}, 1]]") for value in ID_VALUES]
    bodies += [split(f"[[10, {value}]]") for value in ID_VALUES]
    bodies += [
        split(f"[[{value}]]", '["userId"]', '{"task": "recommend"}')
        for value in ID_VALUES
    ]
    bodies += [
        split(f"[[{value}]]", '["movieId"]', '{"task": "similar"}')
        for value in ID_VALUES
    ]
    for task in ('"predict"', '"recommend"'):
        bodies += [
            split(f"[[999, 1, {value}], [999, 2, null]]", RATED, f'{{"task": {task}}}')
            for value in RATING_VALUES
        ]
        bodies += [
            split(fold_in, RATED, f'{{"task": {task}, "regularization": {value}}}')
            for value in REGULARIZATIONS
        ]
    for task in ('"recommend"', '"similar"'):
        bodies += [
            split("[[10, 1]]", params=f'{{"task": {task}, "k": {k}}}') for k in KS
        ]
    bodies += [
        split("[[10, 1]]", params=f'{{"task": "recommend", "popularity_weight": {w}}}')
        for w in WEIGHTS
    ]
    bodies += [split("[[10, 1]]", params=f'{{"task": {task}}}') for task in TASKS]
    return bodies + OTHER_FORMATS + NORMAL


def oversized(users: int, k: int) -> str:
    """The issue's `recommend`: ``users`` distinct new users, top ``k`` each."""
    rows = json.dumps([[user] for user in range(10_000_000, 10_000_000 + users)])
    return split(rows, '["userId"]', f'{{"task": "recommend", "k": {k}}}')


def assert_clean_answer(status: int, answer: bytes, sent: bytes | str) -> dict:
    """A 200 whose JSON parses strictly, or a 4xx whose JSON message is short and
    carries no trace, no server path and no echo of the request."""
    assert status == 200 or 400 <= status < 500, (status, answer[:300])
    text = answer.decode()
    body = strict_json(answer)  # a bare NaN or Infinity fails here
    assert "Traceback" not in text and "stack_trace" not in body, text[:300]
    assert not any(path in text for path in SERVER_PATHS), text[:300]
    if status == 200:
        assert set(body) == {"predictions"}
        return body
    sent = sent.decode(errors="replace") if isinstance(sent, bytes) else sent
    assert len(sent) < 40 or sent not in text, text[:300]
    # MLflow's scoring server would put the request before the model's message.
    assert "Failed to predict data" not in text, text[:300]
    return body


def test_hostile_requests_get_short_answers_without_trace_path_or_echo(server):
    for body in NORMAL:  # warm-up: what a first answer allocates is no growth
        assert post(server, body)[0] == 200
    before = tree_rss_mb(server.pid)
    bodies = model_requests()
    assert len(bodies) >= 200
    refused = 0
    for body in bodies:
        status, answer, _ = post(server, body)
        message = assert_clean_answer(status, answer, body).get("message", "")
        assert len(message) < OWN_MESSAGE_CHARS, message
        refused += status != 200
    assert refused > 0.8 * len(bodies)
    assert tree_rss_mb(server.pid) - before < RSS_GROWTH_MB
    assert post(server, NORMAL[0])[0] == 200


@pytest.mark.parametrize(
    ("value", "sent"),
    [("NaN", "nan"), ("Infinity", "inf"), ("0", "0.0"), ("-5", "-5.0")],
)
@pytest.mark.parametrize("task", ["predict", "recommend"])
def test_a_bad_regularization_gets_400_naming_it(server, value, sent, task):
    params = f'{{"task": "{task}", "regularization": {value}}}'
    status, answer, _ = post(
        server, split("[[999, 1, 5.0], [999, 2, null]]", RATED, params)
    )
    assert status == 400
    message = strict_json(answer)["message"]
    assert message.startswith("'regularization' must be ")
    assert message.endswith(f"got {sent}.")


def test_the_oversized_recommend_is_refused_at_once_and_holds_nothing(server):
    status, normal, _ = post(server, NORMAL[2])
    assert status == 200
    before = tree_rss_mb(server.pid)
    # 300,000 distinct userIds and k 10,000: 3.5 MB, as in the issue.
    body = oversized(300_000, 10_000)
    assert 3e6 < len(body) < 4e6
    # MLflow refuses a `k` it cannot convert to the declared long itself, after all
    # the parsing the model's refusal waits for.
    by_mlflow = body.replace('"k": 10000', '"k": "x"')
    seconds, mlflow_seconds = [], []
    for _ in range(3):
        status, answer, took = post(server, body)
        assert status == 400
        message = assert_clean_answer(status, answer, body)["message"]
        assert message == "'k' must be less than or equal to 1000, got 10000."
        seconds.append(took)
        status, _, took = post(server, by_mlflow)
        assert status == 400
        mlflow_seconds.append(took)
    assert min(seconds) - min(mlflow_seconds) < MODEL_SHARE_SECONDS, (
        seconds,
        mlflow_seconds,
    )
    # Within every bound but the answer's size: refused naming the setting.
    status, answer, _ = post(server, oversized(300_000, 10))
    assert "RATING_PREDICTION_MAX_ANSWER_ROWS" in strict_json(answer)["message"]
    growth = tree_rss_mb(server.pid) - before
    assert growth < RSS_GROWTH_MB, growth
    assert post(server, NORMAL[2])[1] == normal


# Refused by MLflow's scoring server before the model, as MLflow 3.17 answers them.
# Each answer is a 4xx from a server that goes on; some quote the request back or
# carry MLflow's own trace (docs/serving.md), the others are held to the rule.
MLFLOW_CLEAN = [
    ("[1]", JSON),
    ("5", JSON),
    ("null", JSON),
    ('"x"', JSON),
    ("{}", JSON),
    ('{"foo": 1}', JSON),
    ('{"dataframe_records": 5}', JSON),
    ('{"dataframe_split": 5}', JSON),
    (split("[[10]]"), JSON),
    (split("5"), JSON),
    ('{"dataframe_split": {"columns": ["userId"], "data": [[1]], "dtype": "x"}}', JSON),
    (split("[[10, 1]]")[:-1] + ', "dataframe_records": []}', JSON),
]
# Its message quotes the request: a malformed body whole, or a preview of the table
# (params of a type MLflow cannot convert to the declared one, repeated columns,
# columns of different lengths).
MLFLOW_ECHOES = [
    ('{"dataframe_split": ', JSON),
    ("{", JSON),
    ("", JSON),
    (b"\xff\xfe{", JSON),
    (split("[[10, 1]]", params='{"k": "5"}'), JSON),
    (split("[[10, 1]]", params='{"k": 5.0}'), JSON),
    (split("[[10, 1]]", params='{"k": true}'), JSON),
    (split("[[10, 1]]", params='{"regularization": "nan"}'), JSON),
    (split("[[10, 1]]", params='{"regularization": true}'), JSON),
    (split("[[10, 1]]", params='{"task": 5}'), JSON),
    (split("[[10, 1]]", params="[1]"), JSON),
    (split("[[10, 1]]", '["userId", "userId"]'), JSON),
    ('{"inputs": {"userId": [10, 20], "movieId": [1]}}', JSON),
    ('{"inputs": null}', JSON),
]
# Its answer carries MLflow's stack trace: every CSV request (the `Any` columns have
# no pandas type to read a CSV with) and a body that is no parquet.
MLFLOW_TRACES = [("userId,movieId\n10,1\n", CSV), (b"PAR1 not parquet", PARQUET)]
# Answered 415 in plain text.
MLFLOW_PLAIN = [
    ("10,1", "text/plain"),
    (split("[[10, 1]]"), "application/json; charset=latin-1"),
    (split("[[10, 1]]"), "application/json; version=2"),
]


def test_what_mlflow_refuses_before_the_model(server):
    for body, content_type in MLFLOW_CLEAN:
        status, answer, _ = post(server, body, content_type)
        message = assert_clean_answer(status, answer, body)["message"]
        assert len(message) < MLFLOW_MESSAGE_CHARS
    for body, content_type in MLFLOW_ECHOES + MLFLOW_TRACES:
        status, answer, _ = post(server, body, content_type)
        assert status == 400, answer[:300]
        assert strict_json(answer)["error_code"] in {
            "BAD_REQUEST",
            "INVALID_PARAMETER_VALUE",
        }
    for body, content_type in MLFLOW_PLAIN:
        status, answer, _ = post(server, body, content_type)
        assert status == 415
        assert len(answer) < MLFLOW_MESSAGE_CHARS and b"Traceback" not in answer
    assert post(server, NORMAL[0])[0] == 200


def test_an_unexpected_error_gets_500_and_a_short_message_from_mlflows_app(
    run_id,  # noqa: F811
    monkeypatch,
):
    """MLflow's own scoring app (in process, so that the model can be broken): the
    client gets a short JSON message, the trace goes to the server's log."""

    def broken(*args, **kwargs):
        raise RuntimeError(f"disk full under {SERVER_PATHS[0]}")

    monkeypatch.setattr(requests, "score_pairs", broken)
    app = scoring_server.init(mlflow.pyfunc.load_model(f"runs:/{run_id}/model"))

    async def ask() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t"
        ) as client:
            return await client.post(
                "/invocations",
                content=split("[[10, 1]]"),
                headers={"Content-Type": JSON},
            )

    response = asyncio.run(ask())
    assert response.status_code == 500
    body = strict_json(response.content)
    assert body["error_code"] == "INTERNAL_ERROR"
    assert body["message"] == (
        "Internal error of the served model while answering the request: see the "
        "server's log."
    )
    assert "disk full" not in response.text and "stack_trace" not in body


def test_the_verified_server_answers_every_request_without_trace_path_or_echo(
    run_id,  # noqa: F811
):
    """verify-and-serve's app (MLflow's, scrubbed; in process): what MLflow refuses
    before the model gets a short message of what the server reads, without the trace
    or the echo `mlflow models serve` answers with; the model's own refusals pass as
    they are, naming the parameter."""
    app = asgi.scrubbed(
        scoring_server.init(mlflow.pyfunc.load_model(f"runs:/{run_id}/model"))
    )
    sent = MLFLOW_CLEAN + MLFLOW_ECHOES + MLFLOW_TRACES + MLFLOW_PLAIN
    model_refusal = split("[[10, 1]]", params='{"regularization": 0}')

    async def ask(body: str | bytes, content_type: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t"
        ) as client:
            return await client.post(
                "/invocations", content=body, headers={"Content-Type": content_type}
            )

    for body, content_type in [*sent, (model_refusal, JSON)]:
        response = asyncio.run(ask(body, content_type))
        assert 400 <= response.status_code < 500
        answer = assert_clean_answer(response.status_code, response.content, body)
        assert len(answer["message"]) < OWN_MESSAGE_CHARS * 2
    assert "'regularization'" in answer["message"]  # the model's, as it is
    assert asyncio.run(ask(NORMAL[0], JSON)).status_code == 200
