"""Optimizer step cost with dense vs sparse embedding gradients at MovieLens-25M scale.

With 162,541 users and 59,047 movies, a dense Adam step updates every embedding row while a
batch touches at most 8,192 of them; ``SparseAdam`` updates only those rows. This script
times one training step (forward, backward, optimizer) of each model variant both ways, side
by side in one process, so the ratios hold on a noisy machine.

Run: ``python benchmarks/sparse_vs_dense.py [--threads N] [--steps N]``
Prints one line per variant and mode, then ``<variant> sparse/dense step time = <ratio>``.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from rating_prediction.models.variants import VARIANTS
from rating_prediction.training.module import make_optimizers

N_USERS, N_MOVIES, BATCH_SIZE = 162_541, 59_047, 4_096
LEARNING_RATE = 5e-3
MODEL_ARGUMENTS = {
    "inner_sigmoid": {"embedding_dim": 5},
    "biased_mf": {"embedding_dim": 32, "factor_reg": 0.1, "bias_reg": 0.005},
}


def step_seconds(variant: str, sparse: bool, steps: int) -> float:
    """Mean seconds of one training step, after a warm-up of 10 steps."""
    generator = torch.Generator().manual_seed(0)
    model = VARIANTS[variant].model_class(
        N_USERS, N_MOVIES, sparse=sparse, **MODEL_ARGUMENTS[variant]
    )
    # The project's optimizers: fused Adam for dense parameters, SparseAdam for sparse
    # embeddings.
    optimizers = make_optimizers(model, learning_rate=LEARNING_RATE)
    users = torch.randint(0, N_USERS, (BATCH_SIZE,), generator=generator)
    movies = torch.randint(0, N_MOVIES, (BATCH_SIZE,), generator=generator)
    ratings = torch.rand(BATCH_SIZE, generator=generator) * 4.5 + 0.5
    for step in range(10 + steps):
        if step == 10:
            started = time.perf_counter()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(users, movies), ratings)
        (loss + model.regularization(users, movies)).backward()
        for optimizer in optimizers:
            optimizer.step()
    return (time.perf_counter() - started) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch {BATCH_SIZE}")
    for variant in VARIANTS:
        seconds = {
            sparse: step_seconds(variant, sparse, args.steps)
            for sparse in (False, True)
        }
        for sparse, value in seconds.items():
            mode = "sparse" if sparse else "dense"
            print(f"{variant:14s} {mode:6s} {value * 1000:7.1f} ms/step")
        print(
            f"{variant} sparse/dense step time = {seconds[True] / seconds[False]:.2f}"
        )


if __name__ == "__main__":
    main()
