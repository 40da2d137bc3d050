"""A ratings file of the user's own at Netflix size, ingested against the synthetic release.

The acceptance of ``ingestion.dataset: file``: a ratings file in the user's own layout
streams through the ingestion within the time and memory of the synthetic release of the
same size. This script makes sure the ``--env netflix-size`` synthetic release exists
(generated in this process when it is absent or its settings changed), writes a copy of
its ``ratings.csv`` in an own layout beside it (``<raw_dir>/own-layout/ratings.csv``: the
header renamed to ``customer,product,stars,rated_at``, the rest copied in chunks, never
loaded), then runs under ``/usr/bin/time -v``, one after the other and ``--repeats``
times in turn:

- (a) ``kedro run --env netflix-size --pipelines data_ingestion``: the synthetic release,
  already generated, so the run reuses it (checked in its log);
- (b) the same with ``ingestion.dataset: file`` pointing at the own-layout copy
  (``rating_scale: [1, 5]``, ``timestamp_format: null``: Unix seconds), from a copy of
  ``conf`` with one more parameters file (``--conf-source``);
- (c) with ``--inferred-scale``: (b) with ``rating_scale: null`` (inferred).

After each run it reads ``data/02_intermediate/ratings.parquet`` (streamed) for its row
count, id dtypes, size and column sums, which must agree between the runs. It prints
every run, then a markdown table of the median wall time and maximum resident set size
of each and their ratios to (a). Each run overwrites ``data/02_intermediate`` as any
ingestion run does.

Run in the project root, small first (``--n-ratings`` other than the environment's
writes to a raw_dir of its own, ``data/01_raw/<env>-<n>``)::

    python benchmarks/own_file_ingestion.py --n-ratings 2000000
    python benchmarks/own_file_ingestion.py --repeats 3 --inferred-scale
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl
import yaml
from kedro.config import OmegaConfigLoader
from kedro.framework.project import settings
from kedro.framework.startup import bootstrap_project

from rating_prediction.movielens.synthetic import ensure_synthetic_release
from rating_prediction.parameters import IngestionParameters, parse

PROJECT_ROOT = Path(__file__).resolve().parents[1]
RATINGS = PROJECT_ROOT / "data" / "02_intermediate" / "ratings.parquet"
OWN_COLUMNS = {
    "user": "customer",
    "item": "product",
    "rating": "stars",
    "timestamp": "rated_at",
}
RELEASE_HEADER = b"userId,movieId,rating,timestamp"
COPY_CHUNK_BYTES = 64 * 1024**2
REUSED = "is current; reusing it"
READING_OWN = "Reading your ratings file"
RUNS = {
    "a": "synthetic release",
    "b": "own file, rating_scale [1, 5]",
    "c": "own file, rating_scale null (inferred)",
}

LOGGING_CONFIG = """\
version: 1
disable_existing_loggers: False
formatters:
  plain:
    format: "%(asctime)s %(name)s %(levelname)s %(message)s"
handlers:
  console:
    class: logging.StreamHandler
    stream: ext://sys.stderr
    formatter: plain
loggers:
  kedro:
    level: INFO
  rating_prediction:
    level: INFO
root:
  handlers: [console]
