"""Nodes of the inference pipeline: each parses the ``inference`` block it is given."""

import logging
import re

import polars as pl
import pytest
import torch

from rating_prediction.models.variants import ALL_VARIANTS, VARIANTS
from rating_prediction.parameters import ParameterError
from rating_prediction.pipelines.inference.nodes import (
    NEW_USER_ID,
    collect_rated_pairs,
    find_similar_movies,
    pairs_from_parameters,
    predict_pair_requests,
    recommend_for_all_users,
    recommend_for_new_user,
    recommend_movies,
    select_trained_model,
    select_trained_ranker,
)
from rating_prediction.serving.prediction import PAIR_PREDICTIONS_SCHEMA, predict_pairs
from rating_prediction.serving.request_files import RequestTable
from tests.serving.fixtures import (
    EASE_VAL_NDCG,
    RANKER_TRAINING,
    answered,
    inference_parameters,
)


@pytest.fixture
def trained_models(trained_by_variant) -> list:
    """Every rating variant's (config, weights), as the node takes them."""
    return [
        trained
        for variant, trained in trained_by_variant.items()
        if VARIANTS[variant].predicts_ratings
    ]


@pytest.fixture
def rankers(trained_rankers) -> list:
    """Every ranker's (config, weights), as the node takes them."""
    return list(trained_rankers.values())


@pytest.fixture
def rated(train_ratings, val_ratings, test_ratings) -> pl.DataFrame:
    return collect_rated_pairs(train_ratings, val_ratings, test_ratings)


@pytest.fixture
def call_node(trained_models, rankers, served, rated):
    """Runs the node ``name`` on an ``inference`` parameter block."""
    nodes = {
        "select_trained_model": lambda inference: select_trained_model(
            inference, *trained_models
        ),
        "select_trained_ranker": lambda inference: select_trained_ranker(
            inference, RANKER_TRAINING, *rankers
        ),
        "pairs_from_parameters": pairs_from_parameters,
        "recommend_movies": lambda inference: recommend_movies(
            served, rated, inference
        ),
        "find_similar_movies": lambda inference: find_similar_movies(served, inference),
        "recommend_for_new_user": lambda inference: recommend_for_new_user(
            served, inference
        ),
        "recommend_for_all_users": lambda inference: recommend_for_all_users(
            served, rated, None, inference
        ),
        "predict_pair_requests": lambda inference: predict_pair_requests(
            served, None, inference
        ),
    }
    return lambda name, inference: nodes[name](inference)


class TestSelectTrainedModel:
    def test_best_variant(self, trained_models, biased_config):
        config, weights = select_trained_model(inference_parameters(), *trained_models)
        assert config == biased_config
        assert "user_bias.weight" in weights

    def test_explicit_variant(self, trained_models, inner_sigmoid_config):
        config, _ = select_trained_model(
            inference_parameters(served_variant="inner_sigmoid"), *trained_models
        )
        assert config == inner_sigmoid_config

    def test_unknown_variant(self, trained_models):
        with pytest.raises(
            ParameterError,
            match=re.escape(
                "'inference.served_variant': must be one of "
                f"{['best', *ALL_VARIANTS]}, got 'nope'"
            ),
        ):
            select_trained_model(
                inference_parameters(served_variant="nope"), *trained_models
            )


