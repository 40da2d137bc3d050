"""Scoring (user, movie) pairs of a biased MF: the row-wise dot product and the batch
size, side by side, for narrow and wide factors.

``PairScorer`` gathers each batch's user and movie rows and takes their row-wise dot
product. This compares, on one thread as ``score_pairs_in_batches`` runs it, 1M random pairs:

- ``einsum("ij,ij->i")`` against an in-place ``mul_`` then ``sum(1)``;
- ``SCORE_BATCH_ROWS`` (8,192) rows per batch against ``PairScorer.batch_rows`` (fewer
  rows for wide factors, so the gathered rows stay in cache);

at 32 factors (ML-25M's shape, as benchmarks/serving_latency.py) and 1,040 (the
``bayesian_fm`` of the synthetic sample: 20 kept samples of rank 52). The best of
``--repeats`` runs is printed, with each time relative to the scorer's own choice.

Run: ``python benchmarks/pair_scoring.py [--pairs N] [--repeats N]``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import torch

from rating_prediction.models.scoring import SCORE_BATCH_ROWS, PairScorer

SHAPES = {32: (162_541, 59_047), 1040: (3_000, 50)}


def einsum_dot(users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,ij->i", users, movies)


def in_place_dot(users: torch.Tensor, movies: torch.Tensor) -> torch.Tensor:
    return users.mul_(movies).sum(1)


def best_seconds(
    dot: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    tables: tuple[torch.Tensor, torch.Tensor],
    pairs: tuple[torch.Tensor, torch.Tensor],
    batch_rows: int,
    repeats: int,
) -> float:
    user_table, movie_table = tables
    users, movies = pairs
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.no_grad():
            for first in range(0, len(users), batch_rows):
                last = first + batch_rows
                dot(
                    user_table.index_select(0, users[first:last]),
                    movie_table.index_select(0, movies[first:last]),
                )
        best = min(best, time.perf_counter() - start)
    return best


def batch_rows_for(width: int) -> int:
    """``PairScorer.batch_rows`` of a biased MF with ``width`` factors."""
    return min(
        SCORE_BATCH_ROWS,
        max(PairScorer.MIN_BATCH_ROWS, PairScorer.GATHERED_ELEMENTS // width),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    print(f"load average at start: {os.getloadavg()[0]:.2f} (1 min); one thread")
    print(f"{'factors':>7} {'rows':>6} {'dot':<9}{'seconds':>9}{'ratio':>7}")
    for width, (n_users, n_movies) in SHAPES.items():
        tables = (torch.randn(n_users, width), torch.randn(n_movies, width))
        pairs = (
            torch.randint(0, n_users, (arguments.pairs,), generator=generator),
            torch.randint(0, n_movies, (arguments.pairs,), generator=generator),
        )
        chosen = batch_rows_for(width)
        cases = [
            (chosen, "mul_+sum", in_place_dot),
            (chosen, "einsum", einsum_dot),
            (SCORE_BATCH_ROWS, "mul_+sum", in_place_dot),
            (SCORE_BATCH_ROWS, "einsum", einsum_dot),
        ]
        best_seconds(in_place_dot, tables, pairs, chosen, 1)  # warm-up, untimed
        reference = None
        for rows, name, dot in dict.fromkeys(cases):
            seconds = best_seconds(dot, tables, pairs, rows, arguments.repeats)
            reference = reference or seconds
            print(
                f"{width:>7} {rows:>6} {name:<9}{seconds:>9.2f}{seconds / reference:>7.2f}"
            )
    print(f"load average at end: {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
