"""Original ids and the 0-based indices the models use, in one place.

Original ids are integers (MovieLens releases; any Int64 in a ratings file of one's
own) or strings (``"c42"``, ISBNs, hashes): an :class:`IdIndex` keeps them in their
type (int64 or a numpy unicode array) and says which (:attr:`IdIndex.id_type`).

The id mappings (``user_mapping``, ``movie_mapping``) number every id kept after the
top-N filter, before the split; an id is *seen* only when the training split rates it.
Training zeroes the parameters of unseen indices, the baselines give them no bias, and
serving answers them with the model's fallback: all three ask :func:`seen_mask` or an
:class:`IdIndex`, so "seen in training" means the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

UNKNOWN_INDEX = -1

# The two kinds of original id: integers (int64) or strings (numpy unicode arrays,
# ordered by code point, as polars sorts strings).
IdType = Literal["integer", "string"]
INTEGER: IdType = "integer"
STRING: IdType = "string"
# The polars type a table holds each kind of id in (answers, the served model's files).
ID_DTYPES: dict[IdType, pl.DataType] = {INTEGER: pl.Int64(), STRING: pl.String()}


def id_type_of(ids: np.ndarray | pl.Series | pl.DataType) -> IdType:
    """``"string"`` for string ids (a polars String type or series, a numpy unicode
    or object array), ``"integer"`` otherwise."""
    if isinstance(ids, pl.Series):
        ids = ids.dtype
    if isinstance(ids, pl.DataType) or (
        isinstance(ids, type) and issubclass(ids, pl.DataType)
    ):
        return STRING if ids in (pl.String, pl.Categorical, pl.Enum) else INTEGER
    return STRING if np.asarray(ids).dtype.kind in "UOT" else INTEGER


def as_id_array(ids: object, id_type: IdType) -> np.ndarray:
    """``ids`` (a sequence or array already checked to hold ids of ``id_type``) as the
    array an :class:`IdIndex` of that type holds: int64, or numpy unicode."""
    if id_type == STRING:
        array = np.asarray(ids)
        if array.dtype.kind == "U":
            return array
        return array.astype(str) if array.size else np.zeros(0, dtype="<U1")
    return np.asarray(ids, dtype=np.int64)


def seen_mask(indices: np.ndarray, size: int) -> np.ndarray:
    """A boolean mask of length ``size``: True at every index that occurs in ``indices``.

    Raises:
        ValueError: If an index falls outside ``0..size-1`` (a split and a mapping from
            different runs).
    """
    indices = np.asarray(indices)
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        raise ValueError(
            f"Indices range over [{indices.min()}, {indices.max()}] but the mapping has "
            f"{size} ids (0..{size - 1}): the split and the mapping come from different "
            "runs. Rerun the data_processing pipeline."
        )
    mask = np.zeros(size, dtype=bool)
    mask[indices] = True
    return mask


def positions(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The position of each of ``ids`` in ``sorted_ids`` (ascending, distinct),
    ``UNKNOWN_INDEX`` where absent: both int64, or both strings (numpy unicode).

    Many integer ids at once (at least as many as the range ``sorted_ids`` spans, such
    as every rated pair) go through a dense table over that range, one gather; fewer,
    and strings, through a binary search each."""
    if len(sorted_ids) == 0:
        return np.full(np.shape(ids), UNKNOWN_INDEX, dtype=np.int64)
    if sorted_ids.dtype.kind != "i":
        return _searched(sorted_ids, ids)
    low, span = sorted_ids[0], int(sorted_ids[-1] - sorted_ids[0]) + 1
    if ids.size >= span:
        table = np.full(span + 1, UNKNOWN_INDEX, dtype=np.int64)
        table[sorted_ids - low] = np.arange(len(sorted_ids))
        offsets = ids - low
        # Out-of-range ids read the extra UNKNOWN_INDEX entry at the end.
        offsets[(offsets < 0) | (offsets >= span)] = span
        return table[offsets]
    return _searched(sorted_ids, ids)


