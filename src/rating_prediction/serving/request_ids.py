"""Request-id checks, against the served model's id type (per column).

Integer ids: every id a request brings is an integer in 0..``MAX_ID``. String ids
(a data set whose ids are strings): every id is a non-empty string, matched exactly.
Anything else is refused with a message naming its column and quoting the first bad
values as they were sent (shortened: a message never echoes a request back).
"""

from __future__ import annotations

import reprlib
from collections.abc import Mapping, Sequence
from typing import NoReturn

import numpy as np
import pandas as pd
import polars as pl

from rating_prediction.data.ids import ID_DTYPES, INTEGER, STRING, IdType
from rating_prediction.data.schema import MAX_ID

PAIR_COLUMNS = ("userId", "movieId")

# Int64 ids: a request may carry any integer, even one beyond the Int32 mapping range.
PAIRS_SCHEMA = pl.Schema({"userId": pl.Int64, "movieId": pl.Int64})
# What a column's ids are called in messages.
ID_NAMES = {"userId": "user", "movieId": "movie"}

# How messages quote what a request sent: the first three values, each at most 40
# characters (a 1 MB string or a 400-digit integer is shown by its ends).
_QUOTE = reprlib.Repr()
_QUOTE.maxlist = 3
_QUOTE.maxstring = _QUOTE.maxother = _QUOTE.maxlong = 40


def quote(values: Sequence | np.ndarray) -> str:
    """The first values of ``values`` as sent, for a message: Python's repr of each
    (1e+29, 18446744073709551615, 'abc'; numpy scalars as the Python ones), shortened."""
    first = [
        value.item() if isinstance(value, np.generic) else value
        for value in list(values[:4])
    ]
    return _QUOTE.repr(first)


def quote_value(value: object) -> str:
    """``value`` as sent, shortened as :func:`quote` shortens each value."""
    return quote([value])[1:-1]


def pairs_schema(id_types: Mapping[str, IdType] | None = None) -> pl.Schema:
    """``PAIRS_SCHEMA`` with each column in its id type (Int64 or String)."""
    id_types = id_types or {}
    return pl.Schema(
        {column: ID_DTYPES[id_types.get(column, INTEGER)] for column in PAIR_COLUMNS}
    )


def validate_pairs(
    pairs: pl.DataFrame, id_types: Mapping[str, IdType] | None = None
) -> pl.DataFrame:
    """The ``userId`` and ``movieId`` columns in their id type (``id_types``, per
    column; integer when not given): Int64 or String; a clear error for bad input.

    Integer ids: whole-number floats are accepted (JSON and pandas turn ints into
    floats easily); fractions, infinities, strings and missing values are not. String
    ids: only non-empty strings.
    """
    missing = [column for column in PAIR_COLUMNS if column not in pairs.columns]
    if missing:
        raise ValueError(
            f"The request lacks the column(s) {missing}: expected {list(PAIR_COLUMNS)} "
            f"holding original MovieLens ids, got {pairs.columns}."
        )
    id_types = id_types or {}
    if pairs.is_empty():
        return pl.DataFrame(schema=pairs_schema(id_types))
    return pl.DataFrame(
        [
            _string_ids(pairs[column])
            if id_types.get(column, INTEGER) == STRING
            else _integer_ids(pairs[column])
            for column in PAIR_COLUMNS
        ]
    )


def strings_expected(name: str) -> str:
    """Why a column must hold strings: the served model's ids of that kind are."""
    return f"the served model's {ID_NAMES.get(name, name)} ids are strings"


def _string_ids(ids: pl.Series) -> pl.Series:
    if ids.dtype != pl.String:
        raise ValueError(
            f"Column {ids.name!r} must hold string ids ({strings_expected(ids.name)}), "
            f"not {ids.dtype} (e.g. {quote(ids.head(3).to_list())})."
        )
    check_ids(ids.name, ids.to_numpy(), STRING)
    return ids


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
                f"{quote(not_whole.head(3).to_list())}."
            )
    elif not ids.dtype.is_integer():
        raise ValueError(
            f"Column {ids.name!r} must hold integer ids, not {ids.dtype} "
            f"(e.g. {quote(ids.head(3).to_list())})."
        )
    return pl.Series(ids.name, check_id_range(ids.name, ids.cast(pl.Int64).to_numpy()))


