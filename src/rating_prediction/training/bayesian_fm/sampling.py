"""Gibbs sampling with myFM (regression or ordered probit), and the per-sample history
of the running posterior mean that chooses how many samples to keep.

Ordered probit reads the ratings as ordered classes, the rating levels of the fitted
ratings (:func:`rating_levels`). myFM's convention, checked against its
``predict_proba`` (``benchmarks/bayesian_fm_features.py --check-probit``): a sample
of score ``f`` and ascending cutpoints ``c`` gives ``P(y <= k) = Phi(c_k - f)`` below
the top level; its prediction is the expected rating ``sum_k levels[k] P(y = k)``.
"""

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
from scipy.special import ndtr

with warnings.catch_warnings():  # myFM 0.4 imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import myfm
    import myfm.base

from rating_prediction.runtime.progress import Progress
from rating_prediction.training.bayesian_fm.features import RelationBlocks

logger = logging.getLogger(__name__)

# Ordered probit learns one cutpoint per step between levels; a scale with more distinct
# ratings than this is no discrete scale of stars or points.
MAX_LEVELS = 32

Sampler = myfm.MyFMRegressor | myfm.MyFMOrderedProbit


@dataclass(frozen=True)
class BayesianFMSettings:
    """How to sample: factor rank, Gibbs iterations, samples kept (the last ones), and
    the likelihood: regression (``levels`` ``None``) or ordered probit over
    ``levels``, the rating values in ascending order."""

    rank: int
    n_iter: int
    n_kept_samples: int
    seed: int = 42
    init_stdev: float = 0.1
    levels: tuple[float, ...] | None = None

    @property
    def burn_in(self) -> int:
        return self.n_iter - self.n_kept_samples


def rating_levels(ratings: pl.DataFrame) -> tuple[float, ...]:
    """The distinct ratings of ``ratings`` in ascending order: ordered probit's classes.

    Raises:
        ValueError: Naming ``training.bayesian_fm.likelihood``, when they are fewer
            than two or more than ``MAX_LEVELS`` (no discrete scale).
    """
    levels = tuple(float(level) for level in ratings["rating"].unique().sort())
    if 2 <= len(levels) <= MAX_LEVELS:
        return levels
    shown = ", ".join(f"{level:g}" for level in levels[:8])
    raise ValueError(
        "training.bayesian_fm.likelihood: ordered_probit reads the ratings as ordered "
        f"classes and needs a discrete scale of 2 to {MAX_LEVELS} rating values "
        "(half stars, whole stars 1-5, points 1-10); the fitted ratings hold "
        f"{len(levels)} distinct value(s) ({shown}{', ...' if levels[8:] else ''}). "
        "Use likelihood: regression for this data."
    )


def expected_ratings(
    sample: myfm._myfm.FM,
    relations: list[myfm.RelationBlock],
    levels: tuple[float, ...] | None,
) -> np.ndarray:
    """One sample's prediction for the rows of ``relations``: its score (regression)
    or its expected rating over ``levels`` (ordered probit)."""
    n_rows = relations[0].mapper_size
    scores = np.asarray(
        sample.predict_score(sps.csr_matrix((n_rows, 0), dtype=np.float64), relations)
    )
    if levels is None:
        return scores
    return expected_rating(scores, np.asarray(sample.cutpoints[0]), levels)


def expected_rating(
    scores: np.ndarray, cutpoints: np.ndarray, levels: tuple[float, ...]
) -> np.ndarray:
    """``sum_k levels[k] P(y = k)`` with ``P(y <= k) = Phi(cutpoints[k] - score)``,
    summed by parts: ``levels[-1] - sum_k (levels[k+1] - levels[k]) P(y <= k)``."""
    below = ndtr(cutpoints[None, :] - scores[:, None])
    return levels[-1] - below @ np.diff(levels)


@dataclass
class RunningMean:
    """The running posterior-mean prediction of each evaluated split, per iteration."""

    names: tuple[str, ...]
    targets: dict[str, np.ndarray]
    relations: dict[str, list[myfm.RelationBlock]]
    burn_in: int
    levels: tuple[float, ...] | None = None
    sums: dict[str, np.ndarray] = field(default_factory=dict)
    rows: list[dict[str, float]] = field(default_factory=list)

    def record(self, iteration: int, sample: myfm._myfm.FM) -> None:
        """Add sample ``iteration`` (0-based). The kept samples are ``burn_in`` onwards;
        until then the "mean" is the sample itself."""
        row: dict[str, float] = {"epoch": iteration + 1}
        for name in self.names:
            prediction = expected_ratings(sample, self.relations[name], self.levels)
            if iteration <= self.burn_in:
                self.sums[name] = np.zeros(len(prediction))
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
) -> Sampler:
    """Gibbs-sample a Bayesian FM on ``ratings`` with ``blocks`` (no dense features),
    reporting the samples drawn (:class:`~rating_prediction.runtime.progress.Progress`):
    a regressor, or with ``settings.levels`` an ordered probit model whose classes are
    the levels' indices (every rating must be one of them)."""
    sampler = myfm.MyFMRegressor if settings.levels is None else myfm.MyFMOrderedProbit
    model = sampler(
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
            targets(ratings, settings.levels),
            X_rel=blocks.for_rows(ratings),
            n_iter=settings.n_iter,
            n_kept_samples=settings.n_kept_samples,
            group_shapes=list(blocks.groups),
            callback=on_sample,
        )
    return model


def targets(ratings: pl.DataFrame, levels: tuple[float, ...] | None) -> np.ndarray:
    """What the sampler fits: the ratings, or with ``levels`` each rating's class
    (its index among the levels).

    Raises:
        ValueError: If a rating is none of the levels.
    """
    values = ratings["rating"].to_numpy().astype(np.float64)
    if levels is None:
        return values
    grid = np.asarray(levels)
    classes = np.minimum(np.searchsorted(grid, values), len(grid) - 1)
    if not np.array_equal(grid[classes], values):
        raise ValueError(f"Ratings outside the ordered probit's levels {levels}.")
    return classes


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
) -> tuple[Sampler, pl.DataFrame]:
    """Fit on ``train`` and record, after every sample, the train and held-out val MSE
    of the running posterior mean (of the expected rating, with ordered probit): the
    history (``epoch``, ``train_loss``, ``val_loss``).

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
        levels=settings.levels,
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
