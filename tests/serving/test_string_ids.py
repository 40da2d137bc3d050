"""A served model of a data set whose ids are strings: every answer in string ids,
equal to the integer model's with its ids renamed; requests checked against strings;
the folder keeps the String ids."""

import json

import numpy as np
import pandas as pd
import polars as pl
import pytest

from rating_prediction.serving.artifacts import load_served_model, save_served_model
from rating_prediction.serving.bundle import assemble_served_model
from rating_prediction.serving.prediction import predict_pairs
from rating_prediction.serving.pyfunc import input_columns, model_signature
from rating_prediction.serving.ranker import RankerChoice
from rating_prediction.serving.recommend import recommend_users
from rating_prediction.serving.request_files import RequestFileError, read_request_file
from rating_prediction.serving.request_ids import check_ids, validate_pairs
from rating_prediction.serving.requests import answer_request
from rating_prediction.serving.similar import similar_movies
from tests.serving.fixtures import movie_string, user_string, with_string_ids

ID_COLUMNS = ["userId", "movieId", "similarMovieId"]


def renamed(answer: pd.DataFrame) -> pd.DataFrame:
    """An integer model's answer with its ids as the string model names them."""
    answer = answer.copy()
    for column, name in (
        ("userId", user_string),
        ("movieId", movie_string),
        ("similarMovieId", movie_string),
    ):
        if column in answer.columns:
            answer[column] = [
                None if pd.isna(value) else name(value) for value in answer[column]
            ]
    return answer


def assert_same_answer(strings: pd.DataFrame, integers: pd.DataFrame) -> None:
    assert list(strings.columns) == list(integers.columns)
    expected = renamed(integers)
    for column in strings.columns:
        if column in ID_COLUMNS:
            # Strings, or missing on the row of an asked movie with no similar ones.
            present = strings[column].dropna()
            assert all(isinstance(value, str) for value in present)
            assert len(present) == integers[column].notna().sum()
        if strings[column].dtype.kind == "f":
            np.testing.assert_allclose(
                strings[column].to_numpy(), expected[column].to_numpy(), rtol=1e-6
            )
        else:
            assert _missing_as_none(strings[column]) == _missing_as_none(
                expected[column]
            ), column


def _missing_as_none(values: pd.Series) -> list:
    return [None if pd.isna(value) else value for value in values]


def request(users: list[int], movies: list[int], **more) -> tuple:
    """The same request in integer ids and in string ids (object columns of str, as
    JSON gives them)."""
    integers = pd.DataFrame({"userId": users, "movieId": movies, **more})
    strings = integers.assign(
        userId=pd.Series([user_string(u) for u in users], dtype=object),
        movieId=pd.Series([movie_string(m) for m in movies], dtype=object),
    )
    return integers, strings


class TestTheServedModel:
    def test_knows_its_id_types(self, string_served, served):
        assert string_served.users.id_type == string_served.movies.id_type == "string"
        assert served.users.id_type == served.movies.id_type == "integer"
        assert string_served.users.known_ids.tolist() == ["u10", "u20", "u30"]
        assert string_served.candidate_movies.schema["movieId"] == pl.String
        assert string_served.movie_titles.to_list() == served.movie_titles.to_list()

    def test_pair_predictions(self, string_served, served):
        pairs = pl.DataFrame({"userId": [10, 40, 999, 30], "movieId": [1, 2, 1, 777]})
        strings = predict_pairs(string_served, with_string_ids(pairs))
        integers = predict_pairs(served, pairs)
        assert strings.schema["userId"] == strings.schema["movieId"] == pl.String
        assert strings["userId"].to_list() == ["u10", "u40", "u999", "u30"]
        assert strings["known_user"].to_list() == [True, False, False, True]
        assert strings["known_movie"].to_list() == [True, True, True, False]
        assert strings.drop(ID_COLUMNS[:2]).equals(integers.drop(ID_COLUMNS[:2]))

    def test_recommendations(self, string_served, served, val_ratings):
        rated = val_ratings.select("userId", "movieId")
        strings = recommend_users(
            string_served, ["u30", "u10", "u40", "nobody"], with_string_ids(rated), 3
        )
        integers = recommend_users(served, [30, 10, 40, 5000], rated, 3)
        assert strings.schema["userId"] == strings.schema["movieId"] == pl.String
        known = strings.filter(pl.col("userId") != "nobody")
        assert_same_answer(
            known.to_pandas(), integers.filter(pl.col("userId") != 5000).to_pandas()
        )
        # An unknown string user gets the fallback ranking, as an unknown integer does.
        fallback = strings.filter(pl.col("userId") == "nobody")
        assert fallback["movieId"].to_list() == [
            movie_string(m)
            for m in integers.filter(pl.col("userId") == 5000)["movieId"]
        ]
        assert not fallback["known_user"].any()

    def test_similar_movies(self, string_served, served):
        strings = similar_movies(string_served, ["m1", "m5", "nope", "m3"], 2)
        integers = similar_movies(served, [1, 5, 999, 3], 2)
        assert strings.schema["similarMovieId"] == pl.String
        assert_same_answer(strings.to_pandas(), integers.to_pandas())


