"""Nodes of the ``evaluation`` pipeline: predict every split with a trained model or a
baseline, score the predictions and gather the scores into ``metrics.json``.

A trained model predicts each rating at its own ``timestamp``, so a model with a time
feature (bayesian_fm's ``SampledFactorization``) is scored exactly; the others ignore
it. Ranking scores every movie at the model's default time bucket (the last of its
training data), as the served model recommends.

A prediction frame holds ``userId``, ``movieId``, ``rating`` and ``prediction``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import polars as pl
import torch

from rating_prediction.data.schema import SPLITS, RatingScale
from rating_prediction.evaluation.intervals import paired_comparison_of_moments
from rating_prediction.evaluation.metrics import (
    batched_regression_metrics,
    regression_metrics,
)
from rating_prediction.evaluation.names import mlflow_metrics
from rating_prediction.evaluation.ranking import (
    RankingTask,
    model_scorer,
    random_scorer,
    ranking_metrics_of,
    ranking_task,
    user_ranking_metrics,
)
from rating_prediction.models import baselines
from rating_prediction.models.baselines import BaselinePredictor
from rating_prediction.models.config import ModelConfig, load_trained_model
from rating_prediction.models.factorization import RatingModel
from rating_prediction.models.scoring import (
    Scorer,
    blended_scorer,
    count_scorer,
    log_count_scorer,
    scored_once,
)
from rating_prediction.parameters import EvaluationParameters, parse
from rating_prediction.serving.ranker import held_out_ndcg_key

logger = logging.getLogger(__name__)
# Columns of the rated pairs that a prediction frame keeps next to its `prediction`.
RATED_PAIR_COLUMNS = ["userId", "movieId", "rating"]
# What a baseline is fitted on.
BASELINE_FIT_COLUMNS = ["userIdMapped", "movieIdMapped", "rating"]


def predict_with_model(
    model_config: dict[str, Any],
    model_weights: dict[str, torch.Tensor],
    ratings: pl.DataFrame,
    evaluation: dict[str, Any],
) -> pl.DataFrame:
    """Predicts ``ratings`` with a trained model, ``evaluation.prediction_batch_size``
    rows at a time.

    Batching bounds the memory of the forward pass whatever the split size (MovieLens
    25M included): only the ids and the float32 predictions are held in full.
    """
    batch_size = _batch_size(evaluation)
    model = load_trained_model(model_config, model_weights)
    predictions = np.empty(ratings.height, dtype=np.float32)
    for start in range(0, ratings.height, batch_size):
        batch = ratings.slice(start, batch_size)
        predictions[start : start + batch.height] = _model_predictions(model, batch)
    return ratings.select(RATED_PAIR_COLUMNS).with_columns(
        prediction=pl.Series(predictions, dtype=pl.Float32)
    )


def score_with_model(
    model_config: dict[str, Any],
    model_weights: dict[str, torch.Tensor],
    ratings: pl.DataFrame,
    evaluation: dict[str, Any],
) -> dict[str, float]:
    """MSE, RMSE and MAE of a trained model on ``ratings``, predicted and summed
    ``evaluation.prediction_batch_size`` rows at a time (no predictions kept)."""
    batch_size = _batch_size(evaluation)
    model = load_trained_model(model_config, model_weights)
    return batched_regression_metrics(
        ratings, lambda batch: _model_predictions(model, batch), batch_size
    )


def _model_predictions(model: RatingModel, ratings: pl.DataFrame) -> np.ndarray:
    """The model's predictions of ``ratings``, each at its own ``timestamp`` (a null
    one, or none: the model's default), which a model with a time feature reads."""
    timestamps = None
    if "timestamp" in ratings.columns:
        # A writable copy: torch refuses to share polars' read-only buffer.
        seconds = ratings["timestamp"].cast(pl.Float64).fill_null(np.nan)
        timestamps = torch.from_numpy(seconds.to_numpy(writable=True))
    with torch.no_grad():
        return model.predict(
            torch.from_numpy(ratings["userIdMapped"].to_numpy().astype(np.int64)),
            torch.from_numpy(ratings["movieIdMapped"].to_numpy().astype(np.int64)),
            timestamps,
        ).numpy()


def _batch_size(evaluation: dict[str, Any]) -> int:
    return parse(EvaluationParameters, evaluation, "evaluation").prediction_batch_size


def fit_mean_baseline(
    train_ratings: pl.DataFrame, rating_scale: dict[str, Any]
) -> BaselinePredictor:
    """The mean baseline, predicting on ``rating_scale`` (the data set's)."""
    return baselines.fit_mean_baseline(
        train_ratings, RatingScale.from_dict(rating_scale)
    )


