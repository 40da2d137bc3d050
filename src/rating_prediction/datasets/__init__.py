"""Kedro dataset classes used by the catalog."""

from .atomic import AtomicDataset
from .served_model import ServedModelDataset
from .torch_state_dict import TorchStateDictDataset

__all__ = ["AtomicDataset", "ServedModelDataset", "TorchStateDictDataset"]
