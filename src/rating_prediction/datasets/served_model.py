"""A Kedro dataset for the served model: a folder of safetensors, parquet and JSON."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import AbstractDataset

from rating_prediction.serving.artifacts import load_served_model, save_served_model
from rating_prediction.serving.bundle import ServedModel


class ServedModelDataset(AbstractDataset[ServedModel, ServedModel]):
    """Saves a :class:`ServedModel` as a folder (written to a temporary sibling, then
    renamed into place) and loads it with parsers that cannot run code.

    Example catalog entry::

        served_model:
          type: rating_prediction.datasets.ServedModelDataset
          filepath: data/06_models/served_model
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    @property
    def filepath(self) -> Path:
        return Path(self._filepath)

    def load(self) -> ServedModel:
        return load_served_model(self.filepath)

    def save(self, data: ServedModel) -> None:
        save_served_model(data, self.filepath)

    def _exists(self) -> bool:
        return self.filepath.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
