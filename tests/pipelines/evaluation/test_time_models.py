"""The evaluation scores a model with a time feature (bayesian_fm's
``SampledFactorization``) at each rating's own timestamp, so its metrics are exact; a
null timestamp takes the model's default bucket. Ranking scores it at that default."""

import numpy as np
import polars as pl
import pytest
import torch

from rating_prediction.evaluation.metrics import regression_metrics
from rating_prediction.evaluation.ranking import ranking_metrics, ranking_task
from rating_prediction.models.config import load_trained_model
from rating_prediction.pipelines.evaluation.nodes import (
    predict_with_model,
    rank_with_model,
    score_with_model,
)
from tests.fakes import learnable_splits
from tests.models.sampled_fixtures import (
    HALF_STARS,
    TIME,
    random_weights,
    reference_predictions,
    sampled_config,
)

EVALUATION = {
    "prediction_batch_size": 7,
    "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
    "ranking": {"k": 5},
}


@pytest.fixture(scope="module")
def splits() -> dict[str, pl.DataFrame]:
    return learnable_splits()


def with_times(ratings: pl.DataFrame) -> pl.DataFrame:
    """``ratings`` with timestamps across the model's buckets (and before and past
    them), every fourth one null."""
    rows = np.arange(ratings.height)
    seconds = TIME["origin"] - TIME["width"] + rows * 7_919_123 % (12 * TIME["width"])
    return ratings.with_columns(
        timestamp=pl.when(pl.Series(rows % 4 == 0))
        .then(None)
        .otherwise(pl.Series(seconds))
    )


@pytest.mark.parametrize("levels", [None, HALF_STARS])
def test_each_rating_is_predicted_at_its_own_timestamp(splits, levels):
    test = with_times(splits["test_ratings"])
    n_users = int(splits["user_mapping"].height)
    n_movies = int(splits["movie_mapping"].height)
    config = sampled_config(n_users, n_movies, levels=levels, time=TIME)
    weights = random_weights(config, seed=1)
    predictions = predict_with_model(config, weights, test, EVALUATION)
    seconds = test["timestamp"].cast(pl.Float64).to_numpy()
    expected = reference_predictions(
        config,
        weights,
        test["userIdMapped"].to_numpy(),
        test["movieIdMapped"].to_numpy(),
        seconds,
    )
    np.testing.assert_allclose(predictions["prediction"], expected, atol=1e-5)
    at_default = predict_with_model(
        config, weights, test.with_columns(timestamp=None), EVALUATION
    )
    assert not np.allclose(at_default["prediction"], expected, atol=1e-3)
    scored = score_with_model(config, weights, test, EVALUATION)
    exact = regression_metrics(test["rating"], pl.Series(expected))
    assert scored == pytest.approx(exact, abs=1e-5)


def test_a_time_model_ranks_by_its_predictions_at_the_default_bucket(splits):
    n_users = int(splits["user_mapping"].height)
    n_movies = int(splits["movie_mapping"].height)
    config = sampled_config(n_users, n_movies, levels=HALF_STARS, time=TIME)
    weights = random_weights(config)
    task = ranking_task(splits["train_ratings"], splits["test_ratings"], 3.5)
    model = load_trained_model(config, weights)

    def by_predict(users: np.ndarray) -> np.ndarray:
        """Every candidate's prediction, pair by pair, with no timestamp."""
        pairs = (
            np.repeat(users, task.candidates.size),
            np.tile(task.candidates, users.size),
        )
        predicted = model.predict(*(torch.from_numpy(ids) for ids in pairs))
        return predicted.numpy().reshape(users.size, task.candidates.size)

    metrics, _ = rank_with_model(config, weights, task, EVALUATION)
    assert metrics["test"] == ranking_metrics(task, by_predict, 5, 7)
    assert metrics["test"]["coverage"] > 0
