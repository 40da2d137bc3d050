"""Nodes of the ``spark_modelling`` pipeline (``kedro run --env spark``): fit the Spark
variants, export them to the served model's weights, evaluate them on Spark, choose the
served ones and write every user's recommendations from the cluster.

The splits arrive as Spark DataFrames (``spark.SparkDataset``); only per-id tables
(factors, mappings) and single figures come back to the driver, but for the served
model, a one-machine artifact that holds every user's rated movies
(:func:`local_table`). The registry imports this package under a Spark environment
only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import polars as pl
import torch
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from rating_prediction.data.schema import RatingScale
from rating_prediction.evaluation.spark import (
    BlockModel,
    SparkRankingTask,
    pair_metrics,
    spark_ndcg_against_popularity,
    spark_ranking_metrics,
    spark_ranking_metrics_by_weight,
    spark_ranking_task,
    spark_top_k,
)
from rating_prediction.models.config import ModelConfig
from rating_prediction.models.variants import variant
from rating_prediction.parameters import (
    EvaluationParameters,
    InferenceParameters,
    parse,
)
from rating_prediction.pipelines.evaluation.nodes import (
    best_ranker_config,
    blend_entry,
    blend_weight_on_test,
    gather_metrics,
    ranker_comparison,
)
from rating_prediction.pipelines.reporting.summary import results_table
from rating_prediction.pipelines.training.val_ranking import (
    BLEND_WEIGHTS,
    best_blend_weight,
)
from rating_prediction.serving.ranker import NO_RANKER, RankerChoice, feedback_of
from rating_prediction.training.spark_als import (
    FactorTables,
    SparkTrainingData,
    export_weights,
    movie_weights,
)

logger = logging.getLogger(__name__)

USER, MOVIE = "userIdMapped", "movieIdMapped"
PAIR = [USER, MOVIE]
Trained = tuple[dict[str, Any], dict[str, torch.Tensor]]
# The key of a ranker's user rows among compare_spark_ranker_to_popularity's inputs.
USER_FACTORS_SUFFIX = "_user_factors"


def fit_spark_model(
    *,
    train_ratings: DataFrame,
    val_ratings: DataFrame,
    user_mapping: DataFrame,
    movie_mapping: DataFrame,
    rating_scale: dict[str, Any],
    parameters: dict[str, Any],
    evaluation: dict[str, Any],
    variant_name: str,
) -> tuple[DataFrame, DataFrame, dict[str, Any], pl.DataFrame]:
    """Fit ``variant_name`` with ``parameters`` (``training.<variant>``): every
    candidate on train, the best by val MSE (a rating model) or val NDCG@K (a ranker,
    ``evaluation.ranking``), computed on Spark; refitted on train + val when asked.

    Returns:
        The user and movie factor tables, the model config (``config.json``) and the
        history (one row per candidate combination tried on val).
    """
    entry = variant(variant_name)
    options = parse(entry.parameters, parameters, f"training.{variant_name}")
    data = spark_training_data(
        variant_name,
        {"train": train_ratings, "val": val_ratings},
        (user_mapping, movie_mapping),
        rating_scale,
        evaluation,
    )
    tables, config, history = entry.fit_function()(variant_name, options, data)
    logger.info(
        "%s: %d candidate(s) tried on val; kept %s%s",
        variant_name,
        history.height,
        config.model_kwargs,
        "; refitted on train + val" if config.refit_on_train_val else "",
    )
    return tables.users, tables.movies, config.model_dump(), history


def spark_training_data(
    variant_name: str,
    splits: dict[str, DataFrame],
    mappings: tuple[DataFrame, DataFrame],
    rating_scale: dict[str, Any],
    evaluation: dict[str, Any],
) -> SparkTrainingData:
    """What ``variant_name``'s fit reads: the ``train`` and ``val`` splits, the sizes
    of the (user, movie) ``mappings``, the rating scale, and how a candidate is
    scored on val (:func:`val_scorer`)."""
    user_mapping, movie_mapping = mappings
    scale = RatingScale.from_dict(rating_scale)
    n_movies = movie_mapping.count()
    template = ModelConfig(  # the served class's config, for scoring on val
        variant=variant_name, n_users=0, n_movies=n_movies, model_kwargs={}
    )
    return SparkTrainingData(
        train=splits["train"],
        val=splits["val"],
        n_users=user_mapping.count(),
        n_movies=n_movies,
        rating_scale=scale,
        score_on_val=val_scorer(
            template, splits["train"], splits["val"], scale, evaluation
        ),
    )


def val_scorer(
    template: ModelConfig,
    train_ratings: DataFrame,
    val_ratings: DataFrame,
    scale: RatingScale,
    evaluation: dict[str, Any],
) -> Callable[[FactorTables], dict[str, float | None]]:
    """How a candidate fitted on train is scored on val, on Spark: a rating model by
    its val MSE (``best_val_loss``); a ranker by its val NDCG@K (``best_val_ndcg``:
    history train, relevance from val, candidates the train movies, and with
    ``popularity_weight: val`` the weight of its best popularity blend), ``None``
    when no val rating is relevant."""
    if variant(template.variant).predicts_ratings:
        return lambda tables: {
            "best_val_loss": pair_metrics(val_ratings, tables, scale)["mse"]
        }
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    task = _ranking_task(train_ratings, val_ratings, train_ratings, settings, scale)
    if task.users.isEmpty():
        logger.warning(
            "No val rating is relevant: the val NDCG@K and the popularity blend's "
            "weight are not measured."
        )
        return lambda tables: {"best_val_ndcg": None}
    return partial(_val_ranking, template, task, settings)


def _val_ranking(
    template: ModelConfig,
    task: SparkRankingTask,
    settings: EvaluationParameters,
    tables: FactorTables,
) -> dict[str, float | None]:
    """A ranker's val NDCG@K and, with ``popularity_weight: val``, the weight of 0,
    0.1, ..., 1 whose blend ranks best (ties to the lower weight, as one machine's
    val ranking chooses it), in one pass on Spark."""
    blend = settings.ranking.popularity_weight == "val"
    config = template.model_copy(update={"model_kwargs": {"n_factors": tables.rank}})
    k = settings.ranking.k
    by_weight = {
        weight: metrics[f"ndcg@{k}"]
        for weight, metrics in spark_ranking_metrics_by_weight(
            task,
            BlockModel.of(config, movie_weights(tables, config)),
            tables.users,
            k,
            settings.prediction_batch_size,
            weights=BLEND_WEIGHTS if blend else (0.0,),
        ).items()
    }
    figures = {"best_val_ndcg": round(by_weight[0.0], 6)}
    if blend:
        figures["popularity_weight"] = best_blend_weight(by_weight)
    return figures


def _ranking_task(
    history: DataFrame,
    target: DataFrame,
    catalogue: DataFrame,
    settings: EvaluationParameters,
    scale: RatingScale,
) -> SparkRankingTask:
    ranking = settings.ranking
    return spark_ranking_task(
        history,
        target,
        catalogue,
        ranking.threshold(scale),
        max_users=ranking.max_users,
        seed=ranking.random_seed,
    )


def export_spark_model(
    user_factors: DataFrame, movie_factors: DataFrame, model_config: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """The served model class's weights (a state dict) from the factor tables,
    collected per id: what the served model and the one-machine evaluation read."""
    config = ModelConfig.model_validate(model_config)
    return export_weights(FactorTables.of(user_factors, movie_factors, config), config)


def evaluate_spark_model(
    *,
    train_ratings: DataFrame,
    val_ratings: DataFrame,
    test_ratings: DataFrame,
    user_factors: DataFrame,
    movie_factors: DataFrame,
    model_config: dict[str, Any],
    rating_scale: dict[str, Any],
) -> dict[str, dict[str, float]]:
    """MSE, RMSE and MAE of a Spark rating model on every split, computed on Spark:
    ``{"train": {..}, "val": {..}, "test": {..}}``, as ``metrics.json`` holds them."""
    tables = FactorTables.of(user_factors, movie_factors, model_config)
    scale = RatingScale.from_dict(rating_scale)
    return {
        split: pair_metrics(ratings, tables, scale)
        for split, ratings in (
            ("train", train_ratings),
            ("val", val_ratings),
            ("test", test_ratings),
        )
    }


def build_spark_ranking_task(
    train_ratings: DataFrame,
    val_ratings: DataFrame,
    test_ratings: DataFrame,
    evaluation: dict[str, Any],
    rating_scale: dict[str, Any],
) -> SparkRankingTask:
    """The test ranking task of ``evaluation.ranking``, on Spark: history train +
    val, relevance from test, candidates the train movies (as the one-machine
    evaluation's ``build_ranking_task``)."""
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    history = train_ratings.select(*PAIR).unionByName(val_ratings.select(*PAIR))
    return _ranking_task(
        history,
        test_ratings,
        train_ratings,
        settings,
        RatingScale.from_dict(rating_scale),
    )


def rank_spark_model(
    spark_ranking_task: SparkRankingTask,
    user_factors: DataFrame,
    model_config: dict[str, Any],
    model_weights: dict[str, torch.Tensor],
    evaluation: dict[str, Any],
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Test ranking metrics of a Spark model's lists and of its popularity blend,
    computed on Spark in one pass, each ``{"test": {"ndcg@K": .., ...,
    "coverage": ..}}``: the one-machine ``rank_with_model``'s entries. The blend's
    weight is the one chosen on val (``popularity_weight: val``; 0: the model's own
    ranking) or the stated one; its metrics are empty (no entry) for a stated 0 or
    when no weight could be chosen on val."""
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    config = ModelConfig.model_validate(model_config)
    stated, weight = blend_weight_on_test(config, settings)
    by_weight = spark_ranking_metrics_by_weight(
        spark_ranking_task,
        BlockModel.of(config, model_weights),
        user_factors,
        settings.ranking.k,
        settings.prediction_batch_size,
        weights=(weight,) if weight else (),
    )
    own = {"test": by_weight[0.0]}
    blended = {"test": by_weight[weight]} if weight else {}
    return own, blend_entry(own, blended, stated, weight)


def gather_spark_metrics(
    ranking_metrics: dict[str, dict[str, dict[str, float]]],
    **split_metrics: dict[str, dict[str, float]],
) -> tuple[dict[str, dict[str, dict[str, float]]], dict[str, dict[str, float]]]:
    """:func:`~rating_prediction.pipelines.evaluation.nodes.gather_metrics`, and the
    console's table of every entry's test figures, which a plain run's reporting
    prints."""
    metrics, flat = gather_metrics(ranking_metrics, **split_metrics)
    logger.info("Results on the test split:\n%s", results_table(metrics))
    return metrics, flat


def rank_by_popularity_on_spark(
    spark_ranking_task: SparkRankingTask, evaluation: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Test ranking metrics of the most-rated movies of train + val, on Spark."""
    return _baseline_ranking_on_spark(spark_ranking_task, evaluation, at_random=False)


def rank_at_random_on_spark(
    spark_ranking_task: SparkRankingTask, evaluation: dict[str, Any]
) -> dict[str, dict[str, float]]:
    """Test ranking metrics of seeded random lists
    (``evaluation.ranking.random_seed``), on Spark: one machine's lists, user by
    user."""
    return _baseline_ranking_on_spark(spark_ranking_task, evaluation, at_random=True)


def _baseline_ranking_on_spark(
    task: SparkRankingTask, evaluation: dict[str, Any], *, at_random: bool
) -> dict[str, dict[str, float]]:
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    return {
        "test": spark_ranking_metrics(
            task,
            None,
            None,
            settings.ranking.k,
            settings.prediction_batch_size,
            random_seed=settings.ranking.random_seed if at_random else None,
        )
    }


def compare_spark_ranker_to_popularity(
    spark_ranking_task: SparkRankingTask,
    evaluation: dict[str, Any],
    **rankers: Any,
) -> dict[str, Any]:
    """``ranking_comparison.json`` on Spark: the best Spark ranker (highest val
    NDCG@K) against the popularity list, user by user on test, as one machine's
    :func:`~rating_prediction.pipelines.evaluation.nodes.compare_best_ranker_to_popularity`.
    ``rankers`` holds each ranker's trained model (``<name>``: config and weights)
    and user rows (``<name>_user_factors``); the per-user differences are summed on
    the cluster, and only their count, means and spread come back."""
    settings = parse(EvaluationParameters, evaluation, "evaluation")
    trained = {
        name: model
        for name, model in rankers.items()
        if not name.endswith(USER_FACTORS_SUFFIX)
    }
    best = best_ranker_config({name: config for name, (config, _) in trained.items()})
    figures = spark_ndcg_against_popularity(
        spark_ranking_task,
        BlockModel.of(*trained[best.variant]),
        rankers[f"{best.variant}{USER_FACTORS_SUFFIX}"],
        settings.ranking.k,
        settings.prediction_batch_size,
    )
    return ranker_comparison(best, settings.ranking.k, figures)


def select_spark_ranker(
    inference: dict[str, Any], training: dict[str, Any], *trained: Trained
) -> RankerChoice:
    """The Spark ranker that answers ``recommend``, fold-in and ``similar``
    (``inference.served_ranker``: ``best``, the highest held-out val NDCG@K; ``none``:
    the rating model; a Spark ranker's name), among ``trained``."""
    served_ranker = parse(InferenceParameters, inference, "inference").served_ranker
    by_name = {config["variant"]: (config, weights) for config, weights in trained}
    if served_ranker == NO_RANKER or not by_name:
        return RankerChoice()
    if served_ranker in by_name:
        name = served_ranker
    else:
        name = max(by_name, key=lambda n: by_name[n][0].get("best_val_ndcg") or 0.0)
    config, weights = by_name[name]
    return RankerChoice(
        ModelConfig.model_validate(config), weights, feedback_of(name, training)
    )


def recommend_on_spark(
    *,
    served_model_config: dict[str, Any],
    served_model_weights: dict[str, torch.Tensor],
    served_ranker_choice: RankerChoice,
    rating_user_factors: DataFrame,
    ranker_user_factors: DataFrame,
    train_ratings: DataFrame,
    val_ratings: DataFrame,
    test_ratings: DataFrame,
    user_mapping: DataFrame,
    movie_mapping: DataFrame,
    movies: DataFrame,
    inference: dict[str, Any],
) -> DataFrame:
    """Every training user's top-K (``inference.batch_recommend``), written from the
    cluster, as the served model recommends for every user: by the served ranker
    (its history, train + val, never recommended) or, without one, by the rating
    model (no movie rated in any split); candidates the movies seen in train; equal
    scores to the lower movie index; ranked by the popularity blend when
    ``inference.recommend.popularity_weight`` is above 0. Columns as
    ``all_user_recommendations``: userId, rank, movieId, title, prediction,
    known_user, variant."""
    settings = parse(InferenceParameters, inference, "inference")
    ranker = served_ranker_choice.config
    if ranker is not None:
        model = BlockModel.of(ranker, served_ranker_choice.state_dict)
        name, factors = ranker.variant, ranker_user_factors
        excluded = [train_ratings, val_ratings]
    else:
        model = BlockModel.of(served_model_config, served_model_weights)
        name, factors = served_model_config["variant"], rating_user_factors
        excluded = [train_ratings, val_ratings, test_ratings]
    users = _exclusions(train_ratings, excluded).join(factors, USER, "left")
    candidates, counts = _train_movies(train_ratings)
    weight = settings.recommend.popularity_weight
    lists = spark_top_k(
        users,
        model,
        candidates,
        settings.batch_recommend.top_k,
        block_size=settings.batch_recommend.block_size,
        popularity=(counts, weight) if weight > 0 else None,
    )
    return _in_original_ids(lists, user_mapping, movie_mapping, movies, name)


def _exclusions(train: DataFrame, excluded: list[DataFrame]) -> DataFrame:
    """Every user seen in training with the movies never recommended to them."""
    pairs = excluded[0].select(*PAIR)
    for split in excluded[1:]:
        pairs = pairs.unionByName(split.select(*PAIR))
    lists = pairs.groupBy(USER).agg(F.collect_list(MOVIE).alias("excluded"))
    return train.select(USER).distinct().join(lists, USER, "left")


def _train_movies(train: DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """The movies seen in train (sorted) and their training ratings: per movie, on
    the driver."""
    counts = train.groupBy(MOVIE).count().orderBy(MOVIE).toArrow()
    return counts.column(MOVIE).to_numpy(), counts.column("count").to_numpy()


def _in_original_ids(
    lists: DataFrame,
    user_mapping: DataFrame,
    movie_mapping: DataFrame,
    movies: DataFrame,
    name: str,
) -> DataFrame:
    """The lists in original ids, with titles, as the served model writes them."""
    titles = movies.select("movieId", "title")
    return (
        lists.join(user_mapping.select("userId", USER), USER)
        .join(movie_mapping.select("movieId", MOVIE), MOVIE)
        .join(titles, "movieId", "left")
        .select(
            "userId",
            "rank",
            "movieId",
            "title",
            "prediction",
            F.lit(True).alias("known_user"),
            F.lit(name).alias("variant"),
        )
        .sortWithinPartitions("userId", "rank")
    )


def local_table(frame: DataFrame) -> pl.DataFrame:
    """A Spark table as a polars table on the driver, for the served model's nodes
    (the inference pipeline's, on one machine): the splits, mappings and movies it
    holds (every user's rated movies, the titles). Collected through Arrow, after the
    Spark preparation wrote them."""
    return pl.from_arrow(frame.toArrow())