class TestSelectTrainedRanker:
    def test_best_ranker_with_its_feedback_settings(self, rankers, trained_rankers):
        choice = select_trained_ranker(
            inference_parameters(), RANKER_TRAINING, *rankers
        )
        config, weights = trained_rankers["ease"]
        assert choice.config.variant == "ease"
        assert choice.config.best_val_ndcg == EASE_VAL_NDCG
        assert choice.state_dict is weights
        assert (choice.feedback.feedback, choice.feedback.min_rating) == (
            "binary",
            None,
        )

    def test_the_feedback_settings_are_the_rankers_training_block(self, rankers):
        training = {"ease": {"feedback": "rating", "min_rating": 3.5}}
        choice = select_trained_ranker(inference_parameters(), training, *rankers)
        assert choice.feedback.as_dict() == {"feedback": "rating", "min_rating": 3.5}

    def test_none_serves_no_ranker(self, rankers, caplog):
        with caplog.at_level(logging.INFO):
            choice = select_trained_ranker(
                inference_parameters(served_ranker="none"), RANKER_TRAINING, *rankers
            )
        assert choice.config is None
        assert "No ranker served (served_ranker=none" in caplog.text

    def test_without_a_trained_ranker_the_rating_model_recommends(self, caplog):
        with caplog.at_level(logging.INFO):
            choice = select_trained_ranker(inference_parameters(), RANKER_TRAINING)
        assert choice.config is None
        assert (
            "No ranker served (served_ranker=best; trained rankers: none): the rating "
            "model answers recommend, fold-in and similar."
        ) in caplog.text

    def test_a_rating_model_is_refused(self, rankers):
        with pytest.raises(ValueError, match="'biased_mf' is not a ranker"):
            select_trained_ranker(
                inference_parameters(served_ranker="biased_mf"),
                RANKER_TRAINING,
                *rankers,
            )

    def test_an_unknown_name_is_refused_by_the_parameter_model(self, rankers):
        with pytest.raises(ParameterError, match="'inference.served_ranker'"):
            select_trained_ranker(
                inference_parameters(served_ranker="nope"), RANKER_TRAINING, *rankers
            )


class TestPairsFromParameters:
    def test_pairs(self):
        table = pairs_from_parameters(inference_parameters(pairs=[[10, 1], [999, 2]]))
        assert table.schema == pl.Schema({"userId": pl.Int64, "movieId": pl.Int64})
        assert table.rows() == [(10, 1), (999, 2)]

    def test_largest_ids(self):
        largest = 2**31 - 1
        table = pairs_from_parameters(inference_parameters(pairs=[[largest, 0]]))
        assert table.rows() == [(largest, 0)]

    def test_no_pairs(self):
        table = pairs_from_parameters(inference_parameters(pairs=[]))
        assert table.is_empty()
        assert table.schema == pl.Schema({"userId": pl.Int64, "movieId": pl.Int64})

    @pytest.mark.parametrize(
        ("bad", "key"),
        [
            ([[1, 2, 3]], "inference.pairs.0"),
            ([[1]], "inference.pairs.0.1"),
            ([5], "inference.pairs.0"),
            ([[1, 2], [3, 2.5]], "inference.pairs.1.1"),
            ([[True, 2]], "inference.pairs.0.0"),
            ([["10", 2]], "inference.pairs.0.0"),
            ([[1, 2**31]], "inference.pairs.0.1"),
            ([[-1, 2]], "inference.pairs.0.0"),
            (None, "inference.pairs"),
        ],
    )
    def test_malformed_pairs_name_the_key(self, served, bad, key):
        # A string id is a valid parameter (a data set's ids may be strings): the
        # node refuses it for a served model whose ids are integers.
        with pytest.raises(ParameterError, match=f"'{key}'"):
            pairs_from_parameters(inference_parameters(pairs=bad), served)


def test_collect_rated_pairs(train_ratings, val_ratings, test_ratings):
    rated = collect_rated_pairs(train_ratings, val_ratings, test_ratings)
    assert rated.columns == ["userId", "movieId"]
    assert (
        rated.height == train_ratings.height + val_ratings.height + test_ratings.height
    )


