"""What a fit on train ranks on val, recorded before any refit on train + val: a
ranker's val NDCG@K (then refitted), a rating model's and its popularity blend's weight."""

from __future__ import annotations

import logging

import polars as pl
import pytest
import torch

from rating_prediction.data.schema import MOVIELENS_SCALE
from rating_prediction.evaluation.ranking import (
    model_scorer,
    ranking_metrics,
    ranking_task,
)
from rating_prediction.models.config import load_trained_model
from rating_prediction.models.scoring import blended_scorer, log_count_scorer
from rating_prediction.models.variants import variant
from rating_prediction.parameters import EaseParameters
from rating_prediction.pipelines.training.nodes import train_model
from rating_prediction.pipelines.training.val_ranking import BLEND_WEIGHTS, fit_ranker
from rating_prediction.training.data import TrainingData
from rating_prediction.training.ease import fit_variant
from tests.fakes import fake_movies

EVALUATION = {
    "prediction_batch_size": 10_000,
    "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
    "ranking": {"k": 5, "relevance_threshold": 4.0},
}


@pytest.fixture(scope="module")
def data(splits) -> TrainingData:
    return TrainingData(
        train=splits["train_ratings"],
        val=splits["val_ratings"],
        n_users=splits["user_mapping"].height,
        n_movies=splits["movie_mapping"].height,
    )


def _val_ndcg_of_a_fit_on_train(data: TrainingData, options: EaseParameters) -> float:
    weights, config, _ = fit_variant("ease", options, data)
    task = ranking_task(data.train, data.val, 4.0)
    model = load_trained_model(config, weights)
    return ranking_metrics(task, model_scorer(model, task.candidates), 5, 10_000)[
        "ndcg@5"
    ]


def test_the_val_score_is_held_out_and_the_weights_come_from_train_and_val(
    data, caplog
):
    options = EaseParameters(regularization=20.0, refit_on_train_val=True)
    with caplog.at_level(logging.INFO, logger="rating_prediction"):
        weights, config, _ = fit_ranker(variant("ease"), options, data, EVALUATION)
    # One line for the whole fit: the one kept, its val figures, the refit.
    (line,) = caplog.messages
    assert line.startswith("ease: lambda 20, ")
    assert f"val NDCG@5 {config.best_val_ndcg:.4f}" in line
    assert line.endswith("refitted on train + val")

    expected = _val_ndcg_of_a_fit_on_train(data, options)
    assert 0 < expected < 1
    assert config.best_val_ndcg == pytest.approx(expected, abs=1e-6)
    assert config.refit_on_train_val is True
    refit, _, _ = fit_variant("ease", options, data.with_val_in_train())
    for name, tensor in refit.items():
        assert torch.equal(weights[name], tensor), name
    # The refit knows each user's val movies as interactions.
    train_only, _, _ = fit_variant("ease", options, data)
    assert len(weights["user_items"]) == len(train_only["user_items"]) + data.val.height


def test_without_refit_the_weights_are_the_fit_on_train(data):
    options = EaseParameters(regularization=20.0, refit_on_train_val=False)
    weights, config, _ = fit_ranker(variant("ease"), options, data, EVALUATION)
    train_only, _, _ = fit_variant("ease", options, data)
    for name, tensor in train_only.items():
        assert torch.equal(weights[name], tensor), name
    assert config.refit_on_train_val is False
    assert config.best_val_ndcg == pytest.approx(
        _val_ndcg_of_a_fit_on_train(data, options), abs=1e-6
    )


def test_without_a_relevant_val_rating_the_val_score_is_not_measured(data, caplog):
    """Val ratings below the threshold are not relevant: with every val rating made
    low, no user is ranked, and the score is missing rather than invented."""
    low = TrainingData(
        train=data.train,
        val=data.val.with_columns(pl.lit(1.0).cast(pl.Float32).alias("rating")),
        n_users=data.n_users,
        n_movies=data.n_movies,
    )
    options = EaseParameters(regularization=20.0, refit_on_train_val=False)
    _, config, _ = fit_ranker(variant("ease"), options, low, EVALUATION)
    assert config.best_val_ndcg is None
    assert "No val rating reaches the relevance threshold 4" in caplog.text


