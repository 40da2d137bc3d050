"""The data contracts every pipeline shares: table schemas, split names, rating scale,
genre vocabularies. One place, so a column or a bound is never written twice.
"""

from __future__ import annotations

import polars as pl

# MovieLens stars: half-star steps from 0.5 to 5.0 (ml-100k and ml-1m use whole stars).
RATING_MIN = 0.5
RATING_MAX = 5.0

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
