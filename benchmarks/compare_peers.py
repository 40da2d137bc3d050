"""A peer benchmark: the project's models against scikit-surprise and myFM on the same
split files, each peer fitted on the same data as the project's final models.

Run by hand from the project root, after ``kedro run`` (which writes the split files, the
trained models and ``metrics.json``), with the ``bench`` extra installed
(``pip install -e ".[bench]"``, which brings scikit-surprise; myFM is a main dependency)::

    python benchmarks/compare_peers.py
    python benchmarks/compare_peers.py --skip-svdpp          # SVD++ is slow on big data
    python benchmarks/compare_peers.py --fit-data train      # peers on train only
    python benchmarks/compare_peers.py --data-dir data/05_model_input --seed 0

Fit data: the project's final models refit on train + val when their ``config.json`` says
``refit_on_train_val``; with ``--fit-data auto`` (the default) the peers are fitted on
train + val when any project model was, on train only otherwise, so no row wins by seeing
more data. Every row names the data it was fitted on.

Peers: Surprise's ``BaselineOnly``, ``SVD`` and ``SVDpp`` (default hyperparameters, a
fixed ``random_state``; Surprise's own fallback for unknown ids) and myFM's Gibbs-sampled
Bayesian MF (user and movie one-hots) and Bayesian FM with SVD++-style implicit and
"flipped" features through relation blocks (rank 10, 150 samples, as Rendle et al. 2019),
the blocks built from the fit data only. All are scored on ``test_ratings.parquet``.
The project's test scores come from ``data/08_reporting/metrics.json`` (models and
baselines, measured on the same split files) and the models' fit times from
``fit_seconds`` in ``data/06_models/<variant>/config.json`` (``n/a`` for the baselines,
fitted inside the evaluation pipeline). It prints one markdown table, best RMSE first.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from rating_prediction.training import bayesian_fm

try:  # the project's optional `bench` extra
    import surprise
except ImportError:
    surprise = None

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SPLITS = ("train", "val", "test")
COLUMNS = ["userId", "movieId", "rating", "userIdMapped", "movieIdMapped"]
RATING_SCALE = (0.5, 5.0)
RUN_KEDRO = "Run `kedro run` first (from the project root) to produce it."
TRAIN, TRAIN_VAL = "train", "train + val"
# Entries of metrics.json fitted on train + val although their config does not say so.
TRAIN_VAL_ENTRIES = ("mean_baseline_train_val", "bias_baseline_train_val")
# myFM as in Rendle et al. 2019 and the figures: rank 10, 150 samples.
MYFM_RANK, MYFM_SAMPLES = 10, 150


class Row(NamedTuple):
    method: str
    fit_data: str
    rmse: float
    seconds: float | None


class MissingInput(SystemExit):
    """A missing input file, reported as a clear message and exit status 1."""

    def __init__(self, what: str, path: Path) -> None:
        super().__init__(f"error: {what} not found: {path}. {RUN_KEDRO}")


def read_split(data_dir: Path, split: str) -> pl.DataFrame:
    path = data_dir / f"{split}_ratings.parquet"
    if not path.is_file():
        raise MissingInput(f"the {split} split", path)
    return pl.read_parquet(path, columns=COLUMNS)


def read_metrics(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise MissingInput("the project's metrics", path)
    return json.loads(path.read_text())


def model_config(models_dir: Path, variant: str) -> dict[str, Any]:
    """The trained model's ``config.json``, or an empty dict where it is absent."""
    path = models_dir / variant / "config.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def entry_fit_data(entry: str, config: dict[str, Any]) -> str:
    """The data a metrics.json entry was fitted on."""
    if config.get("refit_on_train_val") or entry in TRAIN_VAL_ENTRIES:
        return TRAIN_VAL
    return TRAIN


def peer_fit_data(configs: dict[str, dict[str, Any]], choice: str = "auto") -> str:
    """The data the peers are fitted on: ``choice``, or with ``auto`` the project's
    final models' (train + val when any of them refit on it, else train)."""
    if choice != "auto":
        return {"train": TRAIN, "train+val": TRAIN_VAL}[choice]
    refit = any(config.get("refit_on_train_val") for config in configs.values())
    return TRAIN_VAL if refit else TRAIN


def fit_frame(splits: dict[str, pl.DataFrame], fit_data: str) -> pl.DataFrame:
    """The ratings the peers are fitted on."""
    if fit_data == TRAIN_VAL:
        return pl.concat([splits["train"], splits["val"]])
    return splits["train"]


