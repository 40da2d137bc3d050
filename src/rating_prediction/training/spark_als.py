"""Spark MLlib's ALS: the fit function of the variants ``spark_als`` (explicit, for
ratings) and ``spark_als_implicit`` (implicit, a ranker), run by ``kedro run --env
spark``.

The ratings stay Spark DataFrames from end to end: the biases are per-id aggregations,
ALS factorises on the cluster, and what comes back to the driver is per id (a factor
row and a bias per user and per movie) or a single number (the global mean, a val
figure). The fitted model is a pair of *factor tables*, :class:`FactorTables`:

- ``users``: ``userIdMapped``, ``bias`` (float), ``factors`` (array of float);
- ``movies``: ``movieIdMapped``, ``bias``, ``factors``;

plus the global mean, so that a prediction is ``mu + b_u + b_m + u . v`` (clipped to
the rating scale) for ``spark_als`` and ``u . v`` for ``spark_als_implicit``, whose
biases and mean are 0. The export (:func:`export_weights`) collects the tables per id
into the state dict of the served model class (:class:`~rating_prediction.models.
factorization.BiasedMatrixFactorization`, :class:`~rating_prediction.models.rankers.
AlsRanker`), so the same pickle-free served model answers with no Spark at serving time.

``spark_als``: the global mean and the regularised user and movie biases are fitted as
the bias baseline is (:func:`~rating_prediction.models.baselines.fit_bias_baseline`:
alternating shrunk means, movie biases first), then explicit ALS fits the residuals.
``spark_als_implicit``: each rating (of at least ``min_rating``) is a preference of
confidence ``1 + alpha * value``, Hu, Koren & Volinsky's convention, as Spark's
``implicitPrefs`` reads a rating column.

Every combination of the parameter block's candidates is fitted on train and scored on
val by the ``score_on_val`` of :class:`SparkTrainingData` (which the pipeline hands in:
the evaluation's val RMSE or val NDCG@K, computed on Spark); the best is kept and, with
``refit_on_train_val``, fitted again on train + val.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import torch
from pyspark import StorageLevel
from pyspark.ml.recommendation import ALS
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from rating_prediction.data.schema import RatingScale
from rating_prediction.models.config import ModelConfig
from rating_prediction.models.rankers import FactorRanker
from rating_prediction.parameters.training import (
    SparkAlsGridParameters,
    SparkAlsImplicitParameters,
)
from rating_prediction.runtime.progress import key_values

logger = logging.getLogger(__name__)

USER, MOVIE, RATING = "userIdMapped", "movieIdMapped", "rating"
BIAS, FACTORS = "bias", "factors"
# The val figures a candidate is chosen on (the lowest MSE, the highest NDCG@K), as
# config.json names them, and a ranker's popularity blend weight chosen on val.
VAL_LOSS, VAL_NDCG = "best_val_loss", "best_val_ndcg"
VAL_FIGURES = (VAL_LOSS, VAL_NDCG)
BLEND_WEIGHT = "popularity_weight"


@dataclass(frozen=True)
class FactorTables:
    """A fitted Spark ALS model as per-id tables (see the module docstring).

    Attributes:
        users: ``userIdMapped``, ``bias``, ``factors``: one row per fitted user.
        movies: ``movieIdMapped``, ``bias``, ``factors``: one row per fitted movie.
        global_mean: ``mu`` (0 for the implicit ranker).
        rank: The length of every ``factors`` array.
    """

    users: DataFrame
    movies: DataFrame
    global_mean: float
    rank: int

    def unpersist(self) -> None:
        """Free the cluster's copies of both tables."""
        self.users.unpersist()
        self.movies.unpersist()

    @classmethod
    def of(
        cls, users: DataFrame, movies: DataFrame, config: ModelConfig | dict[str, Any]
    ) -> FactorTables:
        """The tables of a fitted model, as saved, with its ``config``'s mean and
        rank (a ranker has no mean)."""
        kwargs = ModelConfig.model_validate(config).model_kwargs
        rank = kwargs.get("embedding_dim", kwargs.get("n_factors"))
        return cls(users, movies, float(kwargs.get("global_mean", 0.0)), int(rank))


