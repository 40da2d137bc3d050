"""``evaluation`` pipeline: score every model variant and both baselines on every split.

One namespace per entry of ``metrics.json`` (each model variant, ``mean_baseline`` and
``bias_baseline``), as the training pipeline has one per variant. Inside a namespace the
entry scores train and val in batches (their predictions are never held whole), saves
its test predictions as ``<entry>.test_predictions`` and gathers the three splits'
scores as ``<entry>.split_metrics``; a final node gathers every entry into ``metrics``
(metrics.json) and ``mlflow_metrics``.
"""

from collections.abc import Callable

import polars as pl
from kedro.pipeline import Node, Pipeline, pipeline

from rating_prediction.data.schema import SPLITS
from rating_prediction.evaluation.names import BLEND_SUFFIX, RANKING_BASELINES
from rating_prediction.models.baselines import BASELINES, BaselinePredictor
from rating_prediction.models.variants import VARIANTS, variants_that
from rating_prediction.pipelines import handed_out
from rating_prediction.pipelines.inference.nodes import offer_trained_model
from rating_prediction.serving.ranker import ranker_variants

from .nodes import (
    build_ranking_task,
    compare_best_ranker_to_popularity,
    compute_split_metrics,
    fit_bias_baseline,
    fit_bias_baseline_on_train_val,
    fit_mean_baseline,
    fit_mean_baseline_on_train_val,
    gather_metrics,
    gather_ranking_metrics,
    predict_with_baseline,
    predict_with_model,
    rank_at_random,
    rank_by_popularity,
    rank_with_model,
    score_with_baseline,
    score_with_model,
)

SPLIT_INPUTS = {f"{split}_ratings" for split in SPLITS}
# The baselines fitted on train + val too, as the final models that refit on it
# (`refit_on_train_val`): a fair comparison names the data an entry was fitted on.
TRAIN_VAL_BASELINES = ("mean_baseline_train_val", "bias_baseline_train_val")
RATING_VARIANTS = variants_that("predicts_ratings")
RANKING_VARIANTS = variants_that("ranks")
EVALUATED_ENTRIES = [*RATING_VARIANTS, *BASELINES, *TRAIN_VAL_BASELINES]
# Ranking-only entries: top-K lists, not rating predictions.
RANKING_BASELINE_NODES = {"popularity": rank_by_popularity, "random": rank_at_random}
RANKED_ENTRIES = [*RANKING_VARIANTS, *RANKING_BASELINES]
# Built once from the splits, read by every ranking node.
RANKING_TASK = "ranking_task"
# The data set's rating scale (ingestion's record): the baselines' clipping and the
# ranking's relevance threshold.
RATING_SCALE = "rating_scale"
# What each entry's namespace hands out to the gathering nodes.
SPLIT, RANKING, BLEND_RANKING, COMPARED_RANKER = (
    "split_metrics",
    "ranking_metrics",
    "blend_ranking_metrics",
    "compared_ranker",
)


def create_pipeline(**kwargs) -> Pipeline:
    """Create the evaluation pipeline: every variant of the registry as its capabilities
    allow, the baselines, then the gathering of every entry."""
    return Pipeline(
        [
            Node(
                func=build_ranking_task,
                inputs=[
                    "train_ratings",
                    "val_ratings",
                    "test_ratings",
                    "params:evaluation",
                    RATING_SCALE,
                ],
                outputs=RANKING_TASK,
                name="build_ranking_task_node",
            ),
            *(_variant_evaluation(variant) for variant in VARIANTS),
            _baseline_evaluation(
                "mean_baseline", fit_mean_baseline, ["train_ratings", RATING_SCALE]
            ),
            _baseline_evaluation(
                "bias_baseline",
                fit_bias_baseline,
                ["train_ratings", "params:evaluation", RATING_SCALE],
            ),
            *_train_val_baselines(),
            *(_ranking_baseline(name) for name in RANKING_BASELINES),
            *_gathering(),
        ]
    )


def _gathering() -> list[Node]:
    """Every entry's ranking metrics, then every entry's metrics: ``metrics`` and
    ``mlflow_metrics``."""
    return [
        Node(
            func=gather_ranking_metrics,
            inputs={
                **{entry: handed_out(entry, RANKING) for entry in RANKED_ENTRIES},
                **{
                    f"{variant}{BLEND_SUFFIX}": handed_out(variant, BLEND_RANKING)
                    for variant in RANKING_VARIANTS
                },
            },
            outputs="ranking_metrics",
            name="gather_ranking_metrics_node",
        ),
        Node(
            func=compare_best_ranker_to_popularity,
            inputs=[
                RANKING_TASK,
                "params:evaluation",
                *(handed_out(ranker, COMPARED_RANKER) for ranker in ranker_variants()),
            ],
            outputs="ranking_comparison",
            name="compare_best_ranker_to_popularity_node",
        ),
        Node(
            func=gather_metrics,
            inputs={
                "ranking_metrics": "ranking_metrics",
                **{entry: handed_out(entry, SPLIT) for entry in EVALUATED_ENTRIES},
            },
            outputs=["metrics", "mlflow_metrics"],
            name="gather_metrics_node",
        ),
    ]