class TestRecommendMovies:
    def test_excludes_every_split(self, served, rated):
        inference = inference_parameters(recommend={"user_ids": [10, 40], "top_k": 10})
        recommended = recommend_movies(served, rated, inference)
        # User 10 rated 1 and 2 in train and 3 in val; user 40 rated 1 in val.
        by_user = recommended.group_by("userId").agg("movieId").sort("userId").rows()
        assert [(user, sorted(movies)) for user, movies in by_user] == [
            (10, [4]),
            (40, [2, 3, 4]),
        ]
        assert recommended.filter(pl.col("userId") == 40)["known_user"].not_().all()

    def test_top_k_per_user(self, served, rated):
        inference = inference_parameters(recommend={"user_ids": [30, 20], "top_k": 1})
        recommended = recommend_movies(served, rated, inference)
        assert recommended["userId"].to_list() == [20, 30]
        assert recommended["rank"].to_list() == [1, 1]

    def test_no_users(self, served, rated):
        inference = inference_parameters(recommend={"user_ids": []})
        assert recommend_movies(served, rated, inference).is_empty()

    @pytest.mark.parametrize(
        ("recommend", "key"),
        [
            ({"top_k": 0}, "inference.recommend.top_k"),
            ({"top_k": -1}, "inference.recommend.top_k"),
            ({"top_k": 2.5}, "inference.recommend.top_k"),
            ({"top_k": True}, "inference.recommend.top_k"),
            ({"top_k": None}, "inference.recommend.top_k"),
            ({"user_ids": 5}, "inference.recommend.user_ids"),
            ({"user_ids": None}, "inference.recommend.user_ids"),
            ({"user_ids": [10, "20"]}, "inference.recommend.user_ids.1"),
            ({"user_ids": [10, False]}, "inference.recommend.user_ids.1"),
            ({"user_ids": [2**31]}, "inference.recommend.user_ids.0"),
        ],
    )
    def test_bad_recommend_parameters_name_the_key(self, served, rated, recommend, key):
        with pytest.raises(ParameterError, match=f"'{key}'"):
            recommend_movies(served, rated, inference_parameters(recommend=recommend))


class TestEveryNodeParsesTheWholeBlock:
    """A node reads only some keys of ``inference`` but rejects any misspelt one."""

    NODES = [
        "select_trained_model",
        "select_trained_ranker",
        "pairs_from_parameters",
        "recommend_movies",
        "find_similar_movies",
        "recommend_for_new_user",
        "recommend_for_all_users",
        "predict_pair_requests",
    ]

    @pytest.mark.parametrize("node", NODES)
    def test_misspelt_top_level_key(self, call_node, node):
        inference = inference_parameters()
        inference["pair"] = inference.pop("pairs")
        with pytest.raises(ParameterError) as error:
            call_node(node, inference)
        assert (
            "unknown key 'inference.pair'; valid keys here: "
            "served_variant, served_ranker, pairs, recommend, fold_in, similar, "
            "batch_recommend, request_files"
        ) in str(error.value)
        assert "missing key 'inference.pairs'" in str(error.value)

    @pytest.mark.parametrize("node", NODES)
    def test_misspelt_nested_key(self, call_node, node):
        inference = inference_parameters()
        inference["recommend"]["topk"] = inference["recommend"].pop("top_k")
        with pytest.raises(
            ParameterError,
            match=r"unknown key 'inference.recommend.topk'; "
            r"valid keys here: user_ids, top_k",
        ):
            call_node(node, inference)

    @pytest.mark.parametrize(
        ("changes", "key"),
        [
            ({"recommend": {"top_k": 0}}, "inference.recommend.top_k"),
            ({"pairs": None}, "inference.pairs"),
            ({"recommend": {"user_ids": 5}}, "inference.recommend.user_ids"),
            ({"pairs": [[10, 2**31]]}, "inference.pairs.0.1"),
        ],
    )
    @pytest.mark.parametrize("node", NODES)
    def test_bad_value_anywhere_names_its_key(self, call_node, node, changes, key):
        with pytest.raises(ParameterError, match=f"'{key}'"):
            call_node(node, inference_parameters(**changes))


class TestFindSimilarMovies:
    def test_top_k_known_movies_with_titles(self, served):
        inference = inference_parameters(similar={"movie_ids": [1, 5, 999], "top_k": 2})
        similar = find_similar_movies(served, inference)
        # Movies 5 and 999 are unknown: no rows; 1 itself is never among its own.
        assert similar["movieId"].to_list() == [1, 1]
        assert similar["rank"].to_list() == [1, 2]
        assert 1 not in similar["similarMovieId"].to_list()
        assert set(similar["similarMovieId"]) <= {2, 3, 4}
        assert similar["title"].to_list() == [
            f"Movie {movie}" for movie in similar["similarMovieId"]
        ]
        assert similar["similarity"].is_sorted(descending=True)


