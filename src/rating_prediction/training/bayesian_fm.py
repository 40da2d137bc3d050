"""A Bayesian factorisation machine (myFM, Gibbs sampling) with implicit feedback, and its
exact export to the biased matrix factorisation form.

The model (Rendle 2013; Rendle, Zhang and Koren 2019) sees each rating (u, i) through two
relation blocks, built from the *fitted* ratings only:

- the user block: u's one-hot and the movies u rated (SVD++-style implicit features,
  each ``1 / sqrt(n_u)``);
- the movie block: i's one-hot and the users who rated i ("flipped" implicit features,
  each ``1 / sqrt(n_i)``).

An id absent from the fitted ratings has an all-zero row, so it contributes nothing.

Export: for one Gibbs sample, the terms inside the user block (linear and pairwise) are a
per-user constant, those inside the movie block a per-movie constant, and the cross term
is ``<U_u, M_i>`` with ``U_u = sum_f v_f x_f`` over the user block. The posterior mean
over S kept samples is therefore exactly ``mean(w0) + b_u + b_i + <P_u, Q_i>`` with
``P_u = concat_s U_u^s / sqrt(S)``: a :class:`~rating_prediction.models.factorization.BiasedMatrixFactorization`
with ``S * rank`` factors, served without myFM.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import mlflow
import numpy as np
import polars as pl
import scipy.sparse as sps
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

with warnings.catch_warnings():  # myFM 0.4 imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import myfm

from rating_prediction.models.config import ModelConfig
from rating_prediction.parameters import BayesianFMParameters
from rating_prediction.training.data import TrainingData

logger = logging.getLogger(__name__)

VARIANT = "bayesian_fm"
ID_COLUMNS = ("userIdMapped", "movieIdMapped")


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


@dataclass(frozen=True)
class RelationBlocks:
    """Per-id feature rows of the two blocks, built from the fitted ratings.

    ``users`` has a row per user: its one-hot, then (``implicit``) the movies it rated;
    ``movies`` a row per movie: its one-hot, then (``flipped``) the users who rated it and
    (genres given) its genres. ``groups`` lists the width of each part, in feature order
    (user parts first): each part gets its own prior in the sampler.
    """

    users: sps.csr_matrix
    movies: sps.csr_matrix
    groups: tuple[int, ...]

    @classmethod
    def from_ratings(
        cls,
        ratings: pl.DataFrame,
        id_counts: tuple[int, int],
        *,
        implicit: bool = True,
        flipped: bool = True,
        genres: sps.csr_matrix | None = None,
    ) -> RelationBlocks:
        """The blocks of ``ratings`` (the fitted ratings only); ``genres`` is
        ``n_movies x n_genres`` (see :func:`genre_matrix`) or ``None``."""
        n_users, n_movies = id_counts
        users, movies = (
            ratings[column].to_numpy().astype(np.int64) for column in ID_COLUMNS
        )
        user_parts = _parts(users, movies, (n_users, n_movies), implicit)
        movie_parts = _parts(movies, users, (n_movies, n_users), flipped)
        if genres is not None:
            movie_parts.append(genres[:n_movies].tocsr())
        return cls(
            users=sps.hstack(user_parts, format="csr"),
            movies=sps.hstack(movie_parts, format="csr"),
            groups=tuple(part.shape[1] for part in [*user_parts, *movie_parts]),
        )

    def for_rows(self, ratings: pl.DataFrame) -> list[myfm.RelationBlock]:
        """myFM's relation blocks for the (user, movie) rows of ``ratings``."""
        users, movies = (ratings[column].to_numpy() for column in ID_COLUMNS)
        return [
            myfm.RelationBlock(users.astype(np.int64), self.users),
            myfm.RelationBlock(movies.astype(np.int64), self.movies),
        ]


