"""Tests of the synthetic MovieLens-format generator."""

from __future__ import annotations

import itertools
import json

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rating_prediction.data.schema import RATINGS_SCHEMA
from rating_prediction.movielens import (
    ReleaseSource,
    read_movies,
    read_ratings,
    synthetic,
)
from rating_prediction.movielens.synthetic import (
    SETTINGS_FILE,
    ensure_synthetic_release,
    generate_movies,
    generate_rating_blocks,
)
from rating_prediction.parameters import ParameterError, SyntheticSettings, parse

SMALL = SyntheticSettings(seed=7, n_users=600, n_movies=300, n_ratings=20_000)


def generated_ratings(settings: SyntheticSettings) -> pl.DataFrame:
    """Every rating of ``settings``: the blocks ``ensure_synthetic_release`` writes to
    ``ratings.csv``, joined."""
    return pl.concat(generate_rating_blocks(settings))


@pytest.fixture(scope="module")
def ratings() -> pl.DataFrame:
    return generated_ratings(SMALL)


def test_deterministic_for_a_seed(ratings):
    assert_frame_equal(generated_ratings(SMALL), ratings)
    assert not generated_ratings(SMALL.model_copy(update={"seed": 8})).equals(ratings)


def test_exact_row_count_of_distinct_sorted_pairs(ratings):
    assert ratings.height == SMALL.n_ratings
    assert ratings.select("userId", "movieId").is_duplicated().sum() == 0
    assert ratings.equals(ratings.sort("userId", "movieId"))
    assert ratings.schema == pl.Schema(
        {
            "userId": pl.Int32,
            "movieId": pl.Int32,
            "rating": pl.Float32,
            "timestamp": pl.Int64,
        }
    )