class TestRecommendForNewUser:
    def test_fold_in_excludes_the_users_own_movies(self, served):
        inference = inference_parameters(
            fold_in={"ratings": [[1, 5.0], [2, 1.0]], "regularization": 1.0, "top_k": 5}
        )
        recommended = recommend_for_new_user(served, inference)
        assert set(recommended["userId"]) == {NEW_USER_ID}
        assert sorted(recommended["movieId"]) == [3, 4]

    def test_no_ratings_is_the_fallback_ranking(self, served):
        inference = inference_parameters(fold_in={"ratings": [], "top_k": 4})
        recommended = recommend_for_new_user(served, inference)
        # The fallback ranks by movie bias: 1 (0.5), 3 (0.2), 4 (0.1), 2 (-0.5).
        assert recommended["movieId"].to_list() == [1, 3, 4, 2]
        assert not recommended["known_user"].any()

    @pytest.mark.parametrize(
        ("fold_in", "key"),
        [
            ({"ratings": [[1, 6.0]]}, "inference.fold_in.ratings.0.1"),
            ({"ratings": [[1.5, 4.0]]}, "inference.fold_in.ratings.0.0"),
            ({"regularization": -1}, "inference.fold_in.regularization"),
        ],
    )
    def test_bad_parameters_name_the_key(self, served, fold_in, key):
        with pytest.raises(ParameterError, match=f"'{key}'"):
            recommend_for_new_user(served, inference_parameters(fold_in=fold_in))


class TestWithTheServedRanker:
    """The nodes with ``ranked_served``: ease answers recommendations, the fold-in and
    similar movies."""

    def test_recommendations_exclude_the_known_history_train_and_val(
        self, ranked_served, rated
    ):
        inference = inference_parameters(recommend={"user_ids": [10, 20], "top_k": 4})
        recommended = recommend_movies(ranked_served, rated, inference)
        lists = recommended.group_by("userId", maintain_order=True).agg("movieId")
        # User 10 rated 1, 2 in train and 3 in val: only 4 is left. User 20 rated 2, 3
        # in train (and 5, unseen in training, in test): 1 and 4, by their scores.
        scores = ranked_served.ranker.model.predict_all_movies(torch.tensor([1]), 5)[0]
        user_20 = sorted([1, 4], key=lambda movie: -scores[movie - 1])
        assert dict(lists.rows()) == {10: [4], 20: user_20}
        assert set(recommended["variant"]) == {"ease"}
        inference = inference_parameters(
            batch_recommend={"top_k": 4}, request_files={"batch_size": 2}
        )
        every = answered(recommend_for_all_users(ranked_served, rated, None, inference))
        assert every.filter(pl.col("userId").is_in([10, 20])).equals(recommended)

    def test_a_new_user_is_folded_in_by_the_ranker(self, ranked_served):
        inference = inference_parameters(
            fold_in={"ratings": [[1, 5.0], [3, 4.0]], "top_k": 5}
        )
        recommended = recommend_for_new_user(ranked_served, inference)
        scores = ranked_served.ranker.model.fold_in_scores(
            torch.tensor([0, 2]), torch.tensor([1.0, 1.0])
        )
        # Movies 1 and 3 are theirs; movie 5 is unseen in training.
        expected = sorted([2, 4], key=lambda movie: -scores[movie - 1])
        assert recommended["movieId"].to_list() == expected
        assert recommended["prediction"].to_list() == pytest.approx(
            [scores[movie - 1].item() for movie in expected]
        )
        assert set(recommended["userId"]) == {NEW_USER_ID}
        assert set(recommended["variant"]) == {"ease"}
        assert not recommended["known_user"].any()

    def test_a_new_user_without_ratings_gets_the_most_rated_movies(self, ranked_served):
        inference = inference_parameters(fold_in={"ratings": [], "top_k": 4})
        recommended = recommend_for_new_user(ranked_served, inference)
        # Movies 1 and 2 have two training ratings each, 3 and 4 one: ties to the
        # lower id.
        assert recommended["movieId"].to_list() == [1, 2, 3, 4]
        assert recommended["prediction"].to_list() == [2.0, 2.0, 1.0, 1.0]
        assert set(recommended["variant"]) == {"popularity"}
        assert not recommended["known_user"].any()

    def test_similar_movies_are_the_rankers(self, ranked_served):
        similar = find_similar_movies(
            ranked_served, inference_parameters(similar={"movie_ids": [1], "top_k": 3})
        )
        weights = ranked_served.ranker.model.similar_scores(0)
        expected = sorted([2, 3, 4], key=lambda movie: -weights[movie - 1])
        assert similar["similarMovieId"].to_list() == expected
        assert set(similar["variant"]) == {"ease"}