@dataclass(frozen=True)
class SparkTrainingData:
    """What a Spark variant's fit reads: the splits as Spark DataFrames
    (``userIdMapped``, ``movieIdMapped``, ``rating`` at least), the sizes of the id
    mappings, the rating scale, and how a candidate fitted on train is scored on val.

    Attributes:
        train: The train split.
        val: The val split.
        n_users: The size of ``user_mapping`` (ids ``0..n_users-1``).
        n_movies: The size of ``movie_mapping``.
        rating_scale: The data set's rating scale (predictions are clipped to it).
        score_on_val: Tables fitted on train to their val figures, keyed as the
            config names them (``best_val_loss``: val MSE; ``best_val_ndcg`` and,
            when chosen on val, the ``popularity_weight`` of the best blend).
    """

    train: DataFrame
    val: DataFrame
    n_users: int
    n_movies: int
    rating_scale: RatingScale
    score_on_val: Callable[[FactorTables], dict[str, float | None]]


def fit_variant(
    variant: str, options: SparkAlsGridParameters, data: SparkTrainingData
) -> tuple[FactorTables, ModelConfig, pl.DataFrame]:
    """Fit ``spark_als`` (``options`` a :class:`SparkAlsParameters`) or
    ``spark_als_implicit`` (a :class:`SparkAlsImplicitParameters`): every candidate
    combination on train, scored on val; the best kept, refitted on train + val when
    ``options.refit_on_train_val``.

    Returns:
        The factor tables (cached on the cluster), the model config (the export's
        model arguments, the chosen combination's held-out val figures, no weights)
        and the history: one row per combination with its val figures and seconds.
    """
    started = time.perf_counter()
    rows, tables = _search(options, data)
    best = rows[-1]
    chosen = {key: best[key] for key in options.grid_keys()}
    if options.refit_on_train_val:
        tables.unpersist()
        both = data.train.unionByName(data.val, allowMissingColumns=True)
        prepared = prepare(both, options)
        tables = fit_candidate(prepared, options, chosen)
        prepared.ratings.unpersist()
    config = ModelConfig(
        variant=variant,
        n_users=data.n_users,
        n_movies=data.n_movies,
        model_kwargs=model_arguments(options, chosen, tables, data),
        refit_on_train_val=options.refit_on_train_val,
        fit_seconds=round(time.perf_counter() - started, 3),
        **{key: best[key] for key in (*VAL_FIGURES, BLEND_WEIGHT) if key in best},
    )
    return tables, config, pl.DataFrame(rows[:-1])


def _search(
    options: SparkAlsGridParameters, data: SparkTrainingData
) -> tuple[list[dict[str, Any]], FactorTables]:
    """Every combination fitted on train and scored on val: the history rows, then
    the best row again last, and the best fit's tables (the others freed)."""
    prepared = prepare(data.train, options)
    rows, best, best_tables = [], None, None
    for combination in options.candidates():
        begun = time.perf_counter()
        tables = fit_candidate(prepared, options, combination)
        figures = data.score_on_val(tables)
        seconds = round(time.perf_counter() - begun, 3)
        rows.append({**combination, **figures, "fit_seconds": seconds})
        logger.info(
            "%s on train: %s (%.1f s)",
            key_values(combination),
            key_values(figures),
            seconds,
        )
        if best is None or _better(figures, best):
            if best_tables is not None:
                best_tables.unpersist()
            best, best_tables = rows[-1], tables
        else:
            tables.unpersist()
    prepared.ratings.unpersist()
    return [*rows, best], best_tables


def _better(figures: dict[str, float | None], best: dict[str, Any]) -> bool:
    """Whether ``figures`` beat the best so far: a lower val MSE, or a higher val
    NDCG@K (a figure of ``None``, no user to rank, never beats one)."""
    if VAL_LOSS in figures:
        return figures[VAL_LOSS] < best[VAL_LOSS]
    if figures[VAL_NDCG] is None:
        return False
    return best[VAL_NDCG] is None or figures[VAL_NDCG] > best[VAL_NDCG]


@dataclass(frozen=True)
class AlsInput:
    """What every candidate of one fit shares: the ratings ALS factorises
    (``userIdMapped``, ``movieIdMapped``, ``value``: the residuals of the biases, or
    the implicit feedback; cached while the candidates are fitted) and, for
    ``spark_als``, the mean and the bias tables."""

    ratings: DataFrame
    global_mean: float = 0.0
    user_bias: DataFrame | None = None
    movie_bias: DataFrame | None = None


