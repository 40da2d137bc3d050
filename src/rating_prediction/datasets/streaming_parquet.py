"""A Kedro dataset for a large local table: a LazyFrame is streamed to parquet, never
held; loads read the file by path."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import polars as pl
from kedro.io import AbstractDataset
from kedro_datasets._typing import TablePreview

from rating_prediction.runtime.atomic import atomic_destination


class StreamingParquetDataset(
    AbstractDataset[pl.DataFrame | pl.LazyFrame, pl.DataFrame]
):
    """Saves a polars ``LazyFrame`` with ``sink_parquet`` (the streaming engine writes
    it batch by batch, so a plan that needs no sort never sits in memory whole: a
    100-million-row CSV scan is written in a few hundred MB) or a ``DataFrame`` with
    ``write_parquet``; loads a ``DataFrame``, as ``polars.EagerPolarsDataset`` does,
    but by path: polars reads a local file faster than through the file object
    kedro-datasets opens. ``save_args``
    go to ``sink_parquet``/``write_parquet`` (e.g. ``compression``), ``load_args`` to
    ``read_parquet``.

    The file is written next to its target and renamed into place
    (:func:`rating_prediction.runtime.atomic.atomic_destination`), so a failed save (a full
    disk, a value that does not parse midway through a scan) leaves the previous file
    untouched and no partial one.

    Example catalog entry::

        ratings:
          type: rating_prediction.datasets.StreamingParquetDataset
          filepath: data/02_intermediate/ratings.parquet
          save_args:
            compression: uncompressed
    """

    def __init__(
        self,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = PurePosixPath(filepath)
        self._load_args = dict(load_args or {})
        self._save_args = dict(save_args or {})
        self.metadata = metadata

    def load(self) -> pl.DataFrame:
        return pl.read_parquet(Path(self._filepath), **self._load_args)

    def save(self, data: pl.DataFrame | pl.LazyFrame) -> None:
        with atomic_destination(Path(self._filepath)) as partial:
            if isinstance(data, pl.LazyFrame):
                data.sink_parquet(partial, **self._save_args)
            else:
                data.write_parquet(partial, **self._save_args)

    def preview(self, nrows: int = 10) -> TablePreview:
        """The first ``nrows`` rows for kedro-viz (only those are read)."""
        head = pl.scan_parquet(Path(self._filepath)).head(nrows).collect()
        return TablePreview(
            {
                "index": list(range(head.height)),
                "columns": head.columns,
                "data": head.rows(),
            }
        )

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "load_args": self._load_args,
            "save_args": self._save_args,
        }
