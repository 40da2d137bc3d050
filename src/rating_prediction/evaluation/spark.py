"""The project's evaluation protocol computed on Spark, for the Spark variants
(``kedro run --env spark``): the same figures as the one-machine evaluation, with the
ratings never collected on the driver.

- Errors (:func:`pair_metrics`): MSE, RMSE and MAE of ``mu + b_u + b_m + u . v``,
  clipped to the rating scale, joined per pair from the model's per-id tables and
  summed in double precision by Spark SQL (no Python per rating).
- Ranking (:func:`spark_ranking_task`, :func:`spark_ranking_metrics`): the protocol of
  :mod:`rating_prediction.evaluation.ranking` (candidates, history, relevance, NDCG,
  precision, recall, MAP at K and coverage). Each user's history and relevant movies
  travel as arrays beside the user's factor row; each partition of users is scored
  against every candidate by the project's own kernel (the served model class, built
  for the partition's users from their factor rows and the movie-side weights, through
  :func:`~rating_prediction.models.scoring.score_block`) and ranked by
  :func:`~rating_prediction.evaluation.ranking.user_ranking_metrics`, so ties and
  masks are the one-machine evaluation's. A model's popularity blends
  (:func:`spark_ranking_metrics_by_weight`) rank the same scores, computed once per
  block, at each weight. Only the per-user figures' means and the number of
  candidates recommended come back.
- Top-K lists (:func:`spark_top_k`): every user's best ``k`` candidates outside their
  excluded movies, the batch recommendations' lists, ranked by the same kernel.

Each partition's users are scored in blocks of at most ``max_pairs`` (user, candidate)
pairs, so an executor's memory is bounded by the block, whatever the number of users.
The executors import this module: they run the project's package (the same virtual
environment on one machine; on a cluster, ship the wheel with ``spark.submit.pyFiles``
or install it on the workers).

With ``max_users``, the users are a seeded sample, chosen by a hash of the user and the
seed (every engine of a cluster agrees on it); the one-machine evaluation's polars
sample is another sample of the same size: both estimate the same means.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from rating_prediction.data.schema import RatingScale
from rating_prediction.evaluation.names import ranking_metric_names
from rating_prediction.evaluation.ranking import (
    RankingTask,
    random_scorer,
    user_ranking_metrics_of,
)
from rating_prediction.models.config import ModelConfig, build_model
from rating_prediction.models.factorization import RatingModel
from rating_prediction.models.scoring import (
    Scorer,
    blended_scorer,
    count_scorer,
    log_count_scorer,
    popularity_blend,
    score_block,
    scored_once,
    top_k,
)

USER, MOVIE, RATING = "userIdMapped", "movieIdMapped", "rating"
BIAS, FACTORS = "bias", "factors"
HISTORY, RELEVANT, EXCLUDED = "history", "relevant", "excluded"
# The per-user figures a ranking partition returns (NDCG, precision, recall and
# average precision at K, in ranking_metric_names order), and the column of the one
# row per partition that lists the candidates some list of the partition recommends;
# each row for one popularity blend weight (0: the model's own ranking).
USER_FIGURES = ("ndcg", "precision", "recall", "map")
RECOMMENDED, WEIGHT = "recommended", "weight"
RANKED_SCHEMA = (
    f"{USER} int, {WEIGHT} double, "
    + ", ".join(f"{name} double" for name in USER_FIGURES)
    + f", {RECOMMENDED} array<int>"
)
TOP_K_SCHEMA = f"{USER} int, rank int, {MOVIE} int, prediction double"


class FactorModel(Protocol):
    """A factor model as Spark tables (``rating_prediction.training.spark_als.
    FactorTables``): ``users`` and ``movies`` hold the id (``userIdMapped``,
    ``movieIdMapped``), ``bias`` and ``factors`` (an array) of each fitted id."""

    users: DataFrame
    movies: DataFrame
    global_mean: float


def pair_predictions(
    pairs: DataFrame, model: FactorModel, scale: RatingScale
) -> DataFrame:
    """``pairs`` with ``prediction``: ``mu + b_u + b_m + u . v`` clipped to
    ``scale``, an id without factors contributing 0 (the served model's fallback for
    an unknown user or movie)."""
    users = model.users.select(
        USER, F.col(BIAS).alias("b_u"), F.col(FACTORS).alias("p_u")
    )
    movies = model.movies.select(
        MOVIE, F.col(BIAS).alias("b_m"), F.col(FACTORS).alias("q_m")
    )
    products = F.zip_with(
        "p_u", "q_m", lambda p, q: p.cast("double") * q.cast("double")
    )
    dot = F.aggregate(products, F.lit(0.0).cast("double"), lambda total, x: total + x)
    raw = (
        F.lit(float(model.global_mean))
        + F.coalesce(F.col("b_u").cast("double"), F.lit(0.0))
        + F.coalesce(F.col("b_m").cast("double"), F.lit(0.0))
        + F.coalesce(dot, F.lit(0.0))
    )
    clipped = F.least(F.greatest(raw, F.lit(scale.min)), F.lit(scale.max))
    return (
        pairs.join(users, USER, "left")
        .join(movies, MOVIE, "left")
        .withColumn("prediction", clipped)
        .drop("b_u", "p_u", "b_m", "q_m")
    )


def pair_metrics(
    ratings: DataFrame, model: FactorModel, scale: RatingScale
) -> dict[str, float]:
    """MSE, RMSE and MAE of ``model``'s predictions of ``ratings``, aggregated in
    double precision on Spark, as
    :func:`~rating_prediction.evaluation.metrics.batched_regression_metrics` does."""
    error = F.col("prediction") - F.col(RATING).cast("double")
    row = (
        pair_predictions(ratings.select(USER, MOVIE, RATING), model, scale)
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.avg(error * error).alias("mse"),
            F.avg(F.abs(error)).alias("mae"),
        )
        .first()
    )
    if row["n"] == 0:
        raise ValueError("Cannot compute metrics on an empty split.")
    return {"mse": row["mse"], "rmse": row["mse"] ** 0.5, "mae": row["mae"]}


@dataclass(frozen=True)
class SparkRankingTask:
    """:class:`~rating_prediction.evaluation.ranking.RankingTask` on Spark.

    Attributes:
        users: The ranked users: ``userIdMapped``, ``history`` and ``relevant``
            (sorted arrays of movie ids).
        candidates: Sorted movie ids of the catalogue (on the driver: one per movie).
        candidate_counts: The history's ratings of each candidate.
        n_keys: Above every movie id.
    """

    users: DataFrame
    candidates: np.ndarray
    candidate_counts: np.ndarray
    n_keys: int


def spark_ranking_task(
    history: DataFrame,
    target: DataFrame,
    catalogue: DataFrame,
    threshold: float,
    *,
    max_users: int | None = None,
    seed: int = 0,
) -> SparkRankingTask:
    """The ranking task of ``target`` (see :func:`~rating_prediction.evaluation.
    ranking.ranking_task`): relevant = a target rating of at least ``threshold``;
    the users with one (a seeded hash sample of ``max_users`` of them); candidates
    = the movies of ``catalogue``; the history never recommended."""
    relevant = _sorted_lists(target.filter(F.col(RATING) >= threshold), RELEVANT)
    if max_users is not None:
        order = F.xxhash64(F.col(USER), F.lit(seed))
        relevant = relevant.orderBy(order, USER).limit(max_users)
    known = _sorted_lists(
        history.join(relevant.select(USER), USER, "left_semi"), HISTORY
    )
    users = relevant.join(known, USER, "left").select(
        USER, F.coalesce(HISTORY, F.array().cast("array<int>")).alias(HISTORY), RELEVANT
    )
    counts = history.groupBy(MOVIE).count().toArrow()
    candidates = np.sort(
        catalogue.select(MOVIE).distinct().toArrow().column(MOVIE).to_numpy()
    )
    by_movie = np.zeros(int(candidates.max(initial=0)) + 1, dtype=np.int64)
    movies = counts.column(MOVIE).to_numpy()
    in_range = movies < by_movie.size
    by_movie[movies[in_range]] = counts.column("count").to_numpy()[in_range]
    largest = [frame.agg(F.max(MOVIE)).first()[0] for frame in (history, target)]
    n_keys = 1 + max([int(candidates.max(initial=0)), *(m or 0 for m in largest)])
    return SparkRankingTask(users, candidates, by_movie[candidates], n_keys)


def _sorted_lists(ratings: DataFrame, name: str) -> DataFrame:
    """Each user's movies as one sorted array column ``name``."""
    movies = F.sort_array(F.collect_list(F.col(MOVIE).cast("int")))
    return ratings.groupBy(USER).agg(movies.alias(name))


