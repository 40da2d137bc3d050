"""Hyperparameter search with Optuna, on the val split only.

The study lives in an Optuna RDB storage (SQLite by default, next to ``mlflow.db``), so a
second search with the same ``study_name`` resumes it and adds trials. Each trial trains
the variant on train, scores it on val with the study's :class:`Objective` (never on
test) and, inside a ``kedro run``, is logged as an MLflow run nested under the run's
own. What a trial fits on is the objective's: a
:class:`~rating_prediction.training.data.TrainingData` on one machine, the Spark
variants' ``SparkTrainingData`` on Spark (``rating_prediction.pipelines.spark_tuning``);
this module passes it through. A rating model minimises the held-out val MSE the
training pipeline records as ``best_val_loss`` (:data:`VAL_MSE`); a ranker maximises
val NDCG@K, an objective the tuning node builds from the evaluation's ranking settings.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import mlflow
import optuna
import polars as pl

from rating_prediction.models.variants import (
    LOCAL,
    SPARK,
    variant,
    variants_of,
    variants_that,
)
from rating_prediction.parameters import (
    ParameterError,
    SearchDimension,
    TuningParameters,
    parse,
)
from rating_prediction.runtime.progress import Progress, key_values
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


@dataclass(frozen=True)
class Objective:
    """What a trial's fit is scored by.

    Attributes:
        name: The figure's name in MLflow (``<variant>.<name>``) and in the tuned file
            (``best_<name>``).
        direction: Optuna's ``minimize`` or ``maximize``.
        score: The figure of a variant fitted on train with the given options,
            measured on val: ``score(variant, options, data)``, ``data`` the
            training data of the variant's engine.
    """

    name: str
    direction: Literal["minimize", "maximize"]
    score: Callable[[str, dict[str, Any], Any], float]


def fitted_on_train(name: str, options: dict[str, Any], data: Any):
    """The variant ``name`` fitted on train (``data``, its engine's training data) with
    ``options``, never refitted on train + val: what its fit function returns
    (``(weights, config, history)``; a Spark variant's factor tables for weights)."""
    entry = variant(name)
    parsed = parse(
        entry.parameters,
        {**options, "refit_on_train_val": False},
        f"training.{name}",
    )
    return entry.fit_function()(name, parsed, data)


def val_loss(name: str, options: dict[str, Any], data: TrainingData) -> float:
    """The held-out val MSE of the variant ``name`` fitted on train with ``options``
    (never refitted on train + val), through its entry in the variant registry."""
    _, config, _ = fitted_on_train(name, options, data)
    return float(config.best_val_loss)


VAL_MSE = Objective("val_mse", "minimize", val_loss)


def check_tunable(name: str, objective: Objective) -> None:
    """Refuse a variant the objective cannot score: the val MSE of a ranker
    (``ease``), which predicts no ratings.

    Raises:
        ParameterError: Naming ``tuning.variant`` and the variants it may be.
    """
    if objective is VAL_MSE and not variant(name).predicts_ratings:
        tunable = ", ".join(variants_that("predicts_ratings"))
        raise ParameterError(
            f"Invalid parameters:\n- 'tuning.variant': {name!r} ranks movies but "
            "predicts no ratings, and this search minimises the val MSE: choose one "
            f"of {tunable}, or tune it through the tuning pipeline, which scores a "
            "ranker on val NDCG@K."
        )


# How to tune a variant of each engine.
TUNING_COMMANDS = {
    LOCAL: "kedro run --pipelines tuning",
    SPARK: "kedro run --env spark --pipelines spark_tuning",
}


def check_engine(name: str, engine: str) -> None:
    """Refuse a variant another engine fits: a Spark variant in the one-machine
    search, a one-machine variant in the Spark one.

    Raises:
        ParameterError: Naming ``tuning.variant``, the command that tunes it and the
            variants this search tunes.
    """
    fitted_on = variant(name).engine
    if fitted_on == engine:
        return
    raise ParameterError(
        f"Invalid parameters:\n- 'tuning.variant': {name!r} is fitted on "
        f"{fitted_on}: tune it with `{TUNING_COMMANDS[fitted_on]}`. This search "
        f"(`{TUNING_COMMANDS[engine]}`) tunes {', '.join(variants_of(engine))}."
    )


def run_study(
    settings: TuningParameters,
    base_options: dict[str, Any],
    data: Any,
    objective: Objective = VAL_MSE,
) -> optuna.Study:
    """Create or resume the study and add ``settings.n_trials`` trials, each scored by
    ``objective``.

    Raises:
        ParameterError: If ``objective`` cannot score ``settings.variant``
            (:func:`check_tunable`).
    """
    check_tunable(settings.variant, objective)
    # Optuna's own handler prints a line per trial beside the run's progress; the run
    # logs each trial itself (_trial), in the project's format.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=settings.study_name,
        storage=settings.storage,
        load_if_exists=True,
        direction=objective.direction,
        # Seeded, and shifted by the trials already there, so a resumed study does not
        # replay the first run's suggestions.
        sampler=optuna.samplers.TPESampler(seed=settings.seed + _n_trials(settings)),
    )
    logger.info(
        "tuning %s on %s: study %r in %s holds %d trials; adding %d",
        settings.variant,
        objective.name,
        settings.study_name,
        settings.storage,
        len(study.trials),
        settings.n_trials,
    )
    what = f"tuning {settings.variant}"
    with Progress(what, settings.n_trials, "trials", logger=logger) as progress:
        study.optimize(
            lambda trial: _trial(trial, settings, base_options, data, objective),
            n_trials=settings.n_trials,
            # A combination the parameter checks refuse fails its trial, not the search.
            catch=(ParameterError,),
            callbacks=[
                lambda study, trial: _log_trial(study, trial, objective),
                lambda study, trial: progress.advance(),
            ],
        )
    return study


def _log_trial(
    study: optuna.Study, trial: optuna.trial.FrozenTrial, objective: Objective
) -> None:
    """One line per trial: its figure (or why it failed) and values, and the best."""
    values = key_values(trial.params)
    if trial.state != optuna.trial.TrialState.COMPLETE:
        logger.info("trial %d %s (%s)", trial.number, trial.state.name.lower(), values)
        return
    logger.info(
        "trial %d: %s %.6g (best %.6g, trial %d) with %s",
        trial.number,
        objective.name,
        trial.value,
        study.best_value,
        study.best_trial.number,
        values,
    )


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
    data: Any,
    objective: Objective,
) -> float:
    """Train with the trial's values and return the objective's val figure, inside a
    nested MLflow run when a run is active (``kedro run``)."""
    values = suggest(trial, settings.search_space)
    options = with_values(base_options, values)
    if mlflow.active_run() is None:
        return objective.score(settings.variant, options, data)
    with mlflow.start_run(
        run_name=f"{settings.study_name}-trial-{trial.number}", nested=True
    ):
        mlflow.set_tags(
            {"optuna.study": settings.study_name, "optuna.trial": trial.number}
        )
        mlflow.log_params({f"{settings.variant}.{k}": v for k, v in values.items()})
        value = objective.score(settings.variant, options, data)
        mlflow.log_metric(f"{settings.variant}.{objective.name}", value)
    return value


def best_parameters(
    study: optuna.Study, settings: TuningParameters, objective: Objective = VAL_MSE
) -> dict[str, Any]:
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
            f"best_{objective.name}": best.value,
        },
        "training": {settings.variant: with_values({}, best.params)},
    }


def trials_table(study: optuna.Study) -> pl.DataFrame:
    """Every trial: number, state, val figure and the values tried
    (``param.<key>``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = study.trials_dataframe(attrs=("number", "state", "value", "params"))
    return pl.from_pandas(frame.astype({"state": str}))
