"""Grid search of the ``als`` and ``bpr`` rankers' settings on the VAL split's NDCG@K.

Each combination is fitted on train by the variant's own fit function and scored with
the project's ranking protocol (``evaluation.ranking``: candidates are the movies with a
training rating, a user's training movies are masked, relevant means a val rating of at
least the threshold). The best combination on val is the default in
conf/base/parameters_training.yml; its test NDCG@K (a ranking task of train against
test, as the evaluation pipeline builds it) is printed once it is chosen, never used to
choose. With ``--fold-in`` the chosen model's val NDCG@K is measured again with every
user folded in from their training interactions (``fold_in_scores``) instead of their
fitted factors: ALS's fold-in is its own user step; BPR's is a ridge regression whose L2
weight (``training.bpr.fold_in_regularization``) is chosen here on val, over
``FOLD_IN_RIDGES``.

Run (on the split files of a ``kedro run`` on ml-latest-small, e.g. the default random
split with ``processing.top_n_movies=null``):

    python benchmarks/ranker_grid.py --data data [--variants als bpr] [--fold-in]

``--data`` is the project's data folder (it reads ``05_model_input/{train,val,test}_
ratings.parquet`` and ``03_primary/{user,movie}_mapping.parquet``). ``--grid`` replaces
one key's values in a variant's grid, e.g. ``--grid als.factors=16,32
als.regularization=1,3,10`` (``null`` for None). Prints one line per combination (val
NDCG@K, fit seconds), then the best per variant with its test NDCG@K.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from rating_prediction.evaluation.ranking import (
    RankingTask,
    model_scorer,
    ranking_metrics,
    ranking_task,
)
from rating_prediction.models.config import load_trained_model
from rating_prediction.models.rankers import FactorRanker
from rating_prediction.models.variants import variant
from rating_prediction.training.data import TrainingData
from rating_prediction.training.feedback import implicit_feedback

# The grids of the issue: ALS at implicit's default 15 iterations.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "als": {
        "factors": [32, 64, 128],
        "regularization": [0.01, 0.1, 1.0],
        "alpha": [1.0, 10.0, 40.0],
        "iterations": [15],
        "feedback": ["binary", "rating"],
    },
    "bpr": {
        "factors": [64, 128],
        "learning_rate": [0.01, 0.05],
        "regularization": [0.001, 0.01],
        "iterations": [100, 300],
    },
}
# BPR's fold-in ridge weights tried with --fold-in.
FOLD_IN_RIDGES = [1.0, 3.0, 10.0, 30.0, 100.0, 300.0, 1000.0]
# Every pair of a ranked block at once: ml-latest-small fits many times over.
MAX_PAIRS = 10**6


def grid_value(text: str) -> Any:
    """A ``--grid`` value: an int, a float, ``null`` (None) or a string."""
    if text == "null":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def with_overrides(overrides: list[str]) -> dict[str, dict[str, list[Any]]]:
    """``GRIDS`` with each ``variant.key=v1,v2`` of ``overrides`` set."""
    grids = {name: dict(grid) for name, grid in GRIDS.items()}
    for override in overrides:
        path, values = override.split("=", 1)
        name, key = path.split(".", 1)
        grids[name][key] = [grid_value(value) for value in values.split(",")]
    return grids


def read_splits(folder: Path) -> tuple[TrainingData, pl.DataFrame]:
    """The training data (train, val, mapping sizes) and the test split."""
    inputs = folder / "05_model_input"
    split = {
        name: pl.read_parquet(inputs / f"{name}_ratings.parquet")
        for name in ("train", "val", "test")
    }
    n_users, n_movies = (
        pl.read_parquet(folder / "03_primary" / f"{name}_mapping.parquet").height
        for name in ("user", "movie")
    )
    data = TrainingData(split["train"], split["val"], n_users, n_movies)
    return data, split["test"]


def fitted(name: str, options: dict[str, Any], data: TrainingData) -> FactorRanker:
    """The variant ``name`` fitted on train with ``options``, as evaluation loads it."""
    entry = variant(name)
    weights, config, _ = entry.fit_function()(name, entry.parameters(**options), data)
    return load_trained_model(config, weights)


def ndcg(model: FactorRanker, task: RankingTask, k: int) -> float:
    scores = model_scorer(model, task.candidates)
    return ranking_metrics(task, scores, k, MAX_PAIRS)[f"ndcg@{k}"]


def fold_in_ndcg(
    model: FactorRanker,
    options: dict[str, Any],
    data: TrainingData,
    task: RankingTask,
    k: int,
) -> float:
    """NDCG@K with every ranked user folded in from their training interactions."""
    feedback = implicit_feedback(
        data.train, options.get("feedback", "binary"), options.get("min_rating")
    ).partition_by("userIdMapped", as_dict=True)
    columns = torch.from_numpy(task.candidates.astype(np.int64))

    def score(users: np.ndarray) -> np.ndarray:
        rows = []
        for user in users.tolist():
            own = feedback[(user,)]
            movies = torch.from_numpy(own["movieIdMapped"].to_numpy().astype(np.int64))
            values = torch.from_numpy(own["value"].to_numpy().copy())
            rows.append(model.fold_in_scores(movies, values)[columns])
        return torch.stack(rows).numpy()

    return ranking_metrics(task, score, k, MAX_PAIRS)[f"ndcg@{k}"]


def search(
    name: str,
    grid: dict[str, list[Any]],
    data: TrainingData,
    val_task: RankingTask,
    k: int,
) -> tuple[dict[str, Any], float, FactorRanker]:
    """Every combination of ``grid`` scored on val, printed as it comes; the best
    one's options, val NDCG@K and model (equal scores: the first in the grid)."""
    best = ({}, -1.0, None)
    for values in itertools.product(*grid.values()):
        options = dict(zip(grid, values))
        started = time.perf_counter()
        model = fitted(name, options, data)
        seconds = time.perf_counter() - started
        score = ndcg(model, val_task, k)
        shown = ", ".join(f"{key} {value}" for key, value in options.items())
        print(f"{name}: {shown}: val ndcg@{k} {score:.4f} ({seconds:.1f} s)")
        if score > best[1]:
            best = (options, score, model)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--variants", nargs="+", default=list(GRIDS), choices=GRIDS)
    parser.add_argument("--threshold", type=float, default=3.875)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--fold-in", action="store_true")
    parser.add_argument("--grid", nargs="*", default=[], metavar="VARIANT.KEY=V1,V2")
    args = parser.parse_args()
    grids = with_overrides(args.grid)
    data, test = read_splits(args.data)
    val_task = ranking_task(data.train, data.val, args.threshold)
    test_task = ranking_task(data.train, test, args.threshold)
    for name in args.variants:
        grid = grids[name] | {"seed": [args.seed]}
        options, val_ndcg, model = search(name, grid, data, val_task, args.k)
        print(
            f"best {name} on val: {options}: val ndcg@{args.k} {val_ndcg:.4f}, "
            f"test ndcg@{args.k} {ndcg(model, test_task, args.k):.4f}"
        )
        if args.fold_in:
            for ridge in FOLD_IN_RIDGES if name == "bpr" else [model.regularization]:
                model.regularization = ridge
                folded = fold_in_ndcg(model, options, data, val_task, args.k)
                print(
                    f"best {name}, users folded in (ridge {ridge:g}): "
                    f"val ndcg@{args.k} {folded:.4f}"
                )


if __name__ == "__main__":
    main()
