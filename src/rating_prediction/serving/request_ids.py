"""Request-id checks: every id a request brings is an integer in 0..``MAX_ID``,
refused otherwise with a message naming its column."""

from __future__ import annotations

import numpy as np
import polars as pl

from rating_prediction.data.schema import MAX_ID

PAIR_COLUMNS = ("userId", "movieId")

# Int64 ids: a request may carry any integer, even one beyond the Int32 mapping range.
PAIRS_SCHEMA = pl.Schema({"userId": pl.Int64, "movieId": pl.Int64})


def validate_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """The ``userId`` and ``movieId`` columns as Int64; a clear error for bad input.

    Whole-number floats are accepted (JSON and pandas turn ints into floats easily);
    fractions, infinities, strings and missing values are not.
    """
    missing = [column for column in PAIR_COLUMNS if column not in pairs.columns]
    if missing:
        raise ValueError(
            f"The request lacks the column(s) {missing}: expected {list(PAIR_COLUMNS)} "
            f"holding original MovieLens ids, got {pairs.columns}."
        )
    if pairs.is_empty():
        return pl.DataFrame(schema=PAIRS_SCHEMA)
    return pl.DataFrame([_integer_ids(pairs[column]) for column in PAIR_COLUMNS])


def _integer_ids(ids: pl.Series) -> pl.Series:
    if ids.null_count():
        raise ValueError(
            f"Column {ids.name!r} has {ids.null_count()} missing value(s); "
            "every pair needs both ids."
        )
    if ids.dtype.is_float():
        not_whole = ids.filter(~ids.is_finite() | (ids != ids.floor()))
        if not not_whole.is_empty():
            raise ValueError(
                f"Column {ids.name!r} must hold integer ids; got "
                f"{not_whole.head(3).to_list()}."
            )
    elif not ids.dtype.is_integer():
        raise ValueError(
            f"Column {ids.name!r} must hold integer ids, not {ids.dtype} "
            f"(e.g. {ids.head(3).to_list()})."
        )
    return pl.Series(ids.name, check_id_range(ids.name, ids.cast(pl.Int64).to_numpy()))


def check_id_range(name: str, ids: np.ndarray) -> np.ndarray:
    """``ids`` (int64); a clear error for a negative id or one above ``MAX_ID``."""
    if ids.size and (ids.min() < 0 or ids.max() > MAX_ID):
        bad = ids[(ids < 0) | (ids > MAX_ID)]
        raise ValueError(
            f"Column {name!r} must hold ids in 0..{MAX_ID}; got {bad[:3].tolist()}."
        )
    return ids


def check_ids(name: str, values: np.ndarray) -> np.ndarray:
    """``values`` (any numpy array a request column became) as int64 ids.

    Refuses booleans, fractions, infinities, NaN (a missing value), strings and ids
    outside 0..``MAX_ID``, each with a message naming the column.
    """
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    if values.dtype.kind == "O":
        values = _object_ids(name, values)
    if values.dtype.kind == "b":
        raise ValueError(f"Column {name!r} must hold integer ids, not booleans.")
    if values.dtype.kind == "f":
        if np.isnan(values).any():
            raise ValueError(f"Column {name!r} has missing value(s).")
        bad = values[~np.isfinite(values) | (values != np.floor(values))]
        if bad.size:
            raise ValueError(
                f"Column {name!r} must hold integer ids; got {bad[:3].tolist()}."
            )
        if values.min() < 0 or values.max() > MAX_ID:
            return check_id_range(
                name, np.clip(values, -1, MAX_ID + 1).astype(np.int64)
            )
    elif values.dtype.kind not in "iu":
        raise ValueError(
            f"Column {name!r} must hold integer ids, not {values.dtype} "
            f"(e.g. {values[:3].tolist()})."
        )
    elif values.dtype.kind == "u" and values.size and values.max() > MAX_ID:
        return check_id_range(name, np.full(1, MAX_ID + 1))
    return check_id_range(name, values.astype(np.int64, copy=False))


def _object_ids(name: str, values: np.ndarray) -> np.ndarray:
    """Python objects (JSON mixing types, huge integers) as an int64 array."""
    if any(value is None for value in values):
        raise ValueError(f"Column {name!r} has missing value(s).")
    if any(isinstance(value, (bool, np.bool_)) for value in values):
        raise ValueError(f"Column {name!r} must hold integer ids, not booleans.")
    if not all(
        isinstance(value, (int, float, np.integer, np.floating)) for value in values
    ):
        raise ValueError(
            f"Column {name!r} must hold integer ids, not {values[:3].tolist()}."
        )
    if any(isinstance(value, int) and not 0 <= value <= MAX_ID for value in values):
        return check_id_range(name, np.full(1, -1))
    return np.asarray(values.tolist(), dtype=np.float64)
