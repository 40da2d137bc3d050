"""The inference nodes for a data set whose ids are strings: string ids in the
parameters and request files answered in string ids; ids of the wrong type refused,
naming the parameter; fold-in ratings checked against the served model's scale."""

import polars as pl
import pytest

from rating_prediction.parameters import InferenceParameters, ParameterError, parse
from rating_prediction.pipelines.inference.nodes import (
    NEW_USER_STRING_ID,
    collect_rated_pairs,
    find_similar_movies,
    pairs_from_parameters,
    predict_pair_requests,
    recommend_for_all_users,
    recommend_for_new_user,
    recommend_movies,
)
from rating_prediction.serving.bundle import assemble_served_model
from rating_prediction.serving.prediction import predict_pairs
from rating_prediction.serving.request_files import RequestFileError, open_request_file
from tests.serving.fixtures import answered, inference_parameters, with_string_ids

STRING_INFERENCE = {
    "pairs": [["u10", "m1"], ["u20", "m2"], ["u999", "m1"]],
    "recommend": {"user_ids": ["u10", "u30"], "top_k": 3},
    "fold_in": {"ratings": [["m1", 4.5], ["m3", 2.0]], "top_k": 2},
    "similar": {"movie_ids": ["m1"], "top_k": 2},
}


def string_parameters(**changes) -> dict:
    return inference_parameters(**(STRING_INFERENCE | changes))


@pytest.fixture
def string_rated(string_served_inputs, val_ratings, test_ratings):
    return collect_rated_pairs(
        string_served_inputs["train_ratings"],
        with_string_ids(val_ratings),
        with_string_ids(test_ratings),
    )


def test_parameters_take_integer_or_string_ids():
    parsed = parse(InferenceParameters, string_parameters(), "inference")
    assert parsed.pairs == [("u10", "m1"), ("u20", "m2"), ("u999", "m1")]
    assert parsed.fold_in.ratings == [("m1", 4.5), ("m3", 2.0)]
    with pytest.raises(
        ParameterError, match=r"'inference.similar.movie_ids.0': must be a non-empty id"
    ):
        parse(
            InferenceParameters,
            string_parameters(similar={"movie_ids": [""]}),
            "inference",
        )
    # A rating outside 0.5..5 is no parameter error: the data's scale may be 1..10.
    wide = string_parameters(fold_in={"ratings": [["m1", 9.0]]})
    assert parse(InferenceParameters, wide, "inference").fold_in.ratings == [
        ("m1", 9.0)
    ]


def test_pairs_in_string_ids(string_served):
    pairs = pairs_from_parameters(string_parameters(), string_served)
    assert pairs.schema == pl.Schema({"userId": pl.String, "movieId": pl.String})
    predicted = predict_pairs(string_served, pairs)
    assert predicted["known_user"].to_list() == [True, True, False]


@pytest.fixture
def rated(train_ratings, val_ratings, test_ratings):
    return collect_rated_pairs(train_ratings, val_ratings, test_ratings)


def test_recommend_similar_and_fold_in(string_served, served, string_rated, rated):
    recommended = recommend_movies(string_served, string_rated, string_parameters())
    assert recommended.schema["userId"] == pl.String
    assert recommended["movieId"].to_list() == [
        f"m{movie}"
        for movie in recommend_movies(
            served,
            rated,
            inference_parameters(recommend={"user_ids": [10, 30], "top_k": 3}),
        )["movieId"]
    ]
    similar = find_similar_movies(string_served, string_parameters())
    assert similar["movieId"].to_list() == ["m1", "m1"]
    assert set(similar["similarMovieId"]) <= {"m2", "m3", "m4"}
    new_user = recommend_for_new_user(string_served, string_parameters())
    assert set(new_user["userId"]) == {NEW_USER_STRING_ID}
    assert new_user.schema["movieId"] == pl.String
    assert not {"m1", "m3"} & set(new_user["movieId"])  # the movies rated
    assert new_user["prediction"].to_list() == pytest.approx(
        recommend_for_new_user(
            served,
            inference_parameters(fold_in={"ratings": [[1, 4.5], [3, 2.0]], "top_k": 2}),
        )["prediction"].to_list()
    )


@pytest.mark.parametrize(
    ("changes", "key", "held"),
    [
        (
            {"pairs": [["u10", "m1"], [10, "m1"]]},
            "inference.pairs.1.0",
            "an integer id (10) but this data set's user ids",
        ),
        (
            {"pairs": [["u10", 1]]},
            "inference.pairs.0.1",
            "an integer id (1) but this data set's movie ids",
        ),
        (
            {"recommend": {"user_ids": [1, 2]}},
            "inference.recommend.user_ids.0",
            "an integer id (1) but this data set's user ids",
        ),
        (
            {"similar": {"movie_ids": [260]}},
            "inference.similar.movie_ids.0",
            "an integer id (260) but this data set's movie ids",
        ),
        (
            {"fold_in": {"ratings": [[31, 1.0]]}},
            "inference.fold_in.ratings.0.0",
            "an integer id (31) but this data set's movie ids",
        ),
    ],
)
def test_integer_ids_for_a_string_data_set_name_the_parameter(
    string_served, string_rated, changes, key, held
):
    inference = string_parameters(**changes)
    nodes = [
        lambda: pairs_from_parameters(inference, string_served),
        lambda: recommend_movies(string_served, string_rated, inference),
        lambda: find_similar_movies(string_served, inference),
        lambda: recommend_for_new_user(string_served, inference),
    ]
    messages = []
    for node in nodes:
        try:
            node()
        except ParameterError as error:
            messages.append(str(error))
    assert len(messages) == 1
    assert (
        f"'{key}': holds {held} are strings: set your own "
        "examples in conf/local/parameters_inference.yml, or [] for none"
    ) in messages[0]


