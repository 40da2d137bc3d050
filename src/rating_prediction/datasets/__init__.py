"""Kedro dataset classes used by the catalog."""

from .atomic import AtomicDataset
from .request_file import RequestFileDataset
from .served_model import ServedModelDataset
from .streaming_parquet import StreamingParquetDataset
from .torch_state_dict import TorchStateDictDataset

__all__ = [
    "AtomicDataset",
    "RequestFileDataset",
    "ServedModelDataset",
    "StreamingParquetDataset",
    "TorchStateDictDataset",
]
