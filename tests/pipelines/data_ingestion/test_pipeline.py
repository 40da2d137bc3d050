"""Runs of the whole data ingestion pipeline, on configuration as shipped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from rating_prediction.data.schema import USERS_SCHEMA
from rating_prediction.pipelines.data_ingestion import create_pipeline
from tests.movielens.fixtures import MOVIES, RATINGS, USERS, users_file, write_folder
from tests.project import file_dataset, relocated

REPO_ROOT = Path(__file__).resolve().parents[3]
ML_LATEST_SMALL = REPO_ROOT / ".." / "shared" / "data" / "ml-latest-small"


@pytest.fixture(scope="module")
def project_config() -> OmegaConfigLoader:
    """This pipeline's own configuration files, as Kedro loads them."""
    return OmegaConfigLoader(
        conf_source=str(REPO_ROOT / "conf"),
        base_env="base",
        default_run_env="base",
        config_patterns={
            "catalog": ["catalog_data_ingestion*"],
            "parameters": ["parameters_data_ingestion*"],
        },
    )


@pytest.fixture
def ingestion(project_config) -> dict[str, Any]:
    """The shipped ``ingestion`` parameters."""
    return project_config["parameters"]["ingestion"]


# The blocks that say whether a predefined split is read: here, none is.
NO_PREDEFINED_SPLIT = {
    "params:processing": {
        "top_n_movies": None,
        "split": {"strategy": "random", "fractions": [0.7, 0.2, 0.1], "seed": 0},
    },
    "params:cross_validation": {},
}