def _parts(
    own: np.ndarray, other: np.ndarray, sizes: tuple[int, int], with_other: bool
) -> list[sps.csr_matrix]:
    """``[one-hot]`` or ``[one-hot, 1/sqrt(n) over the other ids rated with it]``; an id
    absent from ``own`` gets an all-zero row (no parameters: the project's fallback)."""
    n_own, n_other = sizes
    seen = np.bincount(own, minlength=n_own) > 0
    parts = [sps.diags(seen.astype(np.float64), format="csr")]
    if with_other:
        pairs = sps.csr_matrix(
            (np.ones(len(own)), (own, other)), shape=(n_own, n_other)
        )
        pairs.data[:] = 1.0  # a pair rated twice counts once
        parts.append(_normalised_rows(pairs))
    return parts


def _normalised_rows(matrix: sps.csr_matrix) -> sps.csr_matrix:
    """Each non-empty row of a 0/1 matrix divided by the square root of its count."""
    counts = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, np.sqrt(counts), out=np.zeros(len(counts)), where=counts > 0)
    return (sps.diags(scale) @ matrix).tocsr()


def genre_matrix(movies: pl.DataFrame, movie_mapping: pl.DataFrame) -> sps.csr_matrix:
    """``n_movies x n_genres``: each mapped movie's genres (``|``-joined in ``movies``,
    null for none), rows normalised like the implicit features."""
    genres = (
        movie_mapping.join(movies.select("movieId", "genres"), on="movieId", how="left")
        .select("movieIdMapped", pl.col("genres").str.split("|"))
        .explode("genres")
        .drop_nulls("genres")
    )
    vocabulary = sorted(genres["genres"].unique().to_list())
    columns = genres["genres"].replace_strict(
        vocabulary, list(range(len(vocabulary))), return_dtype=pl.Int64
    )
    pairs = sps.csr_matrix(
        (np.ones(genres.height), (genres["movieIdMapped"].to_numpy(), columns)),
        shape=(movie_mapping.height, len(vocabulary)),
    )
    pairs.data[:] = 1.0
    return _normalised_rows(pairs)


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
    """Gibbs-sample a Bayesian FM on ``ratings`` with ``blocks`` (no dense features)."""
    model = myfm.MyFMRegressor(
        rank=settings.rank, init_stdev=settings.init_stdev, random_seed=settings.seed
    )

    def on_sample(iteration, sample, hyper, history):
        if callback is not None:
            callback(iteration, sample)
        return False, None

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
        ("train", _at_most(train, history_rows, settings.seed)),
        ("val", _at_most(val, history_rows, settings.seed)),
    ]
    tracker = RunningMean(
        names=("train", "val"),
        targets={name: frame["rating"].to_numpy() for name, frame in tracked},
        relations={name: blocks.for_rows(frame) for name, frame in tracked},
        burn_in=settings.burn_in,
    )
    model = fit(settings, train, blocks, callback=tracker.record)
    return model, tracker.history()


def _at_most(ratings: pl.DataFrame, rows: int | None, seed: int) -> pl.DataFrame:
    if rows is None or ratings.height <= rows:
        return ratings
    return ratings.sample(rows, seed=seed)


def best_iteration(history: pl.DataFrame, burn_in: int) -> dict[str, float]:
    """The recorded row with the lowest val MSE among those averaging kept samples."""
    after_burn_in = history.filter(pl.col("epoch") > burn_in)
    return after_burn_in.row(int(after_burn_in["val_loss"].arg_min()), named=True)


