"""The choice of the served ranker and how it reads a new user's ratings."""

import numpy as np
import pytest

from rating_prediction.hooks import check_served_ranker
from rating_prediction.models.variants import variants_that
from rating_prediction.parameters import EaseParameters, ParameterError
from rating_prediction.serving import ranker as serving_ranker
from rating_prediction.serving.ranker import (
    RankerFeedback,
    feedback_of,
    ranker_variants,
    select_served_ranker,
)


def test_the_rankers_are_the_variants_that_rank_but_predict_no_ratings():
    assert ranker_variants() == [
        name
        for name in variants_that("ranks")
        if name not in variants_that("predicts_ratings")
    ]
    assert "ease" in ranker_variants()


@pytest.fixture
def three_rankers(monkeypatch):
    """The registry as it will be with more rankers: ease, als, bpr in that order."""
    monkeypatch.setattr(
        serving_ranker, "ranker_variants", lambda: ["ease", "als", "bpr"]
    )


@pytest.mark.parametrize(
    ("ndcg", "best"),
    [
        ({"ease": 0.30, "als": 0.35, "bpr": 0.20}, "als"),
        ({"ease": 0.30, "als": None, "bpr": 0.10}, "ease"),
        # A ranker without a held-out NDCG ranks below any with one...
        ({"ease": None, "als": None, "bpr": 0.01}, "bpr"),
        # ... and equal ones go to the registry order.
        ({"ease": None, "als": None, "bpr": None}, "ease"),
        ({"bpr": 0.3, "als": 0.3}, "als"),
        ({"bpr": 0.2}, "bpr"),
    ],
)
def test_best_is_the_highest_held_out_val_ndcg(three_rankers, ndcg, best):
    assert select_served_ranker(ndcg, "best") == best


def test_none_or_no_trained_ranker_serves_none(three_rankers):
    assert select_served_ranker({"ease": 0.3}, "none") is None
    assert select_served_ranker({}, "best") is None


def test_a_named_ranker_is_served_when_it_was_trained(three_rankers):
    assert select_served_ranker({"ease": 0.3, "als": 0.1}, "als") == "als"
    assert select_served_ranker({"ease": 0.3}, "als") is None


@pytest.mark.parametrize("name", ["biased_mf", "bayesian_fm", "nope"])
def test_a_name_that_is_not_a_ranker_is_refused_listing_the_valid_values(name):
    with pytest.raises(ValueError) as error:
        select_served_ranker({"ease": 0.3}, name)
    assert f"inference.served_ranker {name!r} is not a ranker" in str(error.value)
    assert f"choose one of best, none, {', '.join(ranker_variants())}." in str(
        error.value
    )


def test_the_hook_checks_served_ranker_before_any_node_runs():
    for valid in ["best", "none", *ranker_variants()]:
        check_served_ranker(valid)
    with pytest.raises(ParameterError, match="'inference.served_ranker': .*biased_mf"):
        check_served_ranker("biased_mf")


@pytest.mark.parametrize(
    ("feedback", "values"),
    [
        (RankerFeedback(), ([10, 11, 12, 13], [1.0, 1.0, 1.0, 1.0])),
        (RankerFeedback("rating"), ([10, 11, 12, 13], [4.5, 2.0, 3.5, 5.0])),
        # Ratings below min_rating are no interaction.
        (RankerFeedback("binary", 3.5), ([10, 12, 13], [1.0, 1.0, 1.0])),
        (RankerFeedback("rating", 3.5), ([10, 12, 13], [4.5, 3.5, 5.0])),
    ],
)
def test_a_new_users_ratings_are_read_as_the_rankers_fit_read_them(feedback, values):
    movies, interactions = feedback.interactions(
        np.array([10, 11, 12, 13]), np.array([4.5, 2.0, 3.5, 5.0])
    )
    assert movies.tolist() == values[0]
    assert interactions.tolist() == values[1]
    assert str(interactions.dtype) == "torch.float32"
    assert str(movies.dtype) == "torch.int64"


def test_feedback_settings_come_from_the_rankers_training_block():
    training = {"ease": {"feedback": "rating", "min_rating": 4.0}}
    assert feedback_of("ease", training) == RankerFeedback("rating", 4.0)
    # No block: the defaults the fit had.
    default = EaseParameters()
    assert feedback_of("ease", {}) == RankerFeedback(
        default.feedback, default.min_rating
    )
    with pytest.raises(ParameterError, match="'training.ease.feedback'"):
        feedback_of("ease", {"ease": {"feedback": "implicit"}})


def test_feedback_settings_round_trip_through_json():
    feedback = RankerFeedback("rating", 3.5)
    assert RankerFeedback.from_dict(feedback.as_dict()) == feedback
    with pytest.raises(ValueError, match="'implicit'"):
        RankerFeedback.from_dict({"feedback": "implicit", "min_rating": None})
