"""Training throughput: the seed notebook's feeding vs the project's training vs a plain loop.

Run by hand from the project root (not a test)::

    python benchmarks/training_throughput.py                  # CPU, 1 epoch, best of 3
    python benchmarks/training_throughput.py --epochs 2 --repeats 5 --threads 2
    python benchmarks/training_throughput.py --device cuda    # training set kept on the GPU

One synthetic data set with the seed notebook's shape (157,480 users x 50 movies,
1,781,184 training ratings: random pairs, ratings 0.5..5 in half stars), the notebook's
model (:class:`~rating_prediction.models.factorization.InnerSigmoidModel`, embedding size 5), Adam 5e-3,
MSE, batches of 4,096, trained side by side in one process:

(a) ``seed``: the notebook's feeding, a ``TensorDataset`` + ``DataLoader(shuffle=True)``
    with default collation, under Lightning with automatic optimisation (the training
    tensors stay on the CPU, as in the notebook, and Lightning moves each batch);
(b) ``project``: :class:`~rating_prediction.training.RatingRegressor` +
    :class:`~rating_prediction.training.RatingsDataModule` + the ``Trainer`` of
    :func:`~rating_prediction.training.make_trainer`, built by the functions
    :func:`~rating_prediction.training.fit.fit_variant` uses, with the ``inner_sigmoid`` block of
    ``conf/base/parameters_training.yml`` (its ``optimizer_steps_per_training_step``
    included), validating on a tiny val set (4,096 ratings);
(b1) ``project_single``: the same with one optimizer step per Lightning ``training_step``
    (``optimizer_steps_per_training_step: 1``), so (b)/(b1) is what grouping steps gains;
(c) ``plain``: a plain PyTorch loop over index tensors pre-shuffled once per epoch, with
    the project's optimizer (:func:`~rating_prediction.training.make_optimizers`: fused
    Adam on CPU and CUDA), so (b)/(c) is the cost of Lightning and the project's feeding
    alone.

(b), (b1) and (c) must run the same number of optimizer steps (checked). Each method is
warmed up once (a few batches), then the measurements are interleaved, ``--repeats``
times: (a) once, then (b1), (b) and (c) in turn three times each (they are some 20 times
faster); the best of each is kept, to fight noise from other processes. Every
measurement starts from a freshly built model (not timed: the project's
:func:`~rating_prediction.training.new_model` and the plain loop's constructor). (a) is
timed around building its ``Trainer`` and ``trainer.fit``; (b) and (b1) around building
their LightningModule, DataModule and ``Trainer`` and ``trainer.fit`` (set-up, validation
and the best checkpoint included); (c) around building its optimizer and its epochs. All
run with ``torch.set_num_threads(--threads)`` (default: the CPU count); on a machine
shared with other busy processes, ``--threads 1`` gives steadier figures (two threads
that wait for each other lose most when one is descheduled). It prints the machine,
ratings/s for each method (best and median) with the best run's seconds and the least
process CPU seconds and, last, a line ``speedup_vs_seed=<b/a>
fraction_of_plain_loop=<b/c> fraction_of_plain_loop_one_step_per_training_step=<b1/c>
cpu_time_fraction_of_plain_loop=<b/c>``, the ratios of best wall-clock rates except the
last, a ratio of least CPU times. On a machine that other processes keep busy the
wall-clock ratios swing with their load; with ``--threads 1`` the CPU-time ratio, which
does not count the time the process waits for a core, stays closer to what an idle
machine gives.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import logging
import math
import os
import platform
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning
import torch
import yaml
from pytorch_lightning import LightningModule, Trainer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rating_prediction.data.schema import MOVIELENS_SCALE
from rating_prediction.models.factorization import InnerSigmoidModel
from rating_prediction.models.variants import variant
from rating_prediction.parameters import (
    VariantParameters,
    parse,
)
from rating_prediction.training.feeding import RatingTensors
from rating_prediction.training.fit import lightning_parts
from rating_prediction.training.fit import new_model as new_project_model
from rating_prediction.training.module import make_optimizers
from rating_prediction.training.trainer import make_trainer

N_USERS = 157_480
N_MOVIES = 50
N_TRAIN = 1_781_184
N_VAL = 4_096
EMBEDDING_DIM = 5
BATCH_SIZE = 4_096
LEARNING_RATE = 5e-3
WARMUP_BATCHES = 20
# (b), (b1) and (c) take a second or two, (a) half a minute: per repeat, (a) runs once
# and (b1), (b), (c) take turns this many times, so that all meet the machine's quiet
# moments.
FAST_ROUNDS_PER_REPEAT = 3
FAST_METHODS = ("project_single", "project", "plain")
TRAINING_PARAMETERS = (
    Path(__file__).resolve().parents[1] / "conf" / "base" / "parameters_training.yml"
)

# A method, given its batch limit (None: whole epochs), builds its model (not timed) and
# returns the training to time, which returns the number of optimizer steps it ran.
Training = Callable[[], int]
Method = Callable[[int | None], Training]


def synthetic(n: int, generator: torch.Generator) -> RatingTensors:
    """``n`` random (user, movie) pairs with ratings 0.5..5 in half stars."""
    return RatingTensors(
        users=torch.randint(0, N_USERS, (n,), generator=generator),
        movies=torch.randint(0, N_MOVIES, (n,), generator=generator),
        ratings=torch.randint(1, 11, (n,), generator=generator).float() / 2,
    )


def new_model(global_mean: float) -> InnerSigmoidModel:
    torch.manual_seed(0)
    return InnerSigmoidModel(
        N_USERS, N_MOVIES, embedding_dim=EMBEDDING_DIM, global_mean=global_mean
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# (a) The seed notebook: TensorDataset + DataLoader, automatic optimisation.


class SeedModule(LightningModule):
    """The notebook's LightningModule: automatic optimisation, Adam, MSE."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def training_step(self, batch, batch_idx):
        users, movies, ratings = batch
        return nn.functional.mse_loss(self.model(users, movies), ratings)

    def configure_optimizers(self):
        return torch.optim.Adam(self.model.parameters(), lr=LEARNING_RATE)