class TestRecommendForAllUsers:
    def test_every_known_user_matches_recommend_movies(self, served, rated):
        inference = inference_parameters(
            recommend={"user_ids": [10, 20, 30], "top_k": 2},
            batch_recommend={"top_k": 2, "block_size": 2},
            request_files={"batch_size": 2},
        )
        partitions = recommend_for_all_users(served, rated, None, inference)
        # Three known users, two per batch.
        assert sorted(partitions) == ["batch-00000", "batch-00001"]
        batch = answered(partitions)
        few = recommend_movies(served, rated, inference)
        assert batch.select("userId", "movieId").equals(few.select("userId", "movieId"))
        assert batch["prediction"].to_list() == pytest.approx(
            few["prediction"].to_list()
        )

    def test_request_users_in_request_order(self, served, rated):
        users = RequestTable.from_frame(pl.DataFrame({"userId": [40, 30, 30]}), "test")
        inference = inference_parameters(batch_recommend={"top_k": 1})
        batch = answered(recommend_for_all_users(served, rated, users, inference))
        # One list per request row, duplicates included; 40 is unseen in training.
        assert batch["userId"].to_list() == [40, 30, 30]
        assert batch["known_user"].to_list() == [False, True, True]

    def test_no_request_users_is_one_empty_partition(self, served, rated):
        users = RequestTable.from_frame(pl.DataFrame(schema={"userId": pl.Int64}), "")
        partitions = recommend_for_all_users(
            served, rated, users, inference_parameters()
        )
        assert list(partitions) == ["batch-00000"]
        assert partitions["batch-00000"]().is_empty()


class TestPredictPairRequests:
    def test_batches_in_request_order(self, served):
        requests = RequestTable.from_frame(
            pl.DataFrame({"userId": [20, 10, 999, 10, 30], "movieId": [2, 1, 1, 1, 4]}),
            "test",
        )
        inference = inference_parameters(request_files={"batch_size": 2})
        partitions = predict_pair_requests(served, requests, inference)
        assert sorted(partitions) == ["batch-00000", "batch-00001", "batch-00002"]
        one_at_a_time = pl.concat(
            predict_pairs(served, pair)
            for pair in requests.table.collect().iter_slices(1)
        )
        assert answered(partitions).equals(one_at_a_time)

    def test_no_file_is_one_empty_partition(self, served):
        partitions = predict_pair_requests(served, None, inference_parameters())
        assert list(partitions) == ["batch-00000"]
        empty = partitions["batch-00000"]()
        assert empty.is_empty()
        assert empty.schema == PAIR_PREDICTIONS_SCHEMA

    def test_partition_names_sort_in_request_order(self, served):
        requests = RequestTable.from_frame(
            pl.DataFrame({"userId": range(12), "movieId": [1] * 12}), "test"
        )
        inference = inference_parameters(request_files={"batch_size": 1})
        names = list(predict_pair_requests(served, requests, inference))
        assert names == sorted(names)
        assert names[-1] == "batch-00011"
