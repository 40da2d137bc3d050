import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rating_prediction.data.schema import (
    MAPPED_RATINGS_SCHEMA,
    MOVIE_MAPPING_SCHEMA,
    USER_MAPPING_SCHEMA,
)
from rating_prediction.parameters import ParameterError
from rating_prediction.pipelines.data_processing.nodes import (
    apply_id_mappings,
    create_movie_mapping,
    create_user_mapping,
    filter_top_movies,
    split_ratings,
)
from tests.fakes import ratings_frame

RANDOM_SPLIT = {"strategy": "random", "fractions": [0.7, 0.2, 0.1], "seed": 42}
TEMPORAL_SPLIT = {"strategy": "temporal", "fractions": [0.7, 0.2, 0.1], "seed": 42}


def processing(top_n_movies: int | None = 50, **split: object) -> dict:
    """The ``processing`` parameter block, with ``split`` keys overriding the random
    split."""
    return {"top_n_movies": top_n_movies, "split": {**RANDOM_SPLIT, **split}}


def split_with(ratings: pl.DataFrame, split: dict) -> tuple[pl.DataFrame, ...]:
    return split_ratings(ratings, processing(**split))


def filter_with(ratings: pl.DataFrame, top_n_movies: object) -> pl.DataFrame:
    return filter_top_movies(ratings, processing(top_n_movies))


def map_ratings(ratings: pl.DataFrame) -> pl.DataFrame:
    return apply_id_mappings(
        ratings, create_user_mapping(ratings), create_movie_mapping(ratings)
    )


