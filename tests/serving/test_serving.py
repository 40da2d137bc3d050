"""Serving building blocks: variant choice, bundle, input checks, pairs, top-K."""

import logging
import math

import numpy as np
import polars as pl
import pytest
import torch

from rating_prediction.data.schema import USER_MAPPING_SCHEMA
from rating_prediction.models.config import ModelConfig
from rating_prediction.serving.bundle import (
    assemble_served_model,
    select_served_variant,
)
from rating_prediction.serving.prediction import PAIR_PREDICTIONS_SCHEMA, predict_pairs
from rating_prediction.serving.recommend import (
    RECOMMENDATIONS_SCHEMA,
    rated_index,
    recommend_all,
    recommend_users,
)
from rating_prediction.serving.request_ids import validate_pairs
from tests.serving.fixtures import GLOBAL_MEAN, MOVIE_BIAS, USER_BIAS


def pairs(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["userId", "movieId"], orient="row")


class TestSelectServedVariant:
    HELD_OUT_VAL_MSE = {"inner_sigmoid": 1.0, "biased_mf": 0.72}

    def test_best_is_the_lowest_held_out_val_loss(self):
        assert select_served_variant(self.HELD_OUT_VAL_MSE, "best") == "biased_mf"
        reversed_losses = {"inner_sigmoid": 0.5, "biased_mf": 0.72}
        assert select_served_variant(reversed_losses, "best") == "inner_sigmoid"

    def test_explicit_variant(self):
        assert (
            select_served_variant(self.HELD_OUT_VAL_MSE, "inner_sigmoid")
            == "inner_sigmoid"
        )

    def test_a_ranker_is_refused_naming_the_rating_models(self):
        with pytest.raises(
            ValueError, match="predicts no ratings.*inner_sigmoid, biased_mf"
        ):
            select_served_variant(self.HELD_OUT_VAL_MSE, "ease")

    def test_unknown_variant_lists_the_valid_ones(self):
        with pytest.raises(ValueError, match="best, inner_sigmoid, biased_mf"):
            select_served_variant(self.HELD_OUT_VAL_MSE, "svd")

    def test_best_without_trained_variants(self):
        with pytest.raises(ValueError, match="Cannot pick the best variant"):
            select_served_variant({}, "best")


class TestAssembleServedModel:
    def test_keeps_only_ids_seen_in_training_with_titles(self, served):
        assert served.variant == "biased_mf"
        assert served.config == ModelConfig.model_validate(served.config)
        assert served.users.known_ids.tolist() == [10, 20, 30]
        assert served.movies.known_ids.tolist() == [1, 2, 3, 4]
        assert served.candidate_movies.rows() == [
            (1, 0, "Movie 1"),
            (2, 1, "Movie 2"),
            (3, 2, "Movie 3"),
            (4, 3, "Movie 4"),
        ]

    def test_a_known_movie_without_a_title_gets_a_null_title(
        self, biased_config, biased_weights, served_inputs
    ):
        without_movie_2 = served_inputs["movies"].filter(pl.col("movieId") != 2)
        served = assemble_served_model(
            biased_config,
            biased_weights,
            **(served_inputs | {"movies": without_movie_2}),
        )
        assert served.candidate_movies["title"].to_list() == [
            "Movie 1",
            None,
            "Movie 3",
            "Movie 4",
        ]

    def test_logs_the_variant_and_the_known_ids(
        self, biased_config, biased_weights, served_inputs, caplog
    ):
        with caplog.at_level(logging.INFO, logger="rating_prediction.serving"):
            assemble_served_model(biased_config, biased_weights, **served_inputs)
        assert (
            "Served model: predict by biased_mf, recommend by biased_mf, similar by "
            "biased_mf, fold_in by biased_mf; 3 known users, 4 known movies."
        ) in caplog.text

    def test_mapping_larger_than_the_model_is_an_error(
        self, biased_config, biased_weights, served_inputs
    ):
        # Six users mapped, but the model was trained with four rows.
        stale_users = pl.DataFrame(
            {"userId": [10, 20, 30, 40, 50, 60], "userIdMapped": range(6)},
            schema=USER_MAPPING_SCHEMA,
        )
        with pytest.raises(
            ValueError, match="user_mapping has 6 ids.*only 4 rows.*rerun training"
        ):
            assemble_served_model(
                biased_config,
                biased_weights,
                **(served_inputs | {"user_mapping": stale_users}),
            )


