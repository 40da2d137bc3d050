"""String ids in an id mapping: kept as strings, looked up by binary search in
polars' (code-point) order, the order checked; integer ids keep their dense table."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from rating_prediction.data.ids import (
    UNKNOWN_INDEX,
    DenseLookup,
    IdIndex,
    id_type_of,
    positions,
)

# Ascending as polars sorts strings (byte-wise UTF-8 = code point): "Z" < "a" < "é".
SORTED = ["0345339681", "9", "Z1", "a", "a1", "c42", "é"]


def mapping(ids: list, column: str = "userId") -> pl.DataFrame:
    return pl.DataFrame(
        {column: ids, f"{column}Mapped": list(range(len(ids)))},
        schema={column: pl.String, f"{column}Mapped": pl.Int32},
    )


def test_the_fixture_order_is_polars_order():
    assert pl.Series(SORTED[::-1]).sort().to_list() == SORTED


def test_string_positions():
    sorted_ids = np.array(SORTED)
    queries = np.array(["a", "A", "é", "0345339681", "345339681", "", "zz", "c42"])
    assert positions(sorted_ids, queries).tolist() == [3, -1, 6, 0, -1, -1, -1, 5]
    # Python strings in an object array (as pandas hands them) alike.
    assert positions(sorted_ids, queries.astype(object)).tolist() == [
        3, -1, 6, 0, -1, -1, -1, 5
    ]  # fmt: skip


def test_an_index_of_string_ids_keeps_them_and_knows_only_the_seen():
    train = pl.DataFrame({"userIdMapped": [0, 3, 5]}, schema={"userIdMapped": pl.Int32})
    index = IdIndex.from_training(mapping(SORTED), train, "userId")
    assert index.id_type == "string"
    assert index.dtype == pl.String
    assert index.ids.dtype.kind == "U"
    assert index.ids.tolist() == SORTED
    assert index.known_ids.tolist() == ["0345339681", "a", "c42"]
    asked = ["c42", "a1", "nope", "0345339681", "a"]
    assert index.lookup(np.array(asked, dtype=object)).tolist() == [5, -1, -1, 0, 3]
    assert index.positions(np.array(asked)).tolist() == [5, 4, -1, 0, 3]
    assert not DenseLookup.fits(index.ids)


def test_string_ids_out_of_order_are_refused():
    # Numbered in integer-like order: "10" sorts before "9" as strings.
    with pytest.raises(ValueError, match="ascending id order"):
        IdIndex.from_training(
            mapping(["9", "10"]), pl.DataFrame({"userIdMapped": [0]}), "userId"
        )


def test_integer_ids_keep_their_type_and_dense_table():
    integers = pl.DataFrame(
        {"movieId": [1, 5, 9], "movieIdMapped": [0, 1, 2]},
        schema={"movieId": pl.Int64, "movieIdMapped": pl.Int32},
    )
    index = IdIndex.from_training(
        integers, pl.DataFrame({"movieIdMapped": [0, 2]}), "movieId"
    )
    assert index.id_type == "integer"
    assert index.dtype == pl.Int64
    assert index.ids.dtype == np.int64
    assert DenseLookup.fits(index.ids)
    assert DenseLookup(index.ids, index.seen)(np.array([9, 5, 2])).tolist() == [
        2,
        -1,
        -1,
    ]
    assert index.lookup(np.array([9, 5, 2])).tolist() == [2, UNKNOWN_INDEX, -1]


def test_id_type_of():
    assert id_type_of(pl.String) == id_type_of(pl.Series(["a"])) == "string"
    assert id_type_of(pl.Int32) == id_type_of(np.array([1])) == "integer"
    assert id_type_of(np.array(["a"])) == "string"
