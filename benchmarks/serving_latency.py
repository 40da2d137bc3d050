"""Serving latency, memory and batch top-K of the MLflow model at MovieLens-25M shape.

Builds a served biased MF of ML-25M's shape synthetically (162,541 users x 59,047
movies, 32-d factors, 20M rated pairs; no training) and, with ``--ranker``, a served
ranker of that shape beside it (``ease``: EASE^R on the base ``training.ease.max_items``
kept movies (``--ease-items`` sets another cap), a float32 B of that size squared;
``als``: the base ``training.als.factors``; both with about 22M train + val interactions, long-tailed
like MovieLens's), logs it as the MLflow model ``model`` in a temporary SQLite store,
then measures:

- one-row in-process ``predict`` (p50 <= 2 ms),
- one-row REST requests to ``mlflow models serve`` on 127.0.0.1 (p50 <= 10 ms,
  p99 <= 30 ms),
- a 1M-row request (under 1 s; its RSS delta, sampled every 2 ms during the call,
  at most the answer's size plus a fixed 64 MB scratch allowance),
- one-user in-process ``recommend``, top-10, by the model that recommends: the ranker
  when there is one, else the biased MF (p50 <= 5 ms),
- top-10 for all 162,541 users in blocks of users: under 3 minutes for the biased MF,
  under 60 s for a served ranker (``--batch-users N`` times the first N users only and
  says so).

Run: ``python benchmarks/serving_latency.py [--ranker ease|als] [--requests N]
[--threads N] [--skip-predict] [--skip-batch]``; every figure is printed with its bound
and ``ok`` or ``FAIL``. Requests are bounded in count and each in time; the server is
stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import polars as pl
import torch

from rating_prediction.data.ids import IdIndex
from rating_prediction.models.config import ModelConfig, build_model
from rating_prediction.parameters.training import AlsParameters, EaseParameters
from rating_prediction.serving.artifacts import save_served_model
from rating_prediction.serving.bundle import ServedModel, ServedRanker
from rating_prediction.serving.pyfunc import log_served_model
from rating_prediction.serving.ranker import RankerFeedback
from rating_prediction.serving.rated import RatedIndex
from rating_prediction.serving.recommend import (
    recommend_all,
    recommendation_exclusions,
)

N_USERS, N_MOVIES, DIM, N_RATED = 162_541, 59_047, 32, 20_000_000
BIG_REQUEST_ROWS = 1_000_000
SCRATCH_ALLOWANCE_MB = 64
SERVER_START_TIMEOUT_S = 180
REQUEST_TIMEOUT_S = 10
# The served ranker: ML-25M's train + val interactions (90% of 25,000,095 ratings, 138
# per user on average).
N_INTERACTIONS = 22_500_000
BATCH_BOUND_S = {"none": 180, "ease": 60, "als": 60}


def synthetic_served_model(seed: int = 0) -> ServedModel:
    """A biased MF of ML-25M's shape with random factors; every id seen in training."""
    generator = torch.Generator().manual_seed(seed)
    config = ModelConfig(
        variant="biased_mf",
        n_users=N_USERS,
        n_movies=N_MOVIES,
        model_kwargs={"embedding_dim": DIM, "global_mean": 3.5},
    )
    model = build_model(config)
    with torch.no_grad():
        for table in (model.user_factors, model.movie_factors):
            table.weight.copy_(
                torch.randn(table.weight.shape, generator=generator) * 0.2
            )
        for table in (model.user_bias, model.movie_bias):
            table.weight.copy_(
                torch.randn(table.weight.shape, generator=generator) * 0.3
            )
    rng = np.random.default_rng(seed)
    user_ids = np.arange(1, N_USERS + 1, dtype=np.int64)
    movie_ids = np.sort(rng.choice(250_000, N_MOVIES, replace=False)) + 1
    rated = RatedIndex.from_indices(
        rng.integers(0, N_USERS, N_RATED), rng.integers(0, N_MOVIES, N_RATED), N_USERS
    )
    return ServedModel(
        config=config,
        state_dict=model.state_dict(),
        users=IdIndex(user_ids, np.ones(N_USERS, dtype=bool)),
        movies=IdIndex(movie_ids, np.ones(N_MOVIES, dtype=bool)),
        movie_titles=pl.Series([f"Movie {i}" for i in movie_ids], dtype=pl.String),
        rated=rated,
        split_fingerprint="synthetic",
        movie_rating_counts=np.bincount(rated.movies, minlength=N_MOVIES),
    )