def prepare(ratings: DataFrame, options: SparkAlsGridParameters) -> AlsInput:
    """``spark_als``: the biases, then the residuals ``r - mu - b_u - b_m``.
    ``spark_als_implicit``: each rating of at least ``min_rating`` valued 1
    (``binary``) or its rating (``rating``)."""
    if isinstance(options, SparkAlsImplicitParameters):
        if options.min_rating is not None:
            ratings = ratings.filter(F.col(RATING) >= options.min_rating)
        value = F.lit(1.0) if options.feedback == "binary" else F.col(RATING)
        feedback = ratings.select(USER, MOVIE, value.cast("float").alias("value"))
        return AlsInput(feedback.persist(StorageLevel.MEMORY_AND_DISK))
    mean, user_bias, movie_bias = fit_biases(
        ratings, options.bias_reg_user, options.bias_reg_movie, options.bias_epochs
    )
    residual = F.col(RATING) - mean - F.col("b_u") - F.col("b_m")
    residuals = with_biases(ratings, user_bias, movie_bias).select(
        USER, MOVIE, residual.alias("value")
    )
    return AlsInput(
        residuals.persist(StorageLevel.MEMORY_AND_DISK), mean, user_bias, movie_bias
    )


def fit_candidate(
    prepared: AlsInput, options: SparkAlsGridParameters, chosen: dict[str, Any]
) -> FactorTables:
    """ALS with one combination of the candidates on the prepared ratings, as
    factor tables (a ranker's biases and mean 0)."""
    implicit = isinstance(options, SparkAlsImplicitParameters)
    model = ALS(
        rank=chosen["rank"],
        regParam=chosen["reg_param"],
        maxIter=chosen["max_iter"],
        seed=options.seed,
        numUserBlocks=options.num_blocks,
        numItemBlocks=options.num_blocks,
        userCol=USER,
        itemCol=MOVIE,
        ratingCol="value",
        implicitPrefs=implicit,
        alpha=chosen.get("alpha", 1.0),
    ).fit(prepared.ratings)
    users = _with_bias(model.userFactors, USER, prepared.user_bias)
    movies = _with_bias(model.itemFactors, MOVIE, prepared.movie_bias)
    return FactorTables(
        users.cache(), movies.cache(), prepared.global_mean, chosen["rank"]
    )


def _with_bias(factors: DataFrame, key: str, biases: DataFrame | None) -> DataFrame:
    """ALS's ``id``, ``features`` as ``key``, ``bias``, ``factors``; the bias 0 for
    an id ``biases`` lacks (or without biases)."""
    table = factors.select(F.col("id").alias(key), F.col("features").alias(FACTORS))
    if biases is None:
        zero = F.lit(0.0).cast("float").alias(BIAS)
        return table.select(key, zero, FACTORS)
    bias = F.coalesce(F.col(BIAS), F.lit(0.0)).cast("float").alias(BIAS)
    return table.join(biases, key, "left").select(key, bias, FACTORS)


def fit_biases(
    ratings: DataFrame, reg_user: float, reg_movie: float, epochs: int
) -> tuple[float, DataFrame, DataFrame]:
    """The global mean and the user and movie bias tables (``userIdMapped``/
    ``movieIdMapped``, ``bias``) of :func:`~rating_prediction.models.baselines.
    fit_bias_baseline`, by per-id aggregations: each epoch sets every movie bias to
    ``sum(r - mu - b_u) / (reg_movie + n_movie)``, then every user bias to
    ``sum(r - mu - b_m) / (reg_user + n_user)``. Only the mean comes to the driver;
    each epoch's tables are checkpointed on the executors, so the plan stays one
    epoch long."""
    mean = ratings.agg(F.avg(F.col(RATING).cast("double"))).first()[0]
    if mean is None:
        raise ValueError("Cannot fit spark_als on an empty training split.")
    residuals = ratings.select(
        USER, MOVIE, (F.col(RATING).cast("double") - mean).alias("residual")
    )
    user_bias = None
    for _ in range(epochs):
        movie_bias = _shrunk_means(residuals, MOVIE, user_bias, USER, reg_movie)
        user_bias = _shrunk_means(residuals, USER, movie_bias, MOVIE, reg_user)
    return mean, user_bias, movie_bias


def _shrunk_means(
    residuals: DataFrame,
    key: str,
    other_bias: DataFrame | None,
    other_key: str,
    reg: float,
) -> DataFrame:
    """``sum(residual - other bias) / (reg + count)`` per ``key``, checkpointed."""
    values = F.col("residual")
    if other_bias is not None:
        residuals = residuals.join(
            other_bias.withColumnRenamed(BIAS, "other"), other_key, "left"
        )
        values = values - F.coalesce(F.col("other"), F.lit(0.0))
    shrunk = F.sum(values) / (F.count(F.lit(1)) + F.lit(float(reg)))
    return residuals.groupBy(key).agg(shrunk.alias(BIAS)).localCheckpoint()


