"""A ratings file of the user's own: layouts, id types, timestamps, and what bad input
gets (an error naming the file, the parameter and the column)."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from rating_prediction.movielens import MovieLensError, own_file
from rating_prediction.movielens.own_file import (
    ID_SAMPLE_ROWS,
    explain_unreadable_own_ratings,
    locate_own_file,
    read_own_items,
    scan_own_ratings,
)
from rating_prediction.parameters import (
    IngestionParameters,
    OwnFileSettings,
    ParameterError,
    parse,
)

RATINGS_CSV = (
    "customer;product;stars;rated_at\n"
    "c2;p318;10;2020-01-02T10:00:00\n"
    "c1;p1;7;2020-01-01T00:00:00\n"
)
COLUMNS = {"user": "customer", "item": "product", "rating": "stars"}


def settings(path: Path, **overrides: Any) -> OwnFileSettings:
    values = {
        "path": str(path),
        "separator": ";",
        "columns": {**COLUMNS, "timestamp": "rated_at"},
        "timestamp_format": "%Y-%m-%dT%H:%M:%S",
        **overrides,
    }
    return parse(OwnFileSettings, values, "ingestion.file")


def written(tmp_path: Path, text: str, name: str = "ratings.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def scanned(own_settings: OwnFileSettings) -> pl.DataFrame:
    return scan_own_ratings(locate_own_file(own_settings)).collect()


def test_text_ids_and_formatted_times_in_the_contract_columns(tmp_path):
    ratings = scanned(settings(written(tmp_path, RATINGS_CSV)))
    assert ratings.schema == pl.Schema(
        {
            "userId": pl.String,
            "movieId": pl.String,
            "rating": pl.Float32,
            "timestamp": pl.Int64,
        }
    )
    assert ratings.rows() == [
        ("c2", "p318", 10.0, 1_577_959_200),
        ("c1", "p1", 7.0, 1_577_836_800),
    ]


def test_integer_ids_and_unix_seconds(tmp_path):
    path = written(tmp_path, "u\ti\tr\tt\n42\t318\t4.5\t100\n7\t1\t3\t200\n")
    own = settings(
        path,
        separator="\t",
        columns={"user": "u", "item": "i", "rating": "r", "timestamp": "t"},
        timestamp_format=None,
    )
    ratings = scanned(own)
    assert ratings.schema["userId"] == pl.Int32  # 32 bits, as a release's ids
    assert ratings.rows() == [(42, 318, 4.5, 100), (7, 1, 3.0, 200)]


def test_integers_outside_the_id_range_are_text_ids(tmp_path):
    """Negative or 64-bit integers (hashes) are labels: every request and parameter id
    that is an integer must lie in 0..2**31-1."""
    path = written(tmp_path, "customer;product;stars\n5000000000;1;3\n7;-2;4\n")
    untimed = {"columns": COLUMNS, "timestamp_format": None}
    ratings = scanned(settings(path, **untimed))
    assert ratings.schema["userId"] == ratings.schema["movieId"] == pl.String
    assert ratings["userId"].to_list() == ["5000000000", "7"]
    with pytest.raises(MovieLensError, match="ids is 'integer' but the user ids"):
        locate_own_file(settings(path, ids="integer", **untimed))


def test_an_id_out_of_range_after_the_sampled_rows_is_explained(tmp_path):
    rows = [f"{user};1;3" for user in range(1, ID_SAMPLE_ROWS + 2)]
    path = written(
        tmp_path,
        "customer;product;stars\n" + "\n".join([*rows, "5000000000;1;3"]) + "\n",
    )
    own = locate_own_file(settings(path, columns=COLUMNS, timestamp_format=None))
    assert own.id_dtypes["userId"] == pl.Int32
    with pytest.raises(MovieLensError) as error:
        explain_unreadable_own_ratings(own)
    message = str(error.value)
    assert "1 value(s) are not integer ids in 0..2147483647" in message
    assert "ingestion.file.ids: string" in message


@pytest.mark.parametrize(
    "text",
    [
        "u,i,r,t\n42,318,4.5,100\n7,1,3,200\n",  # plain: the CSV reader parses
        "u,i,r,t\n 42, 318 ,4.5 , 100\n7,\t1,3,200\n",  # padded: text, stripped
        'u,i,r,t,note\n42,318,4.5,100,"a, b"\n7,1,3,200,é\n',  # quotes, non-ASCII
    ],
)
def test_parsed_or_stripped_the_values_are_the_same(tmp_path, text):
    own = settings(
        written(tmp_path, text),
        separator=",",
        columns={"user": "u", "item": "i", "rating": "r", "timestamp": "t"},
        timestamp_format=None,
    )
    ratings = scanned(own)
    assert ratings.schema == pl.Schema(
        {
            "userId": pl.Int32,
            "movieId": pl.Int32,
            "rating": pl.Float32,
            "timestamp": pl.Int64,
        }
    )
    assert ratings.rows() == [(42, 318, 4.5, 100), (7, 1, 3.0, 200)]


def test_a_plain_file_with_a_text_id_after_the_sample_still_raises(tmp_path):
    rows = "".join(f"{n},1,3,{n}\n" for n in range(1, ID_SAMPLE_ROWS + 2))
    path = written(tmp_path, f"u,i,r,t\n{rows}x9,1,3,1\n")
    own = locate_own_file(
        settings(
            path,
            separator=",",
            columns={"user": "u", "item": "i", "rating": "r", "timestamp": "t"},
            timestamp_format=None,
        )
    )
    with pytest.raises(pl.exceptions.ComputeError):
        scan_own_ratings(own).collect()
    with pytest.raises(MovieLensError, match="x9"):
        explain_unreadable_own_ratings(own)


def test_ids_with_leading_zeros_stay_text(tmp_path):
    """ "007" and "7" must never become one id."""
    path = written(tmp_path, "customer;product;stars\n007;1;3\n7;1;4\n")
    ratings = scanned(settings(path, columns=COLUMNS, timestamp_format=None))
    assert ratings.schema["userId"] == pl.String
    assert ratings["userId"].to_list() == ["007", "7"]
    assert ratings.schema["movieId"] == pl.Int32


def test_ids_string_reads_integer_looking_ids_as_text(tmp_path):
    path = written(tmp_path, "customer;product;stars\n1;1;3\n")
    ratings = scanned(
        settings(path, columns=COLUMNS, timestamp_format=None, ids="string")
    )
    assert ratings.schema["userId"] == ratings.schema["movieId"] == pl.String


def test_a_file_without_timestamps_gets_null_ones(tmp_path):
    path = written(tmp_path, "customer;product;stars\nc1;p1;3\n")
    own = locate_own_file(settings(path, columns=COLUMNS, timestamp_format=None))
    assert not own.has_timestamps
    ratings = scan_own_ratings(own).collect()
    assert ratings["timestamp"].to_list() == [None]
    assert ratings.schema["timestamp"] == pl.Int64


def test_parquet_with_typed_columns(tmp_path):
    path = tmp_path / "ratings.parquet"
    pl.DataFrame(
        {"customer": [5, 6], "product": [10, 11], "stars": [1, 5]},
        schema={"customer": pl.UInt32, "product": pl.Int16, "stars": pl.Int8},
    ).write_parquet(path)
    ratings = scanned(settings(path, columns=COLUMNS, timestamp_format=None))
    assert ratings.schema["userId"] == ratings.schema["movieId"] == pl.Int32
    assert ratings.rows() == [(5, 10, 1.0, None), (6, 11, 5.0, None)]


def test_parquet_datetimes_become_unix_seconds(tmp_path):
    path = tmp_path / "ratings.parquet"
    pl.DataFrame(
        {"customer": ["a"], "product": ["b"], "stars": [2.0], "rated_at": [1]}
    ).with_columns(pl.from_epoch("rated_at", "s")).write_parquet(path)
    ratings = scanned(settings(path, timestamp_format=None))
    assert ratings.row(0) == ("a", "b", 2.0, 1)


def test_a_csv_inside_a_zip(tmp_path):
    archive = tmp_path / "ratings.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("export/ratings.csv", RATINGS_CSV)
    assert scanned(settings(archive)).height == 2


def test_a_zip_with_two_data_files_is_refused(tmp_path):
    archive = tmp_path / "ratings.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("a.csv", RATINGS_CSV)
        zipped.writestr("b.csv", RATINGS_CSV)
    with pytest.raises(MovieLensError, match=r"exactly one .*'a.csv', 'b.csv'"):
        locate_own_file(settings(archive))


def test_a_missing_file_names_the_parameter_and_the_path(tmp_path):
    with pytest.raises(MovieLensError, match="ingestion.file.path: no file at"):
        locate_own_file(settings(tmp_path / "nowhere.csv"))


def test_a_misspelt_column_lists_the_file_columns(tmp_path):
    own = settings(
        written(tmp_path, RATINGS_CSV), columns={**COLUMNS, "rating": "star"}
    )
    with pytest.raises(MovieLensError) as error:
        locate_own_file(own)
    message = str(error.value)
    assert "lacks the column(s) ['star'] that ingestion.file.columns names" in message
    assert "['customer', 'product', 'stars', 'rated_at']" in message
    assert "ratings.csv" in message


def test_an_empty_file_and_a_header_only_file(tmp_path):
    with pytest.raises(MovieLensError, match="is empty"):
        locate_own_file(settings(written(tmp_path, "")))
    header_only = written(tmp_path, "customer;product;stars;rated_at\n", "h.csv")
    with pytest.raises(MovieLensError, match="holds no ratings"):
        locate_own_file(settings(header_only))


def test_parquet_ids_that_are_neither_integers_nor_text(tmp_path):
    path = tmp_path / "ratings.parquet"
    pl.DataFrame({"customer": [1.5], "product": [1], "stars": [3.0]}).write_parquet(
        path
    )
    with pytest.raises(MovieLensError, match=r"user ids .*are Float64"):
        locate_own_file(settings(path, columns=COLUMNS, timestamp_format=None))


class TestItems:
    def own(self, tmp_path: Path, items_text: str, ratings_text: str = RATINGS_CSV):
        items = written(tmp_path, items_text, "items.csv")
        return locate_own_file(
            settings(
                written(tmp_path, ratings_text),
                items={
                    "path": str(items),
                    "separator": ",",
                    "columns": {"item": "sku", "title": "name", "genres": "tags"},
                },
            )
        )

    def test_items_with_other_column_names(self, tmp_path):
        items = read_own_items(
            self.own(tmp_path, "sku,name,tags\np1,Toy Story,Animation|Comedy\n")
        )
        assert items.rows() == [("p1", "Toy Story", "Animation|Comedy")]

    def test_text_item_ids_for_integer_ratings_ids_are_refused(self, tmp_path):
        ratings = "customer;product;stars;rated_at\n1;318;4;2020-01-01T00:00:00\n"
        own = self.own(tmp_path, "sku,name,tags\np318,A,\n", ratings)
        with pytest.raises(MovieLensError) as error:
            read_own_items(own)
        assert "items.csv (ingestion.file.items.path)" in str(error.value)
        assert "must be integers, as the ratings' item ids are" in str(error.value)

    def test_items_whose_ids_no_rating_can_name_are_left_out(self, tmp_path):
        ratings = "customer;product;stars;rated_at\n1;318;4;2020-01-01T00:00:00\n"
        own = self.own(
            tmp_path, "sku,name,tags\n318,A,\n9000000000,B,\n-1,C,\n", ratings
        )
        items = read_own_items(own)
        assert items.rows() == [(318, "A", None)]
        assert items.schema["movieId"] == pl.Int32

    def test_a_misspelt_items_column(self, tmp_path):
        with pytest.raises(MovieLensError, match="ingestion.file.items.columns"):
            read_own_items(self.own(tmp_path, "sku,title,tags\np1,A,\n"))

    def test_without_an_items_file_the_table_is_empty_of_the_ratings_id_type(
        self, tmp_path
    ):
        own = locate_own_file(settings(written(tmp_path, RATINGS_CSV)))
        items = read_own_items(own)
        assert items.is_empty()
        assert items.schema["movieId"] == pl.String


def test_a_text_id_after_the_sampled_rows_is_explained(tmp_path):
    """The id type comes from the first rows; a later text id in a column of integer
    ids is refused with its row, not silently dropped."""
    rows = [f"{user};1;3" for user in range(1, ID_SAMPLE_ROWS + 2)] + ["c9;1;3"]
    path = written(tmp_path, "customer;product;stars\n" + "\n".join(rows) + "\n")
    own = locate_own_file(settings(path, columns=COLUMNS, timestamp_format=None))
    with pytest.raises(MovieLensError) as error:
        explain_unreadable_own_ratings(own)
    message = str(error.value)
    assert (
        "customer (ingestion.file.columns.user): 1 value(s) are not integer ids in 0.."
        in (message)
    )
    assert "ingestion.file.ids: string to read every id as text" in message
    assert f"│ {ID_SAMPLE_ROWS + 2} " in message


def test_unparseable_ratings_and_timestamps_are_explained(tmp_path):
    text = RATINGS_CSV + "c3;p1;five;2020-01-01T00:00:00\nc4;p1;3;yesterday\n"
    own = locate_own_file(settings(written(tmp_path, text)))
    with pytest.raises(MovieLensError) as error:
        explain_unreadable_own_ratings(own)
    message = str(error.value)
    assert (
        "stars (ingestion.file.columns.rating): 1 value(s) are not numbers" in message
    )
    assert "rated_at (ingestion.file.columns.timestamp): 1 value(s) do not match" in (
        message
    )


class TestParameters:
    def test_a_scale_with_min_not_below_max_is_refused(self, tmp_path):
        with pytest.raises(ParameterError, match="ingestion.file.rating_scale"):
            settings(tmp_path / "r.csv", rating_scale=[5, 5])

    def test_a_multi_character_separator_is_refused(self, tmp_path):
        with pytest.raises(ParameterError, match="ingestion.file.separator"):
            settings(tmp_path / "r.csv", separator="::")

    def test_an_unknown_format_is_refused(self, tmp_path):
        with pytest.raises(ParameterError, match="ingestion.file.path.*xlsx"):
            settings(tmp_path / "r.xlsx")

    def test_dataset_file_needs_the_file_block(self):
        values = {
            "dataset": "file",
            "raw_dir": "data/01_raw",
            "base_url": "http://unused",
            "download_timeout_s": 1,
        }
        with pytest.raises(ParameterError, match="no 'ingestion.file' block"):
            parse(IngestionParameters, values, "ingestion")


def test_padding_past_the_checked_head_is_explained(tmp_path, monkeypatch):
    """The head decides whether the CSV reader parses the numbers itself; a value
    padded after it is named with its row, never read wrong."""
    monkeypatch.setattr(own_file, "PLAIN_CHECK_BYTES", 64)
    rows = "".join(f"{n},1,3,{n}\n" for n in range(1, 40))
    path = written(tmp_path, f"u,i,r,t\n{rows}40 ,1,3,40\n")
    own = locate_own_file(
        settings(
            path,
            separator=",",
            columns={"user": "u", "item": "i", "rating": "r", "timestamp": "t"},
            timestamp_format=None,
        )
    )
    with pytest.raises(pl.exceptions.ComputeError):
        scan_own_ratings(own).collect()
    with pytest.raises(MovieLensError, match="padded with spaces") as error:
        explain_unreadable_own_ratings(own)
    assert "│ 40  ┆ 40 " in str(error.value)
    monkeypatch.setattr(own_file, "PLAIN_CHECK_BYTES", 64 * 1024**2)
    assert scanned(own.settings)["userId"].to_list()[-1] == 40
