"""Split labels: which of train (0), val (1) or test (2) each rating goes to.

:func:`split_labels` chooses the labels by strategy, for the data_processing split and
for each cross-validation fold alike. Every function returns an Int8 series aligned with the ratings it is given (sorted by
the mapped ids, as data_processing sorts them), so the same seed gives the same split.
A label of ``EXCLUDED`` (3) drops the rating from every split (a predefined fold that
does not hold it).

The ``hash`` split labels each rating by a seeded hash of its (userIdMapped,
movieIdMapped) alone, so it needs no row order and partitions: Spark computes the same
labels, rating by rating (:mod:`rating_prediction.data.spark_processing`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from rating_prediction.data.schema import SPLITS

TRAIN, VAL, TEST, EXCLUDED = 0, 1, 2, 3
STRATEGIES = ("random", "temporal", "predefined", "kfold", "hash")
# The strategies Spark runs: a rating's label there cannot depend on a row order
# (random, kfold) or on a release's fold files (predefined).
SPARK_STRATEGIES = ("hash", "temporal")

# The hash split's hash: Spark's own `xxhash64` (XXH64 with Spark's seed 42) of the
# split's seed (bigint), then of the user's and the movie's index (int), computed here
# in polars' wrapping UInt64 arithmetic (polars' own hash changes between versions).
# Its top 32 bits place a rating in 0..2**32, cut at the fractions.
XXH_PRIMES = (
    0x9E3779B185EBCA87,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0x85EBCA77C2B2AE63,
    0x27D4EB2F165667C5,
)
SPARK_HASH_SEED = 42
HASH_BITS = 32
HASH_RANGE = 2**HASH_BITS
WORD = 2**64
HASH = "hash"


def split_labels(
    ratings: pl.DataFrame,
    strategy: str,
    *,
    seed: int = 0,
    fractions: Sequence[float] = (),
    val_fraction: float = 0.0,
    fold: str = "",
    fold_pairs: pl.DataFrame | None = None,
    k: int = 0,
    fold_index: int = 0,
) -> pl.Series:
    """The labels of one split of ``ratings`` (sorted by the mapped ids) by ``strategy``:

    - ``random``: a seeded permutation cut at ``fractions``
      (:func:`random_split_labels`);
    - ``temporal``: per user, the earliest ratings to train and the latest to test, cut
      at ``fractions`` (:func:`temporal_split_labels`);
    - ``predefined``: the release's fold ``fold`` of ``fold_pairs``, a seeded
      ``val_fraction`` of its base carved out as val (:func:`predefined_split_labels`);
    - ``kfold``: fold ``fold_index`` (0-based) of ``k``-fold cross validation, a seeded
      ``val_fraction`` of the rest carved out as val (:func:`kfold_split_labels`);
    - ``hash``: a seeded hash of each rating's mapped ids against ``fractions``
      (:func:`hash_split_labels`), the same labels on Spark.

    The data_processing split and every cross-validation fold come from here, so a new
    strategy is one more branch (and its name in the parameters that may choose it).

    Raises:
        ValueError: If ``strategy`` is unknown, or ``predefined`` has no ``fold_pairs``.
    """
    if strategy == "random":
        return random_split_labels(ratings.height, list(fractions), seed)
    if strategy == "temporal":
        return temporal_split_labels(ratings, list(fractions))
    if strategy == "predefined":
        if fold_pairs is None:
            raise ValueError(
                "The 'predefined' split needs the release's fold table "
                "('predefined_folds'), and none was given; run the data_ingestion "
                "pipeline first."
            )
        return predefined_split_labels(ratings, fold_pairs, fold, val_fraction, seed)
    if strategy == "kfold":
        return kfold_split_labels(ratings.height, k, fold_index, val_fraction, seed)
    if strategy == "hash":
        return hash_split_labels(ratings, list(fractions), seed)
    raise ValueError(
        f"Unknown split strategy {strategy!r}; valid: {', '.join(STRATEGIES)}."
    )


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


def hash_thresholds(fractions: list[float]) -> tuple[int, int]:
    """The hash values (in 0..2**32) where train ends and where val ends: a rating
    whose hash lies below the first is train, below the second val, else test. Whole
    numbers, so that both engines compare the same values."""
    train_fraction, val_fraction, _ = fractions
    train_end = round(train_fraction * HASH_RANGE)
    return train_end, min(
        HASH_RANGE, round((train_fraction + val_fraction) * HASH_RANGE)
    )


def hash_split_labels(
    ratings: pl.DataFrame, fractions: list[float], seed: int
) -> pl.Series:
    """Labels each rating 0/1/2 by a seeded hash of (userIdMapped, movieIdMapped): the
    shares come near ``fractions`` (each rating draws on its own), and a rating's label
    depends on nothing else, so any engine, partitioning or row order gives the same
    split (:func:`rating_prediction.data.spark_processing.hash_labels` on Spark).
    """
    seeded = xxh64_long(seed, SPARK_HASH_SEED)
    hashed = ratings.lazy().select(
        "userIdMapped", "movieIdMapped", pl.lit(seeded, dtype=pl.UInt64).alias(HASH)
    )
    for column in ("userIdMapped", "movieIdMapped"):
        hashed = _xxh64_int(hashed, column)
    train_end, val_end = hash_thresholds(fractions)
    top_bits = pl.col(HASH) // _unsigned(2**HASH_BITS)
    return (
        hashed.select(
            pl.when(top_bits < train_end)
            .then(TRAIN)
            .when(top_bits < val_end)
            .then(VAL)
            .otherwise(TEST)
            .cast(pl.Int8)
        )
        .collect()
        .to_series()
    )


def xxh64_long(value: int, seed: int) -> int:
    """XXH64 of one 64-bit integer, as Spark's ``XXH64.hashLong`` (as unsigned)."""
    p1, p2, _, p4, p5 = XXH_PRIMES
    hashed = (seed + p5 + 8) % WORD
    hashed ^= _rotated(value % WORD * p2 % WORD, 31) * p1 % WORD
    hashed = (_rotated(hashed, 27) * p1 + p4) % WORD
    return _finished(hashed)


