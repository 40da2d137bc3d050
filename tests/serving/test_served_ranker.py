"""The served model with a ranker: EASE^R fitted on a small synthetic set answers
recommend (as the ranking evaluation ranks), fold-in and similar; the rating model
still answers predict; the folder holds the ranker without a pickle."""

import json
import shutil

import numpy as np
import pandas as pd
import polars as pl
import pytest
import torch

from rating_prediction.data.schema import MOVIELENS_SCALE
from rating_prediction.evaluation.names import RANKING_BASELINES
from rating_prediction.evaluation.ranking import model_scorer, ranked_lists
from rating_prediction.models.config import ModelConfig, build_model
from rating_prediction.models.scoring import top_k_indices
from rating_prediction.parameters import EaseParameters
from rating_prediction.pipelines.evaluation.nodes import build_ranking_task
from rating_prediction.pipelines.inference.nodes import (
    collect_rated_pairs,
    recommend_for_new_user,
)
from rating_prediction.serving.artifacts import (
    RANKER_FILES,
    load_served_model,
    read_answered_by,
    save_served_model,
)
from rating_prediction.serving.bundle import assemble_served_model
from rating_prediction.serving.prediction import predict_pairs
from rating_prediction.serving.ranker import RankerChoice, RankerFeedback
from rating_prediction.serving.recommend import POPULARITY, recommend_users
from rating_prediction.serving.requests import answer_request
from rating_prediction.serving.similar import similar_movies
from rating_prediction.training.ease import fit_variant
from tests.fakes import fake_movies, learnable_splits, training_data
from tests.serving.fixtures import inference_parameters

K = 10
# Fewer items than movies: the last-rated movies get no EASE weights.
MAX_ITEMS = 50
NEW_USER = 999_999
EVALUATION = {
    "prediction_batch_size": 10**6,
    "bias_baseline": {"reg_user": 15, "reg_movie": 10, "n_epochs": 10},
    "ranking": {"k": K},
}


@pytest.fixture(scope="module")
def splits() -> dict[str, pl.DataFrame]:
    return learnable_splits()


@pytest.fixture(scope="module")
def ease(splits) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    options = EaseParameters(
        regularization=20.0, feedback="binary", max_items=MAX_ITEMS
    )
    weights, config, _ = fit_variant("ease", options, training_data(splits))
    return config.model_copy(update={"best_val_ndcg": 0.25}), weights


def assemble(splits, ease, **changes):
    """A served model of a random biased MF, with ``ease`` as its ranker."""
    n_users, n_movies = splits["user_mapping"].height, splits["movie_mapping"].height
    rating_config = {
        "variant": "biased_mf",
        "n_users": n_users,
        "n_movies": n_movies,
        "model_kwargs": {"embedding_dim": 4, "global_mean": 3.5},
        "best_val_loss": 0.9,
    }
    torch.manual_seed(0)
    arguments = {
        "user_mapping": splits["user_mapping"],
        "movie_mapping": splits["movie_mapping"],
        "train_ratings": splits["train_ratings"],
        "val_ratings": splits["val_ratings"],
        "movies": fake_movies(splits["movie_mapping"]),
        "ranker": RankerChoice(*ease, RankerFeedback()),
    }
    return assemble_served_model(
        rating_config, build_model(rating_config).state_dict(), **arguments | changes
    )


@pytest.fixture(scope="module")
def served(splits, ease):
    return assemble(splits, ease)


@pytest.fixture(scope="module")
def ease_model(served):
    return served.ranker.model


def evaluated_top_k(splits, model) -> dict:
    """Each ranked user's top-K movieIds as the ranking evaluation lists them: the
    evaluation node's task (candidates, the known history train + val) and the very
    lists its metrics score (evaluation/ranking.py), by original userId."""
    task = build_ranking_task(
        splits["train_ratings"],
        splits["val_ratings"],
        splits["test_ratings"],
        EVALUATION,
        MOVIELENS_SCALE.to_dict(),
    )
    scorer = model_scorer(model, task.candidates)
    user_ids = splits["user_mapping"].sort("userIdMapped")["userId"].to_numpy()
    movie_ids = splits["movie_mapping"].sort("movieIdMapped")["movieId"].to_numpy()
    evaluated = {}
    for _, users, top, valid in ranked_lists(task, scorer, K, 10**6):
        for user, row, real in zip(users, top, valid):
            evaluated[user_ids[user]] = movie_ids[task.candidates[row[real]]].tolist()
    return evaluated


