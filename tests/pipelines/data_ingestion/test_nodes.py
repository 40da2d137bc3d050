"""Tests of the data ingestion nodes on tiny frames and folders."""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest

from rating_prediction.movielens import MovieLensError, ReleaseSource
from rating_prediction.movielens.parsers.csv_files import scan_ratings_csv
from rating_prediction.parameters import ParameterError
from rating_prediction.pipelines.data_ingestion.nodes import (
    clean_movies,
    clean_ratings,
    prepare_raw_release,
)
from tests.fakes import ratings_frame
from tests.movielens.fixtures import md5_hex, release_files, write_zip

# The ratings contract that every later pipeline relies on, stated here as an
# independent literal on purpose: a change to rating_prediction.data.schema fails this test.
RATINGS_CONTRACT = pl.Schema(
    {
        "userId": pl.Int32,
        "movieId": pl.Int32,
        "rating": pl.Float32,
        "timestamp": pl.Int64,
    }
)


def ingestion_parameters(raw_dir, dataset="synthetic", base_url="http://unused"):
    return {
        "dataset": dataset,
        "raw_dir": str(raw_dir),
        "base_url": base_url,
        "download_timeout_s": 5,
        "synthetic": {"seed": 3, "n_users": 50, "n_movies": 20, "n_ratings": 300},
    }


class TestCleanRatings:
    def test_sorts_by_user_then_movie(self):
        raw = ratings_frame([(2, 1, 3.0, 10), (1, 5, 4.0, 11), (1, 2, 0.5, 12)])
        cleaned = clean_ratings(raw)[0].collect()
        assert cleaned.select("userId", "movieId").rows() == [(1, 2), (1, 5), (2, 1)]
        assert cleaned.schema == RATINGS_CONTRACT

    def test_casts_wider_dtypes_to_the_contract(self):
        raw = pl.DataFrame(
            {"timestamp": [1], "rating": [4.5], "movieId": [2], "userId": [1]}
        )
        cleaned = clean_ratings(raw)[0].collect()
        assert cleaned.columns == list(RATINGS_CONTRACT)
        assert cleaned.schema == RATINGS_CONTRACT

    def test_duplicates_keep_the_latest_rating(self, caplog):
        raw = ratings_frame(
            [(1, 1, 2.0, 30), (1, 1, 5.0, 50), (1, 1, 1.0, 10), (2, 1, 3.0, 5)]
        )
        with caplog.at_level(logging.WARNING):
            cleaned = clean_ratings(raw)[0].collect()
        assert cleaned.rows() == [(1, 1, 5.0, 50), (2, 1, 3.0, 5)]
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "Dropped 2 duplicated" in warnings[0].getMessage()

    def test_duplicates_at_the_same_time_keep_the_last_in_file_order(self, tmp_path):
        """The documented rule, pinned on a file large enough for polars to read it in
        many chunks on every thread: of pairs rated twice at the same second, the row
        later in the file wins, never an arbitrary one."""
        pairs = 200_000
        users, movies = np.divmod(np.arange(pairs), 1_000)
        first = pl.DataFrame(
            {"userId": users, "movieId": movies, "rating": 1.0, "timestamp": 7}
        )
        # The later row of each pair rates it 5.0; the file is shuffled so the two rows
        # of a pair lie anywhere, with the 5.0 always after the 1.0.
        rows = pl.concat([first, first.with_columns(rating=pl.lit(5.0))])
        order = np.random.default_rng(0).permutation(pairs)
        rows = pl.concat([rows[:pairs][order], rows[pairs:][order]])
        path = tmp_path / "ratings.csv"
        rows.write_csv(path)
        cleaned = clean_ratings(scan_ratings_csv(path))[0].collect()
        assert cleaned.height == pairs
        assert cleaned["rating"].unique().to_list() == [5.0]

    def test_no_warning_without_duplicates(self, caplog):
        with caplog.at_level(logging.WARNING):
            clean_ratings(ratings_frame([(1, 1, 2.0, 30), (1, 2, 2.0, 30)]))
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    def test_ratings_out_of_range(self):
        rows = [(1, 1, 4.0, 1), (1, 2, 0.0, 1), (1, 3, 5.5, 1), (1, 4, float("nan"), 1)]
        with pytest.raises(MovieLensError, match="3 row\\(s\\) have a rating outside"):
            clean_ratings(ratings_frame(rows))

    def test_nulls_are_counted_and_at_most_five_shown(self):
        rows = [(1, 1, 4.0, 1)] + [(None, movie, 3.0, 1) for movie in range(2, 9)]
        with pytest.raises(MovieLensError, match="7 row\\(s\\) have missing") as error:
            clean_ratings(ratings_frame(rows))
        assert "shape: (5," in str(error.value)

    def test_missing_columns(self):
        with pytest.raises(MovieLensError, match="timestamp"):
            clean_ratings(
                pl.DataFrame({"userId": [1], "movieId": [1], "rating": [1.0]})
            )