def run_seed(
    train: RatingTensors, device: torch.device, epochs: int, max_batches: int | None
) -> Training:
    module = SeedModule(new_model(float(train.ratings.mean())))
    loader = DataLoader(
        TensorDataset(train.users, train.movies, train.ratings),
        batch_size=BATCH_SIZE,
        shuffle=True,
    )

    def fit() -> int:
        trainer = Trainer(
            max_epochs=epochs,
            accelerator=device.type,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=False,
            limit_train_batches=max_batches or 1.0,
        )
        trainer.fit(module, loader)
        return trainer.global_step

    return fit


# (b) The project's training code, as rating_prediction.training.fit.fit_variant runs it.


def project_options(
    device: torch.device, epochs: int, steps_per_training_step: int | None = None
) -> VariantParameters[Any]:
    """The ``inner_sigmoid`` block of the project's parameters, set to the benchmark's
    model size, optimizer, batch size, epochs and device; ``steps_per_training_step``
    replaces its ``optimizer_steps_per_training_step`` when given."""
    # A copy: the YAML's shared defaults (an anchor) are one dict for both variants.
    options = copy.deepcopy(
        yaml.safe_load(TRAINING_PARAMETERS.read_text())["training"]["inner_sigmoid"]
    )
    options["model"]["embedding_dim"] = EMBEDDING_DIM
    options["optimizer"] = {"learning_rate": LEARNING_RATE, "weight_decay": 0.0}
    options["batch_size"] = BATCH_SIZE
    options |= {"max_epochs": epochs, "min_epochs": 1, "patience": epochs + 1}
    options["data_on_device"] = True
    options["trainer"] |= {"accelerator": device.type, "devices": 1}
    if steps_per_training_step is not None:
        options["optimizer_steps_per_training_step"] = steps_per_training_step
    return parse(variant("inner_sigmoid").parameters, options, "training.inner_sigmoid")