"""


def ingestion_parameters(env: str, params: dict[str, object]) -> IngestionParameters:
    """``ingestion`` as ``kedro run --env <env> --params ...`` would read it."""
    bootstrap_project(PROJECT_ROOT)
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / settings.CONF_SOURCE),
        env=env,
        runtime_params=params,
        **settings.CONFIG_LOADER_ARGS,
    )
    return parse(IngestionParameters, loader["parameters"]["ingestion"], "ingestion")


def own_layout_copy(release_ratings: Path, copy: Path) -> None:
    """``release_ratings`` with its header renamed to the own layout's, streamed in
    chunks to ``copy`` (kept when it is already the copy of this file)."""
    header = ",".join(OWN_COLUMNS.values()).encode()
    size = release_ratings.stat().st_size - len(RELEASE_HEADER) + len(header)
    if (
        copy.is_file()
        and copy.stat().st_size == size
        and copy.stat().st_mtime >= release_ratings.stat().st_mtime
    ):
        print(f"own-layout copy {copy} is current")
        return
    copy.parent.mkdir(parents=True, exist_ok=True)
    partial = copy.with_suffix(".partial")
    with release_ratings.open("rb") as source, partial.open("wb") as target:
        first = source.readline()
        if first.rstrip(b"\r\n") != RELEASE_HEADER:
            sys.exit(f"{release_ratings} starts with {first!r}, not {RELEASE_HEADER!r}")
        target.write(header + first[len(RELEASE_HEADER) :])
        shutil.copyfileobj(source, target, COPY_CHUNK_BYTES)
    partial.replace(copy)
    print(f"wrote the own-layout copy {copy} ({size / 1024**3:.2f} GiB)")


def own_file_conf(folder: Path, env: str, copy: Path, scale: list[int] | None) -> Path:
    """A copy of the project's ``conf`` with ``ingestion.file`` (the own-layout copy)
    added to ``env``; the folder to pass to ``--conf-source``."""
    conf = folder / "conf"
    shutil.copytree(PROJECT_ROOT / settings.CONF_SOURCE, conf)
    own = {
        "ingestion": {
            "dataset": "file",
            "file": {
                "path": str(copy),
                "separator": ",",
                "columns": OWN_COLUMNS,
                "timestamp_format": None,
                "rating_scale": scale,
            },
        }
    }
    (conf / env / "parameters_own_file_benchmark.yml").write_text(yaml.safe_dump(own))
    return conf


def timed_run(command: list[str], log: Path) -> tuple[float, int]:
    """Wall seconds and maximum resident set size (kB) of ``command`` under
    ``/usr/bin/time -v``; its output goes to ``log``."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "time.txt"
        logging_config = Path(folder) / "logging.yml"
        logging_config.write_text(LOGGING_CONFIG)
        environment = {**os.environ, "KEDRO_LOGGING_CONFIG": str(logging_config)}
        with log.open("w") as output:
            run = subprocess.run(
                ["/usr/bin/time", "-v", "-o", str(report), *command],
                cwd=PROJECT_ROOT,
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
                check=False,
            )
        if run.returncode != 0:
            sys.exit(f"{' '.join(command)} failed ({run.returncode}); see {log}")
        text = report.read_text()
    clock = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", text)[1]
    seconds = sum(
        float(part) * 60**power for power, part in enumerate(reversed(clock.split(":")))
    )
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)[1])
    return seconds, peak_kb


def written_ratings() -> dict[str, object]:
    """Rows, id dtypes, file size and column sums of the written ``ratings.parquet``."""
    scan = pl.scan_parquet(RATINGS)
    schema = scan.collect_schema()
    sums = scan.select(
        pl.len().alias("rows"),
        *(pl.col(c).cast(pl.Int64).sum() for c in ("userId", "movieId", "timestamp")),
        (pl.col("rating").cast(pl.Float64) * 2).cast(pl.Int64).sum(),
    ).collect(engine="streaming")
    return {
        "rows": sums["rows"].item(),
        "ids": f"{schema['userId']}, {schema['movieId']}",
        "MiB": RATINGS.stat().st_size / 1024**2,
        "sums": sums.drop("rows").row(0),
    }


