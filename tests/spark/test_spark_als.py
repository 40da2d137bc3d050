"""spark_als and spark_als_implicit on a local[2] session: the fit on Spark, its export
to the served model's weights, the evaluation on Spark against the one-machine
evaluation of the exported weights, and the batch recommendations against the served
model's."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from rating_prediction.data.schema import MOVIELENS_SCALE
from rating_prediction.models.baselines import fit_bias_baseline
from rating_prediction.models.config import ModelConfig, load_trained_model
from rating_prediction.models.factorization import BiasedMatrixFactorization
from rating_prediction.models.rankers import AlsRanker
from rating_prediction.parameters import ParameterError, parse
from rating_prediction.parameters.training import (
    MAX_SPARK_ALS_COMBINATIONS,
    SparkAlsImplicitParameters,
    SparkAlsParameters,
)
from rating_prediction.pipelines.evaluation.nodes import (
    build_ranking_task,
    compare_best_ranker_to_popularity,
    rank_at_random,
    rank_by_popularity,
    rank_with_model,
    score_with_model,
)
from rating_prediction.pipelines.training.val_ranking import val_ranking
from rating_prediction.training.data import TrainingData
from tests.fakes import fake_movies, learnable_splits
from tests.spark.fitting import fit_spark_variant

pytest.importorskip("pyspark")

SCALE = MOVIELENS_SCALE.to_dict()
EVALUATION = {
    "prediction_batch_size": 50_000,
    "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
    "ranking": {"k": 5},
}
EXPLICIT = {"rank": [4, 8], "reg_param": [0.1], "max_iter": [5], "num_blocks": 2}
IMPLICIT = {
    "rank": [8],
    "reg_param": [0.05],
    "max_iter": [5],
    "alpha": [1.0, 4.0],
    "num_blocks": 2,
}
SPLITS = ("train_ratings", "val_ratings", "test_ratings")


@pytest.fixture(scope="module")
def tables() -> dict[str, pl.DataFrame]:
    """Ratings with biases and rank-3 structure. User 0 has no training rating (its
    val and test ratings are of a user unknown to the models) and the mappings end
    with two users and two movies without any rating."""
    tables = learnable_splits(n_users=90, n_movies=30, n_ratings=1_500, seed=3)
    train = tables["train_ratings"]
    tables["train_ratings"] = train.filter(pl.col("userIdMapped") != 0)
    for name, key, original in (
        ("user_mapping", "userIdMapped", "userId"),
        ("movie_mapping", "movieIdMapped", "movieId"),
    ):
        mapping = tables[name]
        extra = mapping.tail(2).with_columns(pl.col(key) + 2, pl.col(original) + 2)
        tables[name] = pl.concat([mapping, extra])
    return tables


@pytest.fixture(scope="module")
def frames(spark, tables) -> dict:
    """The same tables as Spark DataFrames, as the Spark datasets load them."""
    return {
        name: spark.createDataFrame(table.to_arrow()) for name, table in tables.items()
    }


def _fit(frames, variant: str, parameters: dict) -> tuple:
    from rating_prediction.pipelines.spark_modelling import nodes  # noqa: PLC0415

    users, movies, config, history = fit_spark_variant(
        frames, variant, parameters, EVALUATION
    )
    weights = nodes.export_spark_model(users, movies, config)
    return users, movies, config, history, weights


@pytest.fixture(scope="module")
def explicit(frames) -> tuple:
    return _fit(frames, "spark_als", EXPLICIT)


@pytest.fixture(scope="module")
def implicit(frames) -> tuple:
    return _fit(frames, "spark_als_implicit", IMPLICIT)


def test_the_spark_biases_are_the_bias_baselines(frames, tables):
    from rating_prediction.training.spark_als import fit_biases  # noqa: PLC0415

    mean, user_bias, movie_bias = fit_biases(frames["train_ratings"], 15.0, 10.0, 4)
    local = fit_bias_baseline(tables["train_ratings"], 15.0, 10.0, 4)
    assert mean == pytest.approx(local.global_mean, rel=1e-12)
    for spark_table, local_table, key in (
        (user_bias, local.user_biases, "userIdMapped"),
        (movie_bias, local.movie_biases, "movieIdMapped"),
    ):
        on_spark = pl.from_arrow(spark_table.toArrow()).sort(key)
        assert on_spark[key].to_list() == local_table[key].to_list()
        np.testing.assert_allclose(
            on_spark["bias"].to_numpy(),
            local_table[local_table.columns[1]].to_numpy(),
            rtol=1e-9,
            atol=1e-12,
        )


def test_spark_als_is_chosen_on_val_and_exported_as_a_biased_mf(explicit, tables):
    _, _, config, history, weights = explicit
    config = ModelConfig.model_validate(config)
    # Every candidate was fitted on train and scored on val; the best one was kept.
    assert history["rank"].to_list() == [4, 8]
    best = history.sort("best_val_loss").row(0, named=True)
    assert config.best_val_loss == pytest.approx(best["best_val_loss"])
    assert config.model_kwargs["embedding_dim"] == best["rank"]
    assert config.refit_on_train_val
    model = load_trained_model(config, weights)
    assert isinstance(model, BiasedMatrixFactorization)
    assert (model.rating_min, model.rating_max) == (0.5, 5.0)
    # Users and movies without a training rating have no factors: the fallback.
    seen = pl.concat([tables["train_ratings"], tables["val_ratings"]])
    unseen_users = np.setdiff1d(
        np.arange(config.n_users), seen["userIdMapped"].unique()
    )
    assert unseen_users.size
    assert not weights["user_factors.weight"][unseen_users].any()


def test_the_errors_on_spark_are_those_of_the_exported_weights(
    explicit, frames, tables
):
    from rating_prediction.pipelines.spark_modelling import nodes  # noqa: PLC0415

    users, movies, config, _, weights = explicit
    on_spark = nodes.evaluate_spark_model(
        **{split: frames[split] for split in SPLITS},
        user_factors=users,
        movie_factors=movies,
        model_config=config,
        rating_scale=SCALE,
    )
    for split in ("train", "val", "test"):
        local = score_with_model(
            config, weights, tables[f"{split}_ratings"], EVALUATION
        )
        for metric in ("mse", "rmse", "mae"):
            assert on_spark[split][metric] == pytest.approx(local[metric], rel=1e-6)
    # The biases and factors learn: far better than the global mean on test.
    test = tables["test_ratings"]["rating"].to_numpy()
    mean_rmse = math.sqrt(
        ((test - tables["train_ratings"]["rating"].mean()) ** 2).mean()
    )
    assert on_spark["test"]["rmse"] < 0.9 * mean_rmse


def test_the_ranking_on_spark_is_the_one_machine_ranking(implicit, frames, tables):
    from rating_prediction.pipelines.spark_modelling import nodes  # noqa: PLC0415

    users, _, config, history, weights = implicit
    assert isinstance(load_trained_model(config, weights), AlsRanker)
    assert history["alpha"].to_list() == [1.0, 4.0]
    assert config["best_val_ndcg"] == pytest.approx(history["best_val_ndcg"].max())
    task = nodes.build_spark_ranking_task(
        *(frames[s] for s in SPLITS), EVALUATION, SCALE
    )
    local_task = build_ranking_task(*(tables[s] for s in SPLITS), EVALUATION, SCALE)
    # The model's lists and its popularity blend: at the weight chosen on val, and
    # at a stated one.
    stated = {
        **EVALUATION,
        "ranking": {**EVALUATION["ranking"], "popularity_weight": 0.5},
    }
    model_and_blends = [
        (
            nodes.rank_spark_model(task, users, config, weights, evaluation),
            rank_with_model(config, weights, local_task, evaluation),
        )
        for evaluation in (EVALUATION, stated)
    ]
    assert model_and_blends[1][1][1] != model_and_blends[1][1][0]
    for (on_spark, on_spark_blend), (local, local_blend) in model_and_blends:
        for spark_entry, local_entry in (
            (on_spark, local),
            (on_spark_blend, local_blend),
        ):
            for metric, value in local_entry["test"].items():
                assert spark_entry["test"][metric] == pytest.approx(value, rel=1e-6)
    for on_spark, local in (
        (model_and_blends[0][0][0], model_and_blends[0][1][0]),
        (
            nodes.rank_by_popularity_on_spark(task, EVALUATION),
            rank_by_popularity(local_task, EVALUATION),
        ),
        (
            nodes.rank_at_random_on_spark(task, EVALUATION),
            rank_at_random(local_task, EVALUATION),
        ),
    ):
        assert list(on_spark["test"]) == list(local["test"])
        for metric, value in local["test"].items():
            assert on_spark["test"][metric] == pytest.approx(value, rel=1e-6), metric
    assert 0 < on_spark["test"]["ndcg@5"] <= 1


def test_the_blend_weight_is_chosen_on_val_as_on_one_machine(frames, tables):
    """The val NDCG of the fit on train and the popularity blend's weight chosen on
    val (of 0, 0.1, ..., 1) on Spark are one machine's val ranking's of the exported
    weights."""
    _, _, config, history, weights = _fit(
        frames,
        "spark_als_implicit",
        IMPLICIT | {"alpha": [4.0], "refit_on_train_val": False},
    )
    data = TrainingData.from_catalog(
        **{name: tables[name] for name in ("train_ratings", "val_ratings")},
        user_mapping=tables["user_mapping"],
        movie_mapping=tables["movie_mapping"],
        movies=fake_movies(tables["movie_mapping"]),
        rating_scale=SCALE,
    )
    local, _ = val_ranking(load_trained_model(config, weights), data, EVALUATION)
    assert config["best_val_ndcg"] == pytest.approx(local["best_val_ndcg"], abs=1e-6)
    assert config["popularity_weight"] == local["popularity_weight"]
    assert history["popularity_weight"].to_list() == [local["popularity_weight"]]


def test_the_comparison_with_popularity_on_spark_is_one_machines(
    implicit, frames, tables
):
    """ranking_comparison.json: the per-user NDCG differences summed on the
    cluster give one machine's paired test."""
    from rating_prediction.pipelines.spark_modelling import nodes  # noqa: PLC0415

    users, _, config, _, weights = implicit
    task = nodes.build_spark_ranking_task(
        *(frames[s] for s in SPLITS), EVALUATION, SCALE
    )
    local_task = build_ranking_task(*(tables[s] for s in SPLITS), EVALUATION, SCALE)
    on_spark = nodes.compare_spark_ranker_to_popularity(
        task,
        EVALUATION,
        **{config["variant"]: (config, weights)},
        **{f"{config['variant']}_user_factors": users},
    )
    local = compare_best_ranker_to_popularity(local_task, EVALUATION, (config, weights))
    assert list(on_spark) == list(local)
    assert local["users"] > 2
    assert local["p_value"] is not None
    for key, value in local.items():
        if isinstance(value, float):
            assert on_spark[key] == pytest.approx(value, rel=1e-6, abs=1e-12), key
        else:
            assert on_spark[key] == value, key


