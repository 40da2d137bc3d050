"""The served model's popularity blend (``inference.recommend.popularity_weight``): the
evaluation's ``<variant>_popularity_blend`` ranking, served.

A biased MF of 30 users and 40 movies (movies 36-40 unseen in training), its global
mean high enough that many predictions clip at 5 stars (ties), and skewed, often equal,
training-rating counts.
"""

import dataclasses
import json

import numpy as np
import polars as pl
import pytest

from rating_prediction.evaluation.ranking import model_scorer
from rating_prediction.serving.artifacts import load_served_model, save_served_model
from rating_prediction.serving.recommend import (
    recommend_all,
    recommend_users,
)
from rating_prediction.serving.requests import answer_request
from tests.serving.blend_fixtures import (
    N_MOVIES,
    N_TRAIN_MOVIES,
    N_USERS,
    K,
    blended,
    evaluation_top_k,
    served_top_k,
)

WEIGHTS = [0.3, 0.5, 0.9]


@pytest.fixture(scope="module")
def all_users() -> np.ndarray:
    return np.arange(1, N_USERS + 1)


def test_the_fixture_has_ties(blend_served, train):
    scores = model_scorer(blend_served.model, np.arange(N_TRAIN_MOVIES))(
        np.arange(N_USERS)
    )
    assert (scores == 5.0).sum() > N_USERS
    counts = train.group_by("movieId").len()["len"]
    assert counts.n_unique() < counts.len()


class TestWeightZero:
    def test_few_users_get_the_models_own_ranking(self, blend_served, train):
        expected = evaluation_top_k(
            blend_served, train, lambda c: model_scorer(blend_served.model, c)
        )
        users = list(range(1, N_USERS + 1))
        for weight in (0, 0.0):
            served = recommend_users(blend_served, users, train, K, weight)
            assert served_top_k(served) == expected
            assert served.equals(recommend_users(blend_served, users, train, K))

    def test_batch_output_is_unchanged(self, blend_served, train, all_users):
        default = recommend_all(blend_served, all_users, blend_served.rated, K)
        zero = recommend_all(
            blend_served, all_users, blend_served.rated, K, popularity_weight=0
        )
        assert zero.equals(default)
        # The model's own ranking, ties (the many predictions clipped at 5 stars) to
        # the lower movie id, as the few-users path and the evaluation break them.
        assert served_top_k(zero) == evaluation_top_k(
            blend_served, train, lambda c: model_scorer(blend_served.model, c)
        )
        assert served_top_k(zero) == served_top_k(
            recommend_users(blend_served, list(range(1, N_USERS + 1)), train, K)
        )


@pytest.mark.parametrize("weight", WEIGHTS)
class TestBlendIsTheEvaluations:
    def test_batch(self, blend_served, train, all_users, weight):
        served = recommend_all(
            blend_served,
            all_users,
            blend_served.rated,
            K,
            block_size=7,
            popularity_weight=weight,
        )
        expected = evaluation_top_k(
            blend_served, train, blended(blend_served, train, weight)
        )
        assert served_top_k(served) == expected
        for other in (0.0, 1.0):  # neither the model's order nor popularity's
            unblended = recommend_all(
                blend_served, all_users, blend_served.rated, K, popularity_weight=other
            )
            assert served_top_k(unblended) != expected
        # The order is the blend's; `prediction` stays the predicted rating.
        first = served.filter(pl.col("userId") == 1)
        model = model_scorer(blend_served.model, np.arange(N_MOVIES))(np.array([0]))
        assert first["prediction"].to_list() == pytest.approx(
            model[0, first["movieId"].to_numpy() - 1].tolist()
        )

    def test_few_users(self, blend_served, train, weight):
        served = recommend_users(blend_served, [5, 2, 5], train, K, weight)
        expected = evaluation_top_k(
            blend_served, train, blended(blend_served, train, weight)
        )
        assert served_top_k(served) == [row for row in expected if row[0] in (2, 5)]

    def test_pyfunc_recommend_task(self, blend_served, train, all_users, weight):
        request = pd_request(all_users)
        answer = answer_request(
            blend_served,
            request,
            {"task": "recommend", "k": K, "popularity_weight": weight},
        )
        expected = evaluation_top_k(
            blend_served, train, blended(blend_served, train, weight)
        )
        assert list(answer[["userId", "rank", "movieId"]].itertuples(index=False)) == [
            tuple(row) for row in expected
        ]


