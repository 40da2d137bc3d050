"""Kedro dataset classes used by the catalog."""

from .served_model import ServedModelDataset
from .streaming_parquet import StreamingParquetDataset
from .torch_state_dict import TorchStateDictDataset

__all__ = ["ServedModelDataset", "StreamingParquetDataset", "TorchStateDictDataset"]
