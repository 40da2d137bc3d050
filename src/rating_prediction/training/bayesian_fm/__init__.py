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

- :mod:`.features`: the relation blocks;
- :mod:`.sampling`: the Gibbs sampler and its per-sample history;
- :mod:`.export`: the posterior mean as a biased MF;
- this module: the variant's fit (sample on train, choose the samples on val, refit).
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import mlflow
import polars as pl
import scipy.sparse as sps
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

with warnings.catch_warnings():  # myFM 0.4 imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import myfm

from rating_prediction.data.schema import MOVIELENS_SCALE, RatingScale
from rating_prediction.models.config import ModelConfig, load_trained_model
from rating_prediction.models.factorization import RatingModel
from rating_prediction.parameters import BayesianFMParameters
from rating_prediction.training.bayesian_fm.export import export_biased_mf
from rating_prediction.training.bayesian_fm.features import (
    ID_COLUMNS,
    RelationBlocks,
    genre_matrix,
)
from rating_prediction.training.bayesian_fm.sampling import (
    BayesianFMSettings,
    at_most_rows,
    best_iteration,
    fit,
    fit_with_history,
)
from rating_prediction.training.data import TrainingData

logger = logging.getLogger(__name__)

VARIANT = "bayesian_fm"


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
    return fit_bayesian_fm(
        options,
        (data.train, data.val),
        data.id_counts,
        genres,
        data.rating_scale,
        on_fitted_on_train=data.report_fitted_on_train,
    )


def fit_bayesian_fm(
    options: BayesianFMParameters,
    splits: tuple[pl.DataFrame, pl.DataFrame],
    id_counts: tuple[int, int],
    genres: sps.csr_matrix | None = None,
    scale: RatingScale = MOVIELENS_SCALE,
    *,
    on_fitted_on_train: Callable[[RatingModel], None] | None = None,
) -> tuple[dict[str, torch.Tensor], ModelConfig, pl.DataFrame]:
    """Sample on train, choose the number of samples on val (the running posterior
    mean's MSE), then sample the final model (on train + val with
    ``options.refit_on_train_val``) and export it as a biased MF whose predictions are
    clipped to ``scale`` (the data set's rating scale). ``on_fitted_on_train`` gets
    the chosen model of the chain on train, exported, before any refit.

    Returns:
        The exported weights, the model config (``best_epoch``: samples drawn;
        ``best_val_loss``: held-out val MSE, measured before any refit) and the history.
    """
    started = time.perf_counter()
    train, val = splits
    fitted = fitted_ratings([train], options)
    on_train = choose_samples(options, (fitted, val), id_counts, genres)
    best, chosen = on_train.best, on_train.settings
    if on_fitted_on_train is not None:
        on_fitted_on_train(_exported_model(on_train, id_counts, scale))
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
        model_kwargs=exported_model_kwargs(chosen, global_mean, scale),
        best_epoch=best["epoch"],
        best_val_loss=best["val_loss"],
        refit_on_train_val=options.refit_on_train_val,
        fit_seconds=round(seconds, 3),
    )
    log_fit(on_train.history, seconds, chosen, data.height)
    return weights, config, on_train.history


def _exported_model(
    on_train: SampledOnTrain, id_counts: tuple[int, int], scale: RatingScale
) -> RatingModel:
    """The chain on train's chosen samples as the biased MF the variant exports."""
    chosen = on_train.settings
    weights, global_mean = export_biased_mf(
        on_train.model, on_train.blocks, chosen.n_kept_samples
    )
    config = ModelConfig(
        variant=VARIANT,
        n_users=id_counts[0],
        n_movies=id_counts[1],
        model_kwargs=exported_model_kwargs(chosen, global_mean, scale),
    )
    return load_trained_model(config, weights)


def fitted_ratings(
    splits: list[pl.DataFrame], options: BayesianFMParameters
) -> pl.DataFrame:
    """The ratings of ``splits`` the sampler fits (only the columns it reads), and with
    ``options.max_fit_ratings`` a seeded sample of at most that many: myFM holds about
    150 bytes per fitted rating at its peak (its copies of the targets and of the
    row-to-block maps, residual caches), 10 GB for 70 million."""
    columns = pl.concat([split.select(*ID_COLUMNS, "rating") for split in splits])
    return at_most_rows(columns, options.max_fit_ratings, options.seed)


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
    settings: BayesianFMSettings, global_mean: float, scale: RatingScale
) -> dict[str, bool | int | float]:
    """The ``BiasedMatrixFactorization`` arguments of the exported posterior mean,
    clipped to ``scale``."""
    return {
        "embedding_dim": settings.n_kept_samples * settings.rank,
        "rating_min": scale.min,
        "rating_max": scale.max,
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