class TestServedModelIsBuiltOnce:
    @pytest.fixture
    def fresh_served(self, biased_config, biased_weights, served_inputs):
        return assemble_served_model(biased_config, biased_weights, **served_inputs)

    def test_requests_share_one_model(self, fresh_served, model_builds, train_ratings):
        first = predict_pairs(fresh_served, pairs([(10, 1), (999, 2)]))
        second = predict_pairs(fresh_served, pairs([(10, 1), (999, 2)]))
        recommend_users(fresh_served, [10], train_ratings, top_k=2)
        assert model_builds == ["biased_mf"]
        assert first.equals(second)


class TestValidatePairs:
    def test_whole_number_floats_become_integers(self):
        valid = validate_pairs(pairs([(1.0, 2.0)]))
        assert valid.schema == pl.Schema({"userId": pl.Int64, "movieId": pl.Int64})
        assert valid.rows() == [(1, 2)]

    def test_extra_columns_are_dropped(self):
        request = pairs([(1, 2)]).with_columns(comment=pl.lit("x"))
        assert validate_pairs(request).columns == ["userId", "movieId"]

    def test_missing_column(self):
        with pytest.raises(ValueError, match=r"lacks the column\(s\) \['movieId'\]"):
            validate_pairs(pl.DataFrame({"userId": [1]}))

    @pytest.mark.parametrize("bad", [1.5, math.inf, math.nan])
    def test_non_integer_floats(self, bad):
        with pytest.raises(ValueError, match="'movieId' must hold integer ids"):
            validate_pairs(pairs([(1.0, 2.0), (1.0, bad)]))

    def test_strings(self):
        with pytest.raises(
            ValueError, match="'userId' must hold integer ids, not String"
        ):
            validate_pairs(pairs([("a", 1)]))

    def test_nulls(self):
        with pytest.raises(ValueError, match="'userId' has 1 missing value"):
            validate_pairs(pairs([(None, 1), (2, 1)]))

    @pytest.mark.parametrize("bad", [-1, 2**31, 2**40])
    def test_out_of_range(self, bad):
        with pytest.raises(
            ValueError, match=r"'movieId' must hold ids in 0\.\.2147483647"
        ):
            validate_pairs(pairs([(1, 2), (1, bad)]))

    def test_booleans(self):
        with pytest.raises(
            ValueError, match="'userId' must hold integer ids, not Bool"
        ):
            validate_pairs(pairs([(True, 1)]))

    def test_empty_request_of_any_dtype(self):
        empty = pl.DataFrame(schema={"userId": pl.String, "movieId": pl.Null})
        assert validate_pairs(empty).schema == pl.Schema(
            {"userId": pl.Int64, "movieId": pl.Int64}
        )


def test_id_lookups_keep_request_order_and_mark_unseen_ids(served):
    request = validate_pairs(
        pairs([(30, 4), (40, 1), (999, 5), (10, 6), (0, 0), (30, 4), (20, 2)])
    )
    users = served.user_lookup(request["userId"].to_numpy())
    movies = served.movie_lookup(request["movieId"].to_numpy())
    assert list(zip(users.tolist(), movies.tolist(), strict=True)) == [
        (2, 3),
        (-1, 0),  # 40 is mapped but unseen in training
        (-1, -1),  # movie 5 likewise
        (0, -1),  # movie 6 is not even mapped
        (-1, -1),
        (2, 3),
        (1, 1),
    ]


class TestPredictPairs:
    def test_known_pairs_match_the_model_in_request_order(self, served):
        model = served.model
        predicted = predict_pairs(served, pairs([(30, 4), (10, 1), (20, 3)]))
        expected = model.predict(torch.tensor([2, 0, 1]), torch.tensor([3, 0, 2]))
        assert predicted.schema == PAIR_PREDICTIONS_SCHEMA
        assert predicted["userId"].to_list() == [30, 10, 20]
        assert predicted["prediction"].to_list() == pytest.approx(expected.tolist())
        assert predicted["known_user"].all() and predicted["known_movie"].all()

    def test_unknown_user_gets_the_movie_bias_fallback(self, served):
        # 999 is not in the mapping; 40 is mapped but unseen in training.
        predicted = predict_pairs(served, pairs([(999, 1), (40, 1)]))
        expected = GLOBAL_MEAN + MOVIE_BIAS[0]
        assert predicted["prediction"].to_list() == pytest.approx([expected] * 2)
        assert predicted["known_user"].to_list() == [False, False]
        assert predicted["known_movie"].to_list() == [True, True]

    def test_unknown_movie_gets_the_user_bias_fallback(self, served):
        predicted = predict_pairs(served, pairs([(20, 5), (20, 777)]))
        expected = GLOBAL_MEAN + USER_BIAS[1]
        assert predicted["prediction"].to_list() == pytest.approx([expected] * 2)
        assert predicted["known_user"].to_list() == [True, True]
        assert predicted["known_movie"].to_list() == [False, False]

    def test_unknown_both_gets_the_global_mean(self, served):
        predicted = predict_pairs(served, pairs([(999, 777)]))
        assert predicted["prediction"].to_list() == pytest.approx([GLOBAL_MEAN])

    def test_inner_sigmoid_fallback_is_its_zero_vector_score(
        self, inner_sigmoid_config, inner_sigmoid_weights, served_inputs
    ):
        served = assemble_served_model(
            inner_sigmoid_config, inner_sigmoid_weights, **served_inputs
        )
        fallback = served.model.predict(torch.tensor([-1]), torch.tensor([-1]))
        predicted = predict_pairs(served, pairs([(999, 1)]))
        assert predicted["prediction"].to_list() == pytest.approx(fallback.tolist())

    def test_predictions_stay_on_the_rating_scale(self, served):
        all_pairs = pairs([(u, m) for u in (10, 20, 30, 40, 5) for m in range(0, 7)])
        predicted = predict_pairs(served, all_pairs)
        assert predicted["prediction"].is_between(0.5, 5.0).all()

    def test_empty_request_gives_an_empty_table(self, served):
        predicted = predict_pairs(served, pl.DataFrame(schema=["userId", "movieId"]))
        assert predicted.is_empty()
        assert predicted.schema == PAIR_PREDICTIONS_SCHEMA


