from pathlib import Path

import polars as pl
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from rating_prediction.data.schema import (
    MAPPED_RATINGS_SCHEMA,
    MOVIE_MAPPING_SCHEMA,
    USER_MAPPING_SCHEMA,
)
from rating_prediction.movielens import FOLD_PAIRS_SCHEMA
from rating_prediction.pipelines.data_processing import create_pipeline
from tests.project import file_dataset, relocated

CONF_SOURCE = Path(__file__).parents[3] / "conf"
OUTPUTS = [
    "user_mapping",
    "movie_mapping",
    "train_ratings",
    "val_ratings",
    "test_ratings",
]


@pytest.fixture(scope="module")
def config_loader() -> OmegaConfigLoader:
    # Only this pipeline's files, so the test does not depend on the other pipelines.
    return OmegaConfigLoader(
        conf_source=str(CONF_SOURCE),
        base_env="base",
        default_run_env="local",
        config_patterns={
            "parameters": ["parameters_data_processing*"],
            "catalog": ["catalog_data_processing*"],
        },
    )


@pytest.fixture(scope="module")
def processing_params(config_loader) -> dict:
    return config_loader["parameters"]["processing"]


@pytest.fixture(scope="module")
def catalog_config(config_loader) -> dict:
    return config_loader["catalog"]


def run_pipeline(
    ratings: pl.DataFrame, processing: dict, catalog_config: dict, output_dir: Path
) -> dict[str, Path]:
    """Runs the pipeline with this pipeline's catalog entries redirected to
    ``output_dir``; returns the written files by dataset name."""
    filepaths = {
        name: output_dir / Path(file_dataset(catalog_config[name])["filepath"]).name
        for name in OUTPUTS
    }
    catalog = DataCatalog.from_config(
        {
            name: relocated(catalog_config[name], filepath)
            for name, filepath in filepaths.items()
        }
    )
    catalog["ratings"] = MemoryDataset(ratings)
    catalog["params:processing"] = MemoryDataset(processing)
    catalog["predefined_folds"] = MemoryDataset(pl.DataFrame(schema=FOLD_PAIRS_SCHEMA))
    SequentialRunner().run(create_pipeline(), catalog)
    return filepaths


def test_pipeline_produces_mapped_splits_of_the_top_movies(
    synthetic_ratings, processing_params, catalog_config, tmp_path
):
    filepaths = run_pipeline(
        synthetic_ratings, processing_params, catalog_config, tmp_path
    )
    outputs = {name: pl.read_parquet(filepath) for name, filepath in filepaths.items()}
    splits = [outputs[f"{name}_ratings"] for name in ("train", "val", "test")]
    n_ratings = sum(split.height for split in splits)

    for split in splits:
        assert split.schema == MAPPED_RATINGS_SCHEMA
    assert [split.height for split in splits] == [
        round(0.7 * n_ratings),
        round(0.9 * n_ratings) - round(0.7 * n_ratings),
        n_ratings - round(0.9 * n_ratings),
    ]

    movie_mapping = outputs["movie_mapping"]
    assert movie_mapping.schema == MOVIE_MAPPING_SCHEMA
    assert movie_mapping.height == 50
    assert movie_mapping["movieIdMapped"].to_list() == list(range(50))
    user_mapping = outputs["user_mapping"]
    assert user_mapping.schema == USER_MAPPING_SCHEMA
    assert user_mapping["userIdMapped"].to_list() == list(range(user_mapping.height))
    # Filtered before mapping: exactly the top-50 movies' ratings are split.
    top_movie_ratings = synthetic_ratings.join(movie_mapping, on="movieId", how="semi")
    assert n_ratings == top_movie_ratings.height < synthetic_ratings.height


def test_pipeline_writes_byte_identical_files_across_runs(
    synthetic_ratings, processing_params, catalog_config, tmp_path
):
    first_run, second_run = (
        run_pipeline(
            synthetic_ratings, processing_params, catalog_config, tmp_path / run
        )
        for run in ("first", "second")
    )
    for name in OUTPUTS:
        assert first_run[name].read_bytes() == second_run[name].read_bytes(), name