class TestRequests:
    @pytest.mark.parametrize(
        "params",
        [
            None,
            {"task": "recommend", "k": 3},
            {"task": "recommend", "k": 3, "popularity_weight": 0.5},
            {"task": "similar", "k": 2},
        ],
    )
    def test_every_task_answers_in_string_ids(self, string_served, served, params):
        integers, strings = request([10, 30, 999, 40], [1, 4, 2, 777])
        assert_same_answer(
            answer_request(string_served, strings, params),
            answer_request(served, integers, params),
        )

    @pytest.mark.parametrize("task", ["predict", "recommend"])
    def test_fold_in(self, string_served, served, task):
        integers, strings = request(
            [999, 999, 999, 999, 10],
            [1, 2, 3, 4, 3],
            rating=[5.0, 1.0, None, None, None],
        )
        params = {"task": task, "k": 5}
        folded = answer_request(string_served, strings, params)
        assert_same_answer(folded, answer_request(served, integers, params))
        if task == "predict":
            assert folded["userId"].tolist() == ["u999", "u999", "u10"]
            fallback = answer_request(string_served, strings.iloc[2:4, :2])
            assert not np.allclose(folded["prediction"][:2], fallback["prediction"])
        else:
            mine = folded[folded["userId"] == "u999"]
            assert set(mine["movieId"]) == {"m3", "m4"}  # not the movies they rated

    def test_unicode_array_columns(self, string_served):
        frame = pd.DataFrame({"userId": np.array(["u10"]), "movieId": np.array(["m1"])})
        answer = answer_request(string_served, frame)
        assert answer["known_user"].tolist() == [True]

    @pytest.mark.parametrize(
        ("values", "message"),
        [
            ([10], "'userId' must hold string ids (the served model's user ids are "
             "strings), not integers"),
            ([1.5], "'userId' must hold string ids (the served model's user ids are "
             "strings), not floats"),
            ([True], "not booleans"),
            (["u10", 10], "'userId' must hold string ids (the served model's user ids "
             "are strings), not integers (e.g. [10])"),
            (["u10", None], "'userId' has missing value(s)"),
            (["u10", float("nan")], "'userId' has missing value(s)"),
            (["u10", ""], "'userId' has missing value(s) (empty strings)"),
        ],
    )  # fmt: skip
    def test_wrong_types_are_refused_naming_the_column(
        self, string_served, values, message
    ):
        frame = pd.DataFrame({"userId": values, "movieId": "m1"})
        with pytest.raises(ValueError) as error:
            answer_request(string_served, frame)
        assert message in str(error.value)
        object_column = frame.assign(userId=pd.Series(values, dtype=object))
        with pytest.raises(ValueError, match="'userId'"):
            answer_request(string_served, object_column)

    def test_the_movie_column_is_checked_against_the_movie_ids(self, string_served):
        frame = pd.DataFrame({"userId": ["u10"], "movieId": [1]})
        with pytest.raises(
            ValueError, match="the served model's movie ids are strings"
        ):
            answer_request(string_served, frame, {"task": "similar"})

    def test_integer_models_still_refuse_strings(self, served):
        frame = pd.DataFrame({"userId": ["u10"], "movieId": [1]})
        with pytest.raises(ValueError, match="'userId' must hold integer ids"):
            answer_request(served, frame)

    def test_polars_pairs(self):
        types = {"userId": "string", "movieId": "integer"}
        pairs = validate_pairs(pl.DataFrame({"userId": ["a"], "movieId": [3.0]}), types)
        assert pairs.schema == pl.Schema({"userId": pl.String, "movieId": pl.Int64})
        with pytest.raises(ValueError, match="'userId' must hold string ids"):
            validate_pairs(pl.DataFrame({"userId": [1], "movieId": [3]}), types)
        assert (
            check_ids("movieId", np.array(["x"], dtype=object), "string").dtype.kind
            == "U"
        )


