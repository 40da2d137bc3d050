"""Looking original ids up in a mapping: a dense table for many ids at once, a binary
search for a few, the same answer either way (src/rating_prediction/ids.py)."""

from __future__ import annotations

import numpy as np
import pytest

from rating_prediction.data.ids import UNKNOWN_INDEX, positions

SORTED_IDS = np.array([-3, 4, 5, 9, 40, 41], dtype=np.int64)
QUERIES = [-4, -3, 0, 4, 5, 6, 9, 41, 42, 2**31, 2**62, -(2**62)]
EXPECTED = [-1, 0, -1, 1, 2, -1, 3, 5, -1, -1, -1, -1]


def test_few_ids_are_searched():
    assert positions(SORTED_IDS, np.array(QUERIES)).tolist() == EXPECTED


@pytest.mark.parametrize("copies", [5, 50])
def test_many_ids_go_through_a_dense_table_with_the_same_answers(copies):
    """45 ids span the mapping; 60 or 600 queries take the dense table."""
    queries = np.tile(np.array(QUERIES, dtype=np.int64), copies)
    assert queries.size >= SORTED_IDS[-1] - SORTED_IDS[0] + 1
    assert positions(SORTED_IDS, queries).tolist() == EXPECTED * copies
    assert queries.tolist() == QUERIES * copies  # the input is not modified


def test_an_empty_mapping_knows_no_id():
    empty = np.zeros(0, dtype=np.int64)
    assert positions(empty, np.array([1, 2])).tolist() == [UNKNOWN_INDEX] * 2
