"""A wrapper that makes any file dataset's saves atomic."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import parse_dataset_definition

from rating_prediction.runtime.atomic import atomic_destination


class AtomicDataset(AbstractDataset[Any, Any]):
    """Wraps a file dataset (``filepath``) or a folder one (``path``, e.g.
    ``partitions.PartitionedDataset``) so that its saves are atomic (see
    :mod:`rating_prediction.runtime.atomic`).

    Loads, ``exists`` and kedro-viz previews go to the wrapped dataset unchanged; a save
    goes to a copy of it pointed at the partial path. Wrapping a wrapper works too:
    ``kedro_mlflow``'s ``MlflowArtifactDataset`` logs the renamed file.

    Example catalog entry::

        metrics:
          type: rating_prediction.datasets.AtomicDataset
          dataset:
            type: json.JSONDataset
            filepath: data/08_reporting/metrics.json
    """

    def __init__(
        self, dataset: dict[str, Any], metadata: dict[str, Any] | None = None
    ) -> None:
        location = [key for key in ("filepath", "path") if key in dataset]
        if not location:
            raise DatasetError(
                "AtomicDataset wraps datasets with a `filepath` or a `path`; this one "
                f"has neither: {dataset}"
            )
        self._location_key = location[0]
        self._dataset_type, self._dataset_config = parse_dataset_definition(
            deepcopy(dataset)
        )
        self._filepath = PurePosixPath(self._dataset_config[self._location_key])
        self._dataset = self._dataset_type(**self._dataset_config)
        self.metadata = metadata
        # kedro-viz reads the preview's kind from its return annotation: keep the
        # wrapped dataset's own method.
        if hasattr(self._dataset, "preview"):
            self.preview = self._dataset.preview

    @property
    def filepath(self) -> Path:
        return Path(self._filepath)

    def load(self) -> Any:
        return self._dataset.load()

    def save(self, data: Any) -> None:
        with atomic_destination(self.filepath) as partial:
            writer = self._dataset_type(
                **{**self._dataset_config, self._location_key: str(partial)}
            )
            writer.save(data)
            if self._location_key == "path":
                # A folder dataset given nothing to save writes no folder.
                partial.mkdir(exist_ok=True)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {
            "dataset_type": self._dataset_type.__name__,
            "filepath": str(self._filepath),
        }
