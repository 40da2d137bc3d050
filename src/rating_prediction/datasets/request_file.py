"""A Kedro dataset for a request file: ids to answer, from CSV or parquet, any length."""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from rating_prediction.serving.request_files import (
    REQUEST_FILE_SUFFIXES,
    RequestFile,
    RequestFileError,
    open_request_file,
)

logger = logging.getLogger(__name__)


class RequestFileDataset(AbstractDataset[Any, RequestFile | None]):
    """Opens a CSV or parquet file (the suffix of ``filepath`` decides) holding
    ``columns`` as a :class:`RequestFile`, which the nodes read, against the served
    model's id types (integer or string), as a checked, lazy table, batch by batch.

    Loading checks that the file is readable and has the columns; the node reading it
    checks the whole file in one streaming pass before answering anything and stops
    with a :class:`RequestFileError` naming the file, the column and the first bad rows.
    A missing file is an error, unless ``optional``: then it loads as ``None``
    ("no file requests"). An optional entry whose file is absent while a file of the
    same name with the other suffix exists is an error too, so a ``pairs.csv`` put where
    ``pairs.parquet`` is expected is never silently skipped.

    Example catalog entry::

        pair_requests:
          type: rating_prediction.datasets.RequestFileDataset
          filepath: data/01_raw/requests/pairs.parquet
          columns: [userId, movieId]
          optional: true
    """

    def __init__(
        self,
        *,
        filepath: str,
        columns: list[str],
        optional: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = PurePosixPath(filepath)
        if self._filepath.suffix.lower() not in REQUEST_FILE_SUFFIXES:
            raise RequestFileError(
                f"The request file {filepath} must end in "
                f"{' or '.join(REQUEST_FILE_SUFFIXES)} (its suffix picks the format)."
            )
        self._columns = list(columns)
        self._optional = optional
        self.metadata = metadata

    @property
    def filepath(self) -> Path:
        return Path(self._filepath)

    def load(self) -> RequestFile | None:
        path = self.filepath
        if path.exists():
            return open_request_file(path, self._columns)
        if not self._optional:
            raise RequestFileError(
                f"The request file {path} does not exist: create it, or point the "
                "catalog entry's filepath at your file."
            )
        for other in REQUEST_FILE_SUFFIXES:
            sibling = path.with_suffix(other)
            if sibling != path and sibling.exists():
                raise RequestFileError(
                    f"The request file {path} does not exist but {sibling} does; this "
                    f"catalog entry reads only {path}: point its filepath at {sibling} "
                    "(in conf/local/) or remove one of them."
                )
        logger.debug("No request file at %s: no file requests.", path)
        return None

    def save(self, data: Any) -> None:
        raise DatasetError(f"The request file {self._filepath} is an input: read-only.")

    def _exists(self) -> bool:
        return self.filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "columns": self._columns,
            "optional": self._optional,
        }
