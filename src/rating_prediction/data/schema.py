"""The data contracts every pipeline shares: table schemas, split names, rating scale,
genre vocabularies. One place, so a column or a bound is never written twice.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import polars as pl

# MovieLens stars: half-star steps from 0.5 to 5.0 (ml-100k and ml-1m use whole stars).
# The default scale of every release and of the synthetic sample; a ratings file of
# the user's own has its own scale (declared or inferred), recorded as `rating_scale`.
RATING_MIN = 0.5
RATING_MAX = 5.0


@dataclass(frozen=True)
class RatingScale:
    """The range a data set's ratings lie in: every model squashes or clips its
    predictions to it, and ingestion refuses ratings outside it.

    Attributes:
        min: The lowest rating.
        max: The highest rating (above ``min``).
        inferred: Whether ``min`` and ``max`` were read off the data (no scale declared).
    """

    min: float
    max: float
    inferred: bool = False

    def __post_init__(self) -> None:
        if not self.min < self.max:
            raise ValueError(
                f"A rating scale needs min < max, got [{self.min}, {self.max}]."
            )

    @classmethod
    def from_dict(cls, recorded: dict[str, Any]) -> RatingScale:
        """The scale as the ``rating_scale`` dataset (JSON) holds it."""
        return cls(
            float(recorded["min"]),
            float(recorded["max"]),
            bool(recorded.get("inferred", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def fraction(self, share: float) -> float:
        """The rating ``share`` of the way from ``min`` to ``max``."""
        return self.min + share * (self.max - self.min)


MOVIELENS_SCALE = RatingScale(RATING_MIN, RATING_MAX)

# Ids are held as Int32 from ingestion on: no user or movie of any release has an id
# outside 0..MAX_ID, so anything else is refused wherever an id comes in.
MAX_ID = 2**31 - 1

# The three parts of every split, in this order wherever they are listed.
SPLITS = ("train", "val", "test")

# `ratings` (data/02_intermediate/ratings.parquet): ids as Int32, ratings as Float32 and
# Unix-second timestamps, never as Python objects.
RATINGS_SCHEMA = pl.Schema(
    {
        "userId": pl.Int32(),
        "movieId": pl.Int32(),
        "rating": pl.Float32(),
        "timestamp": pl.Int64(),
    }
)

# `movies` (data/02_intermediate/movies.parquet): genres `|`-joined, null when none.
MOVIES_SCHEMA = pl.Schema(
    {
        "movieId": pl.Int32(),
        "title": pl.String(),
        "genres": pl.String(),
    }
)

# `users` (data/02_intermediate/users.parquet): one row per user, with the demographics
# the release ships, null where it ships none (every release but ml-100k and ml-1m).
# Kept as the files give them: ml-100k's age in years and occupation name
# ("technician"); ml-1m's age group code (1, 18, 25, 35, 45, 50, 56: the group's lowest
# age) and occupation code ("0".."20", named in its README). userId takes the ratings'
# id type (Int32 for a release; a file of the user's own may have Int64 or text ids).
USERS_SCHEMA = pl.Schema(
    {
        "userId": pl.Int32(),
        "age": pl.Int32(),
        "gender": pl.String(),
        "occupation": pl.String(),
        "zip": pl.String(),
    }
)

# `user_mapping` / `movie_mapping`: original id to 0-based contiguous index.
USER_MAPPING_SCHEMA = pl.Schema({"userId": pl.Int32(), "userIdMapped": pl.Int32()})
MOVIE_MAPPING_SCHEMA = pl.Schema({"movieId": pl.Int32(), "movieIdMapped": pl.Int32()})

# `train_ratings`, `val_ratings`, `test_ratings`: the ratings with both mapped ids.
MAPPED_RATINGS_SCHEMA = pl.Schema(
    {
        **RATINGS_SCHEMA,
        "userIdMapped": pl.Int32(),
        "movieIdMapped": pl.Int32(),
    }
)

# ml-100k encodes genres as 19 flag columns of u.item, in the order of its u.genre file.
ML_100K_GENRES = (
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)

# The genre vocabulary of ml-latest (and ml-20m onwards), alphabetical: ml-100k's without
# "unknown", with "Children" spelt without the apostrophe, and with IMAX.
MOVIELENS_GENRES = tuple(
    sorted((set(ML_100K_GENRES) - {"unknown", "Children's"}) | {"Children", "IMAX"})
)

# GroupLens marks movies without genres this way; downstream sees null instead.
NO_GENRES = "(no genres listed)"