@dataclass(frozen=True)
class BlockModel:
    """What an executor needs to score a partition's users with a trained model: its
    config and its movie-side weights (every tensor but the user rows, which come
    with each user's row: ``bias`` and ``factors``)."""

    config: dict[str, Any]
    movie_weights: dict[str, np.ndarray]

    @classmethod
    def of(
        cls, config: ModelConfig | dict[str, Any], weights: dict[str, torch.Tensor]
    ) -> BlockModel:
        config = ModelConfig.model_validate(config)
        return cls(
            config.model_dump(),
            {
                name: tensor.numpy()
                for name, tensor in weights.items()
                if not name.startswith("user_")
            },
        )

    def build(self, rows: pd.DataFrame) -> RatingModel:
        """The model with one user per row of ``rows`` (in order), its user tensors
        those rows' ``bias`` and ``factors`` (zeros where a row has none)."""
        config = ModelConfig.model_validate(self.config | {"n_users": len(rows)})
        model = build_model(config)
        state = {name: torch.from_numpy(v) for name, v in self.movie_weights.items()}
        for name, tensor in model.state_dict().items():
            if name.startswith("user_"):
                state[name] = _user_rows(
                    rows, tensor.shape, name.startswith("user_bias")
                )
        model.load_state_dict(state)
        return model.eval()