def fit_bias_baseline(
    train_ratings: pl.DataFrame,
    evaluation: dict[str, Any],
    rating_scale: dict[str, Any],
) -> BaselinePredictor:
    """The bias baseline with ``evaluation.bias_baseline``'s regularisation and epochs,
    its predictions clipped to ``rating_scale`` (the data set's), as every model's."""
    settings = parse(EvaluationParameters, evaluation, "evaluation").bias_baseline
    return baselines.fit_bias_baseline(
        train_ratings,
        settings.reg_user,
        settings.reg_movie,
        settings.n_epochs,
        RatingScale.from_dict(rating_scale),
    )


def predict_with_baseline(
    baseline: BaselinePredictor, ratings: pl.DataFrame
) -> pl.DataFrame:
    """Predicts ``ratings`` with a fitted baseline."""
    return ratings.select(RATED_PAIR_COLUMNS).with_columns(
        prediction=baseline.predict(ratings)
    )


def score_with_baseline(
    baseline: BaselinePredictor, ratings: pl.DataFrame, evaluation: dict[str, Any]
) -> dict[str, float]:
    """MSE, RMSE and MAE of a fitted baseline on ``ratings``, predicted and summed
    ``evaluation.prediction_batch_size`` rows at a time (no predictions kept)."""
    return batched_regression_metrics(
        ratings, baseline.predict, _batch_size(evaluation)
    )


def fit_mean_baseline_on_train_val(
    train_ratings: pl.DataFrame,
    val_ratings: pl.DataFrame,
    rating_scale: dict[str, Any],
) -> BaselinePredictor:
    """The mean baseline fitted on train + val, the data the refitted models' final
    fit sees."""
    return fit_mean_baseline(_train_val(train_ratings, val_ratings), rating_scale)


def fit_bias_baseline_on_train_val(
    train_ratings: pl.DataFrame,
    val_ratings: pl.DataFrame,
    evaluation: dict[str, Any],
    rating_scale: dict[str, Any],
) -> BaselinePredictor:
    """The bias baseline fitted on train + val (see :func:`fit_bias_baseline`)."""
    return fit_bias_baseline(
        _train_val(train_ratings, val_ratings), evaluation, rating_scale
    )


def _train_val(train_ratings: pl.DataFrame, val_ratings: pl.DataFrame) -> pl.DataFrame:
    """Train and val as one frame, only the columns a baseline fits on (12 of the 28
    bytes of a rating), held only while a baseline is fitted on it."""
    return pl.concat(
        [frame.select(BASELINE_FIT_COLUMNS) for frame in (train_ratings, val_ratings)]
    )


def compute_split_metrics(
    train_metrics: dict[str, float],
    val_metrics: dict[str, float],
    test_predictions: pl.DataFrame,
) -> dict[str, dict[str, float]]:
    """MSE, RMSE and MAE on each split: ``{"train": {"mse": ..}, "val": .., "test": ..}``;
    train and val come scored in batches, test from its saved predictions."""
    test_metrics = regression_metrics(
        test_predictions["rating"], test_predictions["prediction"]
    )
    return dict(zip(SPLITS, [train_metrics, val_metrics, test_metrics]))


def build_ranking_task(
    train_ratings: pl.DataFrame,
    val_ratings: pl.DataFrame,
    test_ratings: pl.DataFrame,
    evaluation: dict[str, Any],
    rating_scale: dict[str, Any],
) -> RankingTask:
    """Who is ranked over which candidates, and what is relevant
    (``evaluation.ranking``, its threshold on ``rating_scale``, the data set's): built
    once for every ranking entry. The history is train + val, everything known before
    test: no entry recommends a movie the user rated there. The candidates are the
    movies seen in train, the catalogue the served model recommends from.

    Raises:
        ParameterError: If a stated ``evaluation.ranking.relevance_threshold`` is not
            on the rating scale.
    """
    settings = parse(EvaluationParameters, evaluation, "evaluation").ranking
    scale = RatingScale.from_dict(rating_scale)
    threshold = settings.threshold(scale)
    # summary.md states the threshold and where it came from.
    logger.debug(
        "Ranking: relevant = a test rating of at least %g on the rating scale %g..%g "
        "(%s)",
        threshold,
        scale.min,
        scale.max,
        "evaluation.ranking.relevance_threshold"
        if settings.relevance_threshold is not None
        else f"evaluation.ranking.relevance_fraction {settings.relevance_fraction:g}",
    )
    return ranking_task(
        pl.concat([train_ratings, val_ratings], how="vertical_relaxed"),
        test_ratings,
        threshold,
        settings.max_users,
        settings.random_seed,
        catalogue=train_ratings,
    )


