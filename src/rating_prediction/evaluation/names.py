"""The names of evaluation entries and metrics, and how MLflow spells them.

``metrics.json`` is ``{entry: {split: {metric: value}}}``. Entries are the model
variants, the error baselines, the ranking-only baselines (:data:`RANKING_BASELINES`)
and each variant's popularity blend (``<variant>`` + :data:`BLEND_SUFFIX`). Metrics
are errors (``mse``, ``rmse``, ``mae``: lower is better) or ranking metrics
(``ndcg@K``, ``precision@K``, ``recall@K``, ``map@K`` and ``coverage``: higher is
better). MLflow refuses ``@`` in a name, so it is spelt ``_at_`` there
(``biased_mf.test.ndcg_at_10``), in logged metrics and registered version tags alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Entries ranked by the ranking metrics only: they predict no rating.
RANKING_BASELINES = ("popularity", "random")
# The entry of a variant's scores blended with popularity: <variant>_popularity_blend.
BLEND_SUFFIX = "_popularity_blend"
# The ranking metrics cut at K (``<name>@K``), in metrics.json order, then coverage.
RANKING_METRICS_AT_K = ("ndcg", "precision", "recall", "map")
COVERAGE = "coverage"


def ranking_metric_names(k: int) -> list[str]:
    """The ranking metrics at cut-off ``k``, in the order metrics.json holds them."""
    return [*(f"{name}@{k}" for name in RANKING_METRICS_AT_K), COVERAGE]


def is_ranking_metric(name: str) -> bool:
    """Whether ``name`` is one of the ranking metrics (at any cut-off)."""
    return name == COVERAGE or name.split("@", maxsplit=1)[0] in RANKING_METRICS_AT_K


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better: the ranking metrics; every
    other metric is an error."""
    return is_ranking_metric(metric)


def mlflow_metric_name(*parts: str) -> str:
    """``parts`` joined by dots, ``@`` spelt ``_at_`` (MLflow refuses ``@`` in names):
    ``("biased_mf", "test", "ndcg@10")`` -> ``biased_mf.test.ndcg_at_10``."""
    return ".".join(parts).replace("@", "_at_")


def flat_metrics(metrics: Mapping[str, Any], *prefix: str) -> dict[str, Any]:
    """Nested metrics (``{entry: {split: {metric: value}}}``, or any depth) as
    ``{mlflow_metric_name(*prefix, entry, split, metric): value}``, in order."""
    flat = {}
    for key, value in metrics.items():
        if isinstance(value, Mapping):
            flat |= flat_metrics(value, *prefix, key)
        else:
            flat[mlflow_metric_name(*prefix, key)] = value
    return flat


def mlflow_metrics(metrics: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """:func:`flat_metrics` of ``metrics``, each value in the ``{"value": .., "step":
    0}`` form ``MlflowMetricsHistoryDataset`` logs."""
    return {
        name: {"value": value, "step": 0}
        for name, value in flat_metrics(metrics).items()
    }
