"""``evaluation`` pipeline: score every model variant and both baselines on every split.

One namespace per entry of ``metrics.json`` (each model variant, ``mean_baseline`` and
``bias_baseline``), as the training pipeline has one per variant. Inside a namespace the
entry predicts the three splits, saves its test predictions as
``<entry>.test_predictions`` and scores them as ``<entry>.split_metrics``; a final
node gathers every entry into ``metrics`` (metrics.json) and ``mlflow_metrics``.
"""

from collections.abc import Callable

import polars as pl
from kedro.pipeline import Node, Pipeline, pipeline

from rating_prediction.baselines import (
    BASELINES,
    BaselinePredictor,
    fit_mean_baseline,
)
from rating_prediction.models import MODEL_VARIANTS
from rating_prediction.schema import SPLITS

from .nodes import (
    compute_split_metrics,
    fit_bias_baseline,
    gather_metrics,
    predict_with_baseline,
    predict_with_model,
)

SPLIT_INPUTS = {f"{split}_ratings" for split in SPLITS}
EVALUATED_ENTRIES = [*MODEL_VARIANTS, *BASELINES]


def create_pipeline(**kwargs) -> Pipeline:
    """Create the evaluation pipeline."""
    model_evaluations = [
        pipeline(
            _model_evaluation(),
            namespace=variant,
            inputs=SPLIT_INPUTS,
            parameters={"params:evaluation"},
        )
        for variant in MODEL_VARIANTS
    ]
    return Pipeline(
        [
            *model_evaluations,
            _baseline_evaluation("mean_baseline", fit_mean_baseline, ["train_ratings"]),
            _baseline_evaluation(
                "bias_baseline",
                fit_bias_baseline,
                ["train_ratings", "params:evaluation"],
            ),
            Node(
                func=gather_metrics,
                inputs={entry: f"{entry}.split_metrics" for entry in EVALUATED_ENTRIES},
                outputs=["metrics", "mlflow_metrics"],
                name="gather_metrics_node",
            ),
        ]
    )


def _baseline_evaluation(
    baseline: str, fit: Callable[..., BaselinePredictor], fit_inputs: list[str]
) -> Pipeline:
    """Fit ``baseline`` on the training split, then predict and score every split."""
    return pipeline(
        [
            Node(
                func=fit,
                inputs=fit_inputs,
                outputs="baseline",
                name=f"fit_{baseline}_node",
            ),
            *_baseline_scoring(),
        ],
        namespace=baseline,
        inputs=SPLIT_INPUTS,
        parameters={name for name in fit_inputs if name.startswith("params:")},
    )


def _model_evaluation() -> list[Node]:
    return _predict_and_score(
        predict_with_model,
        {
            "model_config": "model_config",
            "model_weights": "model_weights",
            "evaluation": "params:evaluation",
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
