"""A Bayesian factorisation machine (myFM, Gibbs sampling) with implicit feedback, side
information and the rating date, and its exact export to a model served without myFM.

The model (Rendle 2013; Rendle, Zhang and Koren 2019) sees each rating (u, i[, t])
through relation blocks, built from the *fitted* ratings only (:mod:`.features`):

- the user block: u's one-hot, the movies u rated (SVD++-style implicit features, each
  ``1 / sqrt(n_u)``) and u's demographics;
- the movie block: i's one-hot, the users who rated i ("flipped" implicit features,
  each ``1 / sqrt(n_i)``), its genres and the year in its title;
- with ``features.time_bucket_days``, the time block: the rating date's bucket.

An id absent from the fitted ratings has no one-hot nor implicit features, so only its
side data (genres, year, demographics) can give it parameters.

Export: for one Gibbs sample, the terms inside a block (linear and pairwise) are a
per-row constant (``b``), and the cross terms are the dot products of the blocks'
factor sums ``U_u = sum_f v_f x_f``: ``f = w0 + b_u + b_i + <U_u, M_i>`` (+ ``b_t +
<T_t, U_u> + <T_t, M_i>`` with time). Regression without time averages to exactly
``mean(w0) + mean(b_u) + mean(b_i) + <P_u, Q_i>`` with ``P_u = concat_s U_u^s /
sqrt(S)``: a :class:`~rating_prediction.models.factorization.BiasedMatrixFactorization`
with ``S * rank`` factors. Ordered probit (the expected rating is nonlinear in ``f``)
or a time block keep the S samples side by side: a
:class:`~rating_prediction.models.sampled.SampledFactorization` (:mod:`.export`).

- :mod:`.features`: the relation blocks;
- :mod:`.sampling`: the Gibbs sampler, its likelihoods and its per-sample history;
- :mod:`.export`: the served forms;
- this module: the variant's fit (sample on train, choose the samples on val, refit).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import mlflow
import polars as pl
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from rating_prediction.data.schema import MOVIELENS_SCALE, RatingScale
from rating_prediction.models.config import ModelConfig, load_trained_model
from rating_prediction.models.factorization import RatingModel
from rating_prediction.parameters import BayesianFMParameters
from rating_prediction.training.bayesian_fm.export import (
    export_biased_mf,
    export_samples,
)
from rating_prediction.training.bayesian_fm.features import (
    ID_COLUMNS,
    RelationBlocks,
    SideFeatures,
    side_features,
)
from rating_prediction.training.bayesian_fm.sampling import (
    BayesianFMSettings,
    Sampler,
    at_most_rows,
    best_iteration,
    fit,
    fit_with_history,
    rating_levels,
)
from rating_prediction.training.data import TrainingData

logger = logging.getLogger(__name__)

VARIANT = "bayesian_fm"
# The served class of a fit that is no biased MF (ordered probit, or a time block):
# its config's model_class.
SAMPLED_CLASS = "SampledFactorization"


@dataclass(frozen=True)
class SampledOnTrain:
    """The chain on train: the model and its blocks, the per-sample history, its best
    row (``epoch``: samples drawn, ``val_loss``) and the settings that draw that many
    samples (same burn-in)."""

    model: Sampler
    blocks: RelationBlocks
    history: pl.DataFrame
    best: dict[str, float]
    settings: BayesianFMSettings


def fit_variant(
    variant: str, options: BayesianFMParameters, data: TrainingData
) -> tuple[dict[str, torch.Tensor], ModelConfig, pl.DataFrame]:
    """:func:`fit_bayesian_fm` on ``data``, with the side features (genres, release
    year, demographics) ``options.features`` asks for: the fit function of
    ``bayesian_fm`` in the variant registry."""
    tables = {
        "movies": data.movies,
        "movie_mapping": data.movie_mapping,
        "users": data.users,
        "user_mapping": data.user_mapping,
    }
    return fit_bayesian_fm(
        options,
        (data.train, data.val),
        data.id_counts,
        side_features(options.features, tables),
        data.rating_scale,
        on_fitted_on_train=data.report_fitted_on_train,
    )


def fit_bayesian_fm(
    options: BayesianFMParameters,
    splits: tuple[pl.DataFrame, pl.DataFrame],
    id_counts: tuple[int, int],
    side: SideFeatures = SideFeatures(),
    scale: RatingScale = MOVIELENS_SCALE,
    *,
    on_fitted_on_train: Callable[[RatingModel], float] | None = None,
) -> tuple[dict[str, torch.Tensor], ModelConfig, pl.DataFrame]:
    """Sample on train, choose the number of samples on val (the running posterior
    mean's MSE), then sample the final model (on train + val with
    ``options.refit_on_train_val``) and export it (:func:`exported`), its predictions
    clipped to ``scale`` (the data set's rating scale). ``on_fitted_on_train`` gets
    the chosen model of the chain on train, exported, before any refit, and returns
    the seconds it took, which ``fit_seconds`` leaves out.

    Returns:
        The exported weights, the model config (``best_epoch``: samples drawn;
        ``best_val_loss``: held-out val MSE, measured before any refit) and the history.
    """
    started = time.perf_counter()
    train, val = splits
    options = without_time_when_undated(options, train)
    fitted = fitted_ratings([train], options)
    on_train = choose_samples(options, (fitted, val), id_counts, side)
    best, chosen = on_train.best, on_train.settings
    if on_fitted_on_train is not None:
        started += on_fitted_on_train(_exported_model(on_train, id_counts, scale))
    model, blocks, data = on_train.model, on_train.blocks, fitted
    if options.refit_on_train_val:
        data = fitted_ratings([train, val], options)
        chosen = replace(chosen, levels=likelihood_levels(options, data))
        blocks = make_blocks(options, data, id_counts, side)
        model = fit(chosen, data, blocks)
    # Without a refit, the first kept samples of the chain on train are the chosen ones.
    weights, model_class, model_kwargs = exported(model, blocks, chosen, scale)
    seconds = time.perf_counter() - started
    config = ModelConfig(
        variant=VARIANT,
        n_users=id_counts[0],
        n_movies=id_counts[1],
        model_kwargs=model_kwargs,
        model_class=model_class,
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
    """The chain on train's chosen samples as the model the variant exports."""
    weights, model_class, model_kwargs = exported(
        on_train.model, on_train.blocks, on_train.settings, scale
    )
    config = ModelConfig(
        variant=VARIANT,
        n_users=id_counts[0],
        n_movies=id_counts[1],
        model_kwargs=model_kwargs,
        model_class=model_class,
    )
    return load_trained_model(config, weights)


def exported(
    model: Sampler,
    blocks: RelationBlocks,
    settings: BayesianFMSettings,
    scale: RatingScale,
) -> tuple[dict[str, torch.Tensor], str | None, dict[str, Any]]:
    """The first ``settings.n_kept_samples`` kept samples of ``model`` as the served
    model's weights, its class (``None``: the variant's own) and its arguments,
    clipped to ``scale``: regression without a time block collapses into a
    ``BiasedMatrixFactorization``; ordered probit or a time block keep the samples
    side by side in a ``SampledFactorization``."""
    n_samples = settings.n_kept_samples
    if settings.levels is None and blocks.time is None:
        weights, global_mean = export_biased_mf(model, blocks, n_samples)
        return weights, None, biased_mf_kwargs(settings, global_mean, scale)
    kwargs = {
        "n_samples": n_samples,
        "rank": settings.rank,
        "rating_min": scale.min,
        "rating_max": scale.max,
        "levels": None if settings.levels is None else list(settings.levels),
        "time": None if blocks.time is None else blocks.time.served(),
    }
    return export_samples(model, blocks, n_samples), SAMPLED_CLASS, kwargs


def without_time_when_undated(
    options: BayesianFMParameters, train: pl.DataFrame
) -> BayesianFMParameters:
    """``options`` without the time feature when no training rating has a timestamp
    (a file of your own without ``ingestion.file.columns.timestamp``): the default
    configuration then fits any ratings file. Some timestamps missing stays an error
    (:meth:`.features.TimeBuckets.spanning`)."""
    if options.features.time_bucket_days is None or (
        train.height and train["timestamp"].null_count() < train.height
    ):
        return options
    logger.warning(
        "%s: the ratings have no timestamps, so the time feature "
        "(training.bayesian_fm.features.time_bucket_days) is left out",
        VARIANT,
    )
    undated = options.features.model_copy(update={"time_bucket_days": None})
    return options.model_copy(update={"features": undated})


def fitted_ratings(
    splits: list[pl.DataFrame], options: BayesianFMParameters
) -> pl.DataFrame:
    """The ratings of ``splits`` the sampler fits (only the columns it reads: the
    timestamp with the time feature), and with ``options.max_fit_ratings`` a seeded
    sample of at most that many: myFM holds about 150 bytes per fitted rating at its
    peak (its copies of the targets and of the row-to-block maps, residual caches),
    10 GB for 70 million."""
    dated = options.features.time_bucket_days is not None
    columns = [*ID_COLUMNS, "rating", *(["timestamp"] if dated else [])]
    ratings = pl.concat([split.select(columns) for split in splits])
    return at_most_rows(ratings, options.max_fit_ratings, options.seed)


def likelihood_levels(
    options: BayesianFMParameters, ratings: pl.DataFrame
) -> tuple[float, ...] | None:
    """Ordered probit's levels, the distinct ``ratings``; ``None`` for regression."""
    if options.likelihood == "regression":
        return None
    return rating_levels(ratings)


def choose_samples(
    options: BayesianFMParameters,
    splits: tuple[pl.DataFrame, pl.DataFrame],
    id_counts: tuple[int, int],
    side: SideFeatures = SideFeatures(),
) -> SampledOnTrain:
    """Sample on train and pick the number of samples with the lowest val MSE (of the
    running mean of the expected rating)."""
    train, val = splits
    settings = BayesianFMSettings(
        rank=options.rank,
        n_iter=options.n_iter,
        n_kept_samples=options.kept_samples,
        seed=options.seed,
        init_stdev=options.init_stdev,
        levels=likelihood_levels(options, train),
    )
    blocks = make_blocks(options, train, id_counts, side)
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
    side: SideFeatures = SideFeatures(),
) -> RelationBlocks:
    """The relation blocks ``options.features`` asks for, from ``ratings`` only
    (``side``: the side parts it asks for, :func:`side_features`)."""
    return RelationBlocks.from_ratings(
        ratings,
        id_counts,
        implicit=options.features.implicit,
        flipped=options.features.flipped,
        side=side,
        time_bucket_days=options.features.time_bucket_days,
    )


def biased_mf_kwargs(
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
