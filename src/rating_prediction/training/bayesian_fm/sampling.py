"""Gibbs sampling with myFM, and the per-sample history of the running posterior
mean that chooses how many samples to keep."""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import scipy.sparse as sps

with warnings.catch_warnings():  # myFM 0.4 imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import myfm
    import myfm.base

from rating_prediction.runtime.progress import Progress
from rating_prediction.training.bayesian_fm.features import RelationBlocks

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BayesianFMSettings:
    """How to sample: factor rank, Gibbs iterations, samples kept (the last ones)."""

    rank: int
    n_iter: int
    n_kept_samples: int
    seed: int = 42
    init_stdev: float = 0.1

    @property
    def burn_in(self) -> int:
        return self.n_iter - self.n_kept_samples


@dataclass
class RunningMean:
    """The running posterior-mean prediction of each evaluated split, per iteration."""

    names: tuple[str, ...]
    targets: dict[str, np.ndarray]
    relations: dict[str, list[myfm.RelationBlock]]
    burn_in: int
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    rows: list[dict[str, float]] = field(default_factory=list)

    def record(self, iteration: int, sample: myfm._myfm.FM) -> None:
        """Add sample ``iteration`` (0-based). The kept samples are ``burn_in`` onwards;
        until then the "mean" is the sample itself."""
        row: dict[str, float] = {"epoch": iteration + 1}
        for name in self.names:
            n_rows = len(self.targets[name])
            empty = sps.csr_matrix((n_rows, 0), dtype=np.float64)
            prediction = np.asarray(sample.predict_score(empty, self.relations[name]))
            if iteration <= self.burn_in:
                self.sums[name] = np.zeros(n_rows)
            self.sums[name] += prediction
            kept = max(iteration - self.burn_in + 1, 1)
            mean = self.sums[name] / kept
            row[f"{name}_loss"] = float(np.mean((mean - self.targets[name]) ** 2))
        self.rows.append(row)

    def history(self) -> pl.DataFrame:
        return pl.DataFrame(self.rows).with_columns(pl.col("epoch").cast(pl.Int64))


def fit(
    settings: BayesianFMSettings,
    ratings: pl.DataFrame,
    blocks: RelationBlocks,
    callback: Callable[[int, myfm._myfm.FM], None] | None = None,
) -> myfm.MyFMRegressor:
    """Gibbs-sample a Bayesian FM on ``ratings`` with ``blocks`` (no dense features),
    reporting the samples drawn (:class:`~rating_prediction.runtime.progress.Progress`)."""
    model = myfm.MyFMRegressor(
        rank=settings.rank, init_stdev=settings.init_stdev, random_seed=settings.seed
    )
    what = f"bayesian_fm sampling on {ratings.height:,} ratings"
    progress = Progress(what, settings.n_iter, "samples", logger=logger)

    def on_sample(iteration, sample, hyper, history):
        if callback is not None:
            callback(iteration, sample)
        progress.advance()
        return False, None

    with without_myfms_own_bar(), progress:
        model.fit(
            None,
            ratings["rating"].to_numpy().astype(np.float64),
            X_rel=blocks.for_rows(ratings),
            n_iter=settings.n_iter,
            n_kept_samples=settings.n_kept_samples,
            group_shapes=list(blocks.groups),
            callback=on_sample,
        )
    return model


@contextmanager
def without_myfms_own_bar() -> Iterator[None]:
    """myFM always draws a tqdm bar while it samples; without a terminal (a log file,
    CI) each of its updates would land in the output. Its bar is disabled here:
    :func:`fit`'s :class:`~rating_prediction.runtime.progress.Progress` draws one on a
    terminal only, and logs a line with the time left every so often elsewhere."""
    drawn = myfm.base.tqdm
    myfm.base.tqdm = functools.partial(drawn, disable=True)
    try:
        yield
    finally:
        myfm.base.tqdm = drawn


def fit_with_history(
    settings: BayesianFMSettings,
    train: pl.DataFrame,
    val: pl.DataFrame,
    blocks: RelationBlocks,
    history_rows: int | None = None,
) -> tuple[myfm.MyFMRegressor, pl.DataFrame]:
    """Fit on ``train`` and record, after every sample, the train and held-out val MSE
    of the running posterior mean: the history (``epoch``, ``train_loss``, ``val_loss``).

    With ``history_rows``, each MSE is measured on a seeded sample of at most that many
    rows: predicting every training rating after every sample would cost as much as
    the sample itself on a large release.
    """
    tracked = [
        ("train", at_most_rows(train, history_rows, settings.seed)),
        ("val", at_most_rows(val, history_rows, settings.seed)),
    ]
    tracker = RunningMean(
        names=("train", "val"),
        targets={name: frame["rating"].to_numpy() for name, frame in tracked},
        relations={name: blocks.for_rows(frame) for name, frame in tracked},
        burn_in=settings.burn_in,
    )
    model = fit(settings, train, blocks, callback=tracker.record)
    return model, tracker.history()


def at_most_rows(ratings: pl.DataFrame, rows: int | None, seed: int) -> pl.DataFrame:
    """A seeded sample of at most ``rows`` of ``ratings`` (all of them for ``None``)."""
    if rows is None or ratings.height <= rows:
        return ratings
    return ratings.sample(rows, seed=seed)


def best_iteration(history: pl.DataFrame, burn_in: int) -> dict[str, float]:
    """The recorded row with the lowest val MSE among those averaging kept samples."""
    after_burn_in = history.filter(pl.col("epoch") > burn_in)
    return after_burn_in.row(int(after_burn_in["val_loss"].arg_min()), named=True)