def rank_with_model(
    model_config: dict[str, Any],
    model_weights: dict[str, torch.Tensor],
    ranking_task: RankingTask,
    evaluation: dict[str, Any],
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Ranking metrics (``evaluation.ranking``) of a trained model's top-K lists and of
    its popularity blend, each ``{"test": {"ndcg@K": .., ..., "coverage": ..}}``.

    The blend ranks the model's scores and log popularity (both standardised per
    user) at ``evaluation.ranking.popularity_weight``: the weight the training node
    chose on val for this model (``val``; 0 is the model's own ranking), or the
    stated one. Its metrics are empty (no blend entry: Kedro saves no ``None``) for a
    stated 0, or when no weight could be chosen on val. Both rankings come from one
    pass over the users, the model scoring each block once: a sampled probit model's
    scores cost far more than the ranking.
    """
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    config = ModelConfig.model_validate(model_config)
    stated, weight = blend_weight_on_test(config, settings)
    model = load_trained_model(config, model_weights)
    scorers = {"model": scored_once(model_scorer(model, ranking_task.candidates))}
    if weight:
        popularity = log_count_scorer(ranking_task.candidate_counts)
        scorers["blend"] = blended_scorer(scorers["model"], popularity, weight)
    rankings = _rank_each(ranking_task, evaluation, scorers)
    blended = rankings.get("blend", {})
    return rankings["model"], blend_entry(rankings["model"], blended, stated, weight)


def blend_weight_on_test(
    config: ModelConfig, settings: EvaluationParameters
) -> tuple[float | str, float | None]:
    """``evaluation.ranking.popularity_weight`` as stated, and the weight a model's
    test blend ranks at: the one its fit chose on val (``val``; ``None`` when none
    could be chosen) or the stated one."""
    stated = settings.ranking.popularity_weight
    return stated, config.popularity_weight if stated == "val" else stated


def blend_entry(
    own: dict[str, dict[str, float]],
    blended: dict[str, dict[str, float]],
    stated: float | str,
    weight: float | None,
) -> dict[str, dict[str, float]]:
    """The popularity blend's entry in the metrics: its ``blended`` figures at a
    weight above 0; the model's ``own`` when val chose 0; none (empty: Kedro saves no
    ``None``) for a stated 0 or when no weight could be chosen."""
    if weight:
        return blended
    return own if weight == 0 and stated != 0 else {}


def rank_by_popularity(
    ranking_task: RankingTask, evaluation: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Ranking metrics of the most-rated movies in train + val, the same list for
    everyone."""
    return _rank(ranking_task, evaluation, count_scorer(ranking_task.candidate_counts))


