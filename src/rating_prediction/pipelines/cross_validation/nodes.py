"""Nodes of the ``cross_validation`` pipeline: evaluate every fold, summarise the folds
with intervals and paired tests, and write the summary table."""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from rating_prediction.data.splitting import split_by_label
from rating_prediction.evaluation.cross_validation import (
    FoldMetrics,
    evaluate_fold,
    fold_labels,
    fold_parameters,
    summarize_folds,
)
from rating_prediction.evaluation.names import mlflow_metrics
from rating_prediction.movielens import release_layout
from rating_prediction.parameters import (
    CrossValidationParameters,
    ProcessingParameters,
    parse,
)
from rating_prediction.pipelines.evaluation import (
    create_pipeline as evaluation_pipeline,
)
from rating_prediction.pipelines.training import create_pipeline as training_pipeline

from .summary import format_summary

logger = logging.getLogger(__name__)


def cross_validate(
    mapped_ratings: pl.DataFrame,
    predefined_folds: pl.DataFrame,
    parameters: dict[str, Any],
    **shared: Any,
) -> tuple[FoldMetrics, dict[str, str]]:
    """Train and evaluate every variant and baseline on each fold of
    ``cross_validation`` (one fold in memory at a time).

    ``shared`` holds the datasets every fold feeds to the training and evaluation
    pipelines besides the splits: ``user_mapping``, ``movie_mapping``, ``movies``,
    ``users``, ``rating_scale``.

    Returns:
        ``{fold: metrics.json of that fold}`` and ``{fold: what the fold is}``.
    """
    options = parse(
        CrossValidationParameters, parameters["cross_validation"], "cross_validation"
    )
    split = parse(ProcessingParameters, parameters["processing"], "processing").split
    release_folds = release_layout(parameters["ingestion"]["dataset"]).cv_folds
    pipeline = (training_pipeline() + evaluation_pipeline()).to_outputs("metrics")
    fold_settings = fold_parameters(parameters, options)
    ratings = mapped_ratings.sort("userIdMapped", "movieIdMapped")
    metrics, described = {}, {}
    for fold, description, labels in fold_labels(
        ratings, options, split, (predefined_folds, release_folds)
    ):
        train, val, test = split_by_label(ratings, labels)
        logger.info(
            "Cross validation %s (%s): train %d, val %d, test %d ratings",
            fold,
            description,
            train.height,
            val.height,
            test.height,
        )
        splits = {"train_ratings": train, "val_ratings": val, "test_ratings": test}
        metrics[fold] = evaluate_fold(pipeline, {**splits, **shared}, fold_settings)
        described[fold] = description
    return metrics, described


def summarize_cross_validation(
    fold_metrics: FoldMetrics,
    fold_descriptions: dict[str, str],
    cross_validation: dict[str, Any],
    dataset_name: str,
) -> dict[str, Any]:
    """``metrics_summary.json``: intervals and paired comparisons over the folds."""
    options = parse(CrossValidationParameters, cross_validation, "cross_validation")
    summary = summarize_folds(fold_metrics, options.confidence)
    return {
        "dataset": dataset_name,
        "scheme": options.scheme,
        "fold_descriptions": fold_descriptions,
        **summary,
    }


def fold_mlflow_metrics(fold_metrics: FoldMetrics) -> dict[str, dict[str, float]]:
    """Each fold's metrics as MLflow keys ``<fold>.<entry>.<split>.<metric>``
    (``@`` spelt ``_at_``)."""
    return mlflow_metrics(fold_metrics)


def write_cross_validation_summary(metrics_summary: dict[str, Any]) -> str:
    """The markdown table of the summary; also logged, so the run prints it."""
    markdown = format_summary(metrics_summary)
    logger.info("Cross-validation summary:\n%s", markdown)
    return markdown