class TestTheFolder:
    def test_round_trip_keeps_string_ids(self, string_served, tmp_path):
        folder = tmp_path / "served_model"
        save_served_model(string_served, folder)
        assert pl.read_parquet_schema(folder / "users.parquet")["userId"] == pl.String
        assert pl.read_parquet_schema(folder / "movies.parquet")["movieId"] == pl.String
        serving = json.loads((folder / "serving.json").read_text())
        assert serving["format_version"] == 3
        loaded = load_served_model(folder)
        assert loaded.users.id_type == loaded.movies.id_type == "string"
        assert loaded.users.ids.tolist() == ["u10", "u20", "u30", "u40"]
        _, strings = request([10, 999], [1, 2])
        pd.testing.assert_frame_equal(
            answer_request(loaded, strings), answer_request(string_served, strings)
        )

    def test_integer_models_are_written_as_before(self, served, tmp_path):
        folder = tmp_path / "served_model"
        save_served_model(served, folder)
        assert pl.read_parquet_schema(folder / "users.parquet")["userId"] == pl.Int64
        assert json.loads((folder / "serving.json").read_text())["format_version"] == 2
        assert load_served_model(folder).users.ids.dtype == np.int64


def test_the_signature_says_string():
    types = {"userId": "string", "movieId": "string"}
    outputs = model_signature(0.0, types).outputs.to_dict()
    assert outputs[:2] == [
        {"type": "string", "name": "userId", "required": True},
        {"type": "string", "name": "movieId", "required": True},
    ]
    assert model_signature().outputs.to_dict()[0]["type"] == "long"
    assert "string" in input_columns(types)["userId"]
    assert "integer" in input_columns()["userId"]


class TestRequestFiles:
    TYPES = {"userId": "string", "movieId": "string"}

    def test_csv_ids_kept_exactly(self, tmp_path):
        path = tmp_path / "pairs.csv"
        path.write_text("userId,movieId\nu10,0345339681\n 7,m1\n")
        table = read_request_file(path, ["userId", "movieId"], self.TYPES)
        rows = table.table.collect()
        assert rows.schema == pl.Schema({"userId": pl.String, "movieId": pl.String})
        assert rows.rows() == [("u10", "0345339681"), (" 7", "m1")]

    def test_missing_and_empty_ids_are_refused(self, tmp_path):
        path = tmp_path / "pairs.parquet"
        pl.DataFrame({"userId": ["a", None, ""], "movieId": "m1"}).write_parquet(path)
        with pytest.raises(RequestFileError) as error:
            read_request_file(path, ["userId", "movieId"], self.TYPES)
        assert "Column 'userId'" in str(error.value)
        assert "row 2: None (missing); row 3: '' (missing)" in str(error.value)
        assert "Every row needs a non-empty string id" in str(error.value)

    def test_a_numeric_column_is_refused(self, tmp_path):
        path = tmp_path / "pairs.parquet"
        pl.DataFrame({"userId": ["a"], "movieId": [1]}).write_parquet(path)
        with pytest.raises(
            RequestFileError,
            match="Column 'movieId' .* holds Int64 values; it must hold string ids "
            r"\(the served model's movie ids are strings\)",
        ):
            read_request_file(path, ["userId", "movieId"], self.TYPES)


class TestWithTheServedRanker:
    @pytest.fixture(scope="class")
    def string_ranked(self, ranked_served, string_served_inputs, val_ratings):
        return assemble_served_model(
            ranked_served.config,
            ranked_served.state_dict,
            **string_served_inputs,
            val_ratings=with_string_ids(val_ratings),
            ranker=RankerChoice(
                ranked_served.ranker.config,
                ranked_served.ranker.state_dict,
                ranked_served.ranker.feedback,
            ),
        )

    @pytest.mark.parametrize(
        "params", [{"task": "recommend", "k": 3}, {"task": "similar", "k": 2}]
    )
    def test_the_ranker_answers_in_string_ids(
        self, string_ranked, ranked_served, params, tmp_path
    ):
        integers, strings = request(
            [10, 30, 999, 40, 888, 888],
            [1, 4, 2, 777, 1, 3],
            rating=[None] * 4 + [5, 4],
        )
        expected = answer_request(ranked_served, integers, params)
        assert_same_answer(answer_request(string_ranked, strings, params), expected)
        # Written as version 4, read back in string ids.
        save_served_model(string_ranked, tmp_path / "served_model")
        loaded = load_served_model(tmp_path / "served_model")
        assert loaded.users.id_type == "string"
        assert_same_answer(answer_request(loaded, strings, params), expected)
