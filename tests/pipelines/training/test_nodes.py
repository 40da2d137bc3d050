"""The training node: learning, early stopping, best weights, tracking, determinism, errors."""

from __future__ import annotations

import os
import re

import mlflow
import polars as pl
import pytest
import torch
from mlflow.tracking import MlflowClient

from rating_prediction.data.schema import MOVIELENS_SCALE, RatingScale
from rating_prediction.models.config import load_trained_model
from rating_prediction.models.variants import UnknownVariantError
from rating_prediction.parameters import ParameterError
from rating_prediction.pipelines.training.nodes import train_model
from tests.fakes import fake_movies


def _train(splits, options, variant, scale=MOVIELENS_SCALE):
    return train_model(
        train_ratings=splits["train_ratings"],
        val_ratings=splits["val_ratings"],
        user_mapping=splits["user_mapping"],
        movie_mapping=splits["movie_mapping"],
        movies=fake_movies(splits["movie_mapping"]),
        rating_scale=scale.to_dict(),
        parameters=options,
        variant_name=variant,
    )


def _mse(config, weights, ratings: pl.DataFrame) -> float:
    model = load_trained_model(config, weights)
    # The raw forward pass: training's val loss is measured before clipping to the scale.
    with torch.no_grad():
        predictions = model(
            torch.from_numpy(ratings["userIdMapped"].to_numpy().astype("int64")),
            torch.from_numpy(ratings["movieIdMapped"].to_numpy().astype("int64")),
        )
    truth = torch.from_numpy(ratings["rating"].to_numpy(writable=True))
    return float(((predictions - truth) ** 2).mean())


@pytest.mark.parametrize("variant", ["inner_sigmoid", "biased_mf"])
def test_training_beats_the_mean_baseline_on_val(splits, training_parameters, variant):
    options = training_parameters[variant] | {"max_epochs": 15}
    weights, config, history = _train(splits, options, variant)
    train_mean = splits["train_ratings"]["rating"].mean()
    val = splits["val_ratings"]
    baseline = float(((val["rating"] - train_mean) ** 2).mean())
    assert history["val_loss"].min() < 0.8 * baseline
    assert config["variant"] == variant
    assert config["fit_seconds"] > 0
    assert config["n_users"] == splits["user_mapping"].height
    assert history.columns == ["epoch", "train_loss", "val_loss"]
    assert history["epoch"].to_list() == list(range(1, history.height + 1))


def test_returned_weights_are_the_best_epochs_not_the_last(splits, training_parameters):
    # Large unregularised factors on few ratings overfit fast, so val loss turns up.
    options = training_parameters["biased_mf"] | {
        "max_epochs": 30,
        "min_epochs": 1,
        "refit_on_train_val": False,
    }
    options["model"] = options["model"] | {"embedding_dim": 64, "factor_reg": 0.0}
    options["optimizer"] = options["optimizer"] | {"learning_rate": 0.05}
    weights, config, history = _train(splits, options, "biased_mf")
    best_epoch = int(history["val_loss"].arg_min()) + 1
    assert config["best_epoch"] == best_epoch < history.height
    assert config["best_val_loss"] == pytest.approx(history["val_loss"].min())
    assert _mse(config, weights, splits["val_ratings"]) == pytest.approx(
        history["val_loss"].min(), rel=1e-4
    )


def test_refit_retrains_on_train_and_val_for_the_chosen_epochs(
    splits, training_parameters
):
    options = training_parameters["biased_mf"] | {"max_epochs": 8}
    held_out = _train(splits, options | {"refit_on_train_val": False}, "biased_mf")
    refit = _train(splits, options | {"refit_on_train_val": True}, "biased_mf")
    both = pl.concat([splits["train_ratings"], splits["val_ratings"]])
    assert refit[1]["refit_on_train_val"] is True
    assert refit[1]["best_epoch"] == held_out[1]["best_epoch"]
    assert refit[1]["best_val_loss"] == held_out[1]["best_val_loss"]
    assert refit[1]["model_kwargs"]["global_mean"] == pytest.approx(
        both["rating"].mean()
    )
    assert refit[2].equals(held_out[2])
    # Val is now in the training data: the refit model fits it better.
    assert (
        _mse(refit[1], refit[0], splits["val_ratings"]) < held_out[1]["best_val_loss"]
    )


