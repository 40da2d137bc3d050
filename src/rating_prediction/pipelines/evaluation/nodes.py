"""Nodes of the ``evaluation`` pipeline: predict every split with a trained model or a
baseline, score the predictions and gather the scores into ``metrics.json``.

A prediction frame holds ``userId``, ``movieId``, ``rating`` and ``prediction``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import torch

from rating_prediction import baselines
from rating_prediction.baselines import BaselinePredictor
from rating_prediction.metrics import regression_metrics
from rating_prediction.models import load_trained_model
from rating_prediction.parameters import EvaluationParameters, parse
from rating_prediction.ranking import (
    Scorer,
    blended_scorer,
    log_popularity_scorer,
    mlflow_metric_name,
    model_scorer,
    popularity_scorer,
    random_scorer,
    ranking_metrics,
    ranking_task,
)
from rating_prediction.schema import SPLITS

# Columns of the rated pairs that a prediction frame keeps next to its `prediction`.
RATED_PAIR_COLUMNS = ["userId", "movieId", "rating"]


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
    batch_size = parse(
        EvaluationParameters, evaluation, "evaluation"
    ).prediction_batch_size
    model = load_trained_model(model_config, model_weights)
    users = ratings["userIdMapped"].to_numpy()
    movies = ratings["movieIdMapped"].to_numpy()
    predictions = np.empty(ratings.height, dtype=np.float32)
    with torch.no_grad():
        for start in range(0, ratings.height, batch_size):
            batch = slice(start, start + batch_size)
            predictions[batch] = model.predict(
                torch.from_numpy(users[batch].astype(np.int64)),
                torch.from_numpy(movies[batch].astype(np.int64)),
            ).numpy()
    return ratings.select(RATED_PAIR_COLUMNS).with_columns(
        prediction=pl.Series(predictions, dtype=pl.Float32)
    )


def fit_bias_baseline(
    train_ratings: pl.DataFrame, evaluation: dict[str, Any]
) -> BaselinePredictor:
    """The bias baseline with ``evaluation.bias_baseline``'s regularisation and epochs."""
    settings = parse(EvaluationParameters, evaluation, "evaluation").bias_baseline
    return baselines.fit_bias_baseline(
        train_ratings, settings.reg_user, settings.reg_movie, settings.n_epochs
    )


def predict_with_baseline(
    baseline: BaselinePredictor, ratings: pl.DataFrame
) -> pl.DataFrame:
    """Predicts ``ratings`` with a fitted baseline."""
    return ratings.select(RATED_PAIR_COLUMNS).with_columns(
        prediction=baseline.predict(ratings)
    )


def combine_train_val(
    train_ratings: pl.DataFrame, val_ratings: pl.DataFrame
) -> pl.DataFrame:
    """Train and val as one frame: the data the refitted models' final fit sees."""
    return pl.concat([train_ratings, val_ratings])


def compute_split_metrics(
    train_predictions: pl.DataFrame,
    val_predictions: pl.DataFrame,
    test_predictions: pl.DataFrame,
) -> dict[str, dict[str, float]]:
    """MSE, RMSE and MAE on each split: ``{"train": {"mse": ..}, "val": .., "test": ..}``."""
    predictions = dict(
        zip(SPLITS, [train_predictions, val_predictions, test_predictions])
    )
    return {
        split: regression_metrics(frame["rating"], frame["prediction"])
        for split, frame in predictions.items()
    }


def rank_with_model(
    model_config: dict[str, Any],
    model_weights: dict[str, torch.Tensor],
    train_ratings: pl.DataFrame,
    test_ratings: pl.DataFrame,
    evaluation: dict[str, Any],
) -> dict[str, dict[str, float]]:
    """Ranking metrics (``evaluation.ranking``) of a trained model's top-K lists:
    ``{"test": {"ndcg@K": .., "precision@K": .., ..., "coverage": ..}}``."""
    model = load_trained_model(model_config, model_weights)
    return _rank(
        train_ratings, test_ratings, evaluation, lambda c: model_scorer(model, c)
    )