def lists(recommended: pl.DataFrame | pd.DataFrame) -> dict:
    frame = (
        pl.from_pandas(recommended)
        if isinstance(recommended, pd.DataFrame)
        else recommended
    )
    return {
        user: group.sort("rank")["movieId"].to_list()
        for (user,), group in frame.group_by("userId")
    }


class TestRecommend:
    def test_served_lists_are_the_evaluated_lists(self, served, ease_model, splits):
        expected = evaluated_top_k(splits, ease_model)
        assert len(expected) > 20
        rated = collect_rated_pairs(
            splits["train_ratings"], splits["val_ratings"], splits["test_ratings"]
        )
        recommended = recommend_users(served, list(expected), rated, K)
        assert lists(recommended) == expected
        assert set(recommended["variant"]) == {"ease"}
        assert recommended["known_user"].all()
        # The pyfunc answers the same lists.
        request = pd.DataFrame({"userId": list(expected), "movieId": 10})
        answer = answer_request(served, request, {"task": "recommend", "k": K})
        assert lists(answer) == expected

    def test_a_test_rating_may_be_recommended_but_never_the_known_history(
        self, served, splits
    ):
        # The ranker excludes train + val, as the evaluation does: the test split is
        # what it is evaluated on.
        user_ids = splits["user_mapping"]["userId"].to_list()
        recommended = recommend_users(served, user_ids, pl.DataFrame(), 30)
        pairs = set(recommended.select("userId", "movieId").rows())
        history = pl.concat([splits["train_ratings"], splits["val_ratings"]])
        assert pairs.isdisjoint(history.select("userId", "movieId").rows())
        assert not pairs.isdisjoint(
            splits["test_ratings"].select("userId", "movieId").rows()
        )

    def test_a_user_the_ranker_does_not_know_gets_the_most_rated_movies(
        self, served, splits
    ):
        assert POPULARITY in RANKING_BASELINES
        recommended = recommend_users(served, [NEW_USER], pl.DataFrame(), K)
        counts = (
            splits["train_ratings"]
            .group_by("movieId")
            .len()
            .sort(["len", "movieId"], descending=[True, False])
        )
        assert recommended["movieId"].to_list() == counts["movieId"].head(K).to_list()
        assert recommended["prediction"].to_list() == counts["len"].head(K).to_list()
        assert set(recommended["variant"]) == {POPULARITY}
        assert not recommended["known_user"].any()

    def test_predict_stays_the_rating_models(self, served, splits, ease):
        pairs = splits["test_ratings"].select("userId", "movieId").head(20)
        no_ranker = assemble(splits, ease, ranker=None)
        assert predict_pairs(served, pairs).equals(predict_pairs(no_ranker, pairs))
        assert served.answered_by == {
            "predict": "biased_mf",
            "recommend": "ease",
            "similar": "ease",
            "fold_in": "ease",
        }

    def test_a_ranker_that_scores_few_movies_ranks_them_as_the_evaluation(self, splits):
        # 20 of the 60 movies have weights: the top K runs over those columns alone,
        # with the same lists, also when K exceeds what a user has left.
        options = EaseParameters(regularization=20.0, max_items=20)
        weights, config, _ = fit_variant("ease", options, training_data(splits))
        served = assemble(splits, (config, weights))
        expected = evaluated_top_k(splits, served.ranker.model)
        rated = collect_rated_pairs(
            splits["train_ratings"], splits["val_ratings"], splits["test_ratings"]
        )
        assert lists(recommend_users(served, list(expected), rated, K)) == expected
        every = lists(recommend_users(served, list(expected), rated, 30))
        kept = set(served.movies.ids[served.ranker.model.items.numpy()])
        for user, movies in every.items():
            assert movies[:K] == expected[user]
            assert 0 < len(movies) <= 20 and set(movies) <= kept

    def test_known_and_unknown_users_in_one_block_list_as_each_alone(
        self, served, splits
    ):
        # The capped ranker scores its known users on its kept movies only; the
        # unknown user's most-rated list needs every column, in the same block.
        known = splits["user_mapping"]["userId"].to_list()[:3]
        users = [known[0], NEW_USER, *known[1:]]
        together = recommend_users(served, users, pl.DataFrame(), K)
        assert set(together["variant"]) == {"ease", POPULARITY}
        for user in users:
            alone = recommend_users(served, [user], pl.DataFrame(), K)
            assert alone.height == K
            assert together.filter(pl.col("userId") == user).equals(alone)