def _train_with_val_ranking(splits, options, name, evaluation=EVALUATION):
    return train_model(
        train_ratings=splits["train_ratings"],
        val_ratings=splits["val_ratings"],
        user_mapping=splits["user_mapping"],
        movie_mapping=splits["movie_mapping"],
        movies=fake_movies(splits["movie_mapping"]),
        rating_scale=MOVIELENS_SCALE.to_dict(),
        parameters=options,
        variant_name=name,
        evaluation=evaluation,
    )


@pytest.mark.parametrize("name", ["biased_mf", "bayesian_fm"])
def test_a_rating_models_val_ranking_is_measured_before_its_refit(
    splits, training_parameters, name
):
    """The figures come from the fit on train: a refit on train + val leaves them as
    they are, and they are what that fit ranks on val."""
    options = training_parameters[name]
    if name == "biased_mf":
        options |= {"max_epochs": 6}
    weights, held_out, _ = _train_with_val_ranking(
        splits, options | {"refit_on_train_val": False}, name
    )
    _, refit, _ = _train_with_val_ranking(
        splits, options | {"refit_on_train_val": True}, name
    )
    assert refit["refit_on_train_val"] is True
    assert refit["best_val_ndcg"] == held_out["best_val_ndcg"]
    assert refit["popularity_weight"] == held_out["popularity_weight"]
    assert held_out["popularity_weight"] in BLEND_WEIGHTS

    data = TrainingData(
        train=splits["train_ratings"],
        val=splits["val_ratings"],
        n_users=splits["user_mapping"].height,
        n_movies=splits["movie_mapping"].height,
    )
    task = ranking_task(data.train, data.val, 4.0)
    model = load_trained_model(held_out, weights)
    own = model_scorer(model, task.candidates)
    assert held_out["best_val_ndcg"] == pytest.approx(
        ranking_metrics(task, own, 5, 10_000)["ndcg@5"], abs=1e-6
    )
    by_weight = {
        weight: ranking_metrics(
            task,
            blended_scorer(own, log_count_scorer(task.candidate_counts), weight),
            5,
            10_000,
        )["ndcg@5"]
        for weight in BLEND_WEIGHTS[1:]
    }
    best = max([held_out["best_val_ndcg"], *by_weight.values()])
    chosen = held_out["popularity_weight"]
    chosen_ndcg = by_weight.get(chosen, held_out["best_val_ndcg"])
    assert chosen_ndcg == pytest.approx(best, abs=1e-6)


def test_a_stated_weight_is_not_chosen_on_val(splits, training_parameters):
    """With a stated weight nothing is chosen on val: a rating model is not ranked
    there at all (its val ranking only chose the weight), a ranker still is (its val
    NDCG@K chooses the served ranker)."""
    stated = {
        **EVALUATION,
        "ranking": {**EVALUATION["ranking"], "popularity_weight": 0.3},
    }
    configs = {
        variant: _train_with_val_ranking(splits, parameters, variant, stated)[1]
        for variant, parameters in (
            ("bayesian_fm", training_parameters["bayesian_fm"]),
            ("ease", {"regularization": 20.0}),
        )
    }
    assert configs["bayesian_fm"]["popularity_weight"] is None
    assert configs["bayesian_fm"]["best_val_ndcg"] is None
    assert configs["ease"]["popularity_weight"] is None
    assert 0 < configs["ease"]["best_val_ndcg"] <= 1


def test_a_ranker_without_the_evaluation_settings_is_refused(splits):
    with pytest.raises(ValueError, match="ease is a ranker: .*params:evaluation"):
        train_model(
            train_ratings=splits["train_ratings"],
            val_ratings=splits["val_ratings"],
            user_mapping=splits["user_mapping"],
            movie_mapping=splits["movie_mapping"],
            movies=fake_movies(splits["movie_mapping"]),
            rating_scale=MOVIELENS_SCALE.to_dict(),
            parameters={"regularization": 20.0},
            variant_name="ease",
        )
