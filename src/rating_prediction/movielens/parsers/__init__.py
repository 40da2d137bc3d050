"""Parsers of the GroupLens file formats, one module per format family.

Every parser takes a file's path (read lazily by polars) or its bytes (a zip member)
and returns a polars DataFrame with the dtypes of :mod:`rating_prediction.data.schema`.
"""