def export_biased_mf(
    model: myfm.MyFMRegressor, blocks: RelationBlocks, n_samples: int | None = None
) -> tuple[dict[str, torch.Tensor], float]:
    """The posterior mean of ``model``'s first ``n_samples`` kept samples (all by
    default) as a ``BiasedMatrixFactorization`` state dict (``S * rank`` factors) and
    its global mean (the mean of ``w0``)."""
    samples = model.predictor_.samples[:n_samples]
    n_user_features = blocks.users.shape[1]
    user_parts, movie_parts = [], []
    for sample in samples:
        w, v = np.asarray(sample.w), np.asarray(sample.V)
        user_parts.append(_block_terms(blocks.users, w, v, slice(0, n_user_features)))
        movie_parts.append(
            _block_terms(blocks.movies, w, v, slice(n_user_features, None))
        )
    scale = 1.0 / math.sqrt(len(samples))
    state = {
        "user_factors.weight": np.hstack([part[1] for part in user_parts]) * scale,
        "movie_factors.weight": np.hstack([part[1] for part in movie_parts]) * scale,
        "user_bias.weight": np.mean([part[0] for part in user_parts], axis=0)[:, None],
        "movie_bias.weight": np.mean([part[0] for part in movie_parts], axis=0)[
            :, None
        ],
    }
    global_mean = float(np.mean([sample.w0 for sample in samples]))
    weights = {name: torch.from_numpy(value).float() for name, value in state.items()}
    weights["global_mean"] = torch.tensor(global_mean)
    return weights, global_mean