def _searched(sorted_ids: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """:func:`positions` by binary search (numpy compares unicode by code point)."""
    position = np.searchsorted(sorted_ids, ids).clip(max=len(sorted_ids) - 1)
    return np.where(sorted_ids[position] == ids, position, UNKNOWN_INDEX).astype(
        np.int64, copy=False
    )


@dataclass(frozen=True)
class IdIndex:
    """Original id to index for one kind of id (users or movies); unknown is ``-1``.

    Attributes:
        ids: The original ids in index order (ascending, as the mappings number them):
            int64 for integer ids, a numpy unicode array for string ids.
        seen: Per index, whether the training split rates it.
    """

    ids: np.ndarray
    seen: np.ndarray

    def __post_init__(self) -> None:
        # Strings as numpy unicode (binary search, code-point order), however given.
        if self.ids.dtype.kind in "OT":
            object.__setattr__(self, "ids", as_id_array(self.ids, STRING))

    @classmethod
    def from_training(
        cls, mapping: pl.DataFrame, train_ratings: pl.DataFrame, id_column: str
    ) -> IdIndex:
        """The index of ``id_column`` (``userId`` or ``movieId``) from its mapping and
        the training split."""
        index_column = f"{id_column}Mapped"
        ordered = mapping.sort(index_column)
        indices = ordered[index_column].to_numpy()
        id_type = id_type_of(ordered[id_column])
        ids = as_id_array(
            ordered[id_column].cast(ID_DTYPES[id_type]).to_numpy(), id_type
        )
        if not np.array_equal(indices, np.arange(len(indices))) or np.any(
            ids[1:] <= ids[:-1]
        ):
            raise ValueError(
                f"The {id_column} mapping must number its ids 0..n-1 in ascending id "
                "order; rerun the data_processing pipeline."
            )
        seen = seen_mask(train_ratings[index_column].to_numpy(), len(ids))
        return cls(ids=ids, seen=seen)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def id_type(self) -> IdType:
        """``"integer"`` or ``"string"``: the kind of the original ids."""
        return id_type_of(self.ids)

    @property
    def dtype(self) -> pl.DataType:
        """The polars type of the original ids in tables: Int64 or String."""
        return ID_DTYPES[self.id_type]

    def as_ids(self, ids: object) -> np.ndarray:
        """``ids`` (checked to be of :attr:`id_type`) as an array of this index's kind."""
        return as_id_array(ids, self.id_type)

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """The mapping index of each original id (``UNKNOWN_INDEX`` when not in the
        mapping), whether or not it was seen in training."""
        return positions(self.ids, self.as_ids(ids))

    @property
    def known_ids(self) -> np.ndarray:
        """The original ids seen in training, ascending."""
        return self.ids[self.seen]

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """The index of each original id, ``UNKNOWN_INDEX`` where it is not in the
        mapping or not seen in training."""
        position = self.positions(ids)
        known = position >= 0
        known[known] = self.seen[position[known]]
        return np.where(known, position, UNKNOWN_INDEX)


class DenseLookup:
    """Original id to index through a table indexed by id (``-1`` unknown): one gather
    per request instead of a binary search. Used where the largest id is at most
    ``MAX_TABLE_FACTOR`` times the number of ids (MovieLens ids are dense); integer
    ids only."""

    MAX_TABLE_FACTOR = 16

    def __init__(self, ids: np.ndarray, seen: np.ndarray) -> None:
        size = int(ids.max()) + 1 if len(ids) else 0
        self.table = np.full(size, -1, dtype=np.int64)
        self.table[ids[seen]] = np.flatnonzero(seen)

    @classmethod
    def fits(cls, ids: np.ndarray) -> bool:
        if id_type_of(ids) != INTEGER:
            return False
        return len(ids) == 0 or int(ids.max()) < cls.MAX_TABLE_FACTOR * len(ids) + 2**20

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """Indices of non-negative ``ids`` (validated requests hold no other)."""
        inside = ids < len(self.table)
        if inside.all():
            return self.table[ids]
        found = np.full(len(ids), -1, dtype=np.int64)
        found[inside] = self.table[ids[inside]]
        return found
