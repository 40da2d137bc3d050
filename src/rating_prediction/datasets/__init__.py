"""Kedro dataset classes used by the catalog."""

from .torch_state_dict import TorchStateDictDataset

__all__ = ["TorchStateDictDataset"]