def _block_terms(
    rows: sps.csr_matrix, w: np.ndarray, v: np.ndarray, features: slice
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a block: its within-block terms (linear + pairwise) and ``sum v_f x_f``."""
    w, v = w[features], v[features]
    factors = np.asarray(rows @ v)
    squares = rows.multiply(rows) @ (v**2).sum(axis=1)
    pairwise = 0.5 * ((factors**2).sum(axis=1) - np.asarray(squares).ravel())
    return np.asarray(rows @ w).ravel() + pairwise, factors


@dataclass(frozen=True)
class SampledOnTrain:
    """The chain on train: the model and its blocks, the per-sample history, its best
    row (``epoch``: samples drawn, ``val_loss``) and the settings that draw that many
    samples (same burn-in)."""

    model: myfm.MyFMRegressor
    blocks: RelationBlocks
    history: pl.DataFrame
    best: dict[str, float]
    settings: BayesianFMSettings


def fit_variant(
    variant: str, options: BayesianFMParameters, data: TrainingData
) -> tuple[dict[str, torch.Tensor], ModelConfig, pl.DataFrame]:
    """:func:`fit_bayesian_fm` on ``data``, with the genre features when
    ``options.features`` asks for them: the fit function of ``bayesian_fm`` in the
    variant registry."""
    genres = (
        genre_matrix(data.movies, data.movie_mapping)
        if options.features.genres
        else None
    )
    return fit_bayesian_fm(options, (data.train, data.val), data.id_counts, genres)


def fit_bayesian_fm(
    options: BayesianFMParameters,
    splits: tuple[pl.DataFrame, pl.DataFrame],
    id_counts: tuple[int, int],
    genres: sps.csr_matrix | None = None,
) -> tuple[dict[str, torch.Tensor], ModelConfig, pl.DataFrame]:
    """Sample on train, choose the number of samples on val (the running posterior
    mean's MSE), then sample the final model (on train + val with
    ``options.refit_on_train_val``) and export it as a biased MF.

    Returns:
        The exported weights, the model config (``best_epoch``: samples drawn;
        ``best_val_loss``: held-out val MSE, measured before any refit) and the history.
    """
    started = time.perf_counter()
    train, val = splits
    fitted = fitted_ratings([train], options)
    on_train = choose_samples(options, (fitted, val), id_counts, genres)
    best, chosen = on_train.best, on_train.settings
    model, blocks, data = on_train.model, on_train.blocks, fitted
    if options.refit_on_train_val:
        data = fitted_ratings([train, val], options)
        blocks = make_blocks(options, data, id_counts, genres)
        model = fit(chosen, data, blocks)
    # Without a refit, the first kept samples of the chain on train are the chosen ones.
    weights, global_mean = export_biased_mf(model, blocks, chosen.n_kept_samples)
    seconds = time.perf_counter() - started
    config = ModelConfig(
        variant=VARIANT,
        n_users=id_counts[0],
        n_movies=id_counts[1],
        model_kwargs=exported_model_kwargs(options, chosen, global_mean),
        best_epoch=best["epoch"],
        best_val_loss=best["val_loss"],
        refit_on_train_val=options.refit_on_train_val,
        fit_seconds=round(seconds, 3),
    )
    log_fit(on_train.history, seconds, chosen, data.height)
    return weights, config, on_train.history


def fitted_ratings(
    splits: list[pl.DataFrame], options: BayesianFMParameters
) -> pl.DataFrame:
    """The ratings of ``splits`` the sampler fits (only the columns it reads), and with
    ``options.max_fit_ratings`` a seeded sample of at most that many: myFM holds about
    150 bytes per fitted rating at its peak (its copies of the targets and of the
    row-to-block maps, residual caches), 10 GB for 70 million."""
    columns = pl.concat([split.select(*ID_COLUMNS, "rating") for split in splits])
    return _at_most(columns, options.max_fit_ratings, options.seed)


def choose_samples(
    options: BayesianFMParameters,
    splits: tuple[pl.DataFrame, pl.DataFrame],
    id_counts: tuple[int, int],
    genres: sps.csr_matrix | None = None,
) -> SampledOnTrain:
    """Sample on train and pick the number of samples with the lowest val MSE."""
    train, val = splits
    settings = BayesianFMSettings(
        rank=options.rank,
        n_iter=options.n_iter,
        n_kept_samples=options.n_kept_samples,
        seed=options.seed,
        init_stdev=options.init_stdev,
    )
    blocks = make_blocks(options, train, id_counts, genres)
    model, history = fit_with_history(
        settings, train, val, blocks, options.history_rows
    )
    best = best_iteration(history, settings.burn_in)
    chosen = replace(
        settings,
        n_iter=best["epoch"],
        n_kept_samples=best["epoch"] - settings.burn_in,
    )
    return SampledOnTrain(model, blocks, history, best, chosen)


def make_blocks(
    options: BayesianFMParameters,
    ratings: pl.DataFrame,
    id_counts: tuple[int, int],
    genres: sps.csr_matrix | None,
) -> RelationBlocks:
    """The relation blocks ``options.features`` asks for, from ``ratings`` only."""
    return RelationBlocks.from_ratings(
        ratings,
        id_counts,
        implicit=options.features.implicit,
        flipped=options.features.flipped,
        genres=genres if options.features.genres else None,
    )


def exported_model_kwargs(
    options: BayesianFMParameters, settings: BayesianFMSettings, global_mean: float
) -> dict[str, bool | int | float]:
    """The ``BiasedMatrixFactorization`` arguments of the exported posterior mean."""
    return {
        "embedding_dim": settings.n_kept_samples * settings.rank,
        "rating_min": options.rating_min,
        "rating_max": options.rating_max,
        "global_mean": global_mean,
        "sparse": False,
    }


def log_fit(
    history: pl.DataFrame, seconds: float, settings: BayesianFMSettings, n_fitted: int
) -> None:
    """Log the fit, and into the active MLflow run (if any) the per-sample
    ``bayesian_fm.train_loss`` / ``bayesian_fm.val_loss`` and ``bayesian_fm.fit_seconds``."""
    logger.info(
        "%s: %d samples drawn (%d kept) on %s ratings; %.1f s in all, refit included",
        VARIANT,
        settings.n_iter,
        settings.n_kept_samples,
        f"{n_fitted:,}",
        seconds,
    )
    run = mlflow.active_run()
    if run is None:
        return
    stamp = int(time.time() * 1000)
    metrics = [
        Metric(f"{VARIANT}.{name}", float(row[name]), stamp, int(row["epoch"]))
        for row in history.iter_rows(named=True)
        for name in ("train_loss", "val_loss")
    ]
    metrics.append(Metric(f"{VARIANT}.fit_seconds", seconds, stamp, 0))
    MlflowClient().log_batch(run.info.run_id, metrics=metrics)
