"""Tuning outside its pipeline: the trial's values set on a copy of a variant's options
(training/tuning.py), and the checks of the ``tuning`` parameters."""

from __future__ import annotations

import optuna
import pytest

from rating_prediction.models.variants import LOCAL, SPARK
from rating_prediction.parameters import (
    BayesianFMParameters,
    ParameterError,
    TuningParameters,
    parse,
)
from rating_prediction.training.tuning import (
    VAL_MSE,
    check_engine,
    check_tunable,
    suggest,
    with_values,
)


@pytest.mark.parametrize("ranker", ["ease", "als", "bpr"])
def test_a_ranker_is_not_tuned_on_val_mse(ranker):
    check_tunable("biased_mf", VAL_MSE)
    with pytest.raises(
        ParameterError, match=f"'tuning.variant': '{ranker}' ranks movies"
    ):
        check_tunable(ranker, VAL_MSE)


def test_each_search_refuses_the_other_engines_variants():
    check_engine("als", LOCAL)
    check_engine("spark_als", SPARK)
    with pytest.raises(ParameterError) as refused:
        check_engine("spark_als", LOCAL)
    assert "'tuning.variant': 'spark_als' is fitted on spark" in str(refused.value)
    assert "`kedro run --env spark --pipelines spark_tuning`" in str(refused.value)
    with pytest.raises(ParameterError, match="`kedro run --pipelines tuning`"):
        check_engine("bayesian_fm", SPARK)


def test_with_values_sets_dotted_keys_on_a_copy():
    options = {"rank": 10, "features": {"implicit": True, "genres": True}}
    updated = with_values(options, {"rank": 4, "features.genres": False})
    assert updated == {"rank": 4, "features": {"implicit": True, "genres": False}}
    assert options["features"]["genres"] is True


VALID = {
    "variant": "bayesian_fm",
    "n_trials": 3,
    "study_name": "s",
    "storage": "sqlite:///optuna.db",
    "search_spaces": {"bayesian_fm": {"rank": {"type": "int", "low": 2, "high": 8}}},
}


def space(dimensions: dict) -> dict:
    """A change of ``VALID`` that searches ``dimensions`` for bayesian_fm."""
    return {"search_spaces": {"bayesian_fm": dimensions}}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"n_trials": 0}, "tuning.n_trials"),
        ({"variant": "nope"}, "Unknown model variant 'nope'"),
        ({"study_name": ""}, "tuning.study_name"),
        (space({"rnk": {"type": "int", "low": 1, "high": 2}}), "'rnk'"),
        (space({"rank": {"type": "int", "low": 9, "high": 2}}), "low <= high"),
        (space({"rank": {"type": "categorical"}}), "non-empty choices"),
        (
            space({"init_stdev": {"type": "float", "low": 0, "high": 1, "log": True}}),
            "log needs low > 0",
        ),
        ({"variant": "ease"}, "no space for variant 'ease'.*tuning.search_spaces.ease"),
        (
            {
                "search_spaces": VALID["search_spaces"]
                | {"als": {"rank": {"type": "int", "low": 1, "high": 2}}}
            },
            "search_spaces.als key 'rank' is not a key of training.als",
        ),
        ({"n_trails": 3}, "unknown key 'tuning.n_trails'"),
    ],
)
def test_degenerate_or_unknown_tuning_parameters_are_rejected(change, message):
    assert parse(TuningParameters, VALID, "tuning").n_trials == 3
    with pytest.raises(ParameterError, match=message):
        parse(TuningParameters, VALID | change, "tuning")


def test_a_categorical_choice_may_switch_a_nullable_key_off():
    """bayesian_fm's time feature is tuned as ``features.time_bucket_days`` in
    ``[null, 1, ...]``: ``None`` is a choice, and the trial's options hold it."""
    settings = parse(
        TuningParameters,
        VALID
        | space(
            {
                "features.time_bucket_days": {
                    "type": "categorical",
                    "choices": [None, 1, 30],
                },
                "likelihood": {
                    "type": "categorical",
                    "choices": ["regression", "ordered_probit"],
                },
            }
        ),
        "tuning",
    )
    drawn = {"features.time_bucket_days": None, "likelihood": "ordered_probit"}
    values = suggest(optuna.trial.FixedTrial(drawn), settings.search_space)
    assert values == drawn
    options = with_values({"features": {"time_bucket_days": 7}}, values)
    assert options == {
        "features": {"time_bucket_days": None},
        "likelihood": "ordered_probit",
    }
    parse(BayesianFMParameters, options, "training.bayesian_fm")