def _user_rows(rows: pd.DataFrame, shape: torch.Size, bias: bool) -> torch.Tensor:
    """The rows' biases ``(n, 1)`` or factors ``(n, d)`` (float32), zeros for a row
    without them (a user the model has no factors for)."""
    values = np.zeros(tuple(shape), dtype=np.float32)
    column = rows[BIAS] if bias else rows[FACTORS]
    for position, value in enumerate(column):
        if value is not None and not (bias and pd.isna(value)):
            values[position] = value
    return torch.from_numpy(values)


@dataclass(frozen=True)
class RankingSpec:
    """What each partition needs: the candidates, their counts (popularity) and key
    width, K, the block bound (pairs), the model (``None``: the popularity list, or
    with ``random_seed`` seeded random lists), the popularity blend's weight of the
    top-K lists and the blend weights a model's ranking is measured at besides its
    own (``blend_weights``, each above 0)."""

    candidates: np.ndarray
    candidate_counts: np.ndarray
    n_keys: int
    k: int
    max_pairs: int
    model: BlockModel | None
    popularity_weight: float = 0.0
    random_seed: int | None = None
    blend_weights: tuple[float, ...] = ()


def _task_spec(
    task: SparkRankingTask, k: int, max_pairs: int, model: BlockModel | None
) -> RankingSpec:
    """What each partition needs to rank ``task``'s users by ``model`` (``None``: by
    popularity)."""
    return RankingSpec(
        task.candidates, task.candidate_counts, task.n_keys, k, max_pairs, model
    )


def spark_ranking_metrics(
    task: SparkRankingTask,
    model: BlockModel | None,
    factors: DataFrame | None,
    k: int,
    max_pairs: int,
    *,
    random_seed: int | None = None,
) -> dict[str, float]:
    """NDCG, precision, recall and MAP at ``k`` (means over the task's users) and
    the coverage of the top-``k`` lists of ``model`` (its user rows ``factors``:
    ``userIdMapped``, ``bias``, ``factors``); for ``model`` ``None``, of the
    popularity list, or with ``random_seed`` of one machine's seeded random lists."""
    spec = replace(_task_spec(task, k, max_pairs, model), random_seed=random_seed)
    return _metrics_by_weight(task, spec, factors)[0.0]


