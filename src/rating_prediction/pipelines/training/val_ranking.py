"""What a model's fit on train ranks on val, measured before any refit on train + val.

The val ranking is the protocol of :mod:`rating_prediction.evaluation.ranking` with
train as the history and val as the target (``evaluation.ranking``: K and the relevance
threshold on the data set's scale). It gives every variant two held-out figures in its
``config.json``:

- ``best_val_ndcg``: the model's own val NDCG@K; for a ranker, the figure that chooses
  the served ranker and that tuning maximises;
- ``popularity_weight``: the weight of the popularity blend (entry
  ``<variant>_popularity_blend``) with the best val NDCG@K, when
  ``evaluation.ranking.popularity_weight`` is ``val``.

A ranker is fitted here (:func:`fit_ranker`); a rating model's fit function reports its
fit on train through :attr:`TrainingData.on_fitted_on_train
<rating_prediction.training.data.TrainingData>` (:func:`val_ranking_recorder`), since it
refits inside.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch

from rating_prediction.evaluation.ranking import (
    RankingTask,
    model_scorer,
    ranking_metrics,
    ranking_task,
)
from rating_prediction.models.config import ModelConfig, load_trained_model
from rating_prediction.models.factorization import RatingModel
from rating_prediction.models.scoring import blended_scorer, log_count_scorer
from rating_prediction.models.variants import Variant
from rating_prediction.parameters import EvaluationParameters, Parameters, parse
from rating_prediction.training.data import TrainingData

logger = logging.getLogger(__name__)

Fit = tuple[dict[str, torch.Tensor], ModelConfig, Any]

# The popularity blend's weights tried on val: 0 is the model's own ranking, 1 the
# most-rated list.
BLEND_WEIGHTS = tuple(step / 10 for step in range(11))


def val_ranking(
    name: str,
    model: RatingModel,
    data: TrainingData,
    evaluation: dict[str, Any],
    *,
    blend: bool = True,
) -> dict[str, float | None]:
    """``best_val_ndcg`` of the variant ``name``'s ``model`` fitted on ``data.train``
    and, with ``blend`` when ``evaluation.ranking.popularity_weight`` is ``val``, its
    ``popularity_weight`` (ties to the lower weight); ``None`` values when no user has
    a relevant val rating."""
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    choose_weight = blend and settings.ranking.popularity_weight == "val"
    task = _val_task(data, settings)
    if task is None:
        return {"best_val_ndcg": None, "popularity_weight": None}

    def ndcg(weight: float) -> float:
        scorer = model_scorer(model, task.candidates)
        if weight > 0:
            popularity = log_count_scorer(task.candidate_counts)
            scorer = blended_scorer(scorer, popularity, weight)
        metrics = ranking_metrics(
            task, scorer, settings.ranking.k, settings.prediction_batch_size
        )
        return metrics[f"ndcg@{settings.ranking.k}"]

    own = ndcg(0.0)
    figures = {"best_val_ndcg": round(own, 6)}
    blended = ""
    if choose_weight:
        by_weight = {0.0: own} | {w: ndcg(w) for w in BLEND_WEIGHTS[1:]}
        weight = max(by_weight, key=lambda w: (by_weight[w], -w))
        figures["popularity_weight"] = weight
        blended = (
            f"; with the popularity blend at {weight:.1f}: {by_weight[weight]:.4f}"
        )
    logger.info(
        "%s, fitted on train: val NDCG@%d %.4f%s",
        name,
        settings.ranking.k,
        own,
        blended,
    )
    return figures


def _val_task(data: TrainingData, settings: EvaluationParameters) -> RankingTask | None:
    ranking = settings.ranking
    threshold = ranking.threshold(data.rating_scale)
    task = ranking_task(
        data.train, data.val, threshold, ranking.max_users, ranking.random_seed
    )
    if task.users.size == 0:
        logger.warning(
            "No val rating reaches the relevance threshold %g: the val NDCG@%d and the "
            "popularity blend's weight are not measured",
            threshold,
            ranking.k,
        )
        return None
    return task


def val_ranking_recorder(
    name: str, evaluation: dict[str, Any], recorded: dict[str, Any]
) -> Callable[[RatingModel, TrainingData], None]:
    """The ``on_fitted_on_train`` callback of a rating model's fit: it puts
    :func:`val_ranking` of the model (a CPU copy) into ``recorded``."""

    def record(model: RatingModel, data: TrainingData) -> None:
        on_cpu = copy.deepcopy(model).cpu().eval()
        recorded.update(val_ranking(name, on_cpu, data, evaluation))

    return record


def fit_ranker(
    entry: Variant,
    options: Parameters,
    data: TrainingData,
    evaluation: dict[str, Any],
) -> Fit:
    """Fit ``entry`` on train, record its :func:`val_ranking`, and with
    ``options.refit_on_train_val`` fit it again on train + val (the weights kept)."""
    fit = entry.fit_function()
    weights, config, history = fit(entry.name, options, data)
    model = load_trained_model(config, weights)
    figures = val_ranking(entry.name, model, data, evaluation)
    refit = getattr(options, "refit_on_train_val", False)
    if refit:
        logger.info("%s: refitting on train + val", entry.name)
        weights, config, history = fit(entry.name, options, data.with_val_in_train())
    config = config.model_copy(update={**figures, "refit_on_train_val": refit})
    return weights, config, history


def fit_with_val_ranking(
    entry: Variant,
    options: Parameters,
    data: TrainingData,
    evaluation: dict[str, Any] | None,
) -> Fit:
    """Fit ``entry`` by its fit function, its :func:`val_ranking` recorded in its
    config when ``evaluation`` is given; a ranker is fitted by :func:`fit_ranker`.

    Raises:
        ValueError: For a ranker without ``evaluation``: it must be scored on val.
    """
    if not entry.predicts_ratings:
        if evaluation is None:
            raise ValueError(
                f"{entry.name} is a ranker: its fit needs the evaluation's ranking "
                "settings (params:evaluation) to be scored on val."
            )
        return fit_ranker(entry, options, data, evaluation)
    on_val: dict[str, Any] = {}
    if evaluation is not None:
        recorder = val_ranking_recorder(entry.name, evaluation, on_val)
        data = replace(data, on_fitted_on_train=recorder)
    weights, config, history = entry.fit_function()(entry.name, options, data)
    return weights, config.model_copy(update=on_val), history