def pd_request(user_ids):
    return pl.DataFrame({"userId": user_ids, "movieId": user_ids}).to_pandas()


def test_weight_one_is_the_popularity_order(blend_served, train, all_users):
    served = recommend_all(
        blend_served, all_users, blend_served.rated, K, popularity_weight=1.0
    )
    counts = dict(train.group_by("movieId").len().iter_rows())
    rated = set(train.select("userId", "movieId").iter_rows())
    for user in all_users:
        unrated = [m for m in sorted(counts) if (user, m) not in rated]
        by_popularity = sorted(unrated, key=lambda m: (-counts[m], m))[:K]
        mine = served.filter(pl.col("userId") == user)
        assert mine["movieId"].to_list() == by_popularity
    # User 1 rated every training movie but 2 and 3: only those are left.
    left = sorted(
        (movie for movie in (2, 3) if movie in counts), key=lambda m: (-counts[m], m)
    )
    assert served.filter(pl.col("userId") == 1)["movieId"].to_list() == left


def test_pyfunc_defaults_to_the_served_weight(blend_served, all_users):
    request = pd_request(all_users)
    served = dataclasses.replace(blend_served, popularity_weight=0.5)
    default = answer_request(served, request, {"task": "recommend", "k": K})
    explicit = answer_request(
        blend_served, request, {"task": "recommend", "k": K, "popularity_weight": 0.5}
    )
    assert default.equals(explicit)
    unblended = answer_request(
        served, request, {"task": "recommend", "k": K, "popularity_weight": 0.0}
    )
    assert not unblended.equals(default)


@pytest.mark.parametrize("weight", [-0.1, 1.5, "a", True, None])
def test_pyfunc_refuses_bad_weights(blend_served, weight):
    with pytest.raises(ValueError, match="popularity_weight"):
        answer_request(
            blend_served,
            pd_request([1]),
            {"task": "recommend", "popularity_weight": weight},
        )


def test_a_served_model_without_counts_is_refused(blend_served, all_users):
    served = dataclasses.replace(blend_served, movie_rating_counts=None)
    with pytest.raises(ValueError, match="training-rating counts"):
        recommend_all(served, all_users, served.rated, K, popularity_weight=0.5)


class TestServedFolder:
    def test_keeps_the_counts_and_the_weight(self, blend_served, train, tmp_path):
        served = dataclasses.replace(blend_served, popularity_weight=0.25)
        save_served_model(served, tmp_path / "served_model")
        loaded = load_served_model(tmp_path / "served_model")
        counts = np.bincount(train["movieIdMapped"].to_numpy(), minlength=N_MOVIES)
        assert loaded.movie_rating_counts.tolist() == counts.tolist()
        assert loaded.popularity_weight == 0.25
        users = np.arange(1, N_USERS + 1)
        assert recommend_all(
            loaded, users, loaded.rated, K, popularity_weight=0.5
        ).equals(recommend_all(served, users, served.rated, K, popularity_weight=0.5))

    def test_an_older_folder_is_refused_clearly(self, blend_served, tmp_path):
        folder = tmp_path / "served_model"
        save_served_model(blend_served, folder)
        # What format version 1 wrote: no counts, no weight.
        movies = pl.read_parquet(folder / "movies.parquet").drop("train_ratings")
        movies.write_parquet(folder / "movies.parquet")
        (folder / "serving.json").write_text(
            json.dumps({"format_version": 1, "split_fingerprint": ""})
        )
        with pytest.raises(ValueError, match=r"format version 1, not 2.*rebuild"):
            load_served_model(folder)