def rank_at_random(
    ranking_task: RankingTask, evaluation: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Ranking metrics of seeded random lists (``evaluation.ranking.random_seed``)."""
    seed = parse(EvaluationParameters, evaluation, "evaluation").ranking.random_seed
    return _rank(
        ranking_task, evaluation, random_scorer(ranking_task.candidates.size, seed)
    )


def compare_best_ranker_to_popularity(
    ranking_task: RankingTask,
    evaluation: dict[str, Any],
    *rankers: tuple[dict[str, Any], dict[str, torch.Tensor]],
) -> dict[str, Any]:
    """Whether the best of ``rankers`` (each one's config and weights) leads the
    popularity list on test NDCG@K by more than chance, user by user.

    The best ranker is the one the served model recommends with: the highest held-out
    val NDCG@K (``best_val_ndcg`` in its config; test plays no part in the choice).
    Both rank the same users; each user's NDCG@K under the ranker minus under the
    popularity list is one paired difference, and the comparison is their mean, its
    95% t-interval and the two-sided paired t-test
    (:func:`~rating_prediction.evaluation.intervals.paired_comparison`).
    """
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    by_name = {config["variant"]: (config, weights) for config, weights in rankers}
    best = best_ranker_config({name: config for name, (config, _) in by_name.items()})
    model = load_trained_model(best, by_name[best.variant][1])
    ranker = _user_ndcg(
        ranking_task, settings, model_scorer(model, ranking_task.candidates)
    )
    popular = _user_ndcg(
        ranking_task, settings, count_scorer(ranking_task.candidate_counts)
    )
    difference = ranker - popular
    figures = {
        "users": int(ranker.size),
        "ranker_mean": float(ranker.mean()),
        "popularity_mean": float(popular.mean()),
        "mean_difference": float(difference.mean()),
        "sd_difference": float(difference.std(ddof=1)) if ranker.size > 1 else 0.0,
    }
    return ranker_comparison(best, settings.ranking.k, figures)


def best_ranker_config(configs: dict[str, dict[str, Any]]) -> ModelConfig:
    """The config of the ranker the served model recommends with, among ``configs``
    (by name, in registry order): the highest held-out val NDCG@K, equal ones to the
    first."""
    checked = [ModelConfig.model_validate(config) for config in configs.values()]
    return max(checked, key=lambda config: held_out_ndcg_key(config.best_val_ndcg))


def ranker_comparison(
    best: ModelConfig, k: int, figures: dict[str, float]
) -> dict[str, Any]:
    """``ranking_comparison.json`` of the best ranker ``best`` against the popularity
    list, from the per-user NDCG@``k`` ``figures`` (``users``, ``ranker_mean``,
    ``popularity_mean`` and the differences' ``mean_difference`` and sample standard
    deviation ``sd_difference``), logged: the same on one machine and on Spark."""
    n, mean, sd = figures["users"], figures["mean_difference"], figures["sd_difference"]
    if n >= 2:
        paired = paired_comparison_of_moments(n, mean, sd)
    else:
        untested = dict.fromkeys(("ci_low", "ci_high", "t", "p_value"))
        paired = {"mean_difference": mean, **untested, "significant": False}
    comparison = {
        "metric": f"ndcg@{k}",
        "best_ranker": best.variant,
        "best_val_ndcg": best.best_val_ndcg,
        "versus": "popularity",
        "users": int(n),
        "best_ranker_mean": figures["ranker_mean"],
        "popularity_mean": figures["popularity_mean"],
        **paired,
    }
    _log_comparison(comparison)
    return comparison


def _log_comparison(comparison: dict[str, Any]) -> None:
    if comparison["p_value"] is None:
        logger.warning(
            "%(users)d user(s) ranked on test: too few to test %(best_ranker)s's lead "
            "over popularity (evaluation.ranking.max_users).",
            comparison,
        )
        return
    logger.info(
        "%(best_ranker)s (best val %(metric)s) against popularity, user by user on "
        "test: %(mean_difference)+.4f %(metric)s (95%% CI %(ci_low)+.4f..%(ci_high)+.4f"
        ", p = %(p_value).2g over %(users)d users)",
        comparison,
    )


def _user_ndcg(
    task: RankingTask, settings: EvaluationParameters, scorer: Scorer
) -> np.ndarray:
    """Each ranked user's NDCG@K under ``scorer``, in ``task.users`` order."""
    per_user, _ = user_ranking_metrics(
        task, scorer, settings.ranking.k, settings.prediction_batch_size
    )
    return per_user[f"ndcg@{settings.ranking.k}"]


def _rank(
    task: RankingTask, evaluation: dict[str, Any], scorer: Scorer
) -> dict[str, dict[str, float]]:
    return _rank_each(task, evaluation, {"scorer": scorer})["scorer"]


def _rank_each(
    task: RankingTask, evaluation: dict[str, Any], scorers: dict[str, Scorer]
) -> dict[str, dict[str, dict[str, float]]]:
    """Each of ``scorers``' ranking metrics on test, in one pass over the users."""
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    by_scorer = ranking_metrics_of(
        task, scorers, settings.ranking.k, settings.prediction_batch_size
    )
    return {key: {"test": metrics} for key, metrics in by_scorer.items()}


def gather_metrics(
    ranking_metrics: dict[str, dict[str, dict[str, float]]] | None = None,
    **split_metrics: dict[str, dict[str, float]],
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, float]]]:
    """``metrics.json`` (every entry's split metrics, by entry name) and the same
    figures as flat MLflow keys ``<entry>.<split>.<metric>``.

    ``ranking_metrics`` (``{entry: {"test": {..}}}``) are merged in: beside a model's
    error metrics, or as entries of their own (the ``popularity`` and ``random``
    ranking baselines). The MLflow figures are
    :func:`~rating_prediction.evaluation.names.mlflow_metrics` of them: the
    ``{"value": .., "step": 0}`` form ``MlflowMetricsHistoryDataset`` logs, ``ndcg@10``
    logged as ``ndcg_at_10`` (MLflow refuses ``@`` in a name).
    """
    split_metrics = _merged(split_metrics, ranking_metrics or {})
    return split_metrics, mlflow_metrics(split_metrics)


def gather_ranking_metrics(
    **ranking_metrics: dict[str, dict[str, float]],
) -> dict[str, dict[str, dict[str, float]]]:
    """Every entry's ranking metrics, by entry name; entries switched off (empty,
    e.g. a popularity blend of weight 0) are left out."""
    return {entry: metrics for entry, metrics in ranking_metrics.items() if metrics}


def _merged(
    metrics: dict[str, dict[str, dict[str, float]]],
    extra: dict[str, dict[str, dict[str, float]]],
) -> dict[str, dict[str, dict[str, float]]]:
    merged = {
        entry: {s: dict(v) for s, v in splits.items()}
        for entry, splits in metrics.items()
    }
    for entry, splits in extra.items():
        for split, values in splits.items():
            merged.setdefault(entry, {}).setdefault(split, {}).update(values)
    return merged
