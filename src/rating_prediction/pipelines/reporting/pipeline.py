"""``reporting`` pipeline: figures (PNG, also logged to MLflow) and a one-page summary.

Comparison figures take one input per model variant and baseline, named by entry, so a
new variant in ``VARIANTS`` shows up in every figure without touching this file.
"""

from kedro.pipeline import Node, Pipeline

from rating_prediction.models.baselines import BASELINES
from rating_prediction.models.variants import VARIANTS

from .figures import (
    plot_loss_curves,
    plot_ranking_metrics,
    plot_rating_histograms,
    plot_rmse_by_popularity,
    plot_rmse_by_rating,
    plot_test_rmse,
)
from .summary import write_summary

MODEL_TEST_PREDICTIONS = {
    variant: f"{variant}.test_predictions" for variant in VARIANTS
}
ALL_TEST_PREDICTIONS = {
    entry: f"{entry}.test_predictions" for entry in [*VARIANTS, *BASELINES]
}
TRAINING_HISTORIES = {variant: f"{variant}.training_history" for variant in VARIANTS}
SUMMARY_INPUTS = {
    "dataset_name": "params:ingestion.dataset",
    "train_ratings": "train_ratings",
    "val_ratings": "val_ratings",
    "test_ratings": "test_ratings",
    "metrics": "metrics",
    "reporting": "params:reporting",
}


def create_pipeline(**kwargs) -> Pipeline:
    """Create the reporting pipeline."""
    return Pipeline(
        [
            Node(
                func=plot_loss_curves,
                inputs=TRAINING_HISTORIES,
                outputs="loss_curves_plot",
                name="plot_loss_curves_node",
            ),
            Node(
                func=plot_rating_histograms,
                inputs=MODEL_TEST_PREDICTIONS,
                outputs="rating_histograms_plot",
                name="plot_rating_histograms_node",
            ),
            Node(
                func=plot_rmse_by_rating,
                inputs=ALL_TEST_PREDICTIONS,
                outputs="rmse_by_rating_plot",
                name="plot_rmse_by_rating_node",
            ),
            Node(
                func=plot_rmse_by_popularity,
                inputs={
                    "train_ratings": "train_ratings",
                    "reporting": "params:reporting",
                    **ALL_TEST_PREDICTIONS,
                },
                outputs="rmse_by_popularity_plot",
                name="plot_rmse_by_popularity_node",
            ),
            *_metrics_plots(),
            Node(
                func=write_summary,
                inputs=SUMMARY_INPUTS,
                outputs="summary",
                name="write_summary_node",
            ),
        ]
    )


def _metrics_plots() -> list[Node]:
    """The figures drawn from metrics.json alone."""
    return [
        Node(
            func=plot_test_rmse,
            inputs="metrics",
            outputs="test_rmse_plot",
            name="plot_test_rmse_node",
        ),
        Node(
            func=plot_ranking_metrics,
            inputs="metrics",
            outputs="ranking_metrics_plot",
            name="plot_ranking_metrics_node",
        ),
    ]
