"""``processing.split.strategy: predefined``: the split nodes, and the ingestion and
processing pipelines, on ml-100k's own folds."""

from __future__ import annotations

import polars as pl
import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from rating_prediction.movielens import locate_release, read_fold, read_ratings
from rating_prediction.pipelines import data_ingestion, data_processing
from rating_prediction.pipelines.data_ingestion.nodes import (
    clean_ratings,
    read_predefined_folds,
)
from rating_prediction.pipelines.data_processing.nodes import (
    apply_id_mappings,
    create_movie_mapping,
    create_user_mapping,
    split_ratings,
)
from tests.ml100k import N_USERS, write_ml_100k


def processing(fold: str = "u1", val_fraction: float = 0.1, seed: int = 0) -> dict:
    return {
        "top_n_movies": None,
        "split": {
            "strategy": "predefined",
            "fractions": [0.7, 0.2, 0.1],
            "seed": seed,
            "fold": fold,
            "val_fraction": val_fraction,
        },
    }


@pytest.fixture
def release(tmp_path):
    return locate_release(write_ml_100k(tmp_path).parent, "ml-100k")


def mapped(release) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    ratings = clean_ratings(read_ratings(release))[0].collect()
    users, movies = create_user_mapping(ratings), create_movie_mapping(ratings)
    return apply_id_mappings(ratings, users, movies), users, movies


@pytest.mark.parametrize("fold", ["u1", "u4", "ub"])
def test_test_is_the_fold_test_file_and_val_a_seeded_share_of_base(release, fold):
    ratings, users, movies = mapped(release)
    params = processing(fold, val_fraction=0.2)
    folds = read_predefined_folds(release, params, {})
    train, val, test = split_ratings(ratings, params, folds)
    base, expected_test = read_fold(release, fold)
    keys = ["userId", "movieId"]
    assert test.select(keys).sort(keys).equals(expected_test.select(keys).sort(keys))
    assert pl.concat([train, val]).height == base.height
    assert val.height == round(base.height * 0.2)
    # The mappings cover every rating, base and test.
    assert users.height == ratings["userId"].n_unique()
    assert movies.height == ratings["movieId"].n_unique()
    again = split_ratings(ratings, params, folds)
    assert all(a.equals(b) for a, b in zip(again, (train, val, test)))
    other_seed = split_ratings(ratings, processing(fold, 0.2, seed=1), folds)
    assert not other_seed[1].equals(val)
    assert other_seed[2].equals(test)


def test_missing_fold_table_says_what_to_rerun(release):
    ratings, _, _ = mapped(release)
    with pytest.raises(ValueError, match="run the data_ingestion pipeline first"):
        split_ratings(ratings, processing())
    only_u1 = read_predefined_folds(release, processing("u1"), {})
    with pytest.raises(ValueError, match="No ratings of the predefined fold 'u2'"):
        split_ratings(ratings, processing("u2"), only_u1)


def test_ingestion_and_processing_pipelines_split_by_the_official_fold(tmp_path):
    """The pipelines wired together: ml-100k's u2 read from a zip becomes the splits."""
    write_ml_100k(tmp_path, as_zip=True)
    catalog = DataCatalog()
    catalog["params:ingestion"] = {
        "dataset": "ml-100k",
        "raw_dir": str(tmp_path),
        "base_url": "http://127.0.0.1:9",
        "download_timeout_s": 1,
    }
    catalog["params:processing"] = processing("u2")
    catalog["params:cross_validation"] = {}
    pipeline = data_ingestion.create_pipeline() + data_processing.create_pipeline()
    SequentialRunner().run(pipeline, catalog)
    _, expected_test = read_fold(locate_release(tmp_path, "ml-100k"), "u2")
    assert catalog.load("test_ratings").height == expected_test.height
    splits = [catalog.load(f"{split}_ratings") for split in ("train", "val", "test")]
    assert sum(split.height for split in splits) == N_USERS * 20