def surprise_rows(
    fit: pl.DataFrame, test: pl.DataFrame, fit_data: str, options: argparse.Namespace
) -> list[Row]:
    if surprise is None:
        raise SystemExit(
            "error: scikit-surprise is not installed; install the project's bench "
            'extra: pip install -e ".[bench]"'
        )
    # Polars -> pandas only at Surprise's boundary; native ints and floats for its ids.
    frame = fit.select(
        pl.col("userId", "movieId").cast(pl.Int64), pl.col("rating").cast(pl.Float64)
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
        "surprise SVD": surprise.SVD(random_state=options.seed),
    }
    if not options.skip_svdpp:
        algorithms["surprise SVDpp"] = surprise.SVDpp(random_state=options.seed)
    rows = []
    for name, algorithm in algorithms.items():
        started = time.perf_counter()
        algorithm.fit(trainset)
        seconds = time.perf_counter() - started
        rmse = surprise.accuracy.rmse(algorithm.test(testset), verbose=False)
        rows.append(Row(name, fit_data, rmse, seconds))
    return rows


def myfm_rows(
    fit: pl.DataFrame, test: pl.DataFrame, fit_data: str, id_counts: tuple[int, int]
) -> list[Row]:
    """myFM's Bayesian MF and Bayesian FM (implicit + flipped relation blocks), the
    blocks built from ``fit`` only; predictions clipped to the rating scale."""
    settings = bayesian_fm.BayesianFMSettings(
        rank=MYFM_RANK, n_iter=MYFM_SAMPLES, n_kept_samples=MYFM_SAMPLES - 5
    )
    rows = []
    for name, implicit in (
        ("myfm Bayesian MF", False),
        ("myfm Bayesian FM, implicit + flipped", True),
    ):
        started = time.perf_counter()
        blocks = bayesian_fm.RelationBlocks.from_ratings(
            fit, id_counts, implicit=implicit, flipped=implicit
        )
        model = bayesian_fm.fit(settings, fit, blocks)
        seconds = time.perf_counter() - started
        predicted = np.clip(model.predict(None, blocks.for_rows(test)), *RATING_SCALE)
        rmse = float(np.sqrt(np.mean((predicted - test["rating"].to_numpy()) ** 2)))
        rows.append(Row(f"{name} (rank {MYFM_RANK})", fit_data, rmse, seconds))
    return rows


def project_rows(
    metrics: dict[str, Any], configs: dict[str, dict[str, Any]]
) -> list[Row]:
    rows = []
    for entry, by_split in metrics.items():
        test = by_split.get("test", {}) if isinstance(by_split, dict) else {}
        if "rmse" not in test:
            continue
        config = configs.get(entry, {})
        rows.append(
            Row(
                f"project {entry}",
                entry_fit_data(entry, config),
                test["rmse"],
                config.get("fit_seconds"),
            )
        )
    if not rows:
        raise SystemExit(
            "error: the project's metrics hold no test RMSE. Rerun `kedro run`."
        )
    return rows


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| method | fit data | test RMSE | fit time (s) |",
        "|---|---|---:|---:|",
    ]
    for row in rows:
        seconds = row.seconds
        fit = "n/a" if seconds is None or math.isnan(seconds) else f"{seconds:.2f}"
        lines.append(f"| {row.method} | {row.fit_data} | {row.rmse:.4f} | {fit} |")
    return "\n".join(lines)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = PROJECT_ROOT / "data"
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=data / "05_model_input",
        help="folder of {train,val,test}_ratings.parquet (default: %(default)s)",
    )
    parser.add_argument(
        "--metrics",
        type=Path,
        default=data / "08_reporting" / "metrics.json",
        help="the project's metrics.json (default: %(default)s)",
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=data / "06_models",
        help="the project's trained models, for fit times (default: %(default)s)",
    )
    parser.add_argument(
        "--fit-data",
        choices=["auto", "train", "train+val"],
        default="auto",
        help="what the peers are fitted on; auto: as the project's final models",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Surprise's random_state (default 0)"
    )
    parser.add_argument(
        "--skip-svdpp",
        action="store_true",
        help="leave out SVD++ (slow: hours on MovieLens 25M)",
    )
    parser.add_argument("--skip-myfm", action="store_true", help="leave out myFM")
    return parser.parse_args()


def main() -> None:
    args = parse_arguments()
    splits = {split: read_split(args.data_dir, split) for split in SPLITS}
    metrics = read_metrics(args.metrics)
    configs = {entry: model_config(args.models_dir, entry) for entry in metrics}
    fit_data = peer_fit_data(configs, args.fit_data)
    fit, test = fit_frame(splits, fit_data), splits["test"]
    every = pl.concat(list(splits.values()))
    id_counts = (
        int(every["userIdMapped"].max()) + 1,
        int(every["movieIdMapped"].max()) + 1,
    )
    rows = project_rows(metrics, configs) + surprise_rows(fit, test, fit_data, args)
    if not args.skip_myfm:
        rows += myfm_rows(fit, test, fit_data, id_counts)
    print(
        f"peers fitted on {fit_data} ({fit.height:,} ratings), scored on "
        f"{test.height:,} test ratings from {args.data_dir}; project scores from "
        f"{args.metrics}"
    )
    print()
    print(markdown_table(sorted(rows, key=lambda row: row.rmse)))


if __name__ == "__main__":
    main()
