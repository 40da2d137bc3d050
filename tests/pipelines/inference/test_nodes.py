"""Nodes of the inference pipeline."""

import pandas as pd
import polars as pl
import pytest

from rating_prediction.pipelines.inference.nodes import (
    build_served_model,
    collect_rated_pairs,
    pairs_from_parameters,
    predict_pair_ratings,
    recommend_movies,
    select_trained_model,
    serve_pair_predictions,
)

from .conftest import GLOBAL_MEAN, MOVIE_BIAS


@pytest.fixture
def trained_models(
    inner_sigmoid_config, inner_sigmoid_weights, biased_config, biased_weights
) -> list:
    return [inner_sigmoid_config, inner_sigmoid_weights, biased_config, biased_weights]


class TestSelectTrainedModel:
    def test_best_variant(self, trained_models, biased_config):
        config, weights = select_trained_model("best", *trained_models)
        assert config == biased_config
        assert "user_bias.weight" in weights

    def test_explicit_variant(self, trained_models, inner_sigmoid_config):
        config, _ = select_trained_model("inner_sigmoid", *trained_models)
        assert config == inner_sigmoid_config

    def test_unknown_variant(self, trained_models):
        with pytest.raises(ValueError, match="valid values: best, inner_sigmoid"):
            select_trained_model("nope", *trained_models)


def test_build_served_model(biased_config, biased_weights, served_inputs):
    served = build_served_model(
        config=biased_config, weights=biased_weights, **served_inputs
    )
    assert served.known_users.height == 3
    assert served.known_movies.height == 4


class TestPairsFromParameters:
    def test_pairs(self):
        table = pairs_from_parameters([[10, 1], [999, 2]])
        assert table.schema == pl.Schema({"userId": pl.Int64, "movieId": pl.Int64})
        assert table.rows() == [(10, 1), (999, 2)]

    def test_no_pairs(self):
        assert pairs_from_parameters([]).is_empty()

    @pytest.mark.parametrize("bad", [[[1, 2, 3]], [[1]], [5]])
    def test_malformed_pairs(self, bad):
        with pytest.raises(ValueError, match=r"list of \[userId, movieId\]"):
            pairs_from_parameters(bad)

    def test_non_integer_ids(self):
        with pytest.raises(ValueError, match="inference.pairs ids must be integers"):
            pairs_from_parameters([[1, 2.5]])


def test_predict_pair_ratings(served):
    predicted = predict_pair_ratings(pairs_from_parameters([[10, 1], [999, 1]]), served)
    assert predicted["known_user"].to_list() == [True, False]
    assert predicted["prediction"][1] == pytest.approx(GLOBAL_MEAN + MOVIE_BIAS[0])


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


def test_recommend_movies_excludes_every_split(
    served, train_ratings, val_ratings, test_ratings
):
    rated = collect_rated_pairs(train_ratings, val_ratings, test_ratings)
    recommended = recommend_movies(served, rated, [10, 40], top_k=10)
    # User 10 rated 1 and 2 in train and 3 in val; user 40 rated 1 in val.
    by_user = recommended.group_by("userId").agg("movieId").sort("userId").rows()
    assert [(user, sorted(movies)) for user, movies in by_user] == [
        (10, [4]),
        (40, [2, 3, 4]),
    ]
    assert recommended.filter(pl.col("userId") == 40)["known_user"].not_().all()