def rank_with_popularity_blend(
    model_config: dict[str, Any],
    model_weights: dict[str, torch.Tensor],
    train_ratings: pl.DataFrame,
    test_ratings: pl.DataFrame,
    evaluation: dict[str, Any],
) -> dict[str, dict[str, float]] | None:
    """Ranking metrics of the model's scores blended with log popularity,
    ``evaluation.ranking.popularity_weight`` of the latter (both standardised per
    user); ``None`` when the weight is 0 (no blend entry)."""
    weight = parse(
        EvaluationParameters, evaluation, "evaluation"
    ).ranking.popularity_weight
    if weight == 0:
        return None
    model = load_trained_model(model_config, model_weights)
    return _rank(
        train_ratings,
        test_ratings,
        evaluation,
        lambda candidates: blended_scorer(
            model_scorer(model, candidates),
            log_popularity_scorer(train_ratings, candidates),
            weight,
        ),
    )


def rank_by_popularity(
    train_ratings: pl.DataFrame, test_ratings: pl.DataFrame, evaluation: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Ranking metrics of the most-rated movies in train, the same list for everyone."""
    return _rank(
        train_ratings,
        test_ratings,
        evaluation,
        lambda candidates: popularity_scorer(train_ratings, candidates),
    )


def rank_at_random(
    train_ratings: pl.DataFrame, test_ratings: pl.DataFrame, evaluation: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Ranking metrics of seeded random lists (``evaluation.ranking.random_seed``)."""
    seed = parse(EvaluationParameters, evaluation, "evaluation").ranking.random_seed
    return _rank(
        train_ratings,
        test_ratings,
        evaluation,
        lambda candidates: random_scorer(candidates.size, seed),
    )


def _rank(
    train_ratings: pl.DataFrame,
    test_ratings: pl.DataFrame,
    evaluation: dict[str, Any],
    make_scorer: Any,
) -> dict[str, dict[str, float]]:
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    task = ranking_task(
        train_ratings, test_ratings, settings.ranking.relevance_threshold
    )
    scorer: Scorer = make_scorer(task.candidates)
    return {
        "test": ranking_metrics(
            task, scorer, settings.ranking.k, settings.prediction_batch_size
        )
    }


def gather_metrics(
    ranking_metrics: dict[str, dict[str, dict[str, float]]] | None = None,
    **split_metrics: dict[str, dict[str, float]],
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, float]]]:
    """``metrics.json`` (every entry's split metrics, by entry name) and the same
    figures as flat MLflow keys ``<entry>.<split>.<metric>``.

    ``ranking_metrics`` (``{entry: {"test": {..}}}``) are merged in: beside a model's
    error metrics, or as entries of their own (the ``popularity`` and ``random``
    ranking baselines). MLflow values take the ``{"value": .., "step": 0}`` form
    ``MlflowMetricsHistoryDataset`` logs; MLflow refuses ``@`` in a name, so
    ``ndcg@10`` is logged as ``ndcg_at_10``.
    """
    split_metrics = _merged(split_metrics, ranking_metrics or {})
    mlflow_metrics = {
        mlflow_metric_name(entry, split, name): {"value": value, "step": 0}
        for entry, splits in split_metrics.items()
        for split, values in splits.items()
        for name, value in values.items()
    }
    return split_metrics, mlflow_metrics


def gather_ranking_metrics(
    **ranking_metrics: dict[str, dict[str, float]] | None,
) -> dict[str, dict[str, dict[str, float]]]:
    """Every entry's ranking metrics, by entry name; entries switched off (``None``,
    e.g. a popularity blend of weight 0) are left out."""
    return {
        entry: metrics
        for entry, metrics in ranking_metrics.items()
        if metrics is not None
    }


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
