"""The README's and the docs' serving examples, run as a user runs them, from the root
of a project after a default ``kedro run``: each answer is the one the example says,
not a fallback (except the unknown user the examples show on purpose).

The Python example runs as written; the REST examples start the server with the
README's own ``mlflow models serve`` line (the run's id and a free port filled in) and
send every ``curl`` command of the README and of docs/serving.md's REST section with
curl itself. A new example needs its expected answer below, or the count fails."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from tests.project import PROJECT_ROOT
from tests.serving.rest import free_port, strict_json, wait_until_up
from tests.test_docs import README, code_blocks

SERVING_DOCS = PROJECT_ROOT / "docs" / "serving.md"
DEFAULT_PORT = "5001"
RANKERS = {"ease", "als", "bpr"}


def _known_pair_and_unknown_user(answer: list[dict]) -> None:
    assert [(row["userId"], row["movieId"]) for row in answer] == [
        (1, 31),
        (999999, 31),
    ]
    assert [row["fallback"] for row in answer] == [None, "unknown user"]
    assert [row["known_user"] for row in answer] == [True, False]
    assert all(0.5 <= row["prediction"] <= 5.0 for row in answer)


def _folded_in_user(answer: list[dict]) -> None:
    (row,) = answer
    assert (row["userId"], row["movieId"], row["fallback"]) == (999999, 33, None)


def _similar_movies(answer: list[dict]) -> None:
    assert [row["rank"] for row in answer] == [1, 2, 3, 4, 5]
    assert {row["movieId"] for row in answer} == {31}
    assert all(row["fallback"] is None for row in answer)
    assert all(row["similarMovieId"] != 31 for row in answer)


# Every curl example, in order: the README's, then docs/serving.md's.
CURL_EXPECTATIONS: list[Callable[[list[dict]], None]] = [
    _known_pair_and_unknown_user,
    _known_pair_and_unknown_user,
    _folded_in_user,
    _similar_movies,
]


@pytest.fixture
def default_run(default_kedro_run) -> Path:
    """A project after a default ``kedro run`` (its MLflow store the default
    ``mlflow.db`` in the project's root, as a user has it)."""
    assert default_kedro_run.returncode == 0, default_kedro_run.stderr[-3000:]
    return default_kedro_run.project


def _shell_commands(block: str) -> list[str]:
    """A bash block's commands, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    commands, pending = [], ""
    for line in joined.splitlines():
        if line.strip().startswith("#"):
            continue
        pending = f"{pending} {line.strip()}".strip()
        # A quoted JSON body may span lines: a command ends when its quotes close.
        if pending and pending.count("'") % 2 == 0:
            commands.append(pending)
            pending = ""
    return commands


def _rest_commands() -> tuple[str, list[str]]:
    """The README's `mlflow models serve` line and every curl command of the README
    and of docs/serving.md."""
    commands = [
        command
        for path in (README, SERVING_DOCS)
        for block in code_blocks(path.read_text(), "bash")
        for command in _shell_commands(block)
    ]
    serve = next(c for c in commands if c.startswith("mlflow models serve"))
    return serve, [c for c in commands if c.startswith("curl ")]


@pytest.mark.slow
def test_the_readme_python_example_answers_as_it_says(default_run, monkeypatch):
    (example,) = code_blocks(README.read_text(), "python")
    printed: list[pd.DataFrame] = []
    monkeypatch.chdir(default_run)
    try:
        exec(example, {"print": printed.append})  # noqa: S102 - the README's own code
    finally:
        mlflow.set_tracking_uri(None)
    pairs, recommended = printed
    _known_pair_and_unknown_user(pairs.to_dict(orient="records"))
    assert recommended["userId"].tolist() == [1] * 5
    assert recommended["rank"].tolist() == [1, 2, 3, 4, 5]
    assert recommended["fallback"].isna().all()
    assert set(recommended["variant"]) <= RANKERS


@pytest.mark.slow
def test_every_rest_example_answers_as_it_says(default_run, tmp_path):
    serve, curls = _rest_commands()
    assert len(curls) == len(CURL_EXPECTATIONS), curls
    client = mlflow.MlflowClient(f"sqlite:///{default_run / 'mlflow.db'}")
    (run,) = client.search_runs(client.search_experiments()[0].experiment_id)
    port = str(free_port())
    serve = serve.replace("<run_id>", run.info.run_id).replace(DEFAULT_PORT, port)
    environment = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    with (tmp_path / "serve.log").open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", *shlex.split(serve)],
            cwd=default_run,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so its workers stop with it
        )
    try:
        up = wait_until_up(server, f"http://127.0.0.1:{port}/ping")
        assert up, (tmp_path / "serve.log").read_text()
        for curl, expect in zip(curls, CURL_EXPECTATIONS, strict=True):
            command = curl.replace(DEFAULT_PORT, port).replace("curl ", "curl -s ", 1)
            answer = subprocess.run(
                ["bash", "-c", command], capture_output=True, check=True, timeout=60
            ).stdout
            expect(strict_json(answer)["predictions"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_the_examples_are_found():
    """The parsing above reads the docs as they are: one serve line, four curls."""
    serve, curls = _rest_commands()
    assert serve.startswith("mlflow models serve -m runs:/<run_id>/model")
    assert len(curls) == len(CURL_EXPECTATIONS)
    assert all(json.loads(re.search(r"-d '(.*)'", c, re.S)[1]) for c in curls)
