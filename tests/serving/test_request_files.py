"""Reading a request file: what is accepted, and a clear error for everything else,
naming the file, the column and the first offending rows."""

import re
from pathlib import Path

import polars as pl
import pytest

from rating_prediction.serving.request_files import RequestFileError, read_request_file

PAIRS = ["userId", "movieId"]
LARGEST = 2**31 - 1


def read_csv_text(tmp_path: Path, text: str, columns=PAIRS):
    path = tmp_path / "pairs.csv"
    path.write_text(text)
    return read_request_file(path, columns)


def read_parquet_frame(tmp_path: Path, frame: pl.DataFrame, columns=PAIRS):
    path = tmp_path / "pairs.parquet"
    frame.write_parquet(path)
    return read_request_file(path, columns)


class TestAccepted:
    def test_csv_ids_in_file_order_other_columns_ignored(self, tmp_path):
        requests = read_csv_text(
            tmp_path,
            f"rating,movieId,userId\n4.5, 31 ,7\n,+2,{LARGEST}\n1,0,7\n",
        )
        table = requests.table.collect()
        assert table.schema == pl.Schema({"userId": pl.Int64, "movieId": pl.Int64})
        assert table.rows() == [(7, 31), (LARGEST, 2), (7, 0)]
        assert requests.rows == 3
        assert requests.source == str(tmp_path / "pairs.csv")

    def test_parquet_of_any_integer_width_whole_floats_or_text(self, tmp_path):
        frame = pl.DataFrame(
            {
                "userId": pl.Series([1, LARGEST], dtype=pl.UInt64),
                "movieId": pl.Series([3.0, 4.0]),
                "title": ["a", "b"],
            }
        )
        table = read_parquet_frame(tmp_path, frame).table.collect()
        assert table.rows() == [(1, 3), (LARGEST, 4)]
        text = pl.DataFrame({"userId": [" 5"], "movieId": ["6"]})
        assert read_parquet_frame(tmp_path, text).table.collect().rows() == [(5, 6)]

    def test_header_only_is_no_requests(self, tmp_path):
        requests = read_csv_text(tmp_path, "userId,movieId\n")
        assert requests.rows == 0
        assert requests.batch_count(10) == 1
        assert requests.batch(0, 10).is_empty()

    def test_batches(self, tmp_path):
        frame = pl.DataFrame({"userId": range(10), "movieId": range(10, 20)})
        requests = read_parquet_frame(tmp_path, frame)
        assert requests.batch_count(4) == 3
        assert requests.batch(2, 4)["userId"].to_list() == [8, 9]
        assert pl.concat(requests.batch(i, 4) for i in range(3)).equals(frame)


class TestRefusedCsv:
    @pytest.mark.parametrize(
        ("text", "message"),
        [
            (
                "userId,movie\n1,2\n",
                "lacks the column(s) ['movieId']: it needs ['userId', 'movieId'] "
                "(original MovieLens ids; other columns are ignored), and has "
                "['userId', 'movie'].",
            ),
            ("1,31\n2,5\n", "A CSV request file needs a header row."),
            (
                "userId,movieId\n1,2\n1,abc\n1,2.5\n1,3\n",
                "Column 'movieId' of the request file {path} has 2 bad id(s) "
                "(line 3: 'abc' (not an integer); line 4: '2.5' (not an integer)).",
            ),
            (
                "userId,movieId\n1,2\n,3\n",
                "Column 'userId' of the request file {path} has 1 bad id(s) "
                "(line 3: None (missing)).",
            ),
            (
                "userId,movieId\n9223372036854775808,1\n-1,1\n2147483648,1\n",
                "has 3 bad id(s) (line 2: '9223372036854775808' (outside "
                "0..2147483647); line 3: '-1' (outside 0..2147483647); line 4: "
                "'2147483648' (outside 0..2147483647)).",
            ),
            ("", "Cannot read the request file {path}: empty CSV."),
        ],
    )
    def test_message(self, tmp_path, text, message):
        path = tmp_path / "pairs.csv"
        with pytest.raises(
            RequestFileError, match=re.escape(message.format(path=path))
        ):
            read_csv_text(tmp_path, text)

    def test_bad_ids_say_what_to_do(self, tmp_path):
        with pytest.raises(
            RequestFileError,
            match="Every row needs an integer id in 0..2147483647 .* fix or remove",
        ):
            read_csv_text(tmp_path, "userId,movieId\nx,1\n")


class TestRefusedParquet:
    @pytest.mark.parametrize(
        ("column", "message"),
        [
            (pl.Series("movieId", [1.0, 1.5]), "row 2: '1.5' (not an integer)"),
            (pl.Series("movieId", [1.0, float("nan")]), "row 2: 'NaN' (missing)"),
            (pl.Series("movieId", [None, 3], dtype=pl.Int64), "row 1: None (missing)"),
            (
                pl.Series("movieId", [2**64 - 1], dtype=pl.UInt64),
                "row 1: '18446744073709551615' (outside 0..2147483647)",
            ),
            (pl.Series("movieId", [True, False]), "holds Boolean values"),
        ],
    )
    def test_message(self, tmp_path, column, message):
        frame = pl.DataFrame({"userId": [1] * len(column)}).with_columns(column)
        with pytest.raises(RequestFileError) as error:
            read_parquet_frame(tmp_path, frame)
        assert f"Column 'movieId' of the request file {tmp_path / 'pairs.parquet'}" in (
            str(error.value)
        )
        assert message in str(error.value)

    def test_unreadable(self, tmp_path):
        path = tmp_path / "pairs.parquet"
        path.write_bytes(b"not a parquet file")
        with pytest.raises(
            RequestFileError,
            match=re.escape(f"Cannot read the request file {path}: ")
            + ".*It must be a parquet file with the columns",
        ):
            read_request_file(path, PAIRS)

    def test_a_folder(self, tmp_path):
        path = tmp_path / "pairs.parquet"
        path.mkdir()
        with pytest.raises(RequestFileError, match="Cannot read the request file"):
            read_request_file(path, PAIRS)