def test_ids_within_configured_ranges(ratings):
    assert ratings["userId"].min() >= 1
    assert ratings["userId"].max() <= SMALL.n_users
    assert ratings["movieId"].min() >= 1
    assert ratings["movieId"].max() <= SMALL.n_movies
    assert (
        ratings["timestamp"]
        .is_between(SMALL.first_timestamp, SMALL.last_timestamp)
        .all()
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_half_stars_with_a_realistic_mean(seed):
    ratings = generated_ratings(SMALL.model_copy(update={"seed": seed}))["rating"]
    assert 3.5 <= ratings.mean() <= 3.9
    assert ratings.is_between(0.5, 5.0).all()
    assert ((ratings * 2).round() == ratings * 2).all()
    assert ratings.n_unique() == 10  # every half star from 0.5 to 5 occurs


def test_long_tailed_popularity_and_activity(ratings):
    per_movie = ratings["movieId"].value_counts()["count"].sort(descending=True)
    per_user = ratings["userId"].value_counts()["count"].sort(descending=True)
    assert per_movie.head(SMALL.n_movies // 10).sum() > 0.3 * ratings.height
    assert per_user.head(SMALL.n_users // 10).sum() > 0.2 * ratings.height
    assert per_movie.max() > 5 * per_movie.median()


def test_learnable_structure(ratings):
    """Movie effects replicate across disjoint users, as the model must learn them."""
    halves = ratings.with_columns(half=pl.col("userId") % 2).group_by("movieId", "half")
    movie_means = (
        halves.agg(pl.col("rating").mean(), pl.len())
        .filter(pl.col("len") >= 10)
        .pivot(on="half", index="movieId", values="rating")
        .drop_nulls()
    )
    assert np.corrcoef(movie_means["0"], movie_means["1"])[0, 1] > 0.6


def test_low_rank_interaction_beyond_biases(ratings):
    """Residuals after movie and user means keep user x movie structure.

    Shuffling the residuals over the same (user, movie) cells destroys that structure,
    so the leading singular values of the real residual matrix must stand out from the
    shuffled ones (they do not when ``interaction_std`` is 0).
    """
    residuals = ratings.with_columns(
        residual=pl.col("rating") - pl.col("rating").mean().over("movieId")
    ).with_columns(
        residual=pl.col("residual") - pl.col("residual").mean().over("userId")
    )
    users = residuals["userId"].to_numpy() - 1
    movies = residuals["movieId"].to_numpy() - 1

    def singular_values(values: np.ndarray) -> np.ndarray:
        matrix = np.zeros((SMALL.n_users, SMALL.n_movies))
        matrix[users, movies] = values
        # Eigenvalues of the small Gram matrix: the squared singular values, cheaply.
        return np.sqrt(np.linalg.eigvalsh(matrix.T @ matrix)[::-1].clip(0))

    real = singular_values(residuals["residual"].to_numpy())
    shuffled = singular_values(
        np.random.default_rng(0).permutation(residuals["residual"].to_numpy())
    )
    assert real[0] > 1.2 * shuffled[0]
    assert real[: SMALL.rank - 1].min() > shuffled[0]


def test_movies_have_titles_and_genres():
    movies = generate_movies(SMALL)
    assert movies["movieId"].to_list() == list(range(1, SMALL.n_movies + 1))
    assert movies["title"][0].startswith("Synthetic Movie 1 (")
    assert movies["genres"].null_count() == 0
    assert (movies["genres"] != "").all()


def test_settings_reject_impossible_density():
    with pytest.raises(ParameterError, match="at most half") as error:
        parse(
            SyntheticSettings,
            {"n_users": 10, "n_movies": 10, "n_ratings": 60},
            "ingestion.synthetic",
        )
    assert "'ingestion.synthetic': n_ratings=60" in str(error.value)


def test_settings_reject_unknown_keys():
    with pytest.raises(
        ParameterError, match="unknown key 'ingestion.synthetic.n_user'"
    ):
        parse(SyntheticSettings, {"n_user": 10}, "ingestion.synthetic")


class TestEnsureSyntheticRelease:
    def test_writes_an_ml_latest_small_style_release(self, tmp_path, ratings):
        assert ensure_synthetic_release(tmp_path, SMALL)
        header = (tmp_path / "ratings.csv").read_text().splitlines()[:2]
        assert header[0] == "userId,movieId,rating,timestamp"
        assert header[1].split(",")[2] in {f"{value / 2:.1f}" for value in range(1, 11)}
        assert (
            (tmp_path / "movies.csv").read_text().startswith("movieId,title,genres\n")
        )
        source = ReleaseSource("synthetic", tmp_path)
        assert_frame_equal(read_ratings(source), ratings)
        assert_frame_equal(read_movies(source), generate_movies(SMALL))

    def test_settings_file_keeps_its_keys_order_and_values(self, tmp_path):
        """Existing samples stay current only while this file's content is unchanged."""
        ensure_synthetic_release(tmp_path, SMALL)
        assert (tmp_path / SETTINGS_FILE).read_text() == (
            "{\n"
            '  "generator_version": 2,\n'
            '  "seed": 7,\n'
            '  "n_users": 600,\n'
            '  "n_movies": 300,\n'
            '  "n_ratings": 20000,\n'
            '  "rank": 5,\n'
            '  "global_mean": 3.65,\n'
            '  "user_bias_std": 0.4,\n'
            '  "movie_bias_std": 0.45,\n'
            '  "interaction_std": 0.5,\n'
            '  "noise_std": 0.5,\n'
            '  "rating_step": 0.5,\n'
            '  "user_activity_exponent": 0.7,\n'
            '  "user_activity_offset": 20.0,\n'
            '  "movie_popularity_exponent": 1.0,\n'
            '  "movie_popularity_offset": 10.0,\n'
            '  "first_timestamp": 946684800,\n'
            '  "last_timestamp": 1537747200\n'
            "}\n"
        )

    def test_reuses_files_while_settings_are_unchanged(self, tmp_path):
        ensure_synthetic_release(tmp_path, SMALL)
        written = (tmp_path / "ratings.csv").stat().st_mtime_ns
        assert not ensure_synthetic_release(tmp_path, SMALL)
        assert (tmp_path / "ratings.csv").stat().st_mtime_ns == written

    def test_regenerates_when_settings_change(self, tmp_path):
        ensure_synthetic_release(tmp_path, SMALL)
        changed = SMALL.model_copy(update={"n_ratings": 1_000})
        assert ensure_synthetic_release(tmp_path, changed)
        assert len((tmp_path / "ratings.csv").read_text().splitlines()) == 1_001
        assert json.loads((tmp_path / SETTINGS_FILE).read_text())["n_ratings"] == 1_000

    def test_regenerates_when_a_file_is_missing(self, tmp_path):
        ensure_synthetic_release(tmp_path, SMALL)
        (tmp_path / "movies.csv").unlink()
        assert ensure_synthetic_release(tmp_path, SMALL)
        assert (tmp_path / "movies.csv").is_file()
        assert sorted(path.name for path in tmp_path.iterdir()) == [
            SETTINGS_FILE,
            "movies.csv",
            "ratings.csv",
        ]


# The Netflix Prize's shape in small: whole stars, far more users than movies.
NETFLIX_LIKE = SyntheticSettings(
    seed=11,
    n_users=2_000,
    n_movies=400,
    n_ratings=60_000,
    rating_step=1.0,
    movie_popularity_exponent=1.2,
    movie_popularity_offset=10.0,
)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of about 5,000 ratings, so a small release spans many."""
    monkeypatch.setattr(synthetic, "_CHUNK_ROWS", 5_000)


class TestGeneratedInBlocks:
    def test_exact_counts_of_distinct_pairs_sorted_across_blocks(self, small_blocks):
        blocks = list(generate_rating_blocks(NETFLIX_LIKE))
        assert len(blocks) >= 10
        ratings = pl.concat(blocks)
        assert ratings.height == NETFLIX_LIKE.n_ratings
        assert ratings["userId"].n_unique() == NETFLIX_LIKE.n_users  # all rate
        assert ratings.select("userId", "movieId").is_duplicated().sum() == 0
        assert ratings.equals(ratings.sort("userId", "movieId"))
        assert all(block.schema == RATINGS_SCHEMA for block in blocks)
        # A user's ratings never straddle two blocks; no user rates over half.
        for before, after in itertools.pairwise(blocks):
            assert before["userId"].max() < after["userId"].min()
        per_user = ratings["userId"].value_counts()["count"]
        assert per_user.max() <= NETFLIX_LIKE.n_movies // 2
        assert max(block.height for block in blocks) <= 5_000 + per_user.max()

    def test_whole_stars_from_one_to_five(self, small_blocks):
        ratings = generated_ratings(NETFLIX_LIKE)["rating"]
        assert sorted(ratings.unique().to_list()) == [1.0, 2.0, 3.0, 4.0, 5.0]
        assert 3.3 <= ratings.mean() <= 3.9

    def test_long_tailed_activity_and_popularity(self, small_blocks):
        ratings = generated_ratings(NETFLIX_LIKE)
        per_user = ratings["userId"].value_counts()["count"]
        per_movie = ratings["movieId"].value_counts()["count"].sort(descending=True)
        assert per_user.max() > 5 * per_user.median()
        assert per_movie.head(NETFLIX_LIKE.n_movies // 10).sum() > 0.3 * 60_000
        assert per_movie.max() > 10 * per_movie.min()

    def test_deterministic_per_seed(self, small_blocks):
        first = generated_ratings(NETFLIX_LIKE)
        assert_frame_equal(generated_ratings(NETFLIX_LIKE), first)
        other = generated_ratings(NETFLIX_LIKE.model_copy(update={"seed": 12}))
        assert not other.equals(first)

    def test_users_short_after_the_rounds_draw_the_rest_exactly(
        self, small_blocks, monkeypatch
    ):
        """With a single round of draws most users end up short of distinct movies;
        the exponential keys make up exactly the difference."""
        monkeypatch.setattr(synthetic, "_REJECTION_ROUNDS", 1)
        monkeypatch.setattr(synthetic, "_OVERSAMPLING", 0.5)
        ratings = generated_ratings(NETFLIX_LIKE)
        assert ratings.height == NETFLIX_LIKE.n_ratings
        assert ratings.select("userId", "movieId").is_duplicated().sum() == 0

    def test_csv_is_appended_block_by_block_under_one_header(
        self, tmp_path, small_blocks
    ):
        ensure_synthetic_release(tmp_path, NETFLIX_LIKE)
        lines = (tmp_path / "ratings.csv").read_text().splitlines()
        assert lines.count("userId,movieId,rating,timestamp") == 1
        assert len(lines) == NETFLIX_LIKE.n_ratings + 1
        source = ReleaseSource("synthetic", tmp_path)
        assert_frame_equal(read_ratings(source), generated_ratings(NETFLIX_LIKE))

    def test_a_failure_midway_leaves_no_file(self, tmp_path, monkeypatch):
        first_block = generated_ratings(SMALL).head(10)

        def failing_blocks(settings):
            yield first_block
            raise MemoryError("simulated")

        monkeypatch.setattr(synthetic, "generate_rating_blocks", failing_blocks)
        with pytest.raises(MemoryError, match="simulated"):
            ensure_synthetic_release(tmp_path, SMALL)
        assert list(tmp_path.iterdir()) == []
