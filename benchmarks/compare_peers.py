"""A peer benchmark: the project's models against scikit-surprise on the same split files.

Run by hand from the project root, after ``kedro run`` (which writes the split files, the
trained models and ``metrics.json``), with the ``bench`` extra installed
(``pip install -e ".[bench]"``, which brings scikit-surprise)::

    python benchmarks/compare_peers.py
    python benchmarks/compare_peers.py --skip-svdpp          # SVD++ is slow on big data
    python benchmarks/compare_peers.py --data-dir data/05_model_input --seed 0

It fits Surprise's ``BaselineOnly``, ``SVD`` and ``SVDpp`` (default hyperparameters, a fixed
``random_state``) on ``train_ratings.parquet``, scores them on ``test_ratings.parquet`` with
Surprise's own fallback for users and movies absent from training (``algo.test``), and
reads the project's test scores from ``data/08_reporting/metrics.json`` (models and
baselines, measured on the same split files) and the models' fit times (``fit_seconds``
in ``data/06_models/<variant>/config.json``: training, early stopping and any refit). It
prints one markdown table: method, test RMSE and fit time in seconds (``n/a`` for the
project's baselines, fitted inside the evaluation pipeline), best RMSE first. A model
whose ``config.json`` says ``refit_on_train_val`` is marked "(refit on train + val)": it
saw the val split too, the Surprise models only train.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import polars as pl

try:  # the project's optional `bench` extra
    import surprise
except ImportError:
    surprise = None

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "test")
RATING_SCALE = (0.5, 5.0)
RUN_KEDRO = "Run `kedro run` first (from the project root) to produce it."


class MissingInput(SystemExit):
    """A missing input file, reported as a clear message and exit status 1."""

    def __init__(self, what: str, path: Path) -> None:
        super().__init__(f"error: {what} not found: {path}. {RUN_KEDRO}")


def read_split(data_dir: Path, split: str) -> pl.DataFrame:
    path = data_dir / f"{split}_ratings.parquet"
    if not path.is_file():
        raise MissingInput(f"the {split} split", path)
    return pl.read_parquet(path, columns=["userId", "movieId", "rating"])


def read_metrics(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MissingInput("the project's metrics", path)
    return json.loads(path.read_text())


def model_config(models_dir: Path, variant: str) -> dict[str, Any]:
    """The trained model's ``config.json``, or an empty dict where it is absent."""
    path = models_dir / variant / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def surprise_rows(
    train: pl.DataFrame, test: pl.DataFrame, seed: int, skip_svdpp: bool
) -> list[tuple[str, float, float | None]]:
    if surprise is None:
        raise SystemExit(
            "error: scikit-surprise is not installed; install the project's bench "
            'extra: pip install -e ".[bench]"'
        )
    # Polars -> pandas only at Surprise's boundary; native ints and floats for its ids.
    frame = train.with_columns(pl.col("userId", "movieId").cast(pl.Int64)).with_columns(
        pl.col("rating").cast(pl.Float64)
    )
    trainset = surprise.Dataset.load_from_df(
        frame.to_pandas(), surprise.Reader(rating_scale=RATING_SCALE)
    ).build_full_trainset()
    testset = list(
        zip(
            test["userId"].cast(pl.Int64).to_list(),
            test["movieId"].cast(pl.Int64).to_list(),
            test["rating"].cast(pl.Float64).to_list(),
            strict=True,
        )
    )
    algorithms = {
        "surprise BaselineOnly": surprise.BaselineOnly(verbose=False),
        "surprise SVD": surprise.SVD(random_state=seed),
    }
    if not skip_svdpp:
        algorithms["surprise SVDpp"] = surprise.SVDpp(random_state=seed)
    rows = []
    for name, algorithm in algorithms.items():
        started = time.perf_counter()
        algorithm.fit(trainset)
        seconds = time.perf_counter() - started
        rmse = surprise.accuracy.rmse(algorithm.test(testset), verbose=False)
        rows.append((name, rmse, seconds))
    return rows


def project_rows(
    metrics: dict[str, Any], models_dir: Path
) -> list[tuple[str, float, float | None]]:
    rows = []
    for entry, by_split in metrics.items():
        test = by_split.get("test", {}) if isinstance(by_split, dict) else {}
        if "rmse" not in test:
            continue
        config = model_config(models_dir, entry)
        name = f"project {entry}"
        if config.get("refit_on_train_val"):
            name += " (refit on train + val)"
        rows.append((name, test["rmse"], config.get("fit_seconds")))
    if not rows:
        raise SystemExit(
            "error: the project's metrics hold no test RMSE. Rerun `kedro run`."
        )
    return rows


def markdown_table(rows: list[tuple[str, float, float | None]]) -> str:
    lines = ["| method | test RMSE | fit time (s) |", "|---|---:|---:|"]
    for name, rmse, seconds in rows:
        fit = "n/a" if seconds is None or math.isnan(seconds) else f"{seconds:.2f}"
        lines.append(f"| {name} | {rmse:.4f} | {fit} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=PROJECT_ROOT / "data" / "05_model_input",
        help="folder of {train,val,test}_ratings.parquet (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics",
        type=Path,
        default=PROJECT_ROOT / "data" / "08_reporting" / "metrics.json",
        help="the project's metrics.json (default: %(default)s)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=PROJECT_ROOT / "data" / "06_models",
        help="the project's trained models, for fit times (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Surprise's random_state (default 0)"
    )
    parser.add_argument(
        "--skip-svdpp",
        action="store_true",
        help="leave out SVD++ (slow: hours on MovieLens 25M)",
    )
    args = parser.parse_args()

    train, test = (read_split(args.data_dir, split) for split in SPLITS)
    metrics = read_metrics(args.metrics)
    rows = project_rows(metrics, args.models_dir) + surprise_rows(
        train, test, args.seed, args.skip_svdpp
    )
    print(
        f"{train.height:,} training and {test.height:,} test ratings "
        f"from {args.data_dir}; project scores from {args.metrics}"
    )
    print()
    print(markdown_table(sorted(rows, key=lambda row: row[1])))


if __name__ == "__main__":
    main()