def test_early_stopping_never_stops_before_the_minimum_epoch(
    splits, training_parameters
):
    # A learning rate of 1e-30 (zero is not a valid setting) moves no float32 weight, so
    # the val loss never improves after epoch 1.
    options = training_parameters["inner_sigmoid"] | {"min_epochs": 6, "patience": 2}
    options["optimizer"] = options["optimizer"] | {"learning_rate": 1e-30}
    _, _, history = _train(splits, options, "inner_sigmoid")
    assert history["val_loss"].n_unique() == 1
    assert history.height == 6


def test_losses_are_logged_into_the_active_mlflow_run(
    splits, training_parameters, tmp_path
):
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        mlflow.set_experiment("training-test")
        with mlflow.start_run() as run:
            _, _, history = _train(
                splits,
                training_parameters["inner_sigmoid"] | {"max_epochs": 7},
                "inner_sigmoid",
            )
        client = MlflowClient()
        val_history = client.get_metric_history(
            run.info.run_id, "inner_sigmoid.val_loss"
        )
        train_history = client.get_metric_history(
            run.info.run_id, "inner_sigmoid.train_loss"
        )
        runs = client.search_runs([run.info.experiment_id])
        assert client.get_run(run.info.run_id).info.status == "FINISHED"
    finally:
        mlflow.set_tracking_uri(None)
        # set_experiment's choice (and the id it exports) outlives the run: undo it,
        # so later tests with their own MLflow store do not look for this experiment.
        mlflow.tracking.fluent._active_experiment_id = None
        os.environ.pop("MLFLOW_EXPERIMENT_ID", None)
    assert len(runs) == 1
    assert [m.step for m in val_history] == history["epoch"].to_list()
    assert [m.value for m in val_history] == pytest.approx(
        history["val_loss"].to_list()
    )
    assert len(train_history) == history.height
    assert not (tmp_path / "mlruns").exists()


def test_training_is_deterministic_for_a_seed(splits, training_parameters):
    options = training_parameters["biased_mf"] | {"max_epochs": 6}
    first = _train(splits, options, "biased_mf")[2]
    second = _train(splits, options, "biased_mf")[2]
    assert first["val_loss"].to_list() == second["val_loss"].to_list()


def test_empty_training_split_is_a_clear_error(splits, training_parameters):
    empty = splits | {"train_ratings": splits["train_ratings"].clear()}
    with pytest.raises(ValueError, match="train split is empty"):
        _train(empty, training_parameters["inner_sigmoid"], "inner_sigmoid")


def test_ids_beyond_the_mapping_are_a_clear_error(splits, training_parameters):
    short_mapping = splits | {"movie_mapping": splits["movie_mapping"].head(10)}
    with pytest.raises(ValueError, match="movie_mapping has 10 ids"):
        _train(short_mapping, training_parameters["inner_sigmoid"], "inner_sigmoid")


def test_nan_loss_stops_with_the_epoch_named(splits, training_parameters):
    train = splits["train_ratings"]
    poisoned = train.with_columns(
        pl.when(pl.int_range(train.height) == 0)
        .then(float("nan"))
        .otherwise(pl.col("rating"))
        .cast(pl.Float32)
        .alias("rating")
    )
    with pytest.raises(FloatingPointError, match="NaN or infinite at epoch 1"):
        _train(
            splits | {"train_ratings": poisoned},
            training_parameters["inner_sigmoid"],
            "inner_sigmoid",
        )


