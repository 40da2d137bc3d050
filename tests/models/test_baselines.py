import numpy as np
import polars as pl
import pytest

from rating_prediction.data.schema import RatingScale
from rating_prediction.evaluation.metrics import regression_metrics
from rating_prediction.models.baselines import (
    fit_bias_baseline,
    fit_mean_baseline,
)
from tests.fakes import bias_splits, mapped_split


def test_mean_baseline_predicts_the_training_mean_everywhere():
    train = mapped_split([(0, 0, 4.0), (1, 1, 2.0), (1, 0, 3.0)])
    unseen = mapped_split([(0, 1, 5.0), (7, 9, 1.0)])
    baseline = fit_mean_baseline(train)
    assert baseline.global_mean == pytest.approx(3.0)
    assert baseline.predict(unseen).to_list() == pytest.approx([3.0, 3.0])


def test_unregularised_bias_baseline_recovers_exact_biases():
    mean, user_bias, movie_bias = 3.0, [-0.5, 0.0, 0.5], [-1.0, 0.0, 1.0, 0.5]
    train = mapped_split(
        [
            (user, movie, mean + user_bias[user] + movie_bias[movie])
            for user in range(3)
            for movie in range(4)
        ]
    )
    baseline = fit_bias_baseline(train, reg_user=0, reg_movie=0, n_epochs=10)
    np.testing.assert_allclose(
        baseline.predict(train).to_numpy(), train["rating"].to_numpy(), atol=1e-6
    )


def test_bias_baseline_matches_hand_computed_regularised_biases():
    # mu = 4. Movie step (b_u = 0, reg 1): b_0 = (1 + 0) / 3, b_1 = -1 / 2.
    # User step (reg 1): b_u0 = ((1 - 1/3) + (-1 + 1/2)) / 3 = 1/18,
    # b_u1 = (0 - 1/3) / 2 = -1/6.
    train = mapped_split([(0, 0, 5.0), (0, 1, 3.0), (1, 0, 4.0)])
    baseline = fit_bias_baseline(train, reg_user=1, reg_movie=1, n_epochs=1)
    assert baseline.global_mean == pytest.approx(4.0)
    assert baseline.user_biases.sort("userIdMapped")["user_bias"].to_list() == (
        pytest.approx([1 / 18, -1 / 6])
    )
    assert baseline.movie_biases.sort("movieIdMapped")["movie_bias"].to_list() == (
        pytest.approx([1 / 3, -1 / 2])
    )


def test_bias_baseline_gives_unknown_users_and_movies_zero_bias():
    # User 1 and movie 1 lie inside the dense id range but have no training rating.
    train = mapped_split([(0, 0, 5.0), (2, 2, 1.0), (0, 2, 3.0)])
    baseline = fit_bias_baseline(train, reg_user=0, reg_movie=0, n_epochs=5)
    mean = baseline.global_mean
    user_0 = baseline.user_biases.filter(pl.col("userIdMapped") == 0)["user_bias"][0]
    movie_0 = baseline.movie_biases.filter(pl.col("movieIdMapped") == 0)["movie_bias"][
        0
    ]
    pairs = mapped_split([(1, 1, 3.0), (0, 1, 3.0), (1, 0, 3.0), (50, 70, 3.0)])
    assert baseline.predict(pairs).to_list() == pytest.approx(
        [mean, mean + user_0, mean + movie_0, mean], abs=1e-6
    )
    assert set(baseline.user_biases["userIdMapped"]) == {0, 2}


def test_bias_baseline_beats_mean_baseline_on_held_out_ratings():
    splits = bias_splits()
    mean_baseline = fit_mean_baseline(splits["train"])
    bias_baseline = fit_bias_baseline(
        splits["train"], reg_user=15, reg_movie=10, n_epochs=10
    )
    test = splits["test"]
    mean_rmse = regression_metrics(test["rating"], mean_baseline.predict(test))["rmse"]
    bias_rmse = regression_metrics(test["rating"], bias_baseline.predict(test))["rmse"]
    assert bias_rmse < 0.8 * mean_rmse


def test_bias_baseline_predictions_are_clipped_to_the_rating_scale():
    # Unregularised: a high user on a high movie is mu + b_u + b_i = 3 + 1.5 + 1.5 = 6,
    # a low one on a low movie 0; the scale is 0.5..5 (MovieLens's, the default).
    train = mapped_split(
        [
            (user, movie, 3.0 + user_bias + movie_bias)
            for user, user_bias in enumerate([-1.5, 1.5])
            for movie, movie_bias in enumerate([-1.5, 1.5])
        ]
    )
    pairs = mapped_split([(1, 1, 5.0), (0, 0, 0.5), (0, 1, 3.0)])
    unclipped = fit_bias_baseline(train, 0, 0, 10, RatingScale(-100.0, 100.0)).predict(
        pairs
    )
    assert unclipped.to_list() == pytest.approx([6.0, 0.0, 3.0], abs=1e-6)
    clipped = fit_bias_baseline(train, 0, 0, 10).predict(pairs)
    assert clipped.to_list() == pytest.approx([5.0, 0.5, 3.0], abs=1e-6)


def test_baselines_predict_on_the_data_sets_scale():
    """On a 1..10 scale nothing above 5 is clipped, and 10 is the ceiling."""
    train = mapped_split(
        [
            (user, movie, 5.5 + user_bias + movie_bias)
            for user, user_bias in enumerate([-2.5, 3.5])
            for movie, movie_bias in enumerate([-2.5, 3.5])
        ]
    )
    ten_stars = RatingScale(1.0, 10.0)
    pairs = mapped_split([(1, 0, 6.5), (1, 1, 12.5), (0, 0, 0.5)])
    predicted = fit_bias_baseline(train, 0, 0, 10, ten_stars).predict(pairs)
    assert predicted.to_list() == pytest.approx([6.5, 10.0, 1.0], abs=1e-6)
    mean = fit_mean_baseline(train, ten_stars)
    assert mean.rating_scale == ten_stars
    assert mean.predict(pairs).to_list() == pytest.approx([mean.global_mean] * 3)
