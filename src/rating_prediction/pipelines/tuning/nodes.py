"""The tuning node: Kedro's side of :func:`rating_prediction.training.tuning.run_study`."""

from __future__ import annotations

from typing import Any

import polars as pl

from rating_prediction.models.config import load_trained_model
from rating_prediction.models.variants import LOCAL, variant
from rating_prediction.parameters import EvaluationParameters, TuningParameters, parse
from rating_prediction.pipelines.training.val_ranking import val_ranking
from rating_prediction.training import tuning
from rating_prediction.training.data import TrainingData


def tune_hyperparameters(
    *,
    train_ratings: pl.DataFrame,
    val_ratings: pl.DataFrame,
    user_mapping: pl.DataFrame,
    movie_mapping: pl.DataFrame,
    movies: pl.DataFrame,
    rating_scale: dict[str, Any],
    tuning_parameters: dict[str, Any],
    training_parameters: dict[str, Any],
    evaluation_parameters: dict[str, Any],
    users: pl.DataFrame | None = None,
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Add ``tuning.n_trials`` trials to the study of ``tuning.variant`` (created or
    resumed), each trained on train and scored on val: a rating model by its val MSE,
    a ranker by its val NDCG@K (:func:`ranking_objective`).

    Returns:
        The best parameters as a Kedro parameters file (``training.<variant>``
        overrides and a ``_tuning`` record) and every trial of the study.
    """
    settings = parse(TuningParameters, tuning_parameters, "tuning")
    tuning.check_engine(settings.variant, LOCAL)
    data = TrainingData.from_catalog(
        train_ratings=train_ratings,
        val_ratings=val_ratings,
        user_mapping=user_mapping,
        movie_mapping=movie_mapping,
        movies=movies,
        rating_scale=rating_scale,
        users=users,
    )
    objective = (
        tuning.VAL_MSE
        if variant(settings.variant).predicts_ratings
        else ranking_objective(evaluation_parameters)
    )
    base_options = training_parameters[settings.variant]
    study = tuning.run_study(settings, base_options, data, objective)
    return (
        tuning.best_parameters(study, settings, objective),
        tuning.trials_table(study),
    )


def ranking_objective(evaluation: dict[str, Any]) -> tuning.Objective:
    """A ranker's val NDCG@K (``evaluation.ranking``), to maximise: the same figure
    that chooses the served ranker.

    The score raises ``ValueError`` when no val rating is relevant: no setting can
    be told from another.
    """
    k = parse(EvaluationParameters, evaluation, "evaluation").ranking.k

    def score(name: str, options: dict[str, Any], data: TrainingData) -> float:
        weights, config, _ = tuning.fitted_on_train(name, options, data)
        model = load_trained_model(config, weights)
        figures, _ = val_ranking(model, data, evaluation, blend=False)
        ndcg = figures["best_val_ndcg"]
        if ndcg is None:
            raise ValueError(
                f"Cannot tune {name} on val NDCG@{k}: no val rating reaches the "
                "relevance threshold (evaluation.ranking)."
            )
        return ndcg

    return tuning.Objective(f"val_ndcg_at_{k}", "maximize", score)
