"""Entry and metric names: which metrics rank, their direction, their MLflow spelling."""

from __future__ import annotations

from rating_prediction.evaluation.metrics import METRICS
from rating_prediction.evaluation.names import (
    flat_metrics,
    higher_is_better,
    is_ranking_metric,
    mlflow_metric_name,
    mlflow_metrics,
    ranking_metric_names,
)
from rating_prediction.serving.registry import FINGERPRINT_TAG, version_tags

METRICS_JSON = {
    "biased_mf": {
        "train": {"rmse": 0.8},
        "test": {"rmse": 0.9, "ndcg@10": 0.1, "coverage": 0.5},
    },
    "popularity": {"test": {"ndcg@10": 0.05}},
}


def test_ranking_metrics_are_higher_is_better_and_errors_are_not():
    names = ranking_metric_names(10)
    assert names == ["ndcg@10", "precision@10", "recall@10", "map@10", "coverage"]
    assert all(is_ranking_metric(n) and higher_is_better(n) for n in names)
    assert is_ranking_metric("ndcg@500")
    assert not any(is_ranking_metric(m) or higher_is_better(m) for m in METRICS)


def test_mlflow_spells_at_as_underscores():
    assert mlflow_metric_name("biased_mf", "test", "ndcg@10") == (
        "biased_mf.test.ndcg_at_10"
    )


def test_nested_metrics_flatten_to_dotted_mlflow_names_in_order():
    assert flat_metrics(METRICS_JSON) == {
        "biased_mf.train.rmse": 0.8,
        "biased_mf.test.rmse": 0.9,
        "biased_mf.test.ndcg_at_10": 0.1,
        "biased_mf.test.coverage": 0.5,
        "popularity.test.ndcg_at_10": 0.05,
    }
    assert (
        list(flat_metrics({"fold1": METRICS_JSON}))[0] == "fold1.biased_mf.train.rmse"
    )
    assert mlflow_metrics(METRICS_JSON)["popularity.test.ndcg_at_10"] == {
        "value": 0.05,
        "step": 0,
    }


def test_registered_version_tags_spell_metrics_as_the_logged_metrics():
    tags = version_tags(METRICS_JSON["biased_mf"], "abc")
    assert tags == {
        "train.rmse": "0.8",
        "test.rmse": "0.9",
        "test.ndcg_at_10": "0.1",
        "test.coverage": "0.5",
        FINGERPRINT_TAG: "abc",
    }
