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

import mlflow
import torch

from rating_prediction.evaluation.ranking import (
    RankingTask,
    model_scorer,
    ranking_metrics_of,
    ranking_task,
)
from rating_prediction.models.config import ModelConfig, load_trained_model
from rating_prediction.models.factorization import RatingModel
from rating_prediction.models.scoring import (
    blended_scorer,
    log_count_scorer,
    scored_once,
)
from rating_prediction.models.variants import Variant
from rating_prediction.parameters import EvaluationParameters, Parameters, parse
from rating_prediction.training.data import TrainingData
from rating_prediction.training.feedback import log_fit

logger = logging.getLogger(__name__)

Fit = tuple[dict[str, torch.Tensor], ModelConfig, Any]

# The popularity blend's weights tried on val: 0 is the model's own ranking, 1 the
# most-rated list.
BLEND_WEIGHTS = tuple(step / 10 for step in range(11))


def val_ranking(
    model: RatingModel,
    data: TrainingData,
    evaluation: dict[str, Any],
    *,
    blend: bool = True,
) -> tuple[dict[str, float | None], str]:
    """``best_val_ndcg`` of ``model`` fitted on ``data.train`` and, with ``blend``
    when ``evaluation.ranking.popularity_weight`` is ``val``, its
    ``popularity_weight`` (ties to the lower weight); ``None`` values when no user has
    a relevant val rating. Also the figures in words, for the log."""
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    k = settings.ranking.k
    task = _val_task(data, settings)
    if task is None:
        return {"best_val_ndcg": None, "popularity_weight": None}, "no val NDCG"

    weights = (0.0,)
    if blend and settings.ranking.popularity_weight == "val":
        weights = BLEND_WEIGHTS
    own = scored_once(model_scorer(model, task.candidates))
    popularity = log_count_scorer(task.candidate_counts)
    scorers = {
        weight: blended_scorer(own, popularity, weight) if weight > 0 else own
        for weight in weights
    }
    metrics = ranking_metrics_of(task, scorers, k, settings.prediction_batch_size)
    by_weight = {weight: metrics[weight][f"ndcg@{k}"] for weight in weights}
    figures = {"best_val_ndcg": round(by_weight[0.0], 6)}
    summary = f"val NDCG@{k} {by_weight[0.0]:.4f}"
    if len(weights) > 1:
        weight = best_blend_weight(by_weight)
        figures["popularity_weight"] = weight
        summary += f" (popularity blend {weight:.1f}: {by_weight[weight]:.4f})"
    return figures, summary


def best_blend_weight(ndcg_by_weight: dict[float, float]) -> float:
    """The popularity blend's weight with the best val NDCG@K, equal ones to the lower
    weight (on one machine and on Spark)."""
    return max(ndcg_by_weight, key=lambda w: (ndcg_by_weight[w], -w))


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
    :func:`val_ranking` of the model (a CPU copy) into ``recorded``, and into the
    active MLflow run (if any) as ``<variant>.val_ndcg_at_K`` and
    ``<variant>.popularity_weight``."""

    def record(model: RatingModel, data: TrainingData) -> None:
        on_cpu = copy.deepcopy(model).cpu().eval()
        figures, summary = val_ranking(on_cpu, data, evaluation)
        logger.debug("%s, fitted on train: %s", name, summary)
        recorded.update(figures)
        log_val_ranking(name, figures, evaluation)

    return record


def log_val_ranking(
    name: str, figures: dict[str, float | None], evaluation: dict[str, Any]
) -> None:
    """The val figures as metrics of the active MLflow run, if any."""
    if mlflow.active_run() is None:
        return
    k = parse(EvaluationParameters, evaluation, "evaluation").ranking.k
    keys = {
        "best_val_ndcg": f"val_ndcg_at_{k}",
        "popularity_weight": "popularity_weight",
    }
    mlflow.log_metrics(
        {
            f"{name}.{keys[key]}": value
            for key, value in figures.items()
            if value is not None
        }
    )


def fit_ranker(
    entry: Variant,
    options: Parameters,
    data: TrainingData,
    evaluation: dict[str, Any],
) -> Fit:
    """Fit ``entry`` on train, record its :func:`val_ranking`, and with
    ``options.refit_on_train_val`` fit it again on train + val (the weights kept);
    log the fit kept, with the val figures, in one line."""
    fit = entry.fit_function()
    weights, config, history = fit(entry.name, options, data)
    model = load_trained_model(config, weights)
    figures, summary = val_ranking(model, data, evaluation)
    refit = getattr(options, "refit_on_train_val", False)
    if refit:
        weights, config, history = fit(entry.name, options, data.with_val_in_train())
    log_fit(
        entry.name,
        history,
        f"; {summary} when fitted on train"
        + ("; refitted on train + val" if refit else ""),
    )
    log_val_ranking(entry.name, figures, evaluation)
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

    A rating model's val ranking chooses its popularity blend's weight, so it is
    measured only when ``evaluation.ranking.popularity_weight`` is ``val``: with a
    stated weight its ``best_val_ndcg`` stays ``None`` (at MovieLens 25M's size that
    saves ranking every val user once per rating model).

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
    if evaluation is not None and _weight_chosen_on_val(evaluation):
        recorder = val_ranking_recorder(entry.name, evaluation, on_val)
        data = replace(data, on_fitted_on_train=recorder)
    weights, config, history = entry.fit_function()(entry.name, options, data)
    return weights, config.model_copy(update=on_val), history


def _weight_chosen_on_val(evaluation: dict[str, Any]) -> bool:
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    return settings.ranking.popularity_weight == "val"
