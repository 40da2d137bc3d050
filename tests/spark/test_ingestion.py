"""Ingestion on Spark: a release (as a folder or a zip, csv or ``::`` lines) and a file
of your own give the ratings, movies and scale one machine's ingestion gives; each bad
input of a file of your own stops the check with one machine's message, before any
node writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from rating_prediction.movielens import MovieLensError, read_movies, scan_ratings
from rating_prediction.movielens.own_file import ID_SAMPLE_ROWS
from rating_prediction.movielens.spark_readers import java_datetime_pattern
from rating_prediction.pipelines.data_ingestion import nodes as one_machine
from rating_prediction.pipelines.spark_preparation import nodes as spark_nodes

SMALL_SYNTHETIC = {"n_users": 60, "n_movies": 40, "n_ratings": 600}
OWN_HEADER = "customer;product;stars;rated_at\n"
OWN_FILE = {
    "separator": ";",
    "columns": {
        "user": "customer",
        "item": "product",
        "rating": "stars",
        "timestamp": "rated_at",
    },
    "timestamp_format": "%Y-%m-%dT%H:%M:%S",
    "rating_scale": [1, 10],
}


def ingestion(raw_dir: Path, dataset: str, **extra: Any) -> dict[str, Any]:
    return {
        "dataset": dataset,
        "raw_dir": str(raw_dir),
        "base_url": "http://127.0.0.1:9/none",
        "download_timeout_s": 1,
        "synthetic": SMALL_SYNTHETIC,
        **extra,
    }


def spark_ingestion(spark, parameters: dict[str, Any]):
    """The spark_preparation ingestion nodes, in order: ratings, scale, movies."""
    release = spark_nodes.prepare_spark_release(parameters)
    raw = spark_nodes.read_release_ratings(release)
    profile = spark_nodes.check_spark_release(raw, release)
    ratings, scale = spark_nodes.clean_spark_ratings(raw, profile)
    movies = spark_nodes.spark_movies(read_movies(release), profile)
    return pl.from_arrow(ratings.toArrow()), scale, pl.from_arrow(movies.toArrow())


def polars_ingestion(parameters: dict[str, Any]):
    """The data_ingestion nodes on the same parameters."""
    release = one_machine.prepare_raw_release(parameters)
    raw = scan_ratings(release)
    profile, release = one_machine.check_release(raw, release)
    ratings, scale = one_machine.clean_ratings(raw, profile)
    movies = one_machine.clean_movies(read_movies(release), profile)
    return ratings.collect(), scale, movies


def assert_same_ingestion(spark, parameters: dict[str, Any]) -> None:
    ratings, scale, movies = spark_ingestion(spark, parameters)
    expected_ratings, expected_scale, expected_movies = polars_ingestion(parameters)
    assert ratings.schema == expected_ratings.schema
    assert ratings.sort("userId", "movieId").equals(expected_ratings)
    assert scale == expected_scale
    assert movies.sort("movieId").equals(expected_movies)


def test_the_synthetic_release_as_on_one_machine(spark, tmp_path):
    assert_same_ingestion(spark, ingestion(tmp_path, "synthetic"))


def test_a_zipped_dat_release_is_extracted_once_and_read_as_on_one_machine(
    spark, tmp_path, make_release
):
    archive = make_release(tmp_path, "ml-1m", as_zip=True)
    assert_same_ingestion(spark, ingestion(tmp_path, "ml-1m"))
    assert (tmp_path / "ml-1m" / "ml-1m" / "ratings.dat").is_file()
    assert archive.is_file()
    assert not list(tmp_path.glob(".partial-*"))


def own_file(tmp_path: Path, lines: list[str], **overrides: Any) -> dict[str, Any]:
    path = tmp_path / "ratings.csv"
    path.write_text(OWN_HEADER + "\n".join(lines) + "\n")
    return ingestion(
        tmp_path, "file", file={"path": str(path), **OWN_FILE, **overrides}
    )


def dated(user: str, item: str, stars: str, day: int = 1) -> str:
    return f"{user};{item};{stars};2020-01-{day:02d}T10:00:00"


def test_a_file_of_your_own_with_text_ids_repeats_and_dates(spark, tmp_path):
    lines = [
        dated("c2", "p318", "10"),
        dated("c1", "p1", "7", day=2),
        dated("c1", "p1", "3", day=5),  # the latest of a repeated pair is kept
        dated("c10", "p2", "1"),  # "c10" sorts before "c2": byte order, as polars
    ]
    assert_same_ingestion(spark, own_file(tmp_path, lines))


def integer_rows(count: int) -> list[str]:
    """Enough integer-id rows for the id type sampled from the first ones to be
    integers."""
    return [dated(str(user), "5", "4") for user in range(count)]


BAD_FILES = {
    "text id after integer ones": (
        [*integer_rows(ID_SAMPLE_ROWS), dated("c7", "5", "4")],
        {},
        "customer \\(ingestion.file.columns.user\\): 1 value\\(s\\) are not integer ids",
    ),
    "negative id": (
        [*integer_rows(ID_SAMPLE_ROWS), dated("-3", "5", "4")],
        {},
        "1 row\\(s\\) have an integer id outside 0..2147483647",
    ),
    "missing id": (
        [dated("c1", "p1", "4"), ";p2;4;2020-01-01T10:00:00"],
        {},
        "1 row\\(s\\) have missing values",
    ),
    "non-numeric rating": (
        [dated("c1", "p1", "4"), dated("c2", "p1", "four")],
        {},
        "stars \\(ingestion.file.columns.rating\\): 1 value\\(s\\) are not numbers",
    ),
    "rating outside the scale": (
        [dated("c1", "p1", "4"), dated("c2", "p1", "11"), dated("c3", "p1", "0")],
        {},
        "2 row\\(s\\) have a rating outside 1.0..10.0 \\(ingestion.file.rating_scale\\)",
    ),
    "unparseable timestamp": (
        [dated("c1", "p1", "4"), "c2;p1;4;2020-13-45T10:00:00"],
        {},
        "do not match ingestion.file.timestamp_format",
    ),
    "misspelt column": (
        [dated("c1", "p1", "4")],
        {"columns": {**OWN_FILE["columns"], "rating": "star"}},
        "lacks the column\\(s\\) \\['star'\\]",
    ),
    "header only": ([], {}, "holds no ratings"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_each_bad_input_is_refused_naming_the_file(spark, tmp_path, case):
    lines, overrides, message = BAD_FILES[case]
    parameters = own_file(tmp_path, lines, **overrides)
    with pytest.raises(MovieLensError, match=message) as refused:
        spark_ingestion(spark, parameters)
    assert "ratings.csv" in str(refused.value)


def test_a_zipped_file_of_your_own_is_refused_saying_to_extract_it(spark, tmp_path):
    import zipfile  # noqa: PLC0415

    archive = tmp_path / "ratings.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("ratings.csv", OWN_HEADER + dated("c1", "p1", "4") + "\n")
    parameters = ingestion(tmp_path, "file", file={"path": str(archive), **OWN_FILE})
    with pytest.raises(MovieLensError, match="Spark reads .csv, .tsv, .parquet"):
        spark_nodes.prepare_spark_release(parameters)


def test_strftime_formats_become_java_patterns():
    assert java_datetime_pattern("%Y-%m-%dT%H:%M:%S") == "yyyy-MM-dd'T'HH:mm:ss"
    assert java_datetime_pattern("%d/%m/%y %I%p") == "dd/MM/yy hha"
    with pytest.raises(MovieLensError, match="%f has no equivalent"):
        java_datetime_pattern("%H:%M:%S.%f")