def run_project(
    options: VariantParameters[Any],
    train: RatingTensors,
    val: RatingTensors,
    max_batches: int | None,
) -> Training:
    model, _ = new_project_model(
        "inner_sigmoid", options, train, (N_USERS, N_MOVIES), MOVIELENS_SCALE
    )
    # Lightning's batch limit counts training steps, each of several batches.
    steps = options.optimizer_steps_per_training_step
    overrides = (
        {"limit_train_batches": math.ceil(max_batches / steps)} if max_batches else {}
    )

    def fit() -> int:
        module, data = lightning_parts(
            "inner_sigmoid", options, model, (train, val), options.max_epochs
        )
        with tempfile.TemporaryDirectory(prefix="throughput-") as checkpoint_dir:
            trainer = make_trainer(
                options,
                variant="inner_sigmoid",
                checkpoint_dir=checkpoint_dir,
                **overrides,
            )
            trainer.fit(module, datamodule=data)
        # Under manual optimisation, Lightning counts optimizer steps.
        return trainer.global_step

    return fit


# (c) A plain PyTorch loop over pre-shuffled index tensors.


def run_plain(
    train: RatingTensors, device: torch.device, epochs: int, max_batches: int | None
) -> Training:
    model = new_model(float(train.ratings.mean())).to(device)

    def fit() -> int:
        # The project's optimizer (same class and settings), built by its own factory.
        (optimizer,) = make_optimizers(model, learning_rate=LEARNING_RATE)
        steps = 0
        for _ in range(epochs):
            order = torch.randperm(len(train), device=device)
            users, movies, ratings = (
                train.users[order],
                train.movies[order],
                train.ratings[order],
            )
            total = torch.zeros((), device=device)
            for start in range(0, len(train), BATCH_SIZE):
                if max_batches and steps >= max_batches:
                    break
                end = start + BATCH_SIZE
                optimizer.zero_grad(set_to_none=True)
                loss = nn.functional.mse_loss(
                    model(users[start:end], movies[start:end]), ratings[start:end]
                )
                loss.backward()
                optimizer.step()
                total += loss.detach()
                steps += 1
            float(total)
        return steps

    return fit


@dataclass(frozen=True)
class Measurement:
    """One timed training: wall-clock and process CPU seconds, optimizer steps run."""

    seconds: float
    cpu_seconds: float
    optimizer_steps: int