def spark_ranking_metrics_by_weight(
    task: SparkRankingTask,
    model: BlockModel,
    factors: DataFrame,
    k: int,
    max_pairs: int,
    *,
    weights: tuple[float, ...],
) -> dict[float, dict[str, float]]:
    """:func:`spark_ranking_metrics` of ``model`` (key 0.0) and of its popularity
    blend at each of ``weights`` (the one-machine evaluation's
    :func:`~rating_prediction.models.scoring.blended_scorer` of the model's scores
    and log popularity), in one pass: each block of users is scored once."""
    blends = tuple(sorted({w for w in weights if w > 0}))
    spec = replace(_task_spec(task, k, max_pairs, model), blend_weights=blends)
    return _metrics_by_weight(task, spec, factors)


def _metrics_by_weight(
    task: SparkRankingTask, spec: RankingSpec, factors: DataFrame | None
) -> dict[float, dict[str, float]]:
    """The means and coverage of each weight's lists (0.0 and ``spec.blend_weights``):
    a row of figures per weight comes back."""
    names = ranking_metric_names(spec.k)
    weights = (0.0, *spec.blend_weights)
    with _ranked_users(task, spec, factors) as ranked:
        means = {
            row[WEIGHT]: row
            for row in ranked.filter(F.col(USER) >= 0)
            .groupBy(WEIGHT)
            .agg(*(F.avg(name).alias(name) for name in USER_FIGURES))
            .collect()
        }
        recommended = {
            row[WEIGHT]: row["count"]
            for row in ranked.filter(F.col(USER) < 0)
            .select(WEIGHT, F.explode(RECOMMENDED).alias("candidate"))
            .distinct()
            .groupBy(WEIGHT)
            .count()
            .collect()
        }
    by_weight = {}
    for weight in weights:
        row = means.get(weight)
        # No user to rank: NaN, as the one-machine means over no user.
        metrics = {
            names[i]: math.nan if row is None or row[name] is None else float(row[name])
            for i, name in enumerate(USER_FIGURES)
        }
        metrics[names[-1]] = recommended.get(weight, 0) / max(1, task.candidates.size)
        by_weight[weight] = metrics
    return by_weight


def spark_ndcg_against_popularity(
    task: SparkRankingTask,
    model: BlockModel,
    factors: DataFrame,
    k: int,
    max_pairs: int,
) -> dict[str, float]:
    """Each user's NDCG@``k`` under ``model`` (its user rows ``factors``) minus under
    the popularity list, summed on the cluster: ``users``, both means and the
    differences' mean and sample standard deviation (``sd_difference``), from which
    :func:`~rating_prediction.evaluation.intervals.paired_comparison_of_moments`
    makes the paired t-test. Only those five figures come back."""
    spec = _task_spec(task, k, max_pairs, model)
    popularity = replace(spec, model=None)
    with (
        _ranked_users(task, spec, factors) as first,
        _ranked_users(task, popularity, None) as second,
    ):
        pairs = _user_ndcg(first, "ranker").join(_user_ndcg(second, "popular"), USER)
        difference = F.col("ranker") - F.col("popular")
        row = pairs.agg(
            F.count(F.lit(1)).alias("users"),
            F.avg("ranker").alias("ranker_mean"),
            F.avg("popular").alias("popularity_mean"),
            F.avg(difference).alias("mean_difference"),
            F.stddev_samp(difference).alias("sd_difference"),
        ).first()
    return {
        name: math.nan if value is None else float(value)
        for name, value in row.asDict().items()
    }


