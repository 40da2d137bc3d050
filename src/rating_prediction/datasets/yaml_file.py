"""A Kedro dataset for a YAML file that people read and Kedro loads as configuration."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from kedro.io import AbstractDataset

from rating_prediction.runtime.atomic import atomic_destination


class AtomicYAMLDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """Saves a dict as YAML under a ``header`` comment, written next to its target and
    renamed into place: a reader (such as ``kedro run --env tuned``) sees the old file
    or the new one, never half of one.

    Example catalog entry::

        tuned_parameters:
          type: rating_prediction.datasets.yaml_file.AtomicYAMLDataset
          filepath: conf/tuned/parameters_tuned.yml
    """

    def __init__(
        self,
        filepath: str,
        header: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = PurePosixPath(filepath)
        self._header = header
        self.metadata = metadata

    def load(self) -> dict[str, Any]:
        return yaml.safe_load(Path(self._filepath).read_text()) or {}

    def save(self, data: dict[str, Any]) -> None:
        comment = "".join(
            f"# {line}\n".replace("# \n", "#\n") for line in self._header.splitlines()
        )
        with atomic_destination(Path(self._filepath)) as partial:
            partial.write_text(comment + yaml.safe_dump(data, sort_keys=False))

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
