"""The Spark tuning node: :func:`rating_prediction.training.tuning.run_study` with
trials fitted and scored on Spark."""

from __future__ import annotations

from typing import Any

import polars as pl
from pyspark.sql import DataFrame

from rating_prediction.models.variants import SPARK, variant
from rating_prediction.parameters import EvaluationParameters, TuningParameters, parse
from rating_prediction.pipelines.spark_modelling.nodes import spark_training_data
from rating_prediction.training import tuning
from rating_prediction.training.spark_als import (
    VAL_LOSS,
    VAL_NDCG,
    SparkTrainingData,
)


def tune_spark_variant(
    *,
    train_ratings: DataFrame,
    val_ratings: DataFrame,
    user_mapping: DataFrame,
    movie_mapping: DataFrame,
    rating_scale: dict[str, Any],
    tuning_parameters: dict[str, Any],
    training_parameters: dict[str, Any],
    evaluation_parameters: dict[str, Any],
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Add ``tuning.n_trials`` trials to the study of ``tuning.variant`` (a Spark
    variant; created or resumed), each fitted on train and scored on val on Spark:
    ``spark_als`` by its val MSE, ``spark_als_implicit`` by its val NDCG@K, the
    figures its candidates are chosen on in a run.

    Returns:
        The best parameters as a Kedro parameters file (``training.<variant>``
        overrides, one value per key, and a ``_tuning`` record) and every trial of
        the study.
    """
    settings = parse(TuningParameters, tuning_parameters, "tuning")
    tuning.check_engine(settings.variant, SPARK)
    data = spark_training_data(
        settings.variant,
        {"train": train_ratings, "val": val_ratings},
        (user_mapping, movie_mapping),
        rating_scale,
        evaluation_parameters,
    )
    objective = spark_objective(settings.variant, evaluation_parameters)
    base_options = training_parameters[settings.variant]
    study = tuning.run_study(settings, base_options, data, objective)
    return (
        tuning.best_parameters(study, settings, objective),
        tuning.trials_table(study),
    )


def spark_objective(name: str, evaluation: dict[str, Any]) -> tuning.Objective:
    """The val figure a trial of the Spark variant ``name`` is scored by: the val
    MSE of a rating model (to minimise), the val NDCG@K of a ranker
    (``evaluation.ranking``, to maximise).

    The score raises ``ValueError`` when no val rating is relevant: no setting can
    be told from another.
    """
    if variant(name).predicts_ratings:
        figure, objective, direction = VAL_LOSS, "val_mse", "minimize"
    else:
        k = parse(EvaluationParameters, evaluation, "evaluation").ranking.k
        figure, objective, direction = VAL_NDCG, f"val_ndcg_at_{k}", "maximize"

    def score(name: str, options: dict[str, Any], data: SparkTrainingData) -> float:
        tables, config, _ = tuning.fitted_on_train(name, options, data)
        tables.unpersist()  # the trial's figure is all it keeps
        value = getattr(config, figure)
        if value is None:
            raise ValueError(
                f"Cannot tune {name} on {objective}: no val rating reaches the "
                "relevance threshold (evaluation.ranking)."
            )
        return float(value)

    return tuning.Objective(objective, direction, score)
