"""``spark_preparation``: ingestion and processing on Spark (``kedro run --env spark``):
a release or a file of your own to ``ratings`` and ``movies``, then the id mappings and
the train/val/test splits, as partitioned parquet."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