def shuffle_rows(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sample(fraction=1.0, shuffle=True, seed=7)


@pytest.fixture
def tied_ratings() -> pl.DataFrame:
    # Rating counts: movie 40 -> 3, movies 30 and 20 -> 2 (tie), movie 10 -> 1.
    return ratings_frame(
        [
            (1, 40, 4.0, 1),
            (2, 40, 3.0, 2),
            (3, 40, 5.0, 3),
            (1, 30, 2.0, 4),
            (2, 30, 1.0, 5),
            (2, 20, 3.5, 6),
            (3, 20, 4.5, 7),
            (3, 10, 0.5, 8),
        ]
    )


@pytest.fixture
def mapped_ratings(synthetic_ratings: pl.DataFrame) -> pl.DataFrame:
    return map_ratings(synthetic_ratings)


class TestFilterTopMovies:
    def test_keeps_the_most_rated_movies_breaking_ties_by_movie_id(self, tied_ratings):
        filtered = filter_with(tied_ratings, 2)
        assert set(filtered["movieId"]) == {40, 20}
        assert filtered.height == 5
        assert filtered.schema == tied_ratings.schema

    def test_selection_does_not_depend_on_row_order(self, tied_ratings):
        for seed in range(5):
            shuffled = tied_ratings.sample(fraction=1.0, shuffle=True, seed=seed)
            assert set(filter_with(shuffled, 2)["movieId"]) == {
                40,
                20,
            }

    def test_null_keeps_every_rating(self, tied_ratings):
        assert_frame_equal(filter_with(tied_ratings, None), tied_ratings)

    def test_n_above_the_number_of_movies_keeps_every_movie(self, tied_ratings):
        assert filter_with(tied_ratings, 100).height == tied_ratings.height

    @pytest.mark.parametrize("top_n_movies", [0, -3, 2.5, "50", True])
    def test_rejects_invalid_top_n(self, tied_ratings, top_n_movies):
        with pytest.raises(ParameterError, match=r"'processing\.top_n_movies"):
            filter_with(tied_ratings, top_n_movies)

    def test_rejects_a_misspelt_key_naming_the_valid_ones(self, tied_ratings):
        with pytest.raises(
            ParameterError,
            match=r"unknown key 'processing\.top_n_movie'; valid keys here: "
            r"top_n_movies, split",
        ):
            filter_top_movies(tied_ratings, {**processing(), "top_n_movie": 10})

    def test_rejects_empty_ratings(self, tied_ratings):
        with pytest.raises(ValueError, match="'ratings' is empty"):
            filter_with(tied_ratings.clear(), 50)


class TestIdMappings:
    def test_user_mapping_is_contiguous_in_ascending_id_order(self):
        ratings = ratings_frame(
            [(30, 5, 1.0, 1), (10, 5, 1.0, 2), (20, 6, 1.0, 3), (10, 6, 1.0, 4)]
        )
        expected = pl.DataFrame(
            {"userId": [10, 20, 30], "userIdMapped": [0, 1, 2]},
            schema=USER_MAPPING_SCHEMA,
        )
        assert_frame_equal(create_user_mapping(ratings), expected)

    def test_movie_mapping_is_contiguous_in_ascending_id_order(self, synthetic_ratings):
        mapping = create_movie_mapping(synthetic_ratings)
        assert mapping.schema == MOVIE_MAPPING_SCHEMA
        assert mapping["movieId"].to_list() == sorted(set(synthetic_ratings["movieId"]))
        assert mapping["movieIdMapped"].to_list() == list(range(mapping.height))

    def test_apply_id_mappings_adds_the_indices_with_the_contract_schema(self):
        ratings = ratings_frame(
            [(30, 8, 4.5, 100), (10, 5, 3.0, 200), (30, 5, 1.0, 300)]
        )
        mapped = apply_id_mappings(
            ratings, create_user_mapping(ratings), create_movie_mapping(ratings)
        )
        assert mapped.schema == MAPPED_RATINGS_SCHEMA
        assert mapped.rows() == [
            (10, 5, 3.0, 200, 0, 0),
            (30, 5, 1.0, 300, 1, 0),
            (30, 8, 4.5, 100, 1, 1),
        ]


class TestRandomSplit:
    def test_sizes_follow_the_fractions(self, mapped_ratings):
        train, val, test = split_with(mapped_ratings, RANDOM_SPLIT)
        n_ratings = mapped_ratings.height
        assert train.height == round(0.7 * n_ratings)
        assert val.height == round(0.9 * n_ratings) - round(0.7 * n_ratings)
        assert train.height + val.height + test.height == n_ratings

    @pytest.mark.parametrize("n_ratings", [1, 2, 3, 7, 11])
    def test_sizes_add_up_on_tiny_inputs(self, n_ratings):
        ratings = map_ratings(
            ratings_frame([(1, movie, 3.0, movie) for movie in range(n_ratings)])
        )
        sizes = [split.height for split in split_with(ratings, RANDOM_SPLIT)]
        assert sum(sizes) == n_ratings
        assert sizes[0] >= 1

    def test_splits_are_disjoint_and_cover_the_input(self, mapped_ratings):
        train, val, test = split_with(mapped_ratings, RANDOM_SPLIT)
        union = pl.concat([train, val, test]).sort("userIdMapped", "movieIdMapped")
        assert_frame_equal(union, mapped_ratings)
        assert union.select("userIdMapped", "movieIdMapped").is_unique().all()

    def test_splits_keep_the_schema_and_are_sorted(self, mapped_ratings):
        for split in split_with(mapped_ratings, RANDOM_SPLIT):
            assert split.schema == MAPPED_RATINGS_SCHEMA
            assert_frame_equal(split, split.sort("userIdMapped", "movieIdMapped"))

    def test_is_deterministic_and_independent_of_row_order(self, mapped_ratings):
        first = split_with(mapped_ratings, RANDOM_SPLIT)
        again = split_with(mapped_ratings, RANDOM_SPLIT)
        from_shuffled = split_with(shuffle_rows(mapped_ratings), RANDOM_SPLIT)
        for expected, repeated, shuffled in zip(
            first, again, from_shuffled, strict=True
        ):
            assert_frame_equal(repeated, expected)
            assert_frame_equal(shuffled, expected)

    def test_seed_changes_the_split(self, mapped_ratings):
        train, _, _ = split_with(mapped_ratings, RANDOM_SPLIT)
        other_train, _, _ = split_with(mapped_ratings, {**RANDOM_SPLIT, "seed": 43})
        assert not train.equals(other_train)

    def test_empty_training_split_is_an_error(self):
        ratings = map_ratings(ratings_frame([(1, movie, 3.0, 0) for movie in range(9)]))
        with pytest.raises(ValueError, match="training split is empty"):
            split_with(ratings, {"fractions": [0.01, 0.49, 0.5]})


class TestTemporalSplit:
    def test_each_user_has_earliest_in_train_and_latest_in_test(self):
        # User 1: ten ratings at distinct times, given in scrambled order.
        rows = [(1, movie, 3.0, 1000 - 10 * movie) for movie in range(10)]
        # User 2: a single rating, which must stay in train.
        rows.append((2, 0, 4.0, 5))
        ratings = shuffle_rows(map_ratings(ratings_frame(rows)))
        train, val, test = split_with(ratings, TEMPORAL_SPLIT)
        # Movie 9 is user 1's earliest rating, movie 0 the latest.
        assert train.filter(pl.col("userId") == 1)["movieId"].sort().to_list() == [
            3,
            4,
            5,
            6,
            7,
            8,
            9,
        ]
        assert val["movieId"].sort().to_list() == [1, 2]
        assert test["movieId"].to_list() == [0]
        assert train.filter(pl.col("userId") == 2).height == 1

    def test_timestamp_ties_are_broken_by_movie_id(self):
        rows = [
            (1, movie, 3.0, 50) for movie in (40, 10, 30, 20, 50, 60, 70, 80, 90, 100)
        ]
        train, val, test = split_with(map_ratings(ratings_frame(rows)), TEMPORAL_SPLIT)
        assert train["movieId"].to_list() == [10, 20, 30, 40, 50, 60, 70]
        assert val["movieId"].to_list() == [80, 90]
        assert test["movieId"].to_list() == [100]

    def test_no_rating_in_val_or_test_predates_the_users_training_ratings(
        self, mapped_ratings
    ):
        train, val, test = split_with(mapped_ratings, TEMPORAL_SPLIT)
        last_train = train.group_by("userId").agg(
            pl.col("timestamp").max().alias("last_train")
        )
        later = pl.concat([val, test]).join(last_train, on="userId", how="left")
        assert (later["timestamp"] >= later["last_train"]).all()
        assert_frame_equal(
            pl.concat([train, val, test]).sort("userIdMapped", "movieIdMapped"),
            mapped_ratings,
        )

    def test_every_user_keeps_a_training_rating(self, mapped_ratings):
        split = {**TEMPORAL_SPLIT, "fractions": [0.001, 0.499, 0.5]}
        train, val, test = split_with(mapped_ratings, split)
        assert set(train["userId"]) == set(mapped_ratings["userId"])
        assert train.height == mapped_ratings["userId"].n_unique()
        assert val.height > 0
        assert test.height > 0

    def test_is_independent_of_row_order(self, mapped_ratings):
        expected = split_with(mapped_ratings, TEMPORAL_SPLIT)
        for split, reference in zip(
            split_with(shuffle_rows(mapped_ratings), TEMPORAL_SPLIT),
            expected,
            strict=True,
        ):
            assert_frame_equal(split, reference)


class TestSplitParameters:
    def test_rejects_unknown_strategy_and_names_the_valid_ones(self, mapped_ratings):
        with pytest.raises(
            ParameterError,
            match=r"'processing\.split\.strategy': Input should be 'random', "
            r"'temporal', 'predefined' or 'hash'",
        ):
            split_with(mapped_ratings, {"strategy": "by_user"})

    @pytest.mark.parametrize(
        "fractions",
        [
            [0.7, 0.3],
            [0.5, 0.2, 0.2, 0.1],
            [0.7, 0.2, 0.2],
            [1.2, -0.1, -0.1],
            [1.0, 0.0, 0.0],
            [0.7, "a fifth", 0.1],
            [0.7, 0.2, float("nan")],
            0.7,
            None,
        ],
    )
    def test_rejects_invalid_fractions(self, mapped_ratings, fractions):
        with pytest.raises(ParameterError, match=r"'processing\.split\.fractions"):
            split_with(mapped_ratings, {"fractions": fractions})

    def test_accepts_fractions_within_rounding_tolerance(self, mapped_ratings):
        fractions = [0.7, 0.2, 0.1 + 5e-7]
        train, _, _ = split_with(mapped_ratings, {"fractions": fractions})
        assert train.height == round(0.7 * mapped_ratings.height)

    @pytest.mark.parametrize("seed", [None, "42", 4.2, -1, True])
    def test_rejects_invalid_seed(self, mapped_ratings, seed):
        with pytest.raises(ParameterError, match=r"'processing\.split\.seed'"):
            split_with(mapped_ratings, {"seed": seed})
