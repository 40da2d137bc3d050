"""A Kedro dataset for PyTorch state dicts, saved atomically and loaded with weights_only."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import torch
from kedro.io import AbstractDataset

from rating_prediction.runtime.atomic import atomic_destination


class TorchStateDictDataset(
    AbstractDataset[dict[str, torch.Tensor], dict[str, torch.Tensor]]
):
    """Saves a ``state_dict`` with ``torch.save`` and loads it with ``weights_only=True``.

    The file is written atomically (:mod:`rating_prediction.datasets.atomic`): an
    interrupted save never leaves a truncated checkpoint behind.

    Example catalog entry::

        "{variant}.model_weights":
          type: rating_prediction.datasets.TorchStateDictDataset
          filepath: data/06_models/{variant}/weights.pt
    """

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = PurePosixPath(filepath)
        self.metadata = metadata

    def load(self) -> dict[str, torch.Tensor]:
        return torch.load(Path(self._filepath), map_location="cpu", weights_only=True)

    def save(self, data: dict[str, torch.Tensor]) -> None:
        with atomic_destination(Path(self._filepath)) as partial:
            torch.save(
                {name: tensor.detach().cpu() for name, tensor in data.items()}, partial
            )

    def _exists(self) -> bool:
        return Path(self._filepath).exists()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