def check_log(key: str, log: Path) -> None:
    text = log.read_text()
    expected = REUSED if key == "a" else READING_OWN
    if expected not in text:
        sys.exit(f"run ({key}): its log ({log}) lacks {expected!r}")
    if key == "a" and "Generating a synthetic release" in text:
        sys.exit(f"run (a) generated the synthetic release again; see {log}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="netflix-size", help="Kedro environment")
    parser.add_argument(
        "--n-ratings", type=int, help="ingestion.synthetic.n_ratings (default: env's)"
    )
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the runs")
    parser.add_argument(
        "--inferred-scale", action="store_true", help="also run (c): rating_scale null"
    )
    parser.add_argument("--log-dir", type=Path, help="keep each run's log here")
    parser.add_argument(
        "--remove-copy", action="store_true", help="delete the own-layout copy after"
    )
    args = parser.parse_args()

    params: dict[str, object] = {}
    if args.n_ratings is not None:
        default = ingestion_parameters(args.env, {})
        if args.n_ratings != default.synthetic.n_ratings:
            params = {
                "ingestion": {
                    "raw_dir": f"{default.raw_dir}-{args.n_ratings}",
                    "synthetic": {"n_ratings": args.n_ratings},
                }
            }
    ingestion = ingestion_parameters(args.env, params)
    release = PROJECT_ROOT / ingestion.raw_dir / "synthetic"
    n_ratings = ingestion.synthetic.n_ratings
    print(f"synthetic release: {release} ({n_ratings:,} ratings)")
    ensure_synthetic_release(release, ingestion.synthetic)
    copy = PROJECT_ROOT / ingestion.raw_dir / "own-layout" / "ratings.csv"
    own_layout_copy(release / "ratings.csv", copy)

    dotted = (
        f"ingestion.raw_dir={ingestion.raw_dir},"
        f"ingestion.synthetic.n_ratings={n_ratings}"
    )
    base = [sys.executable, "-m", "kedro", "run", "--env", args.env]
    base += ["--pipelines", "data_ingestion", "--params", dotted]
    keys = ["a", "b", "c"] if args.inferred_scale else ["a", "b"]
    runs: dict[str, list[tuple[float, int, dict[str, object]]]] = {k: [] for k in keys}
    with tempfile.TemporaryDirectory() as folder:
        log_dir = args.log_dir or Path(folder)
        log_dir.mkdir(parents=True, exist_ok=True)
        commands = {"a": base}
        for key, scale in (("b", [1, 5]), ("c", None)):
            conf = own_file_conf(Path(folder) / key, args.env, copy, scale)
            commands[key] = [*base, "--conf-source", str(conf)]
        print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min), ", end="")
        print(f"{os.cpu_count()} cores")
        for round_ in range(1, args.repeats + 1):
            for key in keys:
                log = log_dir / f"run-{key}-{round_}.log"
                seconds, peak_kb = timed_run(commands[key], log)
                check_log(key, log)
                runs[key].append((seconds, peak_kb, written_ratings()))
                print(f"round {round_} ({key}): {seconds:.1f} s, {peak_kb:,} kB")
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)\n")
    report(runs, n_ratings)
    if args.remove_copy:
        copy.unlink()


def report(
    runs: dict[str, list[tuple[float, int, dict[str, object]]]], n_ratings: int
) -> None:
    """Every run, the median table with ratios to (a), and the row checks."""
    print("| run | round | wall time (s) | max RSS (kB) | rows | ids | parquet (MiB) |")
    print("|---|---:|---:|---:|---:|---|---:|")
    for key, measured in runs.items():
        for round_, (seconds, peak_kb, out) in enumerate(measured, start=1):
            print(
                f"| ({key}) | {round_} | {seconds:.1f} | {peak_kb:,} | "
                f"{out['rows']:,} | {out['ids']} | {out['MiB']:,.0f} |"
            )
    wall = {key: statistics.median(r[0] for r in runs[key]) for key in runs}
    peak = {key: statistics.median(r[1] for r in runs[key]) for key in runs}
    print(f"\nmedians over {len(runs['a'])} round(s), {n_ratings:,} ratings:\n")
    print("| run | wall time (s) | max RSS | wall / (a) | max RSS / (a) |")
    print("|---|---:|---:|---:|---:|")
    for key in runs:
        print(
            f"| ({key}) {RUNS[key]} | {wall[key]:.1f} | {peak[key] / 1024**2:.2f} GiB "
            f"({peak[key]:,.0f} kB) | {wall[key] / wall['a']:.2f} | "
            f"{peak[key] / peak['a']:.2f} |"
        )
    outputs = [r[2] for measured in runs.values() for r in measured]
    rows = {out["rows"] for out in outputs}
    same = rows == {n_ratings} and len({out["sums"] for out in outputs}) == 1
    print(
        f"\nratings.parquet rows: {', '.join(f'{r:,}' for r in sorted(rows))} "
        f"(expected {n_ratings:,}); same rows and column sums in every run: "
        f"{'ok' if same else 'FAIL'}"
    )
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