class TestRecommendTopK:
    def test_excludes_rated_movies_and_sorts_by_prediction(self, served, train_ratings):
        recommended = recommend_users(served, [10], train_ratings, top_k=2)
        assert recommended.schema == RECOMMENDATIONS_SCHEMA
        assert set(recommended["movieId"]).isdisjoint({1, 2})
        assert recommended["rank"].to_list() == [1, 2]
        assert recommended["prediction"].is_sorted(descending=True)
        assert recommended["title"].to_list() == [
            f"Movie {movie}" for movie in recommended["movieId"]
        ]

    def test_only_movies_seen_in_training_are_candidates(self, served, train_ratings):
        # Movie 5 is mapped but unseen in training; movie 6 is not even mapped.
        recommended = recommend_users(served, [20], train_ratings, top_k=10)
        assert sorted(recommended["movieId"]) == [1, 4]

    def test_k_larger_than_the_candidates(self, served, train_ratings):
        recommended = recommend_users(served, [10, 30], train_ratings, top_k=50)
        assert recommended.group_by("userId").len().sort("userId").rows() == [
            (10, 2),
            (30, 2),
        ]
        assert recommended["userId"].is_sorted()

    def test_unknown_user_gets_movies_ranked_by_bias(self, served, train_ratings):
        recommended = recommend_users(served, [999], train_ratings, top_k=4)
        ranked_by_bias = [1, 3, 4, 2]  # movie biases 0.5, 0.2, 0.1, -0.5
        assert recommended["movieId"].to_list() == ranked_by_bias
        assert not recommended["known_user"].any()

    def test_duplicate_user_ids_are_recommended_once(self, served, train_ratings):
        recommended = recommend_users(served, [10, 10], train_ratings, top_k=1)
        assert recommended.height == 1

    def test_no_users(self, served, train_ratings):
        recommended = recommend_users(served, [], train_ratings, top_k=3)
        assert recommended.is_empty()
        assert recommended.schema == RECOMMENDATIONS_SCHEMA

    def test_scoring_in_blocks_changes_nothing(self, served, train_ratings):
        users = [40, 30, 999, 10, 20]
        whole = recommend_users(served, users, train_ratings, top_k=3)
        one_at_a_time = recommend_all(
            served,
            np.array(sorted(users)),
            rated_index(served, train_ratings),
            3,
            block_size=1,
        )
        # The same lists; a block's matrix product may round a float32 score in its
        # last bit differently from a one-row product.
        assert one_at_a_time.drop("prediction").equals(whole.drop("prediction"))
        np.testing.assert_allclose(
            one_at_a_time["prediction"], whole["prediction"], rtol=1e-6
        )

    def test_users_unseen_in_training_are_logged(self, served, train_ratings, caplog):
        with caplog.at_level(logging.WARNING, logger="rating_prediction.serving"):
            recommend_users(served, [999, 10, 40, 999], train_ratings, top_k=1)
        assert "Users [40, 999] are unseen in training" in caplog.text

    def test_known_users_are_not_logged(self, served, train_ratings, caplog):
        with caplog.at_level(logging.WARNING, logger="rating_prediction.serving"):
            recommend_users(served, [10, 30], train_ratings, top_k=1)
        assert "unseen in training" not in caplog.text
