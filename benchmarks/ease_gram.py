"""EASE^R's Gram matrix ``X^T X``: the fit's sparse products over parts of the users
(``rating_prediction.training.ease.gram_matrix``) against the former sum over blocks of
users of sparse-times-dense products, side by side in one process, so the ratio holds
on a noisy machine.

The interactions are a training split's implicit feedback with the ``--max-items``
most-rated movies, as the ``ease`` fit builds them: ``--ratings`` names a
``train_ratings.parquet`` (``data/05_model_input/train_ratings.parquet`` after ``kedro
run --env scale`` is MovieLens 25M's size, the default), else a synthetic long-tailed
set is drawn. The former product costs interactions x items operations; the sparse
product costs the sum over users of their interactions squared.

Run: ``python benchmarks/ease_gram.py [--ratings PATH] [--max-items 3000] [--repeats 2]``
Prints each method's seconds per round, the largest difference between the two
matrices, and ``former / sparse products = <ratio>`` (the median round's).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch

from rating_prediction.models.rankers import sparse_rows
from rating_prediction.training.ease import gram_matrix, kept_items, user_rows
from rating_prediction.training.feedback import implicit_feedback

DEFAULT_RATINGS = Path("data/05_model_input/train_ratings.parquet")
# The former fit's dense block of users: 128 MB of float32.
FORMER_BLOCK_VALUES = 2**25


def former_gram(
    offsets: np.ndarray, columns: np.ndarray, values: np.ndarray, n_items: int
) -> torch.Tensor:
    """The former fit's ``X^T X``: over blocks of users, ``X_b^T`` as CSR times the
    dense ``X_b``."""
    gram = torch.zeros(n_items, n_items)
    n_users = len(offsets) - 1
    step = max(1, FORMER_BLOCK_VALUES // max(1, n_items))
    for low in range(0, n_users, step):
        high = min(low + step, n_users)
        first, last = offsets[low], offsets[high]
        if last == first:
            continue
        rows = np.repeat(np.arange(high - low), np.diff(offsets[low : high + 1]))
        block_columns, block_values = columns[first:last], values[first:last]
        dense = torch.zeros(high - low, n_items)
        dense[rows, block_columns] = torch.from_numpy(block_values)
        by_item = np.argsort(block_columns, kind="stable")
        transposed = sparse_rows(
            torch.from_numpy(np.bincount(block_columns, minlength=n_items)),
            torch.from_numpy(rows[by_item]),
            torch.from_numpy(block_values[by_item]),
            high - low,
        )
        gram += transposed @ dense
    return gram


def synthetic_ratings(n_users: int, n_movies: int, seed: int) -> pl.DataFrame:
    """Long-tailed activity and popularity, half-star ratings."""
    rng = np.random.default_rng(seed)
    per_user = np.minimum(rng.lognormal(3.5, 1.0, n_users).astype(np.int64) + 5, 5_000)
    users = np.repeat(np.arange(n_users), per_user)
    popularity = 1.0 / np.arange(1, n_movies + 1) ** 0.9
    movies = rng.choice(n_movies, size=users.size, p=popularity / popularity.sum())
    ratings = pl.DataFrame(
        {
            "userIdMapped": users.astype(np.int32),
            "movieIdMapped": movies.astype(np.int32),
            "rating": rng.integers(1, 11, users.size) / 2,
        }
    )
    return ratings.unique(["userIdMapped", "movieIdMapped"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=Path, default=DEFAULT_RATINGS)
    parser.add_argument("--max-items", type=int, default=3_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    if args.ratings.is_file():
        train = pl.read_parquet(args.ratings)
        source = str(args.ratings)
    else:
        train = synthetic_ratings(50_000, 20_000, seed=0)
        source = f"synthetic ({args.ratings} is absent)"
    n_users = int(train["userIdMapped"].max()) + 1
    feedback = implicit_feedback(train, "rating", None)
    items = kept_items(feedback, args.max_items)
    offsets, columns, values = user_rows(feedback, items, n_users)
    squares = int((np.diff(offsets) ** 2).sum())
    print(
        f"{source}: {n_users:,} users, {len(items):,} items, {len(columns):,} "
        f"interactions; interactions x items {len(columns) * len(items):.2e}, "
        f"sum of squares {squares:.2e}; torch threads {torch.get_num_threads()}"
    )
    seconds: dict[str, list[float]] = {"former": [], "sparse products": []}
    results = {}
    for round_ in range(args.repeats):
        for name, method in (("former", former_gram), ("sparse products", gram_matrix)):
            started = time.perf_counter()
            results[name] = method(offsets, columns, values, len(items))
            seconds[name].append(time.perf_counter() - started)
            print(f"round {round_ + 1}: {name:16} {seconds[name][-1]:7.2f} s")
    difference = (results["former"] - results["sparse products"]).abs().max().item()
    largest = results["former"].abs().max().item()
    print(f"largest difference {difference:.3g} (largest entry {largest:.3g})")
    ratio = statistics.median(seconds["former"]) / statistics.median(
        seconds["sparse products"]
    )
    print(f"former / sparse products = {ratio:.2f}")


if __name__ == "__main__":
    main()
