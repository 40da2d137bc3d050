"""Summaries of per-fold metrics: intervals, comparisons and the lead sentence."""

from __future__ import annotations

import pytest

from rating_prediction.pipelines.cross_validation.nodes import (
    fold_mlflow_metrics,
    summarize_cross_validation,
    write_cross_validation_summary,
)
from tests.evaluation.test_cross_validation import FIRST, SECOND, fold_metrics


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