class TestFoldIn:
    def test_a_user_folded_in_from_their_own_ratings_scores_as_their_row(
        self, served, ease_model, splits
    ):
        # EASE was fitted on train (binary feedback): a new user who brings a known
        # user's training ratings gets that user's x B, their rated movies excluded.
        user = 5
        own = splits["train_ratings"].filter(pl.col("userIdMapped") == user)
        request = pd.DataFrame(
            {
                "userId": NEW_USER,
                "movieId": own["movieId"].to_numpy(),
                "rating": own["rating"].to_numpy(),
            }
        )
        answer = answer_request(served, request, {"task": "recommend", "k": K})
        scores = ease_model.predict_all_movies(
            torch.tensor([user]), ease_model.n_movies
        )
        scores[0, own["movieIdMapped"].to_list()] = -torch.inf
        scores[0, torch.from_numpy(~served.movies.seen)] = -torch.inf
        best = top_k_indices(scores, K)[0].numpy()
        movie_ids = served.movies.ids
        assert answer["movieId"].tolist() == movie_ids[best].tolist()
        np.testing.assert_allclose(
            answer["prediction"], scores[0, best].double().numpy(), rtol=1e-6
        )
        assert set(answer["variant"]) == {"ease"}
        assert not answer["known_user"].any()

    def test_ratings_below_min_rating_are_dropped_and_values_kept(
        self, splits, ease, ease_model
    ):
        served = assemble(
            splits,
            ease,
            ranker=RankerChoice(*ease, RankerFeedback("rating", 3.0)),
        )
        request = pd.DataFrame(
            {"userId": NEW_USER, "movieId": [10, 11, 12], "rating": [4.0, 2.5, 5.0]}
        )
        answer = answer_request(served, request, {"task": "recommend", "k": K})
        scores = ease_model.fold_in_scores(
            torch.tensor([0, 2]), torch.tensor([4.0, 5.0])
        )
        scores[[0, 1, 2]] = -torch.inf  # every movie the user rated
        best = top_k_indices(scores[None, :], K)[0].numpy()
        assert answer["movieId"].tolist() == served.movies.ids[best].tolist()

    def test_the_pipelines_new_user_is_no_known_user(self, served, splits):
        # Its id (-1) is no user's, not even the last one's (who is known here).
        assert served.ranker.users.seen[-1]
        fold_in = {"ratings": [], "top_k": K}
        recommended = recommend_for_new_user(
            served, inference_parameters(fold_in=fold_in)
        )
        assert set(recommended["variant"]) == {POPULARITY}
        assert not recommended["known_user"].any()

    def test_the_rating_scale_is_checked(self, served):
        request = pd.DataFrame({"userId": NEW_USER, "movieId": [10], "rating": [9.0]})
        with pytest.raises(ValueError, match="Fold-in ratings must lie in"):
            answer_request(served, request, {"task": "recommend"})


class TestSimilar:
    def test_similar_movies_are_the_rankers(self, served, ease_model):
        movie = 12  # mapped 2
        similar = similar_movies(served, [movie], 5)
        scores = ease_model.similar_scores(2)
        best = top_k_indices(scores[None, :], 5)[0].numpy()
        assert similar["similarMovieId"].to_list() == served.movies.ids[best].tolist()
        np.testing.assert_allclose(similar["similarity"], scores[best].double().numpy())
        assert movie not in similar["similarMovieId"].to_list()
        assert set(similar["variant"]) == {"ease"}

    def test_a_movie_without_weights_has_no_similar_movies(self, served, ease_model):
        unweighted = np.setdiff1d(
            np.flatnonzero(served.movies.seen), ease_model.items.numpy()
        )
        assert unweighted.size
        movie = served.movies.ids[unweighted[0]]
        assert similar_movies(served, [movie], 5).is_empty()
        # ... and is never recommended as one.
        similar = similar_movies(served, served.movies.known_ids.tolist(), 50)
        assert not set(similar["similarMovieId"]) & set(served.movies.ids[unweighted])


