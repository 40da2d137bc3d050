"""``spark_modelling`` pipeline (``kedro run --env spark``, after the Spark data
preparation): the Spark variants of the registry, each in its own namespace (fit on
Spark with its candidates chosen on val, export to the served model's weights,
evaluation on Spark), ``metrics.json``, the served model (the inference pipeline's own
nodes, from the exported weights) and every user's recommendations written from the
cluster.

The one-machine inference nodes read the splits, mappings and movies as polars tables
(``<name>_table``, collected from the Spark datasets: the served model holds every
user's rated movies); its all-user recommendations are replaced by the Spark ones
(``spark_all_user_recommendations``), written from the cluster.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from kedro.pipeline import Node, Pipeline, pipeline

from rating_prediction.evaluation.names import BLEND_SUFFIX
from rating_prediction.models.variants import (
    SPARK,
    variant,
    variants_of,
    variants_that,
)
from rating_prediction.pipelines import handed_out
from rating_prediction.pipelines.evaluation.nodes import gather_ranking_metrics
from rating_prediction.pipelines.inference import create_pipeline as inference_pipeline
from rating_prediction.pipelines.inference.nodes import (
    offer_trained_model,
    select_trained_model,
)

from .nodes import (
    USER_FACTORS_SUFFIX,
    build_spark_ranking_task,
    compare_spark_ranker_to_popularity,
    evaluate_spark_model,
    export_spark_model,
    fit_spark_model,
    gather_spark_metrics,
    local_table,
    rank_at_random_on_spark,
    rank_by_popularity_on_spark,
    rank_spark_model,
    recommend_on_spark,
    select_spark_ranker,
)

SPLITS = ["train_ratings", "val_ratings", "test_ratings"]
FIT_INPUTS = ["train_ratings", "val_ratings", "user_mapping", "movie_mapping"]
# What each variant's namespace hands out to the nodes outside it.
TRAINED_MODEL, USER_FACTORS = "trained_model", "user_factors"
SPLIT_METRICS, RANKING_METRICS = "split_metrics", "ranking_metrics"
BLEND_RANKING_METRICS = "blend_ranking_metrics"
RANKING_TASK = "spark_ranking_task"
POPULARITY, RANDOM = "popularity", "random"
# The one-machine inference nodes' inputs that the Spark environment holds as Spark
# DataFrames: they read polars tables collected from them instead.
LOCAL_TABLES = [*SPLITS, "user_mapping", "movie_mapping", "movies"]
# The one-machine choice of the served models (the Spark choice replaces it) and its
# all-user recommendations (the Spark ones replace them).
CHOICE_OUTPUTS = ["served_model_config", "served_model_weights", "served_ranker_choice"]
ONE_MACHINE_BATCH = "all_user_recommendations"


def spark_variants(capability: str) -> list[str]:
    """The Spark variants with ``capability``, in registry order."""
    return variants_that(capability, SPARK)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=build_spark_ranking_task,
                inputs=[*SPLITS, "params:evaluation", "rating_scale"],
                outputs=RANKING_TASK,
                name="build_spark_ranking_task_node",
            ),
            *(_variant_pipeline(name) for name in variants_of(SPARK)),
            Node(
                func=rank_by_popularity_on_spark,
                inputs=[RANKING_TASK, "params:evaluation"],
                outputs=handed_out(POPULARITY, RANKING_METRICS),
                name="rank_by_popularity_on_spark_node",
            ),
            Node(
                func=rank_at_random_on_spark,
                inputs=[RANKING_TASK, "params:evaluation"],
                outputs=handed_out(RANDOM, RANKING_METRICS),
                name="rank_at_random_on_spark_node",
            ),
            *_gathering(),
            _comparison(),
            *_choice_nodes(),
            _batch_recommendations(),
            _served_model(),
        ]
    )


def _variant_pipeline(name: str) -> Pipeline:
    """``name``'s fit, export, offer to the served model's choice, and evaluation on
    Spark as far as it can do each (errors for a rating model, ranking for a
    ranker)."""
    entry = variant(name)
    nodes = [
        Node(
            func=_fit_node(name),
            inputs={
                **{input_: input_ for input_ in FIT_INPUTS},
                "rating_scale": "rating_scale",
                "parameters": "params:training_options",
                "evaluation": "params:evaluation",
            },
            outputs=[USER_FACTORS, "movie_factors", "model_config", "training_history"],
            name="fit_spark_model_node",
        ),
        Node(
            func=export_spark_model,
            inputs=[USER_FACTORS, "movie_factors", "model_config"],
            outputs="model_weights",
            name="export_spark_model_node",
        ),
        Node(
            func=offer_trained_model,
            inputs=["model_config", "model_weights"],
            outputs=TRAINED_MODEL,
            name="offer_trained_model_node",
        ),
    ]
    outputs = [TRAINED_MODEL, USER_FACTORS]
    if entry.predicts_ratings:
        nodes.append(_evaluation_node())
        outputs.append(SPLIT_METRICS)
    if entry.ranks:
        nodes.append(_ranking_node())
        outputs += [RANKING_METRICS, BLEND_RANKING_METRICS]
    return pipeline(
        nodes,
        namespace=name,
        inputs={
            name for name in Pipeline(nodes).inputs() if not name.startswith("params:")
        },
        outputs={output: handed_out(name, output) for output in outputs},
        parameters={
            "params:training_options": f"params:training.{name}",
            "params:evaluation": "params:evaluation",
        },
    )


def _fit_node(name: str) -> Callable[..., Any]:
    """:func:`fit_spark_model` for one variant, as a node function (kedro-viz shows
    the wrapped function's code)."""

    @functools.wraps(fit_spark_model)
    def fit_variant(**inputs: Any) -> Any:
        return fit_spark_model(**inputs, variant_name=name)

    return fit_variant


def _evaluation_node() -> Node:
    return Node(
        func=evaluate_spark_model,
        inputs={
            **{split: split for split in SPLITS},
            "user_factors": USER_FACTORS,
            "movie_factors": "movie_factors",
            "model_config": "model_config",
            "rating_scale": "rating_scale",
        },
        outputs=SPLIT_METRICS,
        name="evaluate_spark_model_node",
    )


def _ranking_node() -> Node:
    return Node(
        func=rank_spark_model,
        inputs=[
            RANKING_TASK,
            USER_FACTORS,
            "model_config",
            "model_weights",
            "params:evaluation",
        ],
        outputs=[RANKING_METRICS, BLEND_RANKING_METRICS],
        name="rank_spark_model_node",
    )


def _gathering() -> list[Node]:
    """Every entry's metrics into ``metrics`` (metrics.json) and ``mlflow_metrics``:
    each ranker's own lists and its popularity blend (``<name>_popularity_blend``),
    the popularity and random lists."""
    ranked = [*spark_variants("ranks"), POPULARITY, RANDOM]
    blends = {
        f"{name}{BLEND_SUFFIX}": handed_out(name, BLEND_RANKING_METRICS)
        for name in spark_variants("ranks")
    }
    return [
        Node(
            func=gather_ranking_metrics,
            inputs={
                **{entry: handed_out(entry, RANKING_METRICS) for entry in ranked},
                **blends,
            },
            outputs="ranking_metrics",
            name="gather_ranking_metrics_node",
        ),
        Node(
            func=gather_spark_metrics,
            inputs={
                "ranking_metrics": "ranking_metrics",
                **{
                    name: handed_out(name, SPLIT_METRICS)
                    for name in spark_variants("predicts_ratings")
                },
            },
            outputs=["metrics", "mlflow_metrics"],
            name="gather_metrics_node",
        ),
    ]


def _comparison() -> Node:
    """``ranking_comparison``: the best Spark ranker against the popularity list."""
    rankers = _rankers()
    return Node(
        func=compare_spark_ranker_to_popularity,
        inputs={
            "spark_ranking_task": RANKING_TASK,
            "evaluation": "params:evaluation",
            **{name: handed_out(name, TRAINED_MODEL) for name in rankers},
            **{
                f"{name}{USER_FACTORS_SUFFIX}": handed_out(name, USER_FACTORS)
                for name in rankers
            },
        },
        outputs="ranking_comparison",
        name="compare_spark_ranker_to_popularity_node",
    )


def _rankers() -> list[str]:
    """The Spark rankers that are not rating models (the served ranker's choice)."""
    rating_models = spark_variants("predicts_ratings")
    return [name for name in spark_variants("ranks") if name not in rating_models]


def _choice_nodes() -> list[Node]:
    """The served rating model (``inference.served_variant``) and ranker
    (``inference.served_ranker``) among the Spark variants."""
    rating_models = spark_variants("predicts_ratings")
    rankers = _rankers()
    return [
        Node(
            func=select_trained_model,
            inputs=[
                "params:inference",
                *(handed_out(name, TRAINED_MODEL) for name in rating_models),
            ],
            outputs=["served_model_config", "served_model_weights"],
            name="select_spark_rating_model_node",
        ),
        Node(
            func=select_spark_ranker,
            inputs=[
                "params:inference",
                "params:training",
                *(handed_out(name, TRAINED_MODEL) for name in rankers),
            ],
            outputs="served_ranker_choice",
            name="select_spark_ranker_node",
        ),
    ]


def _batch_recommendations() -> Node:
    rating_model = spark_variants("predicts_ratings")[0]
    ranker = next(n for n in spark_variants("ranks") if n != rating_model)
    return Node(
        func=recommend_on_spark,
        inputs={
            "served_model_config": "served_model_config",
            "served_model_weights": "served_model_weights",
            "served_ranker_choice": "served_ranker_choice",
            "rating_user_factors": handed_out(rating_model, USER_FACTORS),
            "ranker_user_factors": handed_out(ranker, USER_FACTORS),
            **{name: name for name in [*SPLITS, "user_mapping", "movie_mapping"]},
            "movies": "movies",
            "inference": "params:inference",
        },
        outputs="spark_all_user_recommendations",
        name="recommend_on_spark_node",
    )


def _served_model() -> Pipeline:
    """The inference pipeline's served model, pair predictions, recommendations for a
    few users, fold-in and similar movies, from the Spark choice, on polars tables of
    the splits, mappings and movies collected once the Spark preparation wrote them."""
    inference = inference_pipeline()
    one_machine = inference.to_outputs(
        *CHOICE_OUTPUTS
    ) + inference.only_nodes_with_outputs(ONE_MACHINE_BATCH)
    collected = [
        Node(
            func=local_table,
            inputs=name,
            outputs=f"{name}_table",
            name=f"collect_{name}_node",
        )
        for name in LOCAL_TABLES
    ]
    return Pipeline(collected) + pipeline(
        inference - one_machine,
        inputs={name: f"{name}_table" for name in LOCAL_TABLES},
    )
