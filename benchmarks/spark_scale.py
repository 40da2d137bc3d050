"""The Spark path at scale: data preparation, spark_als and the batch recommendations
of ``kedro run --env spark`` on synthetic ratings of growing size, on ``local[2]``.

For each size (``--sizes 10M,25M,100M``; ``k``/``M`` suffixes) a fresh process:

1. writes a synthetic ratings file with Spark (``spark.range``: no rating ever sits on
   the driver) as one parquet file: ``ratings / 200`` users (200 ratings each, distinct
   movies), 20,000 movies (the Netflix Prize's order), ratings from biases and two
   latent factors, in half stars;
2. runs, in a copy of the project's configuration (``--env spark``, ``ingestion.dataset:
   file``, the ``hash`` split), three Kedro sessions, each timed: ``spark_preparation``
   (ingestion, checks, id mappings, split), ``spark_als`` (the spark_modelling nodes up
   to metrics.json: both Spark variants fitted, exported and evaluated on Spark, the
   test ranking on a 5,000-user sample) and ``batch recommendations`` (top-10 of every
   user, written from the cluster). The served model (a one-machine artifact, which
   holds every user's rated movies) is not built;
3. samples, twice a second, the resident memory of the driver (this Python process),
   of the JVM (in ``local`` mode it is the driver's JVM and the executors at once) and
   of the Python workers, and reads Spark's own stage metrics (memory and disk spill,
   shuffle written) from its REST API (``/api/v1/applications/<id>/stages``).

Each size's figures are printed as JSON lines and, at the end, as a markdown table
(``--out`` saves them). The time per rating and the driver's peak RSS of the largest
size against the smallest are the issue's acceptance (each at most 1.5x).

Run: ``python benchmarks/spark_scale.py --sizes 10M,25M [--driver-memory 6g]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RATINGS_PER_USER = 200
N_MOVIES = 20_000
# Strides of the movies a user rates (offset + j * stride, modulo N_MOVIES): primes
# that do not divide 20,000, so a user's movies are distinct.
STRIDES = [3, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43]
SAMPLE_SECONDS = 0.5
# The spark_als step runs the spark_modelling nodes up to these: every fit, export and
# evaluation on Spark.
EXPORTS = ["spark_als.model_weights", "spark_als_implicit.model_weights"]
STEPS = ("spark_preparation", "spark_als", "batch_recommendations")
# The spark_modelling nodes of the batch recommendations (the served models' choice
# from the saved configs and weights, then the lists).
BATCH_NODES = [
    "spark_als.offer_trained_model_node",
    "spark_als_implicit.offer_trained_model_node",
    "select_spark_rating_model_node",
    "select_spark_ranker_node",
    "recommend_on_spark_node",
]


def parse_size(text: str) -> int:
    """``10M`` -> 10,000,000; ``500k`` -> 500,000; plain integers as they are."""
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1].lower(), 1)
    return int(float(text[:-1] if factor > 1 else text) * factor)


def spark_properties(args: argparse.Namespace, ui_port: int) -> dict[str, str]:
    """The session's settings: ``local[2]``, the UI on (its REST API has the spill
    figures) and keeping every stage, the workers in this interpreter."""
    return {
        "spark.master": args.master,
        "spark.driver.memory": args.driver_memory,
        "spark.sql.shuffle.partitions": str(args.shuffle_partitions),
        "spark.ui.enabled": "true",
        "spark.ui.port": str(ui_port),
        "spark.ui.retainedStages": "100000",
        "spark.ui.retainedJobs": "100000",
        "spark.ui.showConsoleProgress": "false",
        "spark.pyspark.python": sys.executable,
        "spark.local.dir": str(Path(args.workdir) / "spark-local"),
    }


def write_synthetic_ratings(spark: Any, n_ratings: int, path: Path) -> dict[str, int]:
    """``n_ratings`` ratings computed by the executors and written as one parquet
    file (``ingestion.file`` names a file): user ``i mod U``, movie
    ``(offset_u + (i div U) * stride_u) mod M``."""
    from pyspark.sql import functions as F  # noqa: PLC0415

    n_users = max(1, n_ratings // RATINGS_PER_USER)
    index = F.col("id")
    user = index % n_users
    step = index / n_users
    unit = lambda column, salt: (F.xxhash64(column, F.lit(salt)) % 10_000) / 10_000.0  # noqa: E731
    stride = F.element_at(
        F.array(*(F.lit(s) for s in STRIDES)),
        (F.abs(F.xxhash64(user)) % len(STRIDES) + 1).cast("int"),
    )
    movie = (
        F.abs(F.xxhash64(user, F.lit(7))) % N_MOVIES + step.cast("long") * stride
    ) % N_MOVIES
    raw = (
        3.5
        + (unit(user, 1) - 0.5)
        + (unit(movie, 2) - 0.5)
        + 1.5 * (unit(user, 3) - 0.5) * (unit(movie, 4) - 0.5)
        + 1.5 * (unit(user, 5) - 0.5) * (unit(movie, 6) - 0.5)
        + 0.5 * (unit(index, 8) - 0.5)
    )
    rating = F.least(F.greatest(F.round(raw * 2) / 2, F.lit(0.5)), F.lit(5.0))
    partitions = max(2, n_ratings // 2_000_000)
    folder = path.with_suffix(".parts")
    spark.range(n_ratings, numPartitions=partitions).select(
        (user + 1).cast("int").alias("userId"),
        (movie + 1).cast("int").alias("movieId"),
        rating.cast("float").alias("rating"),
        (F.lit(900_000_000) + index).alias("timestamp"),
    ).coalesce(1).write.mode("overwrite").parquet(str(folder))
    # ingestion.file names one file: the single part, moved into place.
    if path.is_dir():
        shutil.rmtree(path)
    next(folder.glob("part-*.parquet")).replace(path)
    shutil.rmtree(folder)
    return {"ratings": n_ratings, "users": n_users, "movies": N_MOVIES}


class Sampler:
    """Peak resident memory of this process, of the JVM (its child) and of the
    Python workers (the JVM's children), sampled in a thread from Linux's /proc."""

    def __init__(self) -> None:
        self.peaks = {"driver_rss": 0, "jvm_rss": 0, "workers_rss": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.peaks

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            sample = {"driver_rss": resident_bytes(me), "jvm_rss": 0, "workers_rss": 0}
            for child in descendants(me):
                key = "jvm_rss" if command_name(child) == "java" else "workers_rss"
                sample[key] += resident_bytes(child)
            for key, value in sample.items():
                self.peaks[key] = max(self.peaks[key], value)
            time.sleep(SAMPLE_SECONDS)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children of each of its threads, recursively)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *descendants(child)]
    return found


def resident_bytes(pid: int) -> int:
    """VmRSS of ``pid`` (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def stage_totals(spark: Any) -> dict[str, int]:
    """Spill and shuffle written over every stage so far, from Spark's REST API."""
    url = spark.sparkContext.uiWebUrl
    app = spark.sparkContext.applicationId
    with urllib.request.urlopen(f"{url}/api/v1/applications/{app}/stages") as answer:
        stages = json.load(answer)
    keys = ("memoryBytesSpilled", "diskBytesSpilled", "shuffleWriteBytes")
    return {key: sum(stage.get(key, 0) for stage in stages) for key in keys}


def project_copy(workdir: Path, properties: dict[str, str]) -> Path:
    """The project's configuration in ``workdir/project``, with this machine's Spark
    settings in its conf/local/spark.yml; the package is the installed one."""
    project = workdir / "project"
    if project.exists():
        shutil.rmtree(project)
    shutil.copytree(PROJECT_ROOT / "conf", project / "conf")
    shutil.copy(PROJECT_ROOT / "pyproject.toml", project)
    (project / "src").mkdir()
    (project / "conf" / "local" / "spark.yml").write_text(yaml.safe_dump(properties))
    return project


def runtime_parameters(ratings: Path) -> dict[str, Any]:
    """The run's parameters: the synthetic file, every movie, one candidate per
    Spark variant (no search, no refit: the time of one fit), the test ranking on a
    sample of 5,000 users."""
    single = {"max_iter": [10], "reg_param": [0.1], "refit_on_train_val": False}
    return {
        "ingestion": {
            "dataset": "file",
            "file": {
                "path": str(ratings),
                "columns": {
                    "user": "userId",
                    "item": "movieId",
                    "rating": "rating",
                    "timestamp": "timestamp",
                },
                "rating_scale": [0.5, 5.0],
            },
        },
        "processing": {"top_n_movies": None},
        "training": {
            "spark_als": single | {"rank": [10]},
            "spark_als_implicit": single | {"rank": [10], "alpha": [1.0]},
        },
        "evaluation": {"ranking": {"max_users": 5000, "popularity_weight": 0}},
        "inference": {"batch_recommend": {"top_k": 10, "block_size": 512}},
    }


def run_steps(project: Path, parameters: dict[str, Any], spark: Any) -> dict[str, Any]:
    """The three sessions, each timed with its spill and shuffle."""
    from kedro.framework.session import KedroSession  # noqa: PLC0415
    from kedro.framework.startup import bootstrap_project  # noqa: PLC0415

    bootstrap_project(project)
    runs = {
        "spark_preparation": {"pipeline_names": ["spark_preparation"]},
        "spark_als": {
            "pipeline_names": ["spark_modelling"],
            "to_outputs": ["metrics", *EXPORTS],
        },
        "batch_recommendations": {
            "pipeline_names": ["spark_modelling"],
            "node_names": BATCH_NODES,
        },
    }
    figures = {}
    for step, arguments in runs.items():
        before = stage_totals(spark)
        started = time.perf_counter()
        with KedroSession.create(
            project_path=project, env="spark", runtime_params=parameters
        ) as session:
            session.run(**arguments)
        seconds = time.perf_counter() - started
        after = stage_totals(spark)
        figures[step] = {"seconds": round(seconds, 1)} | {
            key: after[key] - before[key] for key in after
        }
    return figures


def one_size(args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of one size, in this (fresh) process."""
    from pyspark.sql import SparkSession  # noqa: PLC0415

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    properties = spark_properties(args, args.ui_port)
    project = project_copy(workdir, properties)
    os.chdir(project)
    sampler = Sampler()
    sampler.start()
    builder = SparkSession.builder
    for key, value in properties.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    n_ratings = parse_size(args.one)
    started = time.perf_counter()
    shape = write_synthetic_ratings(spark, n_ratings, workdir / "ratings.parquet")
    generation = round(time.perf_counter() - started, 1)
    steps = run_steps(project, runtime_parameters(workdir / "ratings.parquet"), spark)
    peaks = sampler.stop()
    metrics = json.loads((project / "data/spark/08_reporting/metrics.json").read_text())
    return shape | {
        "generation_seconds": generation,
        "steps": steps,
        **peaks,
        "test_rmse": metrics["spark_als"]["test"]["rmse"],
        "test_ndcg@10": metrics["spark_als_implicit"]["test"]["ndcg@10"],
    }


def table(results: list[dict[str, Any]]) -> str:
    """The figures as markdown: per size, each step's time and time per rating, the
    peaks and the spill."""
    lines = [
        "| ratings | users | preparation | spark_als | batch recs | total per rating "
        "| driver peak RSS | JVM peak RSS | workers peak RSS | spill (memory / disk) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        steps = result["steps"]
        total = sum(step["seconds"] for step in steps.values())
        spilled = [
            sum(step[key] for step in steps.values())
            for key in ("memoryBytesSpilled", "diskBytesSpilled")
        ]
        lines.append(
            f"| {result['ratings']:,} | {result['users']:,} "
            + "".join(f"| {steps[step]['seconds']:.0f} s " for step in STEPS)
            + f"| {1e6 * total / result['ratings']:.1f} µs "
            + f"| {result['driver_rss'] / 2**20:.0f} MiB | {result['jvm_rss'] / 2**20:.0f} MiB "
            + f"| {result['workers_rss'] / 2**20:.0f} MiB "
            + f"| {spilled[0] / 2**20:.0f} / {spilled[1] / 2**20:.0f} MiB |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10M,25M,100M")
    parser.add_argument("--workdir", default="/tmp/spark_scale")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--driver-memory", default="6g")
    parser.add_argument("--shuffle-partitions", type=int, default=16)
    parser.add_argument("--ui-port", type=int, default=4050)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_size(args)), flush=True)
        return
    results = []
    for size in args.sizes.split(","):
        workdir = Path(args.workdir) / size
        command = [sys.executable, __file__, "--one", size, "--workdir", str(workdir)]
        command += ["--master", args.master, "--driver-memory", args.driver_memory]
        command += ["--shuffle-partitions", str(args.shuffle_partitions)]
        command += ["--ui-port", str(args.ui_port)]
        answer = subprocess.run(command, capture_output=True, text=True, check=False)
        if answer.returncode != 0:
            sys.stderr.write(answer.stderr[-5000:])
            raise SystemExit(f"{size}: the run failed (exit {answer.returncode})")
        results.append(json.loads(answer.stdout.strip().splitlines()[-1]))
        print(json.dumps(results[-1]), flush=True)
    print(table(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
