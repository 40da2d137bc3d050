"""The catalog's ``StreamingParquetDataset``: a lazy frame streamed to parquet, or a
frame, and a failed save keeps the previous file; in small chunks here, as in the
streaming path of ingestion's tests, so that a small file goes through the engine in
many pieces, as a large one does."""

from __future__ import annotations

import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from rating_prediction.datasets import StreamingParquetDataset


@pytest.fixture(autouse=True)
def small_chunks():
    with pl.Config(streaming_chunk_size=100):
        yield


class TestStreamingParquetDataset:
    def test_saves_a_lazy_frame_or_a_frame_and_loads_a_frame(self, tmp_path):
        dataset = StreamingParquetDataset(str(tmp_path / "sub" / "table.parquet"))
        frame = pl.DataFrame({"a": [1, 2, 3]})
        dataset.save(frame.lazy())
        assert_frame_equal(dataset.load(), frame)
        dataset.save(frame.head(1))
        assert_frame_equal(dataset.load(), frame.head(1))
        assert dataset.exists()

    def test_a_failure_while_streaming_keeps_the_previous_file(self, tmp_path):
        csv = tmp_path / "bad.csv"
        csv.write_text("a\n" + "1\n" * 500 + "x\n")
        dataset = StreamingParquetDataset(str(tmp_path / "table.parquet"))
        dataset.save(pl.DataFrame({"a": [7]}))
        failing = pl.scan_csv(csv, schema_overrides={"a": pl.Int64})
        with pytest.raises(Exception, match="could not parse"):
            dataset.save(failing)
        assert dataset.load()["a"].to_list() == [7]
        assert sorted(path.name for path in tmp_path.iterdir()) == [
            "bad.csv",
            "table.parquet",
        ]

    def test_save_args_reach_the_parquet_writer(self, tmp_path):
        """The catalog stores the splits uncompressed; the file's metadata says how."""
        frame = pl.DataFrame({"a": list(range(1_000))})
        for compression in ("zstd", "uncompressed"):
            path = tmp_path / f"{compression}.parquet"
            dataset = StreamingParquetDataset(
                str(path), save_args={"compression": compression}
            )
            for data in (frame, frame.lazy()):
                dataset.save(data)
                assert_frame_equal(dataset.load(), frame)
                codec = pq.ParquetFile(path).metadata.row_group(0).column(0)
                assert codec.compression == compression.upper()

    def test_preview_reads_the_first_rows(self, tmp_path):
        dataset = StreamingParquetDataset(str(tmp_path / "table.parquet"))
        dataset.save(pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}))
        assert dataset.preview(nrows=2) == {
            "index": [0, 1],
            "columns": ["a", "b"],
            "data": [(1, "x"), (2, "y")],
        }
