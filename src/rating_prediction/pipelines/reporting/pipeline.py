"""``reporting`` pipeline: figures (PNG, also logged to MLflow) and a one-page summary.

Comparison figures take one input per model variant and baseline, named by entry, so a
new variant in ``VARIANTS`` shows up in every figure without touching this file: the
figures of test predictions and training curves draw the variants that predict ratings;
a ranker (EASE^R) has neither, and shows in the ranking figure and the summary's
ranking table (its RMSE "–" in the metrics table).

Kedro reserves dotted dataset names for namespaces: only a node in the ``<entry>``
namespace reads ``<entry>.test_predictions`` or ``<entry>.training_history`` (the
catalog's names, for their files and MLflow artifacts). So each entry's test predictions
are summarised in its namespace, one summary per figure, passed on to the figure under
a plain name (``<entry>_rmse_by_rating``, ...); the training histories, a few rows each,
are handed over as they are (``<variant>_training_history``).
"""

from kedro.pipeline import Node, Pipeline

from rating_prediction.models.baselines import BASELINES
from rating_prediction.models.variants import variants_that
from rating_prediction.pipelines import handed_out

from .figures import (
    hand_over,
    plot_loss_curves,
    plot_ranking_metrics,
    plot_rating_histograms,
    plot_rmse_by_popularity,
    plot_rmse_by_rating,
    plot_test_rmse,
    popularity_buckets,
    rating_histogram,
    rmse_by_popularity,
    rmse_by_rating,
)
from .summary import write_summary

# The variants with test predictions and a loss curve: those that predict ratings.
MODEL_ENTRIES = variants_that("predicts_ratings")
ALL_ENTRIES = [*MODEL_ENTRIES, *BASELINES]
POPULARITY_BUCKETS = "popularity_buckets"
# The data set's rating scale (ingestion's record): the rating axes and bins.
RATING_SCALE = "rating_scale"
# What the figures draw from one entry's test predictions: the summary's name -> its
# node function, the entries summarised, and the inputs after the test predictions.
ENTRY_SUMMARIES = {
    "rating_histogram": (rating_histogram, MODEL_ENTRIES, [RATING_SCALE]),
    "rmse_by_rating": (rmse_by_rating, ALL_ENTRIES, [RATING_SCALE]),
    "rmse_by_popularity": (rmse_by_popularity, ALL_ENTRIES, [POPULARITY_BUCKETS]),
}
# The figures drawn from one dataset per entry, under its plain name: figure -> (the
# dataset, the entries drawn, the figure's catalog entry).
ENTRY_FIGURES = {
    plot_loss_curves: ("training_history", MODEL_ENTRIES, "loss_curves_plot"),
    plot_rating_histograms: (
        "rating_histogram",
        MODEL_ENTRIES,
        "rating_histograms_plot",
    ),
    plot_rmse_by_rating: ("rmse_by_rating", ALL_ENTRIES, "rmse_by_rating_plot"),
    plot_rmse_by_popularity: (
        "rmse_by_popularity",
        ALL_ENTRIES,
        "rmse_by_popularity_plot",
    ),
}
# The figures drawn from metrics.json alone: figure -> its catalog entry.
METRICS_FIGURES = {
    plot_test_rmse: "test_rmse_plot",
    plot_ranking_metrics: "ranking_metrics_plot",
}
SUMMARY_INPUTS = {
    "dataset_name": "params:ingestion.dataset",
    "train_ratings": "train_ratings",
    "val_ratings": "val_ratings",
    "test_ratings": "test_ratings",
    "metrics": "metrics",
    "ranking_comparison": "ranking_comparison",
    "rating_scale": RATING_SCALE,
    "evaluation": "params:evaluation",
    "reporting": "params:reporting",
}
# Figures that also read the rating scale (their axes span it).
SCALED_FIGURES = {plot_rating_histograms}


def create_pipeline(**kwargs) -> Pipeline:
    """Create the reporting pipeline."""
    return Pipeline(
        [
            Node(
                func=popularity_buckets,
                inputs=["train_ratings", "test_ratings", "params:reporting"],
                outputs=POPULARITY_BUCKETS,
                name="popularity_buckets_node",
            ),
            *(_entry_summaries(entry) for entry in ALL_ENTRIES),
            *(_history_hand_over(variant) for variant in MODEL_ENTRIES),
            *(
                Node(
                    func=plot,
                    inputs={entry: handed_out(entry, dataset) for entry in entries}
                    | (
                        {"rating_scale": RATING_SCALE} if plot in SCALED_FIGURES else {}
                    ),
                    outputs=output,
                    name=f"{plot.__name__}_node",
                )
                for plot, (dataset, entries, output) in ENTRY_FIGURES.items()
            ),
            *(
                Node(
                    func=plot,
                    inputs="metrics",
                    outputs=output,
                    name=f"{plot.__name__}_node",
                )
                for plot, output in METRICS_FIGURES.items()
            ),
            Node(
                func=write_summary,
                inputs=SUMMARY_INPUTS,
                outputs="summary",
                name="write_summary_node",
            ),
        ]
    )


def _entry_summaries(entry: str) -> Pipeline:
    """In the ``entry`` namespace: the summaries of its test predictions that the
    figures draw (:data:`ENTRY_SUMMARIES`), each passed on as ``<entry>_<summary>``."""
    summaries = {
        name: (func, other_inputs)
        for name, (func, entries, other_inputs) in ENTRY_SUMMARIES.items()
        if entry in entries
    }
    return Pipeline(
        [
            Node(
                func=func,
                inputs=["test_predictions", *other_inputs],
                outputs=name,
                name=f"{name}_node",
            )
            for name, (func, other_inputs) in summaries.items()
        ],
        namespace=entry,
        inputs={
            name for _, other_inputs in summaries.values() for name in other_inputs
        },
        outputs={name: handed_out(entry, name) for name in summaries},
    )


def _history_hand_over(variant: str) -> Pipeline:
    """In the ``variant`` namespace: its training history, passed on as
    ``<variant>_training_history``."""
    return Pipeline(
        [
            Node(
                func=hand_over,
                inputs="training_history",
                outputs="handed_over",
                name="hand_over_training_history_node",
            )
        ],
        namespace=variant,
        outputs={"handed_over": handed_out(variant, "training_history")},
    )
