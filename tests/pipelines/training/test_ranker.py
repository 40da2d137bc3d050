"""A ranker's fit in the training node: scored on val NDCG@K while fitted on train
only, then refitted on train + val."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from rating_prediction.evaluation.ranking import (
    model_scorer,
    ranking_metrics,
    ranking_task,
)
from rating_prediction.models.config import load_trained_model
from rating_prediction.models.variants import variant
from rating_prediction.parameters import EaseParameters
from rating_prediction.pipelines.training.ranker import fit_ranker
from rating_prediction.training.data import TrainingData
from rating_prediction.training.ease import fit_variant

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


def test_the_val_score_is_held_out_and_the_weights_come_from_train_and_val(data):
    options = EaseParameters(regularization=20.0, refit_on_train_val=True)
    weights, config, _ = fit_ranker(variant("ease"), options, data, EVALUATION)

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
    assert "no val rating reaches the relevance threshold 4" in caplog.text