def with_biases(
    pairs: DataFrame, user_bias: DataFrame, movie_bias: DataFrame
) -> DataFrame:
    """``pairs`` with ``b_u`` and ``b_m`` (0 for an id without a bias)."""
    return (
        pairs.join(user_bias.withColumnRenamed(BIAS, "b_u"), USER, "left")
        .join(movie_bias.withColumnRenamed(BIAS, "b_m"), MOVIE, "left")
        .fillna(0.0, ["b_u", "b_m"])
    )


def model_arguments(
    options: SparkAlsGridParameters,
    chosen: dict[str, Any],
    tables: FactorTables,
    data: SparkTrainingData,
) -> dict[str, bool | int | float]:
    """The served model class's constructor arguments: a biased MF's factors, mean
    and rating scale; an AlsRanker's factors and fold-in settings.

    Spark's user step weighs ``regParam`` by the user's number of interactions
    (ALS-WR); the ranker folds a new user in with one fixed weight, ``regParam``
    times the fitted users' mean number of ratings (train, or train + val when
    refitted), the weight of a typical user."""
    if isinstance(options, SparkAlsImplicitParameters):
        users = tables.users.count()
        interactions = data.train.count() + (
            data.val.count() if options.refit_on_train_val else 0
        )
        return {
            "n_factors": chosen["rank"],
            "regularization": chosen["reg_param"] * interactions / max(users, 1),
            "alpha": chosen["alpha"],
        }
    return {
        "embedding_dim": chosen["rank"],
        "global_mean": tables.global_mean,
        "rating_min": data.rating_scale.min,
        "rating_max": data.rating_scale.max,
    }


def export_weights(
    tables: FactorTables, config: ModelConfig
) -> dict[str, torch.Tensor]:
    """The state dict of the served model class of ``config``'s variant, from the
    factor tables collected per id (float32; zero rows for ids without factors:
    never seen in training, they are unknown to the served model)."""
    return user_weights(tables, config) | movie_weights(tables, config)


def user_weights(tables: FactorTables, config: ModelConfig) -> dict[str, torch.Tensor]:
    """The user side of the state dict: an AlsRanker's ``user_factors``; a biased
    MF's ``user_factors.weight`` and ``user_bias.weight``."""
    biases, factors, _ = dense_table(tables.users, USER, config.n_users, tables.rank)
    if _is_ranker(config):
        return {"user_factors": factors}
    return {"user_factors.weight": factors, "user_bias.weight": biases[:, None]}


def movie_weights(tables: FactorTables, config: ModelConfig) -> dict[str, torch.Tensor]:
    """The movie side (all the rest): an AlsRanker's ``item_factors`` and
    ``fitted_movies`` (the movies with factors); a biased MF's
    ``movie_factors.weight``, ``movie_bias.weight`` and ``global_mean``."""
    biases, factors, fitted = dense_table(
        tables.movies, MOVIE, config.n_movies, tables.rank
    )
    if _is_ranker(config):
        return {"item_factors": factors, "fitted_movies": fitted}
    return {
        "movie_factors.weight": factors,
        "movie_bias.weight": biases[:, None],
        "global_mean": torch.tensor(tables.global_mean, dtype=torch.float32),
    }


def _is_ranker(config: ModelConfig) -> bool:
    return issubclass(config.rebuilt_class(), FactorRanker)


def dense_table(
    table: DataFrame, key: str, size: int, rank: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A factor table collected through Arrow (no Python row objects) as dense
    ``(size,)`` biases, ``(size, rank)`` factors and the ``(size,)`` mask of the ids
    it holds.

    Raises:
        ValueError: If an id lies outside ``0..size-1`` (the table and the id
            mappings come from different runs).
    """
    collected = table.select(key, BIAS, FACTORS).toArrow()
    ids = collected.column(key).to_numpy()
    if ids.size and (ids.min() < 0 or ids.max() >= size):
        raise ValueError(
            f"The factor table has {key} {int(ids.max())} outside 0..{size - 1}: the "
            "id mappings and the fitted model come from different runs; rerun the "
            "spark_modelling pipeline."
        )
    factors = np.zeros((size, rank), dtype=np.float32)
    values = pa.concat_arrays(collected.column(FACTORS).chunks).flatten()
    factors[ids] = values.to_numpy().reshape(len(ids), rank)
    biases = np.zeros(size, dtype=np.float32)
    biases[ids] = collected.column(BIAS).to_numpy()
    seen = np.zeros(size, dtype=bool)
    seen[ids] = True
    return torch.from_numpy(biases), torch.from_numpy(factors), torch.from_numpy(seen)
