"""``evaluation`` pipeline: score every model variant and both baselines on every split.

One namespace per entry of ``metrics.json`` (each model variant, ``mean_baseline`` and
``bias_baseline``), as the training pipeline has one per variant. Inside a namespace the
entry predicts the three splits, saves its test predictions as
``<entry>.test_predictions`` and scores them as ``<entry>.split_metrics``; two final
nodes gather every entry into ``metrics`` (metrics.json) and ``mlflow_metrics``.
"""

from collections.abc import Callable

import polars as pl
from kedro.pipeline import Node, Pipeline, pipeline

from rating_prediction.metrics import (
    BASELINES,
    SPLITS,
    fit_bias_baseline,
    fit_mean_baseline,
)
from rating_prediction.models import MODEL_VARIANTS

from .nodes import (
    collect_metrics,
    compute_split_metrics,
    flatten_metrics_for_mlflow,
    predict_with_baseline,
    predict_with_model,
)

SPLIT_INPUTS = {f"{split}_ratings" for split in SPLITS}
EVALUATED_ENTRIES = [*MODEL_VARIANTS, *BASELINES]


def create_pipeline(**kwargs) -> Pipeline:
    model_evaluations = [
        pipeline(
            _model_evaluation(),
            namespace=variant,
            inputs=SPLIT_INPUTS,
            parameters={"params:evaluation.prediction_batch_size"},
        )
        for variant in MODEL_VARIANTS
    ]
    mean_baseline_evaluation = pipeline(
        [
            Node(
                func=fit_mean_baseline,
                inputs="train_ratings",
                outputs="baseline",
                name="fit_mean_baseline_node",
            ),
            *_baseline_scoring(),
        ],
        namespace="mean_baseline",
        inputs=SPLIT_INPUTS,
    )
    bias_baseline_evaluation = pipeline(
        [
            Node(
                func=fit_bias_baseline,
                inputs={
                    "train_ratings": "train_ratings",
                    "reg_user": "params:evaluation.bias_baseline.reg_user",
                    "reg_movie": "params:evaluation.bias_baseline.reg_movie",
                    "n_epochs": "params:evaluation.bias_baseline.n_epochs",
                },
                outputs="baseline",
                name="fit_bias_baseline_node",
            ),
            *_baseline_scoring(),
        ],
        namespace="bias_baseline",
        inputs=SPLIT_INPUTS,
        parameters={
            "params:evaluation.bias_baseline.reg_user",
            "params:evaluation.bias_baseline.reg_movie",
            "params:evaluation.bias_baseline.n_epochs",
        },
    )
    return Pipeline(
        [
            *model_evaluations,
            mean_baseline_evaluation,
            bias_baseline_evaluation,
            Node(
                func=collect_metrics,
                inputs={entry: f"{entry}.split_metrics" for entry in EVALUATED_ENTRIES},
                outputs="metrics",
                name="collect_metrics_node",
            ),
            Node(
                func=flatten_metrics_for_mlflow,
                inputs="metrics",
                outputs="mlflow_metrics",
                name="flatten_metrics_for_mlflow_node",
            ),
        ]
    )


def _model_evaluation() -> list[Node]:
    return _predict_and_score(
        predict_with_model,
        {
            "model_config": "model_config",
            "model_weights": "model_weights",
            "batch_size": "params:evaluation.prediction_batch_size",
        },
    )


def _baseline_scoring() -> list[Node]:
    return _predict_and_score(predict_with_baseline, {"baseline": "baseline"})


def _predict_and_score(
    predict: Callable[..., pl.DataFrame], predictor_inputs: dict[str, str]
) -> list[Node]:
    """Predict each split with the entry's predictor, then score the predictions."""
    predict_nodes = [
        Node(
            func=predict,
            inputs={**predictor_inputs, "ratings": f"{split}_ratings"},
            outputs=f"{split}_predictions",
            name=f"predict_{split}_ratings_node",
        )
        for split in SPLITS
    ]
    score_node = Node(
        func=compute_split_metrics,
        inputs=[f"{split}_predictions" for split in SPLITS],
        outputs="split_metrics",
        name="compute_split_metrics_node",
    )
    return [*predict_nodes, score_node]