def _user_ndcg(ranked: DataFrame, name: str) -> DataFrame:
    """Each user's NDCG of the model's own ranking (weight 0), as ``name``."""
    users = ranked.filter((F.col(USER) >= 0) & (F.col(WEIGHT) == 0.0))
    return users.select(USER, F.col("ndcg").alias(name))


@contextmanager
def _ranked_users(
    task: SparkRankingTask, spec: RankingSpec, factors: DataFrame | None
) -> Iterator[DataFrame]:
    """The task's users ranked by ``spec`` (:func:`rank_partition`'s rows), cached
    while the block runs; the users' rows ``factors`` joined in for a model."""
    users = task.users
    if factors is not None:
        users = users.join(factors.select(USER, BIAS, FACTORS), USER, "left")
    shared = users.sparkSession.sparkContext.broadcast(spec)
    ranked = users.mapInPandas(partial(rank_partition, shared), RANKED_SCHEMA).cache()
    try:
        yield ranked
    finally:
        ranked.unpersist()
        shared.destroy()


def rank_partition(
    shared: Any, batches: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    """A partition's users ranked (``mapInPandas``): for each weight (0.0, the
    spec's own lists, then each blend weight), one row of figures per user and one
    row (``userIdMapped`` -1) of the candidate positions its lists recommend."""
    spec: RankingSpec = shared.value
    for batch in batches:
        if batch.empty:
            continue
        rows = batch.sort_values(USER, kind="stable").reset_index(drop=True)
        task = _block_task(rows, spec)
        by_weight = user_ranking_metrics_of(
            task, _scorers(rows, spec), spec.k, spec.max_pairs
        )
        for weight, (per_user, recommended) in by_weight.items():
            figures = {
                name: per_user[full]
                for name, full in zip(USER_FIGURES, ranking_metric_names(spec.k))
            }
            yield pd.DataFrame(
                {USER: rows[USER].to_numpy(), WEIGHT: weight, **figures}
                | {RECOMMENDED: None}
            )
            yield pd.DataFrame(
                {USER: [-1], WEIGHT: [weight]}
                | {name: [np.nan] for name in USER_FIGURES}
                | {RECOMMENDED: [np.flatnonzero(recommended).astype(np.int32)]}
            )


def _block_task(rows: pd.DataFrame, spec: RankingSpec) -> RankingTask:
    """The partition's users as a :class:`RankingTask` of users ``0..n-1`` (their
    positions in ``rows``), over the whole task's candidates."""
    positions = np.arange(len(rows), dtype=np.int64)
    return RankingTask(
        candidates=spec.candidates,
        users=positions,
        history_keys=_keys(rows[HISTORY], spec.n_keys),
        relevant_keys=_keys(rows[RELEVANT], spec.n_keys),
        n_relevant=np.array([len(movies) for movies in rows[RELEVANT]], dtype=np.int64),
        n_keys=spec.n_keys,
        candidate_counts=spec.candidate_counts,
    )


def _keys(lists: pd.Series, n_keys: int) -> np.ndarray:
    """``position * n_keys + movie`` of each row's sorted movies: sorted."""
    lengths = np.array([len(movies) for movies in lists], dtype=np.int64)
    if lengths.sum() == 0:
        return np.zeros(0, dtype=np.int64)
    movies = np.concatenate([np.asarray(m, dtype=np.int64) for m in lists])
    return np.repeat(np.arange(len(lists)), lengths) * n_keys + movies


def _scorers(rows: pd.DataFrame, spec: RankingSpec) -> dict[float, Scorer]:
    """The partition's scorer (key 0.0) and, for a model with blend weights, its
    popularity blends, the model's scores of each block computed once."""
    own = _scorer(rows, spec)
    if not spec.blend_weights:
        return {0.0: own}
    own = scored_once(own)
    popularity = log_count_scorer(spec.candidate_counts)
    return {0.0: own} | {
        weight: blended_scorer(own, popularity, weight) for weight in spec.blend_weights
    }


def _scorer(rows: pd.DataFrame, spec: RankingSpec) -> Scorer:
    """The partition's scorer of its users' positions: the model built for its
    users, seeded random lists (by the users' own ids), or popularity."""
    if spec.model is None and spec.random_seed is not None:
        by_user = random_scorer(spec.candidates.size, spec.random_seed)
        user_ids = rows[USER].to_numpy()
        return lambda positions: by_user(user_ids[positions])
    if spec.model is None:
        return count_scorer(spec.candidate_counts)
    model = spec.model.build(rows)
    columns = torch.from_numpy(spec.candidates.astype(np.int64))

    def score(users: np.ndarray) -> np.ndarray:
        return score_block(model, users).index_select(1, columns).numpy()

    return score


def spark_top_k(
    users: DataFrame,
    model: BlockModel,
    candidates: np.ndarray,
    k: int,
    *,
    block_size: int,
    popularity: tuple[np.ndarray, float] | None = None,
) -> DataFrame:
    """Each user's ``k`` best ``candidates`` by ``model``, best first, equal scores to
    the lower movie id, never one of the user's ``excluded`` movies: ``users`` holds
    ``userIdMapped``, ``excluded`` (an array, or null), ``bias`` and ``factors``;
    they are scored ``block_size`` at a time. With ``popularity`` (each candidate's
    training ratings and a weight above 0), the lists rank by the popularity blend,
    as the served model's do (:func:`~rating_prediction.models.scoring.
    popularity_blend`). Rows ``userIdMapped``, ``rank`` (from 1),
    ``movieIdMapped``, ``prediction`` (the model's score), a user with fewer
    candidates getting fewer rows."""
    counts, weight = popularity if popularity is not None else (np.zeros(0), 0.0)
    spec = RankingSpec(
        candidates, counts, 0, k, block_size * max(1, candidates.size), model, weight
    )
    shared = users.sparkSession.sparkContext.broadcast(spec)
    return users.mapInPandas(partial(top_k_partition, shared), TOP_K_SCHEMA)


def top_k_partition(
    shared: Any, batches: Iterator[pd.DataFrame]
) -> Iterator[pd.DataFrame]:
    """A partition's top-K lists (``mapInPandas``), in blocks of at most
    ``max_pairs`` (user, candidate) scores."""
    spec: RankingSpec = shared.value
    block_size = max(1, spec.max_pairs // max(1, spec.candidates.size))
    for rows in batches:
        for start in range(0, len(rows), block_size):
            block = rows.iloc[start : start + block_size].reset_index(drop=True)
            yield _block_top_k(block, spec)


def _block_top_k(rows: pd.DataFrame, spec: RankingSpec) -> pd.DataFrame:
    """One block's lists: scored, excluded movies masked, cut by the kernel's top K."""
    scores = _scorer(rows, spec)(np.arange(len(rows), dtype=np.int64))
    if spec.popularity_weight > 0:
        ranked = popularity_blend(
            np.asarray(scores, dtype=np.float64),
            spec.candidate_counts,
            spec.popularity_weight,
        )
    else:
        ranked = np.array(scores, dtype=np.float64)
    _mask_excluded(ranked, rows[EXCLUDED], spec.candidates)
    top, valid = top_k(ranked, spec.k)
    k, valid = top.shape[1], valid.ravel()
    return pd.DataFrame(
        {
            USER: np.repeat(rows[USER].to_numpy(), k)[valid],
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(rows))[valid],
            MOVIE: spec.candidates[top].ravel()[valid].astype(np.int32),
            "prediction": np.take_along_axis(scores, top, axis=1)
            .astype(np.float64)
            .ravel()[valid],
        }
    )


def _mask_excluded(
    scores: np.ndarray, excluded: pd.Series, candidates: np.ndarray
) -> None:
    """``-inf`` in each row's columns of its ``excluded`` movies (those that are
    candidates)."""
    for row, listed in enumerate(excluded):
        if listed is None or len(listed) == 0:
            continue
        movies = np.asarray(listed, dtype=np.int64)
        columns = np.searchsorted(candidates, movies).clip(max=candidates.size - 1)
        scores[row, columns[candidates[columns] == movies]] = -np.inf
