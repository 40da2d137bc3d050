"""Hyperparameter search with Optuna, on the val split only.

The study lives in an Optuna RDB storage (SQLite by default, next to ``mlflow.db``), so a
second search with the same ``study_name`` resumes it and adds trials. Each trial trains
the variant on train, scores it on val (the held-out val MSE the training pipeline
records as ``best_val_loss``, never test) and, inside a ``kedro run``, is logged as an
MLflow run nested under the run's own.
"""

from __future__ import annotations

import copy
import logging
import warnings
from typing import Any

import mlflow
import optuna
import polars as pl

from rating_prediction.models.variants import variant, variants_that
from rating_prediction.parameters import (
    ParameterError,
    SearchDimension,
    TuningParameters,
    parse,
)
from rating_prediction.training.data import TrainingData

logger = logging.getLogger(__name__)


def suggest(trial: optuna.Trial, space: dict[str, SearchDimension]) -> dict[str, Any]:
    """One value per dotted key of ``space``, drawn by ``trial``."""
    values: dict[str, Any] = {}
    for path, dimension in space.items():
        if dimension.type == "categorical":
            values[path] = trial.suggest_categorical(path, dimension.choices)
        elif dimension.type == "int":
            values[path] = trial.suggest_int(
                path,
                int(dimension.low),
                int(dimension.high),
                step=int(dimension.step or 1),
                log=dimension.log,
            )
        else:
            values[path] = trial.suggest_float(
                path,
                dimension.low,
                dimension.high,
                step=dimension.step,
                log=dimension.log,
            )
    return values


def with_values(options: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of ``options`` with each dotted key of ``values`` set."""
    updated = copy.deepcopy(options)
    for path, value in values.items():
        *parents, name = path.split(".")
        block = updated
        for parent in parents:
            block = block.setdefault(parent, {})
        block[name] = value
    return updated


def val_loss(name: str, options: dict[str, Any], data: TrainingData) -> float:
    """The held-out val MSE of the variant ``name`` fitted on train with ``options``
    (never refitted on train + val), through its entry in the variant registry."""
    entry = variant(name)
    parsed = parse(
        entry.parameters,
        {**options, "refit_on_train_val": False},
        f"training.{name}",
    )
    _, config, _ = entry.fit_function()(name, parsed, data)
    return float(config.best_val_loss)


def check_tunable(name: str) -> None:
    """Refuse a variant the search cannot score: it minimises the held-out val MSE,
    which a ranker (``ease``) does not have.

    Raises:
        ParameterError: Naming ``tuning.variant`` and the variants it may be.
    """
    if not variant(name).predicts_ratings:
        tunable = ", ".join(variants_that("predicts_ratings"))
        raise ParameterError(
            f"Invalid parameters:\n- 'tuning.variant': {name!r} ranks movies but "
            "predicts no ratings, and the search minimises the val MSE: choose one of "
            f"{tunable} (choose a ranker's settings on val NDCG@K instead, "
            "docs/pipelines.md)."
        )


def run_study(
    settings: TuningParameters, base_options: dict[str, Any], data: TrainingData
) -> optuna.Study:
    """Create or resume the study and add ``settings.n_trials`` trials.

    Raises:
        ParameterError: If ``settings.variant`` predicts no ratings
            (:func:`check_tunable`).
    """
    check_tunable(settings.variant)
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=settings.storage,
        load_if_exists=True,
        direction="minimize",
        # Seeded, and shifted by the trials already there, so a resumed study does not
        # replay the first run's suggestions.
        sampler=optuna.samplers.TPESampler(seed=settings.seed + _n_trials(settings)),
    )
    logger.info(
        "tuning %s: study %r in %s holds %d trials; adding %d",
        settings.variant,
        settings.study_name,
        settings.storage,
        len(study.trials),
        settings.n_trials,
    )
    study.optimize(
        lambda trial: _trial(trial, settings, base_options, data),
        n_trials=settings.n_trials,
        # A combination the parameter checks refuse fails its trial, not the search.
        catch=(ParameterError,),
    )
    return study


def _n_trials(settings: TuningParameters) -> int:
    try:
        summaries = optuna.get_all_study_summaries(settings.storage)
    except Exception:  # a new storage: no study yet
        return 0
    counts = {s.study_name: s.n_trials for s in summaries}
    return counts.get(settings.study_name, 0)


def _trial(
    trial: optuna.Trial,
    settings: TuningParameters,
    base_options: dict[str, Any],
    data: TrainingData,
) -> float:
    """Train with the trial's values and return the val MSE, inside a nested MLflow run
    when a run is active (``kedro run``)."""
    values = suggest(trial, settings.search_space)
    options = with_values(base_options, values)
    if mlflow.active_run() is None:
        return val_loss(settings.variant, options, data)
    with mlflow.start_run(
        run_name=f"{settings.study_name}-trial-{trial.number}", nested=True
    ):
        mlflow.set_tags(
            {"optuna.study": settings.study_name, "optuna.trial": trial.number}
        )
        mlflow.log_params({f"{settings.variant}.{k}": v for k, v in values.items()})
        loss = val_loss(settings.variant, options, data)
        mlflow.log_metric(f"{settings.variant}.val_mse", loss)
    return loss


def best_parameters(study: optuna.Study, settings: TuningParameters) -> dict[str, Any]:
    """The best trial's values as a parameters file a Kedro environment can hold:
    ``training.<variant>`` overrides, and a ``_tuning`` record (ignored by the runs)."""
    best = study.best_trial
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return {
        "_tuning": {
            "study_name": settings.study_name,
            "storage": settings.storage,
            "complete_trials": len(complete),
            "best_trial": best.number,
            "best_val_mse": best.value,
        },
        "training": {settings.variant: with_values({}, best.params)},
    }


def trials_table(study: optuna.Study) -> pl.DataFrame:
    """Every trial: number, state, val MSE and the values tried (``param.<key>``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = study.trials_dataframe(attrs=("number", "state", "value", "params"))
    return pl.from_pandas(frame.astype({"state": str}))