def run_ingestion(
    ingestion: dict[str, Any],
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """The ``ratings``, ``movies`` and ``users`` of an in-memory run."""
    catalog = DataCatalog()
    catalog["params:ingestion"] = ingestion
    for name, value in NO_PREDEFINED_SPLIT.items():
        catalog[name] = value
    SequentialRunner().run(create_pipeline(), catalog)
    # In memory, `ratings` stays the lazy plan the catalog's dataset streams to parquet.
    ratings = catalog.load("ratings").collect()
    return ratings, catalog.load("movies"), catalog.load("users")


def test_pipeline_outputs_the_contract():
    pipeline = create_pipeline()
    assert pipeline.inputs() == {"params:ingestion", *NO_PREDEFINED_SPLIT}
    assert pipeline.outputs() == {
        "ratings",
        "rating_scale",
        "movies",
        "users",
        "predefined_folds",
    }
    assert all(node.name for node in pipeline.nodes)


def test_shipped_parameters_and_catalog(ingestion, project_config):
    assert ingestion["dataset"] == "synthetic"
    assert ingestion["raw_dir"] == "data/01_raw"
    assert ingestion["base_url"] == "https://files.grouplens.org/datasets/movielens"
    catalog = project_config["catalog"]
    assert (
        catalog["ratings"]["type"]
        == "rating_prediction.datasets.StreamingParquetDataset"
    )
    for name in ("movies", "users"):
        assert catalog[name]["type"] == "rating_prediction.datasets.AtomicDataset"
        assert file_dataset(catalog[name])["type"] == "polars.EagerPolarsDataset"
    for name in ("ratings", "movies", "users"):
        assert (
            file_dataset(catalog[name])["filepath"]
            == f"data/02_intermediate/{name}.parquet"
        )
        assert catalog[name]["metadata"]["kedro-viz"]["layer"] == "intermediate"


def test_default_synthetic_run_round_trips_through_the_catalog(
    ingestion, project_config, tmp_path
):
    """The shipped defaults: enough ratings on the 50 most-rated movies to train."""
    ratings, movies, users = run_ingestion({**ingestion, "raw_dir": str(tmp_path)})
    assert ratings.height == ingestion["synthetic"]["n_ratings"]
    assert movies.height == ingestion["synthetic"]["n_movies"]
    top_50 = ratings["movieId"].value_counts().sort("count", descending=True).head(50)
    assert top_50["count"].sum() >= 20_000
    # The synthetic sample has no demographics: one row per rated user, all null.
    assert users.schema == USERS_SCHEMA
    assert users["userId"].to_list() == ratings["userId"].unique().sort().to_list()
    assert users.drop("userId").null_count().row(0) == (users.height,) * 4

    # Saved and loaded through the shipped catalog entries, the dtypes survive.
    config = {
        name: relocated(project_config["catalog"][name], tmp_path / name)
        for name in ("ratings", "movies", "users")
    }
    catalog = DataCatalog.from_config(config)
    catalog.save("ratings", ratings)
    catalog.save("movies", movies)
    catalog.save("users", users)
    assert catalog.load("ratings").equals(ratings)
    assert catalog.load("movies").schema == movies.schema
    assert catalog.load("users").equals(users)


def test_synthetic_rerun_is_identical(ingestion, tmp_path):
    small = {**ingestion, "raw_dir": str(tmp_path)}
    small["synthetic"] = {**ingestion["synthetic"], "n_ratings": 5_000, "n_users": 300}
    first, _, _ = run_ingestion(small)
    second, _, _ = run_ingestion(small)
    assert first.equals(second)


def test_release_folder_with_duplicates(ingestion, tmp_path):
    """An ml-1m-format folder: parsed, deduplicated, sorted; its users' codes kept."""
    rows = [*RATINGS, (1, 10, 2.0, 978300999)]  # a later re-rating of (1, 10)
    lines = ["::".join(str(value) for value in row) for row in rows]
    movie_lines = [
        f"{movie_id}::{title}::{genres}" for movie_id, title, genres in MOVIES
    ]
    write_folder(
        tmp_path / "ml-1m",
        {
            "ratings.dat": ("\n".join(lines) + "\n").encode(),
            "movies.dat": ("\n".join(movie_lines) + "\n").encode("latin-1"),
            # Listed out of order: the table is sorted by userId.
            "users.dat": users_file("users.dat", USERS["users.dat"][::-1]),
        },
    )
    ratings, movies, users = run_ingestion(
        {**ingestion, "dataset": "ml-1m", "raw_dir": str(tmp_path)}
    )
    assert ratings.rows() == [
        (1, 10, 2.0, 978300999),
        (1, 20, 3.5, 978300761),
        (2, 10, 5.0, 978300762),
    ]
    assert movies["title"].to_list() == ["Amélie (2001)", "Heat (1995)"]
    # Every user of users.dat, user 3 without a rating included.
    assert users.schema == USERS_SCHEMA
    assert users.rows() == [
        (1, 1, "F", "10", "48067"),
        (2, 56, "M", "16", "70072"),
        (3, 25, "M", "15", "55117"),
    ]


@pytest.mark.slow
def test_real_ml_latest_small(ingestion):
    """The real release, read in place from the shared data folder."""
    if not (ML_LATEST_SMALL / "ratings.csv").is_file():
        pytest.skip(f"{ML_LATEST_SMALL.resolve()} is not available")
    raw_dir = ML_LATEST_SMALL.resolve().parent
    ratings, movies, users = run_ingestion(
        {**ingestion, "dataset": "ml-latest-small", "raw_dir": str(raw_dir)}
    )
    assert ratings.height == 100_836
    assert ratings["userId"].n_unique() == 610
    assert ratings["movieId"].n_unique() == 9_724
    assert movies.height == 9_742
    assert users.height == 610
    assert users["gender"].null_count() == 610
    assert 3.4 < ratings["rating"].mean() < 3.6


@pytest.mark.parametrize(("step", "scale"), [(0.5, [0.5, 5.0]), (1.0, [1.0, 5.0])])
def test_the_synthetic_sample_records_its_scale(ingestion, tmp_path, step, scale):
    """Half stars from 0.5 (MovieLens's scale) or whole stars from 1 (the Netflix
    Prize's)."""
    small = {**ingestion, "raw_dir": str(tmp_path)}
    small["synthetic"] = {
        **ingestion["synthetic"],
        "n_ratings": 5_000,
        "n_users": 300,
        "rating_step": step,
    }
    catalog = DataCatalog()
    catalog["params:ingestion"] = small
    for name, value in NO_PREDEFINED_SPLIT.items():
        catalog[name] = value
    SequentialRunner().run(create_pipeline(), catalog)
    recorded = catalog.load("rating_scale")
    assert [recorded["min"], recorded["max"]] == scale
    assert recorded["inferred"] is False
