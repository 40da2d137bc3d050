"""``processing``: the top-N movie filter and the split."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    Field,
    field_validator,
)

from rating_prediction.data.schema import SPLITS
from rating_prediction.parameters.base import (
    FRACTIONS_TOLERANCE,
    Parameters,
)
from rating_prediction.parameters.bounds import EntityCap, Seed


class SplitParameters(Parameters):
    """``processing.split``: how the mapped ratings become train, val and test.

    ``predefined`` reads the release's own split (ml-100k: ``fold`` is one of ``u1`` ...
    ``u5``, ``ua``, ``ub``): test is ``<fold>.test``, and a seeded ``val_fraction`` of
    ``<fold>.base`` becomes val (there is no official validation set); ``fractions``
    are then unused.

    ``hash`` draws each rating's part from a seeded hash of its user's and movie's
    indices: it partitions (no row order involved), so Spark (``--env spark``) gives
    the very same split as one machine.
    """

    strategy: Literal["random", "temporal", "predefined", "hash"]
    fractions: list[Annotated[float, Field(gt=0)]]
    seed: Seed
    fold: str = "u1"
    val_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.1

    @field_validator("fractions")
    @classmethod
    def _three_summing_to_one(cls, fractions: list[float]) -> list[float]:
        if len(fractions) != len(SPLITS) or (
            abs(sum(fractions) - 1) > FRACTIONS_TOLERANCE
        ):
            raise ValueError(
                f"must be {len(SPLITS)} positive numbers ({', '.join(SPLITS)}) "
                f"summing to 1, got {fractions}"
            )
        return fractions


class ProcessingParameters(Parameters):
    """``processing``: the top-N movie filter and the split."""

    top_n_movies: EntityCap | None
    split: SplitParameters