def test_a_grid_beyond_its_bound_is_refused_naming_the_key():
    too_many = {"rank": list(range(1, 12)), "reg_param": [0.1] * 10}
    with pytest.raises(ParameterError, match="training.spark_als.*110 combinations"):
        parse(SparkAlsParameters, too_many, "training.spark_als")
    with pytest.raises(ParameterError, match="training.spark_als_implicit.alpha"):
        parse(SparkAlsImplicitParameters, {"alpha": []}, "training.spark_als_implicit")
    assert MAX_SPARK_ALS_COMBINATIONS >= len(SparkAlsParameters().candidates())


def test_a_single_value_is_one_candidate():
    options = SparkAlsImplicitParameters(rank=16, reg_param=0.5, alpha=[1.0, 3.0])
    assert [(c["rank"], c["reg_param"]) for c in options.candidates()] == [
        (16, 0.5)
    ] * 2
    with pytest.raises(ParameterError, match="training.spark_als.rank"):
        parse(SparkAlsParameters, {"rank": "16"}, "training.spark_als")
    with pytest.raises(ParameterError, match="training.spark_als.max_iter"):
        parse(SparkAlsParameters, {"max_iter": True}, "training.spark_als")


def test_the_candidates_are_every_combination_in_order():
    options = SparkAlsImplicitParameters(rank=[2, 4], alpha=[1.0, 3.0])
    assert [(c["rank"], c["alpha"]) for c in options.candidates()] == [
        (2, 1.0),
        (2, 3.0),
        (4, 1.0),
        (4, 3.0),
    ]
