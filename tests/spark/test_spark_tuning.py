"""The Spark tuning node on a local[2] session: an Optuna study of spark_als and of
spark_als_implicit whose trials are fitted and scored on Spark, resumed by a second
search, its best trial a parameters file the Spark run reads (one value per key)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from rating_prediction.data.schema import MOVIELENS_SCALE
from rating_prediction.parameters import ParameterError, parse
from rating_prediction.parameters.training import SparkAlsParameters
from tests.fakes import learnable_splits
from tests.spark.fitting import fit_spark_variant

pytest.importorskip("pyspark")

EVALUATION = {
    "prediction_batch_size": 50_000,
    "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
    "ranking": {"k": 5},
}
TRAINING = {
    "spark_als": {"rank": [4], "reg_param": [0.1], "max_iter": [5], "num_blocks": 2},
    "spark_als_implicit": {
        "rank": [8],
        "reg_param": [0.05],
        "max_iter": [5],
        "alpha": [1.0],
        "num_blocks": 2,
    },
}
SPACES = {
    "spark_als": {
        "rank": {"type": "int", "low": 2, "high": 8},
        "reg_param": {"type": "float", "low": 0.02, "high": 1.0, "log": True},
    },
    "spark_als_implicit": {
        "alpha": {"type": "float", "low": 0.5, "high": 8.0, "log": True},
    },
    # A one-machine variant's space: valid parameters, the wrong search.
    "als": {"factors": {"type": "int", "low": 8, "high": 16}},
}
FIT_INPUTS = ("train_ratings", "val_ratings", "user_mapping", "movie_mapping")


@pytest.fixture(scope="module")
def frames(spark) -> dict:
    tables = learnable_splits(n_users=80, n_movies=25, n_ratings=1_200, seed=11)
    return {name: spark.createDataFrame(tables[name].to_arrow()) for name in FIT_INPUTS}


def tune(frames: dict, storage: str, variant: str, n_trials: int):
    from rating_prediction.pipelines.spark_tuning.nodes import (  # noqa: PLC0415
        tune_spark_variant,
    )

    return tune_spark_variant(
        **{name: frames[name] for name in FIT_INPUTS},
        rating_scale=MOVIELENS_SCALE.to_dict(),
        tuning_parameters={
            "variant": variant,
            "n_trials": n_trials,
            "study_name": variant,
            "storage": storage,
            "search_spaces": SPACES,
        },
        training_parameters=TRAINING,
        evaluation_parameters=EVALUATION,
    )


def test_spark_als_is_tuned_on_val_mse_and_its_best_trial_refits_the_same(
    frames, tmp_path
):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tuned, trials = tune(frames, storage, "spark_als", 3)
    assert trials["state"].to_list() == ["COMPLETE"] * 3
    record, best = tuned["_tuning"], tuned["training"]["spark_als"]
    assert record["complete_trials"] == 3
    assert record["best_val_mse"] == trials["value"].min()
    assert set(best) == {"rank", "reg_param"}
    assert 2 <= best["rank"] <= 8 and 0.02 <= best["reg_param"] <= 1.0
    # The file's single values are one candidate each, and the run's fit with them
    # (on train, no refit) finds the trial's val MSE.
    options = TRAINING["spark_als"] | best | {"refit_on_train_val": False}
    parsed = parse(SparkAlsParameters, options, "training.spark_als")
    assert parsed.candidates() == [{**best, "max_iter": 5}]
    _, _, config, _ = fit_spark_variant(frames, "spark_als", options, EVALUATION)
    assert config["best_val_loss"] == pytest.approx(record["best_val_mse"], rel=1e-9)
    # A second search resumes the study.
    _, trials = tune(frames, storage, "spark_als", 1)
    assert trials.height == 4


def test_spark_als_implicit_is_tuned_on_val_ndcg(frames, tmp_path):
    tuned, trials = tune(
        frames, f"sqlite:///{tmp_path / 'o.db'}", "spark_als_implicit", 2
    )
    ndcg = tuned["_tuning"]["best_val_ndcg_at_5"]
    assert ndcg == trials["value"].max()
    assert 0 < ndcg <= 1 and not math.isnan(ndcg)
    assert set(tuned["training"]["spark_als_implicit"]) == {"alpha"}
    assert trials.filter(pl.col("state") == "COMPLETE").height == 2


def test_a_one_machine_variant_is_refused_naming_its_command(frames, tmp_path):
    with pytest.raises(ParameterError, match="als' is fitted on local") as refused:
        tune(frames, f"sqlite:///{tmp_path / 'o.db'}", "als", 1)
    assert "`kedro run --pipelines tuning`" in str(refused.value)
    assert "tunes spark_als, spark_als_implicit" in str(refused.value)
    assert not (tmp_path / "o.db").exists()