def check_id_range(name: str, ids: np.ndarray) -> np.ndarray:
    """``ids`` (integers, or whole floats); a clear error for a negative id or one
    above ``MAX_ID``, quoting it as sent (before any cast, which would wrap or clip
    it)."""
    if ids.size and (ids.min() < 0 or ids.max() > MAX_ID):
        _out_of_range(name, ids[(ids < 0) | (ids > MAX_ID)])
    return ids


def _out_of_range(name: str, bad: Sequence | np.ndarray) -> NoReturn:
    raise ValueError(f"Column {name!r} must hold ids in 0..{MAX_ID}; got {quote(bad)}.")


def check_ids(name: str, values: np.ndarray, id_type: IdType = INTEGER) -> np.ndarray:
    """``values`` (any numpy array a request column became) as ids of ``id_type``:
    int64 for integer ids, numpy unicode for string ids.

    Integer ids: refuses booleans, fractions, infinities, NaN (a missing value),
    strings and ids outside 0..``MAX_ID``. String ids: refuses anything but non-empty
    strings (integers, floats, booleans, missing values). Each with a message naming
    the column.
    """
    if id_type == STRING:
        return _check_strings(name, values)
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
                f"Column {name!r} must hold integer ids; got {quote(bad)}."
            )
    elif values.dtype.kind not in "iu":
        raise ValueError(
            f"Column {name!r} must hold integer ids, not {values.dtype} "
            f"(e.g. {quote(values)})."
        )
    # Checked in the request's own type: 1e29 or 2**64 - 1 cast to int64 first would
    # be reported as some other number.
    return check_id_range(name, values).astype(np.int64, copy=False)


def _object_ids(name: str, values: np.ndarray) -> np.ndarray:
    """Python objects (JSON mixing types, huge integers) as an int64 array."""
    if any(value is None for value in values):
        raise ValueError(f"Column {name!r} has missing value(s).")
    if any(isinstance(value, (bool, np.bool_)) for value in values):
        raise ValueError(f"Column {name!r} must hold integer ids, not booleans.")
    numbers = (int, float, np.integer, np.floating)
    if not all(isinstance(value, numbers) for value in values):
        bad = [value for value in values if not isinstance(value, numbers)]
        raise ValueError(f"Column {name!r} must hold integer ids, not {quote(bad)}.")
    # Out-of-range integers quoted as sent: past int64 (JSON has any size) a cast
    # would fail, past 2**53 a float would round them.
    huge = [
        value
        for value in values
        if isinstance(value, (int, np.integer)) and not 0 <= value <= MAX_ID
    ]
    if huge:
        _out_of_range(name, huge)
    return np.asarray(values.tolist(), dtype=np.float64)


def _check_strings(name: str, values: np.ndarray) -> np.ndarray:
    """``values`` as a numpy unicode array of non-empty strings."""
    if values.size == 0:
        return np.zeros(0, dtype="<U1")
    if values.dtype.kind not in "UT":
        if values.dtype.kind != "O" or pd.api.types.infer_dtype(
            values, skipna=False
        ) not in ("string", "empty"):
            raise ValueError(_not_strings(name, values))
        values = values.astype(str)
    elif values.dtype.kind == "T":
        values = values.astype(str)
    if (values == "").any():
        raise ValueError(
            f"Column {name!r} has missing value(s) (empty strings); every row needs "
            "an id."
        )
    return values


def _not_strings(name: str, values: np.ndarray) -> str:
    flat = values.tolist() if values.dtype.kind == "O" else None
    if flat is not None and any(value is None or value is pd.NA for value in flat):
        return f"Column {name!r} has missing value(s)."
    if flat is not None:
        bad = [value for value in flat if not isinstance(value, str)]
        if any(isinstance(value, float) and np.isnan(value) for value in bad):
            return f"Column {name!r} has missing value(s)."
        return (
            f"Column {name!r} must hold string ids ({strings_expected(name)}), not "
            f"{_kind(bad[0])}s (e.g. {quote(bad)})."
        )
    if values.dtype.kind == "f" and np.isnan(values).any():
        return f"Column {name!r} has missing value(s)."
    kind = {"b": "booleans", "f": "floats", "i": "integers", "u": "integers"}.get(
        values.dtype.kind, str(values.dtype)
    )
    return (
        f"Column {name!r} must hold string ids ({strings_expected(name)}), not "
        f"{kind} (e.g. {quote(values)})."
    )


def _kind(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if isinstance(value, (int, np.integer)):
        return "integer"
    if isinstance(value, (float, np.floating)):
        return "float"
    return type(value).__name__
