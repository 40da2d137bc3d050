"""Cross validation outside its pipeline (evaluation/cross_validation.py): the per-fold
parameters (epochs capped, overrides checked) and the summary of per-fold metrics. The
node tests summarise the same per-fold metrics."""

from __future__ import annotations

import pytest

from rating_prediction.evaluation.cross_validation import (
    fold_parameters,
    summarize_folds,
)
from rating_prediction.models.variants import VARIANTS
from rating_prediction.parameters import (
    CrossValidationParameters,
    ParameterError,
    parse,
)

FIRST, SECOND = list(VARIANTS)[:2]
# Per fold: FIRST beats SECOND by about 0.02 on every fold; the baseline trails.
RMSE = {
    FIRST: [0.80, 0.90, 0.85, 0.82, 0.88],
    SECOND: [0.82, 0.92, 0.86, 0.84, 0.90],
    "bias_baseline": [0.90, 0.95, 0.93, 0.91, 0.96],
    "mean_baseline": [1.0, 1.1, 1.05, 1.02, 1.08],
}
NDCG = {FIRST: [0.12, 0.08, 0.11, 0.09, 0.11], "popularity": [0.1] * 5}


def fold_metrics() -> dict:
    folds = {}
    for index in range(5):
        entries = {e: {"test": {"rmse": v[index]}} for e, v in RMSE.items()}
        for entry, values in NDCG.items():
            entries.setdefault(entry, {"test": {}})["test"]["ndcg@10"] = values[index]
        folds[f"fold{index + 1}"] = entries
    return folds


def test_overrides_cap_epochs_and_are_checked():
    parameters = {"training": {"a": {"max_epochs": 40, "min_epochs": 6}, "b": {}}}
    options = CrossValidationParameters(max_epochs=3)
    capped = fold_parameters(parameters, options)
    assert capped["training"]["a"] == {"max_epochs": 3, "min_epochs": 3}
    assert parameters["training"]["a"]["max_epochs"] == 40  # not mutated
    with pytest.raises(ParameterError, match="unknown variant"):
        parse(
            CrossValidationParameters,
            {"training_overrides": {"no_such_variant": {}}},
            "cross_validation",
        )
    with pytest.raises(ParameterError, match=r"cross_validation\.folds"):
        parse(CrossValidationParameters, {"folds": ["u1"]}, "cross_validation")


def test_summarize_folds_needs_no_parameters():
    assert summarize_folds(fold_metrics())["folds"] == [f"fold{i}" for i in range(1, 6)]


def test_an_entry_missing_from_a_fold_is_left_out_of_the_summary():
    """A popularity blend whose weight could not be chosen on one fold's val split has
    no entry there: the summary keeps the entries every fold has."""
    folds = fold_metrics()
    for index, fold in enumerate(folds.values()):
        if index != 2:
            fold["blend"] = {"test": {"ndcg@10": 0.2}}
    summary = summarize_folds(folds)
    assert "blend" not in str(summary)
    assert FIRST in str(summary)
