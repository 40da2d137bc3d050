"""A release file that cannot be read stops the data ingestion pipeline, and nothing is
written."""

from __future__ import annotations

import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from rating_prediction.movielens import MovieLensError
from rating_prediction.pipelines.data_ingestion import create_pipeline
from tests.movielens.test_unreadable_files import release_folder

from .test_nodes import ingestion_parameters
from .test_pipeline import NO_PREDEFINED_SPLIT


def test_a_bad_file_stops_the_pipeline_before_ratings_or_movies_are_written(tmp_path):
    raw_dir = tmp_path / "raw"
    release_folder(raw_dir, "ml-100k", u_data=b"1,2,4.0,5\n")
    outputs = tmp_path / "intermediate"
    catalog = DataCatalog.from_config(
        {
            name: {
                "type": "polars.EagerPolarsDataset",
                "file_format": "parquet",
                "filepath": str(outputs / f"{name}.parquet"),
            }
            for name in ("ratings", "movies")
        }
    )
    catalog["params:ingestion"] = ingestion_parameters(raw_dir, "ml-100k")
    for name, value in NO_PREDEFINED_SPLIT.items():
        catalog[name] = value
    with pytest.raises(MovieLensError, match=r"u\.data: line 1 has 1 tab-separated"):
        SequentialRunner().run(create_pipeline(), catalog)
    assert not outputs.exists()
