"""The fold labels of cross validation, and the one dispatcher of every split strategy
and cross-validation scheme."""

from __future__ import annotations

from typing import get_args

import numpy as np
import polars as pl
import pytest

from rating_prediction.data.splitting import (
    STRATEGIES,
    kfold_split_labels,
    split_by_label,
    split_labels,
)
from rating_prediction.parameters import CrossValidationParameters, SplitParameters


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
        r"predefined, kfold, hash\.",
    ):
        split_labels(frame, "by_user")
    with pytest.raises(ValueError, match="run the data_ingestion pipeline first"):
        split_labels(frame, "predefined", fold="u1")


def test_the_hash_split_labels_each_rating_by_its_indices_alone():
    """Shares near the fractions, the same label whatever the row order or the other
    rows, another split for another seed."""
    rng = np.random.default_rng(0)
    ratings = pl.DataFrame(
        {
            "userIdMapped": rng.integers(0, 5_000, 100_000, dtype=np.int32),
            "movieIdMapped": rng.integers(0, 3_000, 100_000, dtype=np.int32),
        }
    )
    labels = split_labels(ratings, "hash", seed=42, fractions=[0.7, 0.2, 0.1])
    shares = labels.value_counts(normalize=True).sort(labels.name)["proportion"]
    assert np.allclose(shares.to_list(), [0.7, 0.2, 0.1], atol=0.01)
    order = rng.permutation(ratings.height)
    shuffled = split_labels(ratings[order], "hash", seed=42, fractions=[0.7, 0.2, 0.1])
    assert shuffled.equals(labels.gather(order))
    head = split_labels(ratings.head(10), "hash", seed=42, fractions=[0.7, 0.2, 0.1])
    assert head.equals(labels.head(10))
    other = split_labels(ratings, "hash", seed=43, fractions=[0.7, 0.2, 0.1])
    assert (other != labels).mean() > 0.3
