"""``processing.split.strategy: predefined`` and the fold labels of cross validation."""

from __future__ import annotations

from typing import get_args

import numpy as np
import polars as pl
import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from rating_prediction.data.splitting import (
    STRATEGIES,
    kfold_split_labels,
    split_by_label,
    split_labels,
)
from rating_prediction.movielens import locate_release, read_fold, read_ratings
from rating_prediction.parameters import CrossValidationParameters, SplitParameters
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
    ratings = clean_ratings(read_ratings(release)).collect()
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


def test_kfold_tests_every_rating_exactly_once_and_carves_val():
    n, k = 1003, 5
    tested = np.zeros(n, dtype=int)
    frame = pl.DataFrame({"row": np.arange(n)})
    for fold in range(k):
        labels = kfold_split_labels(n, k, fold, val_fraction=0.1, seed=7)
        train, val, test = split_by_label(frame, labels)
        tested[test["row"].to_numpy()] += 1
        assert test.height in (n // k, n // k + 1)
        assert val.height == round((n - test.height) * 0.1)
        assert train.height + val.height + test.height == n
    assert (tested == 1).all()


def test_one_dispatcher_labels_the_split_and_every_fold():
    """Every strategy the split or cross validation may name is one of
    ``split_labels``; it passes each its own settings and refuses any other name."""
    for model, field in (
        (SplitParameters, "strategy"),
        (CrossValidationParameters, "scheme"),
    ):
        assert set(get_args(model.model_fields[field].annotation)) <= set(STRATEGIES)
    frame = pl.DataFrame({"row": np.arange(1003)})
    labels = split_labels(
        frame, "kfold", k=5, fold_index=2, val_fraction=0.1, seed=7, fold="u1"
    )
    assert labels.equals(kfold_split_labels(1003, 5, 2, val_fraction=0.1, seed=7))
    with pytest.raises(
        ValueError,
        match=r"Unknown split strategy 'by_user'; valid: random, temporal, "
        r"predefined, kfold\.",
    ):
        split_labels(frame, "by_user")
    with pytest.raises(ValueError, match="run the data_ingestion pipeline first"):
        split_labels(frame, "predefined", fold="u1")


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