def _rotated(value: int, bits: int) -> int:
    return (value << bits | value >> (64 - bits)) % WORD


def _finished(hashed: int) -> int:
    _, p2, p3, _, _ = XXH_PRIMES
    hashed = (hashed ^ hashed >> 33) * p2 % WORD
    hashed = (hashed ^ hashed >> 29) * p3 % WORD
    return hashed ^ hashed >> 32


def _xxh64_int(hashed: pl.LazyFrame, column: str) -> pl.LazyFrame:
    """``HASH`` carried on through the XXH64 of ``column`` (non-negative 32-bit
    integers), as Spark's ``XXH64.hashInt``, in polars' wrapping UInt64 arithmetic.
    One step per projection: a step uses the previous value twice, and written as one
    expression the steps would repeat each other."""
    p1, p2, p3, _, p5 = (_unsigned(prime) for prime in XXH_PRIMES)
    value = pl.col(HASH)
    steps = [
        value + p5 + _unsigned(4),
        value.xor(pl.col(column).cast(pl.UInt64) * p1),
        _rotated_expr(value, 23) * p2 + p3,
        value.xor(value // _unsigned(2**33)) * p2,
        value.xor(value // _unsigned(2**29)) * p3,
        value.xor(value // _unsigned(2**32)),
    ]
    for step in steps:
        hashed = hashed.with_columns(step.alias(HASH))
    return hashed


def _rotated_expr(value: pl.Expr, bits: int) -> pl.Expr:
    return (value * _unsigned(2**bits)).or_(value // _unsigned(2 ** (64 - bits)))


def _unsigned(value: int) -> pl.Expr:
    return pl.lit(value, dtype=pl.UInt64)


def temporal_split_labels(ratings: pl.DataFrame, fractions: list[float]) -> pl.Series:
    """Labels each user's ratings 0/1/2 by time: earliest to train, latest to test.

    Expects ``ratings`` sorted by (userIdMapped, movieIdMapped).
    """
    undated = ratings["timestamp"].null_count()
    if undated:
        raise ValueError(
            f"The temporal split (processing.split.strategy: temporal) orders each "
            f"user's ratings by time, but {undated} rating(s) have no timestamp (a file "
            "of your own without ingestion.file.columns.timestamp). Name the file's "
            "timestamp column, or use the 'random' split."
        )
    train_fraction, val_fraction, _ = fractions
    # 1-based chronological position within the user. The ratings are sorted by
    # (userIdMapped, movieIdMapped) and "ordinal" ranks ties in row order, so movieId
    # breaks timestamp ties (faster than ranking a (timestamp, movie) struct).
    position = pl.col("timestamp").rank("ordinal").over("userIdMapped")
    n_user_ratings = pl.len().over("userIdMapped")
    # Every user keeps at least their first rating in train, so the model knows them.
    train_end = (n_user_ratings * train_fraction).round().clip(lower_bound=1)
    val_end = (n_user_ratings * (train_fraction + val_fraction)).round()
    return ratings.select(
        pl.when(position <= train_end)
        .then(TRAIN)
        .when(position <= val_end)
        .then(VAL)
        .otherwise(TEST)
        .cast(pl.Int8)
    ).to_series()


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