def test_unknown_variant_is_a_clear_error(splits, training_parameters):
    with pytest.raises(UnknownVariantError, match="Unknown model variant 'svdpp'"):
        _train(splits, training_parameters["inner_sigmoid"], "svdpp")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_epoch": 10}, "unknown key 'training.inner_sigmoid.max_epoch'"),
        # The namespace names the variant: the key of the old layout is unknown now.
        ({"variant": "inner_sigmoid"}, "unknown key 'training.inner_sigmoid.variant'"),
        (
            {"min_epochs": 8, "max_epochs": 5},
            "'training.inner_sigmoid.min_epochs': min_epochs (8) must not exceed "
            "max_epochs (5)",
        ),
        (
            {"model": {"embedding_dim": 0}},
            "'training.inner_sigmoid.model.embedding_dim'",
        ),
        (
            {"optimizer": {"learning_rate": 0}},
            "'training.inner_sigmoid.optimizer.learning_rate'",
        ),
        ({"eval_batch_size": 0}, "'training.inner_sigmoid.eval_batch_size'"),
    ],
)
def test_invalid_parameters_are_rejected_naming_the_full_key(
    splits, training_parameters, change, message
):
    options = training_parameters["inner_sigmoid"] | change
    with pytest.raises(ParameterError, match=re.escape(message)) as error:
        _train(splits, options, "inner_sigmoid")
    # One problem, one line: eval_batch_size is not reported as batch_size.
    assert str(error.value).count("\n- ") == 1
    assert "'training.inner_sigmoid.batch_size'" not in str(error.value)


def _on_ten_stars(splits):
    """The splits with every rating doubled: whole stars 1..10 instead of 0.5..5."""
    return splits | {
        name: splits[name].with_columns(pl.col("rating") * 2)
        for name in ("train_ratings", "val_ratings")
    }


@pytest.mark.parametrize("variant", ["inner_sigmoid", "biased_mf"])
def test_every_model_predicts_on_the_data_sets_scale(
    splits, training_parameters, variant
):
    ten_stars = _on_ten_stars(splits)
    scale = RatingScale(1.0, 10.0)
    options = training_parameters[variant] | {"max_epochs": 8}
    weights, config, _ = _train(ten_stars, options, variant, scale)
    assert (
        config["model_kwargs"]["rating_min"],
        config["model_kwargs"]["rating_max"],
    ) == (
        1.0,
        10.0,
    )
    model = load_trained_model(config, weights)
    val = ten_stars["val_ratings"]
    users = torch.from_numpy(val["userIdMapped"].to_numpy().astype("int64"))
    movies = torch.from_numpy(val["movieIdMapped"].to_numpy().astype("int64"))
    predictions = model.predict(users, movies)
    assert predictions.min() >= 1.0 and predictions.max() <= 10.0
    # The whole of the data's scale is used, not MovieLens's 0.5..5.
    assert predictions.max() > 6.0
    assert _mse(config, weights, val) < float(val["rating"].var())


def test_biased_mf_clips_its_predictions_to_the_data_sets_scale(
    splits, training_parameters
):
    options = training_parameters["biased_mf"] | {"max_epochs": 2, "min_epochs": 1}
    weights, config, _ = _train(
        _on_ten_stars(splits), options, "biased_mf", RatingScale(1.0, 10.0)
    )
    model = load_trained_model(config, weights)
    users, movies = torch.arange(5), torch.arange(5)
    for mean, clipped in ((40.0, 10.0), (-40.0, 1.0)):
        model.global_mean.fill_(mean)
        assert model.predict(users, movies).tolist() == [clipped] * 5


@pytest.mark.parametrize("keys", [["rating_min"], ["rating_min", "rating_max"]])
def test_a_rating_scale_in_the_training_parameters_is_refused_saying_where_it_went(
    splits, training_parameters, keys
):
    options = training_parameters["inner_sigmoid"]
    options = options | {"model": options["model"] | dict.fromkeys(keys, 1.0)}
    with pytest.raises(ParameterError) as error:
        _train(splits, options, "inner_sigmoid")
    message = str(error.value)
    assert f"'training.inner_sigmoid.model': {' and '.join(keys)}" in message
    assert "the rating scale now comes from the data" in message
    assert "ingestion.file.rating_scale" in message