class TestWithoutRanker:
    def test_the_rating_model_answers_every_task_as_before(self, splits, ease):
        served = assemble(splits, ease, ranker=None)
        assert served.ranker is None
        assert set(served.answered_by.values()) == {"biased_mf"}
        rated = collect_rated_pairs(
            splits["train_ratings"], splits["val_ratings"], splits["test_ratings"]
        )
        recommended = recommend_users(served, [1, 2, NEW_USER], rated, K)
        assert set(recommended["variant"]) == {"biased_mf"}
        similar = similar_movies(served, [10], 3)
        assert similar["variant"].to_list() == ["biased_mf"] * 3

    def test_a_ranker_needs_the_val_split(self, splits, ease):
        with pytest.raises(ValueError, match="needs val_ratings"):
            assemble(splits, ease, val_ratings=None)


class TestSavedFolder:
    @pytest.fixture(scope="class")
    def folder(self, served, tmp_path_factory):
        folder = tmp_path_factory.mktemp("served") / "served_model"
        save_served_model(served, folder)
        return folder

    def test_the_ranker_is_saved_as_safetensors_and_json(self, folder):
        files = {
            str(path.relative_to(folder))
            for path in folder.rglob("*")
            if path.is_file()
        }
        assert set(RANKER_FILES) <= files
        for path in folder.rglob("*"):
            if path.is_file():
                assert not path.read_bytes().startswith(b"\x80"), path  # no pickle
        serving = json.loads((folder / "serving.json").read_text())
        assert serving["format_version"] == 4
        assert serving["answered_by"]["recommend"] == "ease"
        assert serving["ranker_feedback"] == {"feedback": "binary", "min_rating": None}
        config = json.loads((folder / "ranker" / "config.json").read_text())
        assert (config["variant"], config["best_val_ndcg"]) == ("ease", 0.25)
        assert read_answered_by(folder) == {
            "predict": "biased_mf",
            "recommend": "ease",
            "similar": "ease",
            "fold_in": "ease",
        }

    def test_a_loaded_model_answers_as_the_saved_one(self, folder, served, splits):
        loaded = load_served_model(folder)
        assert loaded.answered_by == served.answered_by
        assert loaded.ranker.feedback == served.ranker.feedback
        users = splits["user_mapping"]["userId"].to_list() + [NEW_USER]
        assert recommend_users(loaded, users, pl.DataFrame(), K).equals(
            recommend_users(served, users, pl.DataFrame(), K)
        )
        movies = served.movies.known_ids.tolist()
        assert similar_movies(loaded, movies, 5).equals(
            similar_movies(served, movies, 5)
        )
        request = pd.DataFrame(
            {"userId": NEW_USER, "movieId": [10, 11, 30], "rating": [4.0, 2.5, 5.0]}
        )
        params = {"task": "recommend", "k": K}
        pd.testing.assert_frame_equal(
            answer_request(loaded, request, params),
            answer_request(served, request, params),
        )

    @pytest.mark.parametrize("name", RANKER_FILES)
    def test_a_missing_ranker_file_is_named(self, folder, tmp_path, name):
        copy = shutil.copytree(folder, tmp_path / "copy")
        (copy / name).unlink()
        with pytest.raises(ValueError, match=f"{name}.*rebuild the served model"):
            load_served_model(copy)

    def test_a_folder_from_before_the_ranker_loads_with_the_rating_model(
        self, splits, ease, tmp_path
    ):
        served = assemble(splits, ease, ranker=None)
        save_served_model(served, tmp_path / "served_model")
        serving_file = tmp_path / "served_model" / "serving.json"
        serving = json.loads(serving_file.read_text())
        assert serving["format_version"] == 2
        # What the project wrote before serving rankers: no answered_by.
        del serving["answered_by"]
        serving_file.write_text(json.dumps(serving))
        loaded = load_served_model(tmp_path / "served_model")
        assert loaded.ranker is None
        assert read_answered_by(tmp_path / "served_model") == dict.fromkeys(
            ("predict", "recommend", "similar", "fold_in"), "biased_mf"
        )
