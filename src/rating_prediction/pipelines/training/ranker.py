"""A ranker's fit as the training node runs it: on train, scored on val NDCG@K, then
refitted on train + val.

The val score is the ranking protocol of :mod:`rating_prediction.evaluation.ranking`
with train as the history and val as the target (``evaluation.ranking``: K and the
relevance threshold on the data set's scale); it is the figure that chooses the served
ranker (``best_val_ndcg`` in the model config) and that tuning maximises, measured
before any refit so it stays held out.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from rating_prediction.evaluation.ranking import (
    model_scorer,
    ranking_metrics,
    ranking_task,
)
from rating_prediction.models.config import ModelConfig, load_trained_model
from rating_prediction.models.variants import Variant
from rating_prediction.parameters import EvaluationParameters, Parameters, parse
from rating_prediction.training.data import TrainingData

logger = logging.getLogger(__name__)

Fit = tuple[dict[str, torch.Tensor], ModelConfig, Any]


def held_out_ndcg(
    config: ModelConfig,
    weights: dict[str, torch.Tensor],
    data: TrainingData,
    evaluation: dict[str, Any],
) -> float | None:
    """Val NDCG@K of a model fitted on ``data.train`` (history: train; target: val);
    ``None`` when no user has a relevant val rating (nothing to score)."""
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    ranking = settings.ranking
    threshold = ranking.threshold(data.rating_scale)
    task = ranking_task(
        data.train, data.val, threshold, ranking.max_users, ranking.random_seed
    )
    if task.users.size == 0:
        logger.warning(
            "%s: no val rating reaches the relevance threshold %g: its val NDCG@%d "
            "is not measured",
            config.variant,
            threshold,
            ranking.k,
        )
        return None
    model = load_trained_model(config, weights)
    scorer = model_scorer(model, task.candidates)
    metrics = ranking_metrics(task, scorer, ranking.k, settings.prediction_batch_size)
    return metrics[f"ndcg@{ranking.k}"]


def fit_ranker(
    entry: Variant,
    options: Parameters,
    data: TrainingData,
    evaluation: dict[str, Any],
) -> Fit:
    """Fit ``entry`` on train, record its val NDCG@K as ``best_val_ndcg``, and with
    ``options.refit_on_train_val`` fit it again on train + val (the weights kept)."""
    fit = entry.fit_function()
    weights, config, history = fit(entry.name, options, data)
    val_ndcg = held_out_ndcg(config, weights, data, evaluation)
    refit = getattr(options, "refit_on_train_val", False)
    if val_ndcg is not None:
        logger.info(
            "%s: val NDCG@%d %.4f, fitted on train%s",
            entry.name,
            parse(EvaluationParameters, evaluation, "evaluation").ranking.k,
            val_ndcg,
            "; refitting on train + val" if refit else "",
        )
        val_ndcg = round(val_ndcg, 6)
    if refit:
        weights, config, history = fit(entry.name, options, data.with_val_in_train())
    config = config.model_copy(
        update={"best_val_ndcg": val_ndcg, "refit_on_train_val": refit}
    )
    return weights, config, history