def measure(training: Training, device: torch.device) -> Measurement:
    """Time ``training``; progress bars (still drawn, as in training) go to devnull."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        synchronize(device)
        started, cpu_started = time.perf_counter(), time.process_time()
        steps = training()
        synchronize(device)
        return Measurement(
            time.perf_counter() - started, time.process_time() - cpu_started, steps
        )


def optimizer_name(optimizer: torch.optim.Optimizer) -> str:
    flags = [key for key in ("fused", "foreach") if optimizer.defaults.get(key)]
    return type(optimizer).__name__ + "".join(f" {key}=True" for key in flags)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument(
        "--epochs", type=int, default=1, help="epochs per measurement (default 1)"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="rounds of measurements, interleaved: (a) once, (b1), (b) and (c) three "
        "times each per round; the best is kept (default 3)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count(),
        help="torch.set_num_threads for all methods (default: the CPU count)",
    )
    parser.add_argument(
        "--skip-seed",
        action="store_true",
        help="skip (a), the slow one (then no speedup_vs_seed)",
    )
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda, but torch sees no CUDA device")
    return args


def quiet_lightning() -> None:
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*GPU available but not used.*")
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def benchmark_methods(
    args: argparse.Namespace, device: torch.device
) -> dict[str, Method]:
    """Each method, by name, as a function of its batch limit (``None``: whole epochs)."""
    generator = torch.Generator().manual_seed(0)
    train_cpu = synthetic(N_TRAIN, generator)
    val_cpu = synthetic(N_VAL, generator)
    train_device = train_cpu.to(device)
    grouped = project_options(device, args.epochs)
    single = project_options(device, args.epochs, steps_per_training_step=1)
    methods: dict[str, Method] = {
        "seed": lambda batches: run_seed(train_cpu, device, args.epochs, batches),
        "project_single": lambda batches: run_project(
            single, train_cpu, val_cpu, batches
        ),
        "project": lambda batches: run_project(grouped, train_cpu, val_cpu, batches),
        "plain": lambda batches: run_plain(train_device, device, args.epochs, batches),
    }
    if args.skip_seed:
        del methods["seed"]
    return methods


def print_setup(args: argparse.Namespace, device: torch.device) -> None:
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(
        f"machine: {platform.machine()} {platform.processor() or ''}".rstrip()
        + f", cpu_count={os.cpu_count()}, torch.get_num_threads()={args.threads}, "
        f"torch {torch.__version__}, pytorch_lightning {pytorch_lightning.__version__}, "
        f"device {device}{gpu}"
    )
    print(
        f"data: {N_USERS:,} users x {N_MOVIES} movies, {N_TRAIN:,} training ratings, "
        f"embedding {EMBEDDING_DIM}, batch {BATCH_SIZE:,}, {args.epochs} epoch(s) per "
        f"measurement, best of {args.repeats} for (a), "
        f"{args.repeats * FAST_ROUNDS_PER_REPEAT} for (b1), (b) and (c)"
    )
    steps = project_options(device, args.epochs).optimizer_steps_per_training_step
    print(
        f"optimizer steps per Lightning training_step: (b) {steps} "
        "(conf/base/parameters_training.yml), (b1) 1"
    )
    (project_optimizer,) = make_optimizers(
        new_model(3.0).to(device), learning_rate=LEARNING_RATE
    )
    print(
        "optimizer: (a) Adam (torch's default implementation), (b1), (b) and (c) "
        f"{optimizer_name(project_optimizer)}, lr {LEARNING_RATE}"
    )


def measure_all(
    methods: dict[str, Method], args: argparse.Namespace, device: torch.device
) -> dict[str, list[Measurement]]:
    """Every measurement, by method, after one warm-up each."""
    for method in methods.values():
        measure(method(WARMUP_BATCHES), device)
    measurements: dict[str, list[Measurement]] = {name: [] for name in methods}
    for _ in range(args.repeats):
        order = ["seed"] if "seed" in methods else []
        order += list(FAST_METHODS) * FAST_ROUNDS_PER_REPEAT
        for name in order:
            measurements[name].append(measure(methods[name](None), device))
            if torch.get_num_threads() != args.threads:
                raise RuntimeError(f"{name} changed torch's thread count")
    steps = {name: measurements[name][-1].optimizer_steps for name in FAST_METHODS}
    if len(set(steps.values())) != 1:
        raise RuntimeError(
            f"(b1), (b) and (c) ran different numbers of optimizer steps: {steps}"
        )
    return measurements


def print_rates(measurements: dict[str, list[Measurement]], ratings_done: int) -> None:
    labels = {
        "seed": "(a) seed: DataLoader + automatic optimisation",
        "project_single": "(b1) project, 1 optimizer step per training_step",
        "project": "(b) project: RatingRegressor + RatingsDataModule",
        "plain": "(c) plain PyTorch loop",
    }
    best = {name: min(m.seconds for m in runs) for name, runs in measurements.items()}
    cpu = {
        name: min(m.cpu_seconds for m in runs) for name, runs in measurements.items()
    }
    for name, runs in measurements.items():
        median = statistics.median(m.seconds for m in runs)
        print(
            f"{labels[name]:<52} {ratings_done / best[name]:>12,.0f} ratings/s "
            f"(median {ratings_done / median:,.0f}, {best[name]:.2f} s per run, "
            f"{cpu[name]:.2f} CPU s)"
        )
    speedup = f"{best['seed'] / best['project']:.2f}" if "seed" in best else "n/a"
    print(
        f"speedup_vs_seed={speedup} "
        f"fraction_of_plain_loop={best['plain'] / best['project']:.2f} "
        "fraction_of_plain_loop_one_step_per_training_step="
        f"{best['plain'] / best['project_single']:.2f} "
        f"cpu_time_fraction_of_plain_loop={cpu['plain'] / cpu['project']:.2f}"
    )


def main() -> None:
    args = parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    quiet_lightning()
    methods = benchmark_methods(args, device)
    print_setup(args, device)
    measurements = measure_all(methods, args, device)
    print_rates(measurements, N_TRAIN * args.epochs)


if __name__ == "__main__":
    main()
