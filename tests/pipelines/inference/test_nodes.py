"""Nodes of the inference pipeline: each parses the ``inference`` block it is given."""

import pandas as pd
import polars as pl
import pytest

from rating_prediction.parameters import ParameterError
from rating_prediction.pipelines.inference.nodes import (
    collect_rated_pairs,
    pairs_from_parameters,
    recommend_movies,
    select_trained_model,
    serve_pair_predictions,
)

from .conftest import inference_parameters


@pytest.fixture
def trained_models(
    inner_sigmoid_config, inner_sigmoid_weights, biased_config, biased_weights
) -> list:
    return [inner_sigmoid_config, inner_sigmoid_weights, biased_config, biased_weights]


@pytest.fixture
def rated(train_ratings, val_ratings, test_ratings) -> pl.DataFrame:
    return collect_rated_pairs(train_ratings, val_ratings, test_ratings)


@pytest.fixture
def call_node(trained_models, served, rated):
    """Runs the node ``name`` on an ``inference`` parameter block."""
    nodes = {
        "select_trained_model": lambda inference: select_trained_model(
            inference, *trained_models
        ),
        "pairs_from_parameters": pairs_from_parameters,
        "recommend_movies": lambda inference: recommend_movies(
            served, rated, inference
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
            match=r"'inference.served_variant': must be one of "
            r"\['best', 'inner_sigmoid', 'biased_mf'\], got 'nope'",
        ):
            select_trained_model(
                inference_parameters(served_variant="nope"), *trained_models
            )


class TestPairsFromParameters:
    def test_pairs(self):
        table = pairs_from_parameters(inference_parameters(pairs=[[10, 1], [999, 2]]))
        assert table.schema == pl.Schema({"userId": pl.Int64, "movieId": pl.Int64})
        assert table.rows() == [(10, 1), (999, 2)]

    def test_largest_int64_ids(self):
        largest = 2**63 - 1
        table = pairs_from_parameters(inference_parameters(pairs=[[largest, -1]]))
        assert table.rows() == [(largest, -1)]

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
            ([[1, 2**63]], "inference.pairs.0.1"),
            ([[-(2**63) - 1, 2]], "inference.pairs.0.0"),
            (None, "inference.pairs"),
        ],
    )
    def test_malformed_pairs_name_the_key(self, bad, key):
        with pytest.raises(ParameterError, match=f"'{key}'"):
            pairs_from_parameters(inference_parameters(pairs=bad))


class TestServePairPredictions:
    def test_pandas_in_pandas_out(self, served):
        request = pd.DataFrame({"userId": [10, 20, 30, 999], "movieId": [1, 2, 4, 1]})
        response = serve_pair_predictions(request, served)
        assert isinstance(response, pd.DataFrame)
        assert list(response.columns) == [
            "userId",
            "movieId",
            "prediction",
            "known_user",
            "known_movie",
        ]
        assert response["known_user"].tolist() == [True, True, True, False]
        assert response["prediction"].between(0.5, 5.0).all()

    def test_empty_request(self, served):
        response = serve_pair_predictions(
            pd.DataFrame({"userId": [], "movieId": []}), served
        )
        assert response.empty
        assert "prediction" in response.columns

    def test_pandas_nulls(self, served):
        # pandas turns a missing int into NaN; polars reads it back as a null.
        request = pd.DataFrame({"userId": [10, None], "movieId": [1, 2]})
        with pytest.raises(ValueError, match="'userId' has 1 missing value"):
            serve_pair_predictions(request, served)

    def test_pandas_strings(self, served):
        request = pd.DataFrame({"userId": ["10"], "movieId": [1]})
        with pytest.raises(ValueError, match="'userId' must hold integer ids"):
            serve_pair_predictions(request, served)


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
            ({"user_ids": [2**63]}, "inference.recommend.user_ids.0"),
        ],
    )
    def test_bad_recommend_parameters_name_the_key(self, served, rated, recommend, key):
        with pytest.raises(ParameterError, match=f"'{key}'"):
            recommend_movies(served, rated, inference_parameters(recommend=recommend))


class TestEveryNodeParsesTheWholeBlock:
    """A node reads only some keys of ``inference`` but rejects any misspelt one."""

    NODES = ["select_trained_model", "pairs_from_parameters", "recommend_movies"]

    @pytest.mark.parametrize("node", NODES)
    def test_misspelt_top_level_key(self, call_node, node):
        inference = inference_parameters()
        inference["pair"] = inference.pop("pairs")
        with pytest.raises(ParameterError) as error:
            call_node(node, inference)
        assert (
            "unknown key 'inference.pair'; valid keys here: "
            "served_variant, pairs, recommend"
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
            ({"pairs": [[10, 2**63]]}, "inference.pairs.0.1"),
        ],
    )
    @pytest.mark.parametrize("node", NODES)
    def test_bad_value_anywhere_names_its_key(self, call_node, node, changes, key):
        with pytest.raises(ParameterError, match=f"'{key}'"):
            call_node(node, inference_parameters(**changes))
