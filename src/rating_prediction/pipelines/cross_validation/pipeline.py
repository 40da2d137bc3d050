"""``cross_validation`` pipeline: ingestion, the id mappings, then every model variant and
baseline trained and scored on each of K folds, summarised with intervals.

``kedro run --pipelines cross_validation`` runs it alone (``kedro run`` does not). Its
mappings stay in memory under the ``cross_validation`` namespace, so it never
overwrites the splits, mappings or models of a plain ``kedro run``; the node that
cross-validates is in that namespace too, since Kedro lets only a namespace's own nodes
read its dotted names (``cross_validation.user_mapping``, ...).
"""

from kedro.pipeline import Node, Pipeline, pipeline

from rating_prediction.pipelines.data_ingestion import (
    create_pipeline as ingestion_pipeline,
)
from rating_prediction.pipelines.data_processing import (
    create_pipeline as processing_pipeline,
)

from .nodes import (
    cross_validate,
    fold_mlflow_metrics,
    summarize_cross_validation,
    write_cross_validation_summary,
)

NAMESPACE = "cross_validation"


def create_pipeline(**kwargs) -> Pipeline:
    """Create the cross-validation pipeline."""
    folds = pipeline(
        [
            processing_pipeline().to_outputs("mapped_ratings"),
            Node(
                func=cross_validate,
                inputs={
                    "mapped_ratings": "mapped_ratings",
                    "predefined_folds": "predefined_folds",
                    "parameters": "parameters",
                    "user_mapping": "user_mapping",
                    "movie_mapping": "movie_mapping",
                    "movies": "movies",
                    "users": "users",
                    "rating_scale": "rating_scale",
                },
                outputs=["cross_validation_fold_metrics", "cross_validation_folds"],
                name="cross_validate_node",
            ),
        ],
        namespace=NAMESPACE,
        inputs={"ratings", "predefined_folds", "movies", "users", "rating_scale"},
        outputs={"cross_validation_fold_metrics", "cross_validation_folds"},
        parameters={"params:processing"},
    )
    return ingestion_pipeline() + folds + _summary_nodes()


def _summary_nodes() -> Pipeline:
    return Pipeline(
        [
            Node(
                func=summarize_cross_validation,
                inputs=[
                    "cross_validation_fold_metrics",
                    "cross_validation_folds",
                    "params:cross_validation",
                    "params:ingestion.dataset",
                ],
                outputs="metrics_summary",
                name="summarize_cross_validation_node",
            ),
            Node(
                func=fold_mlflow_metrics,
                inputs="cross_validation_fold_metrics",
                outputs="cross_validation_mlflow_metrics",
                name="fold_mlflow_metrics_node",
            ),
            Node(
                func=write_cross_validation_summary,
                inputs="metrics_summary",
                outputs="cross_validation_summary",
                name="write_cross_validation_summary_node",
            ),
        ]
    )