def test_string_ids_for_an_integer_data_set_name_the_parameter(served):
    with pytest.raises(
        ParameterError,
        match=r"'inference.similar.movie_ids.0': holds a string id \('m1'\) but this data set's movie ids are integers",
    ):
        find_similar_movies(served, inference_parameters(similar={"movie_ids": ["m1"]}))


@pytest.mark.parametrize("rating", [6.0, 0.0])
def test_fold_in_ratings_outside_the_models_scale_name_the_parameter(
    string_served, rating
):
    inference = string_parameters(fold_in={"ratings": [["m1", 4.0], ["m2", rating]]})
    with pytest.raises(
        ParameterError,
        match=rf"'inference.fold_in.ratings.1.1': {rating} lies outside the served model's rating scale 0.5..5.0",
    ):
        recommend_for_new_user(string_served, inference)


def test_fold_in_ratings_on_the_models_own_scale(
    biased_config, biased_weights, served_inputs
):
    ten = dict(
        biased_config,
        model_kwargs=biased_config["model_kwargs"]
        | {"rating_min": 1.0, "rating_max": 10.0},
    )
    wide = assemble_served_model(ten, biased_weights, **served_inputs)
    inference = inference_parameters(
        fold_in={"ratings": [[1, 9.0], [2, 10.0]], "top_k": 2}
    )
    assert recommend_for_new_user(wide, inference).height == 2
    with pytest.raises(
        ParameterError,
        match=r"'inference.fold_in.ratings.0.1': 0.5 lies outside .* 1.0..10.0",
    ):
        recommend_for_new_user(
            wide, inference_parameters(fold_in={"ratings": [[1, 0.5]]})
        )


class TestRequestFiles:
    def test_pairs_and_users_files_in_string_ids(
        self, string_served, string_rated, tmp_path
    ):
        pairs_path = tmp_path / "pairs.csv"
        pairs_path.write_text("userId,movieId\nu20,m2\nu999,m1\nu10,m777\n")
        pairs = open_request_file(pairs_path, ["userId", "movieId"])
        inference = string_parameters(request_files={"batch_size": 2})
        predicted = answered(predict_pair_requests(string_served, pairs, inference))
        assert predicted.schema["userId"] == pl.String
        assert (
            predicted.rows()
            == predict_pairs(
                string_served,
                pairs.read({"userId": "string", "movieId": "string"}).table.collect(),
            ).rows()
        )
        assert predicted["known_user"].to_list() == [True, False, True]
        assert predicted["known_movie"].to_list() == [True, True, False]

        users_path = tmp_path / "users.parquet"
        pl.DataFrame({"userId": ["u30", "nobody", "u10"]}).write_parquet(users_path)
        users = open_request_file(users_path, ["userId"])
        inference = string_parameters(batch_recommend={"top_k": 1})
        recommended = answered(
            recommend_for_all_users(string_served, string_rated, users, inference)
        )
        assert recommended["userId"].to_list() == ["u30", "nobody", "u10"]
        assert recommended["known_user"].to_list() == [True, False, True]

    def test_every_known_user_without_a_file(self, string_served, string_rated):
        inference = string_parameters(batch_recommend={"top_k": 1})
        recommended = answered(
            recommend_for_all_users(string_served, string_rated, None, inference)
        )
        assert recommended["userId"].to_list() == ["u10", "u20", "u30"]
        empty = answered(predict_pair_requests(string_served, None, inference))
        assert empty.is_empty()
        assert empty.schema["movieId"] == pl.String

    def test_an_integer_file_for_a_string_data_set_is_refused(
        self, string_served, tmp_path
    ):
        path = tmp_path / "pairs.parquet"
        pl.DataFrame({"userId": [10], "movieId": ["m1"]}).write_parquet(path)
        with pytest.raises(
            RequestFileError,
            match="Column 'userId' .* holds Int64 values; it must hold string ids",
        ):
            predict_pair_requests(
                string_served,
                open_request_file(path, ["userId", "movieId"]),
                string_parameters(),
            )


def test_an_integer_model_reads_the_same_csv_as_integers(served, tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("userId,movieId\n 20,2\n")
    requests = open_request_file(path, ["userId", "movieId"])
    predicted = answered(
        predict_pair_requests(served, requests, inference_parameters())
    )
    assert predicted.schema["userId"] == pl.Int64
    assert predicted.rows()[0][:2] == (20, 2)