def synthetic_history(
    n_movies: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """About ``N_INTERACTIONS`` distinct (user, movie) pairs, ``movie < n_movies``,
    sorted by user then movie: popularity falls as (rank + 100)^-1, as MovieLens's."""
    popularity = (np.arange(n_movies) + 100.0) ** -1.0
    movies = rng.choice(n_movies, N_INTERACTIONS, p=popularity / popularity.sum())
    users = rng.integers(0, N_USERS, N_INTERACTIONS)
    pairs = np.unique(users * n_movies + movies)
    return pairs // n_movies, (pairs % n_movies).astype(np.int64)


def synthetic_ranker(kind: str, ease_items: int, seed: int = 0) -> ServedRanker:
    """A served ``ease`` (on ``ease_items`` kept movies) or ``als`` ranker of ML-25M's
    shape with random weights; every user known, the history its interactions."""
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    if kind == "ease":
        users, columns = synthetic_history(ease_items, rng)
        items = np.sort(rng.choice(N_MOVIES, ease_items, replace=False))
        movies = items[columns]
        weights = torch.randn(ease_items, ease_items, generator=generator) * 0.01
        weights.fill_diagonal_(0.0)
        counts = np.bincount(users, minlength=N_USERS)
        state = {
            "items": torch.from_numpy(items),
            "item_weights": weights,
            "user_offsets": torch.from_numpy(np.concatenate([[0], np.cumsum(counts)])),
            "user_items": torch.from_numpy(columns.astype(np.int32)),
            "user_values": torch.ones(len(columns)),
        }
        kwargs = {"n_items": ease_items, "n_interactions": len(columns)}
    else:
        users, movies = synthetic_history(N_MOVIES, rng)
        als = AlsParameters()
        state = {
            "user_factors": torch.randn(N_USERS, als.factors, generator=generator),
            "item_factors": torch.randn(N_MOVIES, als.factors, generator=generator),
            "fitted_movies": torch.ones(N_MOVIES, dtype=torch.bool),
        }
        kwargs = {
            "n_factors": als.factors,
            "regularization": als.regularization,
            "alpha": als.alpha,
        }
    config = ModelConfig(
        variant=kind, n_users=N_USERS, n_movies=N_MOVIES, model_kwargs=kwargs
    )
    return ServedRanker(
        config=config,
        state_dict=state,
        feedback=RankerFeedback(),
        users=IdIndex(np.arange(1, N_USERS + 1), np.ones(N_USERS, dtype=bool)),
        history=RatedIndex.from_indices(users, movies, N_USERS),
    )


def percentiles(label: str, seconds: list[float]) -> dict[str, float]:
    """p50, p95 and p99 of ``seconds`` in ms, printed after ``label``."""
    values = np.array(seconds) * 1000
    figures = {f"p{q}": float(np.percentile(values, q)) for q in (50, 95, 99)}
    print(f"{label}: " + ", ".join(f"{k} {v:.3f} ms" for k, v in figures.items()))
    return figures


def report(name: str, value: float, bound: float, unit: str) -> bool:
    ok = value <= bound
    print(
        f"{name:<48} {value:>10.2f} {unit:<3} (bound {bound:g} {unit}) {'ok' if ok else 'FAIL'}"
    )
    return ok


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_during(call):
    """(result, seconds, peak RSS in MB) of ``call()``, RSS sampled every 2 ms."""
    peak, done = [rss_mb()], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    start = time.perf_counter()
    result = call()
    seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    return result, seconds, max(peak[0], rss_mb())


def load_model(model_uri: str):
    start = time.perf_counter()
    model = mlflow.pyfunc.load_model(model_uri)
    print(
        f"load_model (built once)                          {time.perf_counter() - start:>10.2f} s"
    )
    return model


def in_process(model, served: ServedModel, n_requests: int) -> list[bool]:
    rng = np.random.default_rng(1)
    requests = [
        pd.DataFrame(
            {"userId": [int(rng.integers(1, N_USERS + 1))], "movieId": [int(m)]}
        )
        for m in rng.choice(served.movies.ids, n_requests)
    ]
    for request in requests[:50]:
        model.predict(request)
    seconds = []
    for request in requests:
        start = time.perf_counter()
        model.predict(request)
        seconds.append(time.perf_counter() - start)
    figures = percentiles(f"in-process one-row predict: {n_requests} calls", seconds)
    return [
        report("in-process one-row predict p50", figures["p50"], 2, "ms"),
        *big_request(model, served, rng),
    ]


def one_user_recommend(model, served: ServedModel, n_requests: int) -> list[bool]:
    """p50 of ``n_requests`` in-process top-10 requests for one known user each,
    after 50 warm-ups."""
    rng = np.random.default_rng(3)
    requests = [
        pd.DataFrame({"userId": [int(user)]})
        for user in rng.integers(1, N_USERS + 1, n_requests + 50)
    ]
    params = {"task": "recommend", "k": 10}
    seconds = []
    for i, request in enumerate(requests):
        start = time.perf_counter()
        answer = model.predict(request, params=params)
        if i >= 50:
            seconds.append(time.perf_counter() - start)
    recommender = served.answered_by["recommend"]
    figures = percentiles(
        f"in-process one-user recommend by {recommender}: {n_requests} calls", seconds
    )
    assert len(answer) == 10 and set(answer["variant"]) == {recommender}
    return [report("in-process one-user recommend p50", figures["p50"], 5, "ms")]


def big_request(model, served: ServedModel, rng: np.random.Generator) -> list[bool]:
    big = pd.DataFrame(
        {
            "userId": rng.integers(1, N_USERS + 1, BIG_REQUEST_ROWS),
            "movieId": rng.choice(served.movies.ids, BIG_REQUEST_ROWS),
        }
    )
    model.predict(big.head(1000))
    before = rss_mb()
    answer, big_seconds, peak = peak_rss_during(lambda: model.predict(big))
    # The request was in memory before the call: the delta can only be its answer
    # and the scoring's scratch.
    own_mb = answer.memory_usage(deep=True).sum() / 2**20
    delta = peak - before
    print(
        f"1M-row request: {big_seconds:.3f} s, RSS before {before:.0f} MB, peak {peak:.0f} MB, delta {delta:.0f} MB; the answer holds {own_mb:.0f} MB"
    )
    return [
        report("1M-row request", big_seconds, 1, "s"),
        report(
            "1M-row request RSS delta beyond its answer",
            max(delta - own_mb, 0),
            SCRATCH_ALLOWANCE_MB,
            "MB",
        ),
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(server: subprocess.Popen, port: int) -> bool:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline and server.poll() is None:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return True
        except OSError:
            time.sleep(1)
    return False


def rest(
    model_uri: str, tracking_uri: str, served: ServedModel, n_requests: int, log: Path
) -> list[bool]:
    port = _free_port()
    with log.open("w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri]
            + ["--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)],
            env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        start = time.perf_counter()
        if not _wait_until_up(server, port):
            print(f"`mlflow models serve` did not start:\n{log.read_text()[-3000:]}")
            return [False]
        print(
            f"mlflow models serve up after                      {time.perf_counter() - start:>10.2f} s"
        )
        return one_row_requests(port, served, n_requests)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def one_row_requests(port: int, served: ServedModel, n_requests: int) -> list[bool]:
    """p50 and p99 of ``n_requests`` sequential one-row requests, after 50 warm-ups."""
    rng = np.random.default_rng(2)
    bodies = [
        json.dumps(
            {
                "dataframe_split": {
                    "columns": ["userId", "movieId"],
                    "data": [[int(rng.integers(1, N_USERS + 1)), int(m)]],
                }
            }
        )
        for m in rng.choice(served.movies.ids, n_requests + 50)
    ]
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=REQUEST_TIMEOUT_S
    )
    headers = {"Content-Type": "application/json"}
    seconds = []
    for i, body in enumerate(bodies):
        start = time.perf_counter()
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            print(f"request failed: {response.status}")
            return [False]
        if i >= 50:  # after a warm-up of 50
            seconds.append(time.perf_counter() - start)
    figures = percentiles(
        f"REST one-row request: {n_requests} sequential requests", seconds
    )
    return [
        report("REST one-row request p50", figures["p50"], 10, "ms"),
        report("REST one-row request p99", figures["p99"], 30, "ms"),
    ]


def batch_top_k(served: ServedModel, n_users: int | None) -> list[bool]:
    """Top-10 for every known user (the first ``n_users`` only, when given: the time
    for all is then extrapolated and marked so), as the pipeline's batch_recommend:
    blocks of 1,024 users for the biased MF, of 128 (its default block) for a
    ranker."""
    users = served.users.known_ids[:n_users]
    block_size = 1024 if served.ranker is None else 128
    start = time.perf_counter()
    top = recommend_all(
        served,
        users,
        recommendation_exclusions(served),
        10,
        block_size=block_size,
    )
    seconds = time.perf_counter() - start
    print(
        f"top-10 for {len(users):,} users by {served.answered_by['recommend']}: "
        f"{top.height:,} rows in {seconds:.1f} s"
    )
    label = "top-10 for all users"
    if len(users) < N_USERS:
        seconds *= N_USERS / len(users)
        label += f" (extrapolated from {len(users):,})"
    ranker = "none" if served.ranker is None else served.ranker.variant
    return [report(label, seconds, BATCH_BOUND_S[ranker], "s")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ranker", choices=["none", "ease", "als"], default="none")
    parser.add_argument(
        "--ease-items",
        type=int,
        default=EaseParameters().max_items,
        help="EASE^R's kept movies (default: the base training.ease.max_items)",
    )
    parser.add_argument("--skip-predict", action="store_true")
    parser.add_argument("--skip-batch", action="store_true")
    parser.add_argument("--batch-users", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"load average at start: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores, torch threads {args.threads}"
    )
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        tracking_uri = f"sqlite:///{tmp / 'mlflow.db'}"
        mlflow.set_tracking_uri(tracking_uri)
        served = synthetic_served_model()
        if args.ranker != "none":
            ranker = synthetic_ranker(args.ranker, args.ease_items)
            served = replace(served, ranker=ranker)
        save_served_model(served, tmp / "served_model")
        with mlflow.start_run() as run:
            log_served_model(tmp / "served_model")
        model_uri = f"runs:/{run.info.run_id}/model"
        model = load_model(model_uri)
        results = one_user_recommend(model, served, args.requests)
        if not args.skip_predict:
            results += in_process(model, served, args.requests)
            results += rest(
                model_uri, tracking_uri, served, args.requests, tmp / "serve.log"
            )
        del model
        if not args.skip_batch:
            results += batch_top_k(served, args.batch_users)
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")
    print("all bounds met" if all(results) else "SOME BOUNDS NOT MET")


if __name__ == "__main__":
    main()