def _variant_evaluation(variant: str) -> Pipeline:
    """``variant``'s rating predictions scored on every split and its top-K lists
    ranked (alone and blended with popularity, in one pass), as far as it can do each."""
    outputs = [SPLIT] if variant in RATING_VARIANTS else []
    outputs += [RANKING, BLEND_RANKING] if variant in RANKING_VARIANTS else []
    outputs += [COMPARED_RANKER] if variant in ranker_variants() else []
    inputs = set(SPLIT_INPUTS) if variant in RATING_VARIANTS else set()
    inputs |= {RANKING_TASK} if variant in RANKING_VARIANTS else set()
    return pipeline(
        _model_evaluation(variant),
        namespace=variant,
        inputs=inputs,
        outputs={output: handed_out(variant, output) for output in outputs},
        parameters={"params:evaluation"},
    )


def _train_val_baselines() -> list[Node | Pipeline]:
    """Both baselines fitted on train + val, the data of the refitted final models."""
    return [
        _baseline_evaluation(
            "mean_baseline_train_val",
            fit_mean_baseline_on_train_val,
            ["train_ratings", "val_ratings", RATING_SCALE],
        ),
        _baseline_evaluation(
            "bias_baseline_train_val",
            fit_bias_baseline_on_train_val,
            ["train_ratings", "val_ratings", "params:evaluation", RATING_SCALE],
        ),
    ]


def _baseline_evaluation(
    baseline: str, fit: Callable[..., BaselinePredictor], fit_inputs: list[str]
) -> Pipeline:
    """Fit ``baseline`` on ``fit_inputs`` (the training split, or train + val), then
    predict and score every split."""
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
        inputs=SPLIT_INPUTS
        | {name for name in fit_inputs if not name.startswith("params:")},
        outputs={SPLIT: handed_out(baseline, SPLIT)},
        parameters={"params:evaluation"},
    )


def _model_evaluation(variant: str) -> list[Node]:
    model_inputs = {
        "model_config": "model_config",
        "model_weights": "model_weights",
        "evaluation": "params:evaluation",
    }
    nodes = []
    if variant in RATING_VARIANTS:
        nodes += _predict_and_score(
            predict_with_model, score_with_model, model_inputs, {}
        )
    if variant in RANKING_VARIANTS:
        nodes.append(
            Node(
                func=rank_with_model,
                inputs={**model_inputs, "ranking_task": RANKING_TASK},
                outputs=["ranking_metrics", "blend_ranking_metrics"],
                name="rank_with_model_node",
            )
        )
    if variant in ranker_variants():
        nodes.append(
            Node(
                func=offer_trained_model,
                inputs=["model_config", "model_weights"],
                outputs=COMPARED_RANKER,
                name="offer_ranker_node",
            )
        )
    return nodes


def _ranking_baseline(name: str) -> Pipeline:
    """A ranking-only baseline (``popularity``, ``random``) scored on the test split."""
    rank = RANKING_BASELINE_NODES[name]
    return pipeline(
        [
            Node(
                func=rank,
                inputs=[RANKING_TASK, "params:evaluation"],
                outputs="ranking_metrics",
                name=f"{rank.__name__}_node",
            )
        ],
        namespace=name,
        inputs={RANKING_TASK},
        outputs={RANKING: handed_out(name, RANKING)},
        parameters={"params:evaluation"},
    )


def _baseline_scoring() -> list[Node]:
    return _predict_and_score(
        predict_with_baseline,
        score_with_baseline,
        {"baseline": "baseline"},
        {"evaluation": "params:evaluation"},
    )


def _predict_and_score(
    predict: Callable[..., pl.DataFrame],
    score: Callable[..., dict[str, float]],
    predictor_inputs: dict[str, str],
    score_inputs: dict[str, str],
) -> list[Node]:
    """Score train and val with the entry's predictor in batches (their predictions
    are never held whole), predict test (saved for reporting), then gather the
    three splits' metrics."""
    score_nodes = [
        Node(
            func=score,
            inputs={**predictor_inputs, **score_inputs, "ratings": f"{split}_ratings"},
            outputs=f"{split}_metrics",
            name=f"score_{split}_ratings_node",
        )
        for split in SPLITS[:2]
    ]
    predict_node = Node(
        func=predict,
        inputs={**predictor_inputs, "ratings": "test_ratings"},
        outputs="test_predictions",
        name="predict_test_ratings_node",
    )
    score_node = Node(
        func=compute_split_metrics,
        inputs=["train_metrics", "val_metrics", "test_predictions"],
        outputs="split_metrics",
        name="compute_split_metrics_node",
    )
    return [*score_nodes, predict_node, score_node]
