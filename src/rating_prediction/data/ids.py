"""Original MovieLens ids and the 0-based indices the models use, in one place.

The id mappings (``user_mapping``, ``movie_mapping``) number every id kept after the
top-N filter, before the split; an id is *seen* only when the training split rates it.
Training zeroes the parameters of unseen indices, the baselines give them no bias, and
serving answers them with the model's fallback: all three ask :func:`seen_mask` or an
:class:`IdIndex`, so "seen in training" means the same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

UNKNOWN_INDEX = -1


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
    """The position of each of ``ids`` (int64) in ``sorted_ids`` (ascending, distinct,
    int64), ``UNKNOWN_INDEX`` where absent.

    Many ids at once (at least as many as the range ``sorted_ids`` spans, such as every
    rated pair) go through a dense table over that range, one gather; fewer through a
    binary search each."""
    if len(sorted_ids) == 0:
        return np.full(ids.shape, UNKNOWN_INDEX, dtype=np.int64)
    low, span = sorted_ids[0], int(sorted_ids[-1] - sorted_ids[0]) + 1
    if ids.size >= span:
        table = np.full(span + 1, UNKNOWN_INDEX, dtype=np.int64)
        table[sorted_ids - low] = np.arange(len(sorted_ids))
        offsets = ids - low
        # Out-of-range ids read the extra UNKNOWN_INDEX entry at the end.
        offsets[(offsets < 0) | (offsets >= span)] = span
        return table[offsets]
    position = np.searchsorted(sorted_ids, ids).clip(max=len(sorted_ids) - 1)
    return np.where(sorted_ids[position] == ids, position, UNKNOWN_INDEX)


@dataclass(frozen=True)
class IdIndex:
    """Original id to index for one kind of id (users or movies); unknown is ``-1``.

    Attributes:
        ids: The original ids in index order (ascending, as the mappings number them).
        seen: Per index, whether the training split rates it.
    """

    ids: np.ndarray
    seen: np.ndarray

    @classmethod
    def from_training(
        cls, mapping: pl.DataFrame, train_ratings: pl.DataFrame, id_column: str
    ) -> IdIndex:
        """The index of ``id_column`` (``userId`` or ``movieId``) from its mapping and
        the training split."""
        index_column = f"{id_column}Mapped"
        ordered = mapping.sort(index_column)
        indices = ordered[index_column].to_numpy()
        ids = ordered[id_column].cast(pl.Int64).to_numpy()
        if not np.array_equal(indices, np.arange(len(indices))) or np.any(
            np.diff(ids) <= 0
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
    def known_ids(self) -> np.ndarray:
        """The original ids seen in training, ascending."""
        return self.ids[self.seen]

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """The index of each original id, ``UNKNOWN_INDEX`` where it is not in the
        mapping or not seen in training."""
        position = positions(self.ids, np.asarray(ids, dtype=np.int64))
        known = position >= 0
        known[known] = self.seen[position[known]]
        return np.where(known, position, UNKNOWN_INDEX)


class DenseLookup:
    """Original id to index through a table indexed by id (``-1`` unknown): one gather
    per request instead of a binary search. Used where the largest id is at most
    ``MAX_TABLE_FACTOR`` times the number of ids (MovieLens ids are dense)."""

    MAX_TABLE_FACTOR = 16

    def __init__(self, ids: np.ndarray, seen: np.ndarray) -> None:
        size = int(ids.max()) + 1 if len(ids) else 0
        self.table = np.full(size, -1, dtype=np.int64)
        self.table[ids[seen]] = np.flatnonzero(seen)

    @classmethod
    def fits(cls, ids: np.ndarray) -> bool:
        return len(ids) == 0 or int(ids.max()) < cls.MAX_TABLE_FACTOR * len(ids) + 2**20

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        """Indices of non-negative ``ids`` (validated requests hold no other)."""
        inside = ids < len(self.table)
        if inside.all():
            return self.table[ids]
        found = np.full(len(ids), -1, dtype=np.int64)
        found[inside] = self.table[ids[inside]]
        return found
