"""Every answer says when the model fell back (its ``fallback`` column): an unknown user
or movie, a user whose own ratings could not be folded in, a movie with no similar
ones; null when the model answered from what it learnt or from the user's ratings.

On the fixtures users 10, 20, 30 and movies 1-4 are known; 999 and 777 are not."""

import numpy as np
import pandas as pd
import pytest

from rating_prediction.serving.fallback import (
    NO_SIMILAR_MOVIES,
    NOT_FOLDED_IN,
    UNKNOWN_MOVIE,
    UNKNOWN_USER,
    pair_fallbacks,
    user_fallbacks,
)
from rating_prediction.serving.requests import answer_request


def test_pairs_name_what_was_unknown(served):
    request = pd.DataFrame({"userId": [10, 999, 10, 999], "movieId": [1, 1, 777, 777]})
    answer = answer_request(served, request)
    assert answer["fallback"].tolist() == [
        None,
        UNKNOWN_USER,
        UNKNOWN_MOVIE,
        f"{UNKNOWN_USER}; {UNKNOWN_MOVIE}",
    ]


@pytest.mark.parametrize("model", ["served", "ranked_served"])
def test_a_fold_in_with_no_known_movie_says_nothing_was_folded_in(model, request):
    served = request.getfixturevalue(model)
    # 888 rates known movies and is folded in; 999 rates only an unknown one.
    asked = pd.DataFrame(
        {
            "userId": [888, 888, 999, 888, 999],
            "movieId": [1, 2, 777, 3, 3],
            "rating": [5.0, 1.0, 4.0, None, None],
        }
    )
    predicted = answer_request(served, asked)
    assert predicted["userId"].tolist() == [888, 999]
    assert predicted["fallback"].tolist() == [None, NOT_FOLDED_IN]
    unknown = answer_request(served, pd.DataFrame({"userId": [999], "movieId": [3]}))
    # Nothing folded in: exactly the unknown user's answer, and it says so.
    assert predicted["prediction"].iloc[1] == unknown["prediction"].iloc[0]
    assert predicted["prediction"].iloc[0] != unknown["prediction"].iloc[0]

    recommended = answer_request(served, asked, {"task": "recommend", "k": 2})
    reasons = recommended.groupby("userId")["fallback"].agg(lambda r: set(r.tolist()))
    assert reasons.to_dict() == {888: {None}, 999: {NOT_FOLDED_IN}}


def test_recommendations_to_an_unknown_user_say_so(ranked_served):
    asked = pd.DataFrame({"userId": [10, 999]})
    answer = answer_request(ranked_served, asked, {"task": "recommend", "k": 2})
    by_user = answer.groupby("userId")
    assert by_user["fallback"].agg(lambda r: set(r.tolist())).to_dict() == {
        10: {None},
        999: {UNKNOWN_USER},
    }
    assert by_user["variant"].agg(lambda r: set(r.tolist())).to_dict() == {
        10: {"ease"},
        999: {"popularity"},
    }


@pytest.mark.parametrize("model", ["served", "ranked_served"])
def test_similar_answers_an_unknown_movie_with_a_row_saying_so(model, request):
    served = request.getfixturevalue(model)
    answer = answer_request(
        served, pd.DataFrame({"movieId": [1, 777]}), {"task": "similar", "k": 2}
    )
    assert answer["movieId"].tolist() == [1, 1, 777]
    assert answer["fallback"].tolist()[:2] == [None, None]
    assert answer["fallback"].iloc[2] == UNKNOWN_MOVIE
    assert pd.isna(answer["similarMovieId"].iloc[2])
    assert answer["rank"].tolist()[:2] == [1, 2]  # still integers


def test_a_movie_mapped_but_unseen_in_training_has_no_similar_movies(served):
    # Movie 5 is in the mapping (val / test) but not in train.
    answer = answer_request(
        served, pd.DataFrame({"movieId": [5]}), {"task": "similar", "k": 2}
    )
    assert answer["fallback"].tolist() == [UNKNOWN_MOVIE]


def test_reasons_combine_per_user_and_movie():
    users = user_fallbacks(
        known=np.array([True, False, False, False]),
        folded_in=np.array([False, True, False, False]),
        brought_ratings=np.array([False, True, True, False]),
    )
    assert users.tolist() == [None, None, NOT_FOLDED_IN, UNKNOWN_USER]
    pairs = pair_fallbacks(users, np.array([False, True, False, True]))
    assert pairs.tolist() == [
        UNKNOWN_MOVIE,
        None,
        f"{NOT_FOLDED_IN}; {UNKNOWN_MOVIE}",
        UNKNOWN_USER,
    ]
    assert NO_SIMILAR_MOVIES != UNKNOWN_MOVIE
