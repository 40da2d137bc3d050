"""``ingestion``: which release to read, where, how to fetch it, the synthetic sample,
and a ratings file of the user's own (``ingestion.file``)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    PositiveFloat,
    StrictInt,
    field_validator,
    model_validator,
)

from rating_prediction.parameters.base import (
    Parameters,
)
from rating_prediction.parameters.bounds import (
    MAX_SYNTHETIC_MOVIES,
    MAX_SYNTHETIC_RATINGS,
    MAX_SYNTHETIC_USERS,
    Factors,
    Seed,
    Timestamp,
)


class SyntheticSettings(Parameters):
    """``ingestion.synthetic``: the generator of the offline sample (see its YAML)."""

    seed: Seed = 42
    n_users: Annotated[StrictInt, Field(ge=1, le=MAX_SYNTHETIC_USERS)] = 3_000
    n_movies: Annotated[StrictInt, Field(ge=1, le=MAX_SYNTHETIC_MOVIES)] = 1_000
    n_ratings: Annotated[StrictInt, Field(ge=1, le=MAX_SYNTHETIC_RATINGS)] = 200_000
    rank: Factors = 5
    global_mean: float = 3.65
    user_bias_std: NonNegativeFloat = 0.4
    movie_bias_std: NonNegativeFloat = 0.45
    interaction_std: NonNegativeFloat = 0.5
    noise_std: NonNegativeFloat = 0.5
    # 0.5: half stars from 0.5 (MovieLens); 1.0: whole stars from 1 (Netflix Prize).
    rating_step: Literal[0.5, 1.0] = 0.5
    user_activity_exponent: NonNegativeFloat = 0.7
    user_activity_offset: PositiveFloat = 20.0
    movie_popularity_exponent: NonNegativeFloat = 1.0
    movie_popularity_offset: PositiveFloat = 10.0
    first_timestamp: Timestamp = 946_684_800  # 2000-01-01
    last_timestamp: Timestamp = 1_537_747_200  # 2018-09-24

    @model_validator(mode="after")
    def _feasible(self) -> SyntheticSettings:
        if self.n_ratings > self.n_users * self.n_movies // 2:
            raise ValueError(
                f"n_ratings={self.n_ratings} needs to be at most half of "
                f"n_users * n_movies = {self.n_users * self.n_movies}"
            )
        if self.first_timestamp > self.last_timestamp:
            raise ValueError("first_timestamp must not be after last_timestamp")
        return self


# The value of `ingestion.dataset` that reads `ingestion.file` instead of a release.
OWN_FILE = "file"
# What a ratings or items file may be; a `.zip` holds one file of the other kinds.
FILE_SUFFIXES = (".csv", ".tsv", ".parquet", ".zip")
ColumnName = Field(min_length=1)


def _readable_path(path: str) -> str:
    if PurePath(path).suffix.lower() not in FILE_SUFFIXES:
        raise ValueError(
            f"must name a {', '.join(FILE_SUFFIXES)} file (a .zip holding one of the "
            f"others), got {path!r}"
        )
    return path


def _one_character(separator: str) -> str:
    if len(separator.encode()) != 1:
        raise ValueError(
            f"must be one single-byte character such as ',', ';', '|' or a tab "
            f"('\\t'), got {separator!r}"
        )
    return separator


class RatingsColumns(Parameters):
    """``ingestion.file.columns``: which column of the file holds what."""

    user: str = ColumnName
    item: str = ColumnName
    rating: str = ColumnName
    # None: the file has no timestamp (the temporal split then cannot be used).
    timestamp: str | None = Field(default=None, min_length=1)


class ItemsColumns(Parameters):
    """``ingestion.file.items.columns``: the item id, its title and its genres."""

    item: str = ColumnName
    title: str = ColumnName
    # None: no genres; else one text column, genres separated by "|".
    genres: str | None = None


class ItemsFile(Parameters):
    """``ingestion.file.items``: titles (and genres) of the items, by item id."""

    path: str
    separator: str = ","
    columns: ItemsColumns

    _path = field_validator("path")(_readable_path)
    _separator = field_validator("separator")(_one_character)


class OwnFileSettings(Parameters):
    """``ingestion.file``: a ratings file of the user's own (``ingestion.dataset:
    file``). The column names map the file's columns onto users, items, ratings and
    timestamps; ids may be integers or text (``ids``: ``auto`` reads them as integers
    when every one of the file's first rows is one)."""

    path: str
    separator: str = ","
    columns: RatingsColumns
    # None: Unix seconds; else a strftime format such as "%Y-%m-%dT%H:%M:%S".
    timestamp_format: str | None = None
    # [min, max]; None: inferred from the ratings (the log and the summary say so).
    rating_scale: tuple[float, float] | None = None
    ids: Literal["auto", "integer", "string"] = "auto"
    items: ItemsFile | None = None

    _path = field_validator("path")(_readable_path)
    _separator = field_validator("separator")(_one_character)

    @field_validator("rating_scale")
    @classmethod
    def _min_below_max(
        cls, scale: tuple[float, float] | None
    ) -> tuple[float, float] | None:
        if scale is not None and not scale[0] < scale[1]:
            raise ValueError(
                f"must be [min, max] with min < max, got {list(scale)}; or null to "
                "infer it from the ratings"
            )
        return scale


class IngestionParameters(Parameters):
    """``ingestion``: which release to read, where, and how to fetch it."""

    dataset: str
    raw_dir: str
    base_url: str
    download_timeout_s: PositiveFloat
    synthetic: SyntheticSettings = SyntheticSettings()
    file: OwnFileSettings | None = None

    @model_validator(mode="after")
    def _file_described(self) -> IngestionParameters:
        if self.dataset == OWN_FILE and self.file is None:
            raise ValueError(
                "ingestion.dataset is 'file' but no 'ingestion.file' block describes "
                "it: add its path, separator and columns (see the docs' 'Use your own "
                "data' page)"
            )
        return self
