"""The streaming path of ingestion: a ``ratings.csv`` scanned lazily, checked in one
pass and streamed to parquet by the ``ratings`` dataset, in small chunks here so that
a small file goes through the engine in many pieces, as a large one does."""

from __future__ import annotations

import logging

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rating_prediction.datasets import StreamingParquetDataset
from rating_prediction.movielens import (
    MovieLensError,
    ReleaseSource,
    read_ratings,
    scan_ratings,
)
from rating_prediction.movielens.synthetic import (
    ensure_synthetic_release,
    generate_rating_blocks,
)
from rating_prediction.parameters import SyntheticSettings
from rating_prediction.pipelines.data_ingestion.nodes import (
    check_ratings,
    clean_ratings,
)

SETTINGS = SyntheticSettings(seed=5, n_users=500, n_movies=200, n_ratings=12_000)
HEADER = "userId,movieId,rating,timestamp\n"


@pytest.fixture(autouse=True)
def small_chunks():
    with pl.Config(streaming_chunk_size=100):
        yield


def release(tmp_path, ratings_csv: str | None = None) -> ReleaseSource:
    """The synthetic release in ``tmp_path``, its ratings.csv replaced if given."""
    ensure_synthetic_release(tmp_path, SETTINGS)
    if ratings_csv is not None:
        (tmp_path / "ratings.csv").write_text(ratings_csv)
    return ReleaseSource("synthetic", tmp_path)


def streamed(source: ReleaseSource, tmp_path) -> pl.DataFrame:
    """Ingestion's path: scan, clean, save through the dataset, load."""
    dataset = StreamingParquetDataset(str(tmp_path / "out" / "ratings.parquet"))
    raw = scan_ratings(source)
    dataset.save(clean_ratings(raw, check_ratings(raw, source))[0])
    return dataset.load()


def test_sorted_csv_streams_to_the_ratings_the_eager_path_gives(tmp_path):
    source = release(tmp_path)
    ratings = streamed(source, tmp_path)
    assert_frame_equal(ratings, clean_ratings(read_ratings(source))[0].collect())
    assert_frame_equal(ratings, pl.concat(generate_rating_blocks(SETTINGS)))


def test_sorted_input_stays_a_lazy_scan_of_the_csv(tmp_path):
    """Nothing is read into memory: the dataset streams the scan to parquet."""
    plan = clean_ratings(scan_ratings(release(tmp_path)))[0].explain()
    assert plan.startswith("Csv SCAN")


def test_unsorted_csv_with_duplicates_is_sorted_keeping_the_latest(tmp_path, caplog):
    rows = ["2,1,3.0,5", "1,2,4.0,9", "1,2,2.0,3", "1,1,5.0,1", "1,2,1.0,7"]
    source = release(tmp_path, HEADER + "\n".join(rows) + "\n")
    with caplog.at_level(logging.WARNING):
        ratings = streamed(source, tmp_path)
    assert ratings.rows() == [(1, 1, 5.0, 1), (1, 2, 4.0, 9), (2, 1, 3.0, 5)]
    assert "Dropped 2 duplicated" in caplog.text


def test_a_value_that_does_not_parse_names_file_and_row_and_writes_nothing(tmp_path):
    rows = [f"{user},1,4.0,1" for user in range(1, 1_000)] + ["1000,x,4.0,1"]
    source = release(tmp_path, HEADER + "\n".join(rows) + "\n")
    with pytest.raises(MovieLensError) as error:
        streamed(source, tmp_path)
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'ratings.csv'}: 1 row(s) hold values")
    assert "- movieId: 1 value(s) are non-numeric" in message
    assert "│ 1000 " in message
    assert not (tmp_path / "out" / "ratings.parquet").exists()


def test_a_bad_value_in_the_first_rows_is_named_by_the_scan(tmp_path):
    source = release(tmp_path, HEADER + "1,1,4.0,1\n2,1,4.0,1e\n")
    with pytest.raises(MovieLensError, match=r"- timestamp: 1 value\(s\) are non-num"):
        scan_ratings(source)


def test_a_header_only_ratings_csv_holds_no_ratings(tmp_path):
    with pytest.raises(MovieLensError, match=r"ratings\.csv holds no ratings"):
        scan_ratings(release(tmp_path, HEADER))


def test_missing_values_are_counted_with_their_row_numbers(tmp_path):
    rows = [f"{user},1,4.0,1" for user in range(1, 300)] + ["300,2,,1", "301,2,4.0,"]
    source = release(tmp_path, HEADER + "\n".join(rows) + "\n")
    with pytest.raises(MovieLensError, match="2 row\\(s\\) have missing") as error:
        clean_ratings(scan_ratings(source))
    assert "│ 300 " in str(error.value)
