"""Split labels: which of train (0), val (1) or test (2) each rating goes to.

Every function returns an Int8 series aligned with the ratings it is given (sorted by
the mapped ids, as data_processing sorts them), so the same seed gives the same split.
A label of ``EXCLUDED`` (3) drops the rating from every split (a predefined fold that
does not hold it).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from rating_prediction.data.schema import SPLITS

TRAIN, VAL, TEST, EXCLUDED = 0, 1, 2, 3


def split_by_label(
    ratings: pl.DataFrame, labels: pl.Series
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``ratings`` cut into train, val and test by ``labels`` (0, 1, 2; 3 is dropped)."""
    labelled = ratings.with_columns(labels.alias("split_label"))
    train, val, test = (
        labelled.filter(pl.col("split_label") == index).drop("split_label")
        for index in range(len(SPLITS))
    )
    return train, val, test


def random_split_labels(n_ratings: int, fractions: list[float], seed: int) -> pl.Series:
    """Labels rows 0/1/2 by their position in a seeded random permutation.

    Shuffling the labels themselves (int8) applies the swaps that would permute the
    positions (int64), so the labels are those of the positions, at an eighth of the
    memory (100 MB for 100 million ratings).
    """
    train_end, val_end = cut_points(n_ratings, fractions)
    labels = np.full(n_ratings, TEST, dtype=np.int8)
    labels[:val_end] = VAL
    labels[:train_end] = TRAIN
    return pl.Series(np.random.default_rng(seed).permutation(labels))


def cut_points(n_ratings: int, fractions: list[float]) -> tuple[int, int]:
    """Returns the end of train and val, rounding cumulative fractions so sizes add up."""
    train_fraction, val_fraction, _ = fractions
    train_end = round(n_ratings * train_fraction)
    val_end = min(n_ratings, round(n_ratings * (train_fraction + val_fraction)))
    return train_end, val_end


def kfold_split_labels(
    n_ratings: int, k: int, fold: int, val_fraction: float, seed: int
) -> pl.Series:
    """Fold ``fold`` (0-based) of ``k``-fold cross validation of a seeded permutation.

    The permutation is cut into ``k`` near-equal blocks: block ``fold`` is test, so
    every rating is tested exactly once over the ``k`` folds. A seeded
    ``val_fraction`` of the other blocks is val (for early stopping), the rest train.
    """
    start, end = (n_ratings * fold) // k, (n_ratings * (fold + 1)) // k
    in_block = np.zeros(n_ratings, dtype=bool)
    in_block[start:end] = True
    # As in random_split_labels: the shuffled flags are those of the shuffled positions.
    is_test = np.random.default_rng(seed).permutation(in_block)
    return pl.Series(_carve_val(is_test, val_fraction, seed + 1 + fold))


def predefined_split_labels(
    ratings: pl.DataFrame,
    fold_pairs: pl.DataFrame,
    fold: str,
    val_fraction: float,
    seed: int,
) -> pl.Series:
    """A release's own fold: test is ``<fold>.test``, a seeded ``val_fraction`` of
    ``<fold>.base`` is val and the rest train; ratings in neither file are excluded.

    ``fold_pairs`` has ``userId``, ``movieId``, ``fold`` and ``is_test``.

    Raises:
        ValueError: If ``fold_pairs`` holds nothing for ``fold``.
    """
    pairs = fold_pairs.filter(pl.col("fold") == fold).select(
        "userId", "movieId", "is_test"
    )
    if pairs.is_empty():
        raise ValueError(
            f"No ratings of the predefined fold {fold!r} in 'predefined_folds' (read "
            f"folds: {sorted(fold_pairs['fold'].unique().to_list())}); rerun the "
            "data_ingestion pipeline with the same processing/cross_validation "
            "parameters."
        )
    is_test = (
        ratings.select("userId", "movieId")
        .join(pairs, on=["userId", "movieId"], how="left", maintain_order="left")
        .get_column("is_test")
    )
    labels = _carve_val(is_test.fill_null(True).to_numpy(), val_fraction, seed)
    labels[is_test.is_null().to_numpy()] = EXCLUDED
    return pl.Series(labels)


def _carve_val(is_test: np.ndarray, val_fraction: float, seed: int) -> np.ndarray:
    """Labels test rows 2; of the others a seeded ``val_fraction`` 1 and the rest 0."""
    labels = np.full(is_test.size, TEST, dtype=np.int8)
    rest = np.flatnonzero(~is_test)
    shuffled = np.random.default_rng(seed).permutation(rest)
    n_val = round(rest.size * val_fraction)
    labels[shuffled[:n_val]] = VAL
    labels[shuffled[n_val:]] = TRAIN
    return labels