class TestCleanMovies:
    def test_sorted_unique_with_null_for_missing_genres(self):
        raw = pl.DataFrame(
            {
                "movieId": [3, 1, 2, 1],
                "title": ["C", "A", "B", "A again"],
                "genres": ["(no genres listed)", "Drama", None, "Comedy"],
            },
            schema_overrides={"movieId": pl.Int32},
        )
        movies = clean_movies(raw)
        assert movies.rows() == [(1, "A", "Drama"), (2, "B", None), (3, "C", None)]
        assert movies.schema == pl.Schema(
            {"movieId": pl.Int32, "title": pl.String, "genres": pl.String}
        )


class TestPrepareRawRelease:
    def test_synthetic_is_generated_and_read_as_a_folder(self, tmp_path):
        source = prepare_raw_release(ingestion_parameters(tmp_path))
        assert source == ReleaseSource("synthetic", tmp_path / "synthetic")
        assert (tmp_path / "synthetic" / "ratings.csv").is_file()

    def test_present_archive_is_used_without_network(self, tmp_path, closed_port_url):
        archive = write_zip(tmp_path / "ml-1m.zip", "ml-1m", release_files("ml-1m"))
        parameters = ingestion_parameters(tmp_path, "ml-1m", closed_port_url)
        assert prepare_raw_release(parameters) == ReleaseSource("ml-1m", archive)

    def test_missing_release_is_downloaded(self, tmp_path, grouplens_server):
        archive = write_zip(
            tmp_path / "source.zip", "ml-100k", release_files("ml-100k")
        ).read_bytes()
        grouplens_server.publish("ml-100k", archive)
        raw_dir = tmp_path / "raw"
        parameters = ingestion_parameters(raw_dir, "ml-100k", grouplens_server.base_url)
        source = prepare_raw_release(parameters)
        assert source == ReleaseSource("ml-100k", raw_dir / "ml-100k.zip")
        assert md5_hex(source.path.read_bytes()) == md5_hex(archive)

    def test_missing_release_without_network(self, tmp_path, closed_port_url):
        parameters = ingestion_parameters(tmp_path, "ml-25m", closed_port_url)
        with pytest.raises(MovieLensError, match="ml-25m.zip by hand"):
            prepare_raw_release(parameters)

    def test_unknown_release_touches_nothing(self, tmp_path):
        raw_dir = tmp_path / "raw"
        with pytest.raises(MovieLensError, match="valid: synthetic, ml-100k"):
            prepare_raw_release(ingestion_parameters(raw_dir, "ml-2m"))
        assert not raw_dir.exists()

    def test_invalid_parameters_name_the_key_and_touch_nothing(self, tmp_path):
        raw_dir = tmp_path / "raw"
        parameters = ingestion_parameters(raw_dir)
        parameters["synthetic"] = {**parameters["synthetic"], "n_user": 50}
        with pytest.raises(
            ParameterError, match="unknown key 'ingestion.synthetic.n_user'"
        ):
            prepare_raw_release(parameters)
        assert not raw_dir.exists()
