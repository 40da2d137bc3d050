"""Serving a logged model over REST for the tests: ``mlflow models serve`` on 127.0.0.1,
started in its own process group (so its workers stop with it), and strict JSON."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SERVER_START_TIMEOUT_S = 90
REQUEST_TIMEOUT_S = 30


@dataclass(frozen=True)
class Server:
    """A running ``mlflow models serve``: its invocations URL and process id."""

    url: str
    pid: int


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def strict_json(text: bytes) -> dict:
    """JSON as the standard has it: a bare NaN or Infinity is refused."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def post(url: str, body: str) -> tuple[int, dict]:
    """POST a JSON ``body``: the status and the strictly parsed answer."""
    request = urllib.request.Request(
        url, data=body.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, strict_json(response.read())
    except urllib.error.HTTPError as error:
        return error.code, strict_json(error.read())


def wait_until_up(server: subprocess.Popen, ping_url: str) -> bool:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(ping_url, timeout=2):
                return True
        except OSError:
            time.sleep(1)
    return False


@contextmanager
def serving(model_uri: str, tracking_uri: str, log_dir: Path) -> Iterator[Server]:
    """``mlflow models serve -m model_uri`` on a free port of 127.0.0.1 until the block
    ends; the test fails with the server's log if it does not start."""
    port = free_port()
    log_path = log_dir / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve"]
            + ["-m", model_uri, "--env-manager", "local"]
            + ["--host", "127.0.0.1", "-p", str(port)],
            env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group, so its workers stop with it
        )
    try:
        if not wait_until_up(process, f"http://127.0.0.1:{port}/ping"):
            pytest.fail(f"`mlflow models serve` did not start:\n{log_path.read_text()}")
        yield Server(f"http://127.0.0.1:{port}/invocations", process.pid)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
