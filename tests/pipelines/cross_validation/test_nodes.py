"""Summaries of per-fold metrics: intervals, comparisons and the lead sentence."""

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
from rating_prediction.pipelines.cross_validation.nodes import (
    fold_mlflow_metrics,
    summarize_cross_validation,
    write_cross_validation_summary,
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


def test_summary_has_intervals_comparisons_and_the_lead():
    summary = summarize_cross_validation(
        fold_metrics(), {f"fold{i}": f"u{i}" for i in range(1, 6)}, {}, "ml-100k"
    )
    assert summary["entries"][FIRST]["test"]["rmse"]["mean"] == pytest.approx(0.85)
    rmse = summary["comparisons"]["rmse"]
    assert rmse["ranking"][:2] == [FIRST, SECOND]
    assert rmse["best_baseline"] == "bias_baseline"
    lead = next(t for t in rmse["paired_tests"] if t["second"] == SECOND)
    assert lead["mean_difference"] == pytest.approx(-0.018)
    assert lead["significant"]
    ndcg = summary["comparisons"]["ndcg@10"]
    assert ndcg["higher_is_better"] and ndcg["best_baseline"] == "popularity"
    markdown = write_cross_validation_summary(summary)
    assert f"| {FIRST} | " in markdown and "0.8500 ± " in markdown
    assert f"`{FIRST}`, against `{SECOND}`" in markdown
    assert "the lead is **significant** at 5%" in markdown
    assert "the lead is **not significant** at 5%" in markdown  # ndcg vs popularity


def test_fold_metrics_go_to_mlflow_with_a_fold_prefix():
    logged = fold_mlflow_metrics(fold_metrics())
    assert logged[f"fold2.{FIRST}.test.rmse"] == {"value": 0.90, "step": 0}
    assert f"fold1.{FIRST}.test.ndcg_at_10" in logged


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
