"""A request file of a million pairs scored through the inference pipeline.

Issue 11's acceptance: 10^6 pairs scored through the inference pipeline from a parquet
file in under 60 s on 2 cores, peak memory under 2 GB. This script writes the request
file, data/01_raw/requests/pairs.parquet, with ids drawn from the users and
movies of data/05_model_input/train_ratings.parquet plus a share of ids unseen in
training; runs ``kedro run --pipelines inference`` under ``/usr/bin/time -v`` without a
request file (the pipeline's own cost) and then with a file of each size given, side by
side (memory should not grow with the file); checks that every pair came back, in file
order; prints wall time and maximum resident set size against the bounds; and removes
the request file again (unless ``--keep``), since every later inference run would
score it.

Run in the project root after a default ``kedro run`` (the models must exist)::

    python benchmarks/request_file_pairs.py [--pairs 1000000 10000000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

REQUESTS_DIR = Path("data/01_raw/requests")
TRAIN_RATINGS = Path("data/05_model_input/train_ratings.parquet")
PREDICTIONS = Path("data/07_model_output/pair_request_predictions")
ACCEPTANCE_PAIRS = 1_000_000
WALL_BOUND_S = 60.0
MEMORY_BOUND_GB = 2.0
UNKNOWN_SHARE = 0.02
# Ids above every MovieLens id: unseen in training, answered with the fallback.
UNKNOWN_ID_OFFSET = 10_000_000


def write_pairs(path: Path, pairs: int, seed: int) -> pl.DataFrame:
    """``pairs`` random (userId, movieId) pairs of known ids, ``UNKNOWN_SHARE`` of each
    column replaced by an unknown id, written to ``path``."""
    train = pl.read_parquet(TRAIN_RATINGS, columns=["userId", "movieId"])
    generator = np.random.default_rng(seed)
    columns = {}
    for column in ("userId", "movieId"):
        known = train[column].unique().to_numpy().astype(np.int64)
        ids = generator.choice(known, size=pairs)
        unknown = generator.random(pairs) < UNKNOWN_SHARE
        ids[unknown] = UNKNOWN_ID_OFFSET + generator.integers(0, 1000, unknown.sum())
        columns[column] = ids
    frame = pl.DataFrame(columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return frame


def timed_inference_run() -> tuple[float, float]:
    """Wall seconds and maximum resident set size (GB) of one inference run."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        command = ["/usr/bin/time", "-v", "-o", report.name]
        command += ["kedro", "run", "--pipelines", "inference"]
        run = subprocess.run(command, capture_output=True, text=True, check=False)
        if run.returncode != 0:
            sys.exit(f"kedro run failed ({run.returncode}):\n{run.stderr[-4000:]}")
        text = report.read()
    clock = re.search(r"Elapsed \(wall clock\) time.*: (\S+)", text).group(1)
    seconds = sum(
        float(part) * 60**power for power, part in enumerate(reversed(clock.split(":")))
    )
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)[1])
    return seconds, peak_kb / 1024**2


def check_predictions(requested: pl.DataFrame) -> None:
    scored = pl.read_parquet(PREDICTIONS / "*.parquet")
    if not scored.select("userId", "movieId").equals(requested):
        sys.exit("The predictions are not the requested pairs in file order.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pairs", type=int, nargs="+", default=[1_000_000], help="one run per size"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the last file")
    arguments = parser.parse_args()
    path = REQUESTS_DIR / "pairs.parquet"
    if any(REQUESTS_DIR.glob("pairs.*")):
        sys.exit(f"{REQUESTS_DIR} already holds a pairs file: move it away first.")
    print(
        f"load average at start: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores"
    )
    runs = {0: timed_inference_run()}
    for pairs in arguments.pairs:
        requested = write_pairs(path, pairs, arguments.seed)
        try:
            runs[pairs] = timed_inference_run()
            check_predictions(requested)
        finally:
            if not arguments.keep or pairs != arguments.pairs[-1]:
                path.unlink()
    print(f"{'inference run':<34}{'wall s':>8}{'max RSS GB':>12}")
    for pairs, (seconds, peak_gb) in runs.items():
        label = f"{pairs:,} pairs" if pairs else "no request file"
        print(f"{label:<34}{seconds:>8.1f}{peak_gb:>12.2f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")
    if ACCEPTANCE_PAIRS in runs:
        seconds, peak_gb = runs[ACCEPTANCE_PAIRS]
        within = seconds < WALL_BOUND_S and peak_gb < MEMORY_BOUND_GB
        print(
            f"{ACCEPTANCE_PAIRS:,} pairs under {WALL_BOUND_S:.0f} s and "
            f"{MEMORY_BOUND_GB:.0f} GB: {'ok' if within else 'FAIL'}"
        )
    bounded = all(peak_gb < MEMORY_BOUND_GB for _, peak_gb in runs.values())
    print(f"every run under {MEMORY_BOUND_GB:.0f} GB: {'ok' if bounded else 'FAIL'}")


if __name__ == "__main__":
    main()
