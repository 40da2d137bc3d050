"""A model config's ``fit_seconds`` is the fit's own time: the training pipeline's use
of the fit on train (ranking val with it) is left out, in both kinds of fit that
report one."""

from __future__ import annotations

import time
from dataclasses import replace

from rating_prediction.models.variants import variant as variant_registry
from rating_prediction.parameters import BayesianFMParameters, parse
from rating_prediction.training import bayesian_fm
from rating_prediction.training.fit import fit_variant
from tests.fakes import training_data

PAUSE_SECONDS = 1.0


def slow_report(model, data) -> None:
    time.sleep(PAUSE_SECONDS)


def timed_fit(fit, *arguments) -> tuple[float, float]:
    """``fit(*arguments)``'s config ``fit_seconds`` and the call's wall time."""
    started = time.perf_counter()
    _, config, _ = fit(*arguments)
    return config.fit_seconds, time.perf_counter() - started


def test_a_lightning_fit_leaves_out_the_report_of_its_fit_on_train(
    splits, training_parameters
):
    values = training_parameters["biased_mf"] | {"max_epochs": 2, "min_epochs": 1}
    values["refit_on_train_val"] = True
    options = parse(
        variant_registry("biased_mf").parameters, values, "training.biased_mf"
    )
    data = replace(training_data(splits), on_fitted_on_train=slow_report)
    fit_seconds, wall = timed_fit(fit_variant, "biased_mf", options, data)
    assert 0 < fit_seconds <= wall - PAUSE_SECONDS


def test_bayesian_fm_leaves_out_the_report_of_its_fit_on_train(splits):
    options = BayesianFMParameters.model_validate(
        {"n_iter": 8, "n_kept_samples": 4, "rank": 3}
    )
    data = replace(training_data(splits), on_fitted_on_train=slow_report)
    fit_seconds, wall = timed_fit(bayesian_fm.fit_variant, "bayesian_fm", options, data)
    assert 0 < fit_seconds <= wall - PAUSE_SECONDS
