"""A request file as a catalog input (``RequestFileDataset``): a readable file with its
columns on load, read as a checked table in the served model's id types, an absent optional file as no requests, the suffix picking the format,
read-only."""

import re

import polars as pl
import pytest
from kedro.io import DatasetError

from rating_prediction.datasets import RequestFileDataset
from rating_prediction.serving.request_files import RequestFileError

PAIRS = ["userId", "movieId"]


class TestDataset:
    def test_loads_a_file_read_as_a_checked_table(self, tmp_path):
        path = tmp_path / "users.parquet"
        pl.DataFrame({"userId": [3, 1]}).write_parquet(path)
        dataset = RequestFileDataset(filepath=str(path), columns=["userId"])
        assert dataset.exists()
        assert dataset.load().read().table.collect()["userId"].to_list() == [3, 1]

    def test_ids_are_checked_when_read_in_the_served_models_id_type(self, tmp_path):
        # Loading cannot know whether "c42" is a bad integer id or a good string id:
        # the node reads the file with the served model's id types.
        path = tmp_path / "users.csv"
        path.write_text("userId\nc42\n007\n")
        loaded = RequestFileDataset(filepath=str(path), columns=["userId"]).load()
        with pytest.raises(RequestFileError, match=r"line 2: 'c42' \(not an integer\)"):
            loaded.read({"userId": "integer"})
        table = loaded.read({"userId": "string"}).table.collect()
        assert table.schema == pl.Schema({"userId": pl.String})
        assert table["userId"].to_list() == ["c42", "007"]

    def test_loading_still_refuses_a_missing_column(self, tmp_path):
        path = tmp_path / "pairs.csv"
        path.write_text("userId\n1\n")
        dataset = RequestFileDataset(filepath=str(path), columns=PAIRS)
        with pytest.raises(DatasetError, match=r"lacks the column\(s\) \['movieId'\]"):
            dataset.load()

    def test_an_absent_optional_file_is_no_requests(self, tmp_path):
        dataset = RequestFileDataset(
            filepath=str(tmp_path / "pairs.parquet"), columns=PAIRS, optional=True
        )
        assert not dataset.exists()
        assert dataset.load() is None

    def test_an_absent_file_is_an_error_unless_optional(self, tmp_path):
        path = tmp_path / "pairs.csv"
        dataset = RequestFileDataset(filepath=str(path), columns=PAIRS)
        with pytest.raises(
            DatasetError, match=f"The request file {path} does not exist"
        ):
            dataset.load()

    def test_a_file_with_the_other_suffix_is_not_skipped(self, tmp_path):
        (tmp_path / "pairs.csv").write_text("userId,movieId\n1,2\n")
        dataset = RequestFileDataset(
            filepath=str(tmp_path / "pairs.parquet"), columns=PAIRS, optional=True
        )
        with pytest.raises(
            DatasetError,
            match=re.escape(
                f"does not exist but {tmp_path / 'pairs.csv'} does; this catalog entry "
                f"reads only {tmp_path / 'pairs.parquet'}"
            ),
        ):
            dataset.load()

    def test_the_suffix_picks_the_format(self, tmp_path):
        with pytest.raises(RequestFileError, match=r"must end in \.csv or \.parquet"):
            RequestFileDataset(filepath=str(tmp_path / "pairs.json"), columns=PAIRS)

    def test_read_only(self, tmp_path):
        dataset = RequestFileDataset(filepath=str(tmp_path / "u.csv"), columns=PAIRS)
        with pytest.raises(DatasetError, match="is an input: read-only"):
            dataset.save(pl.DataFrame({"userId": [1], "movieId": [2]}))
