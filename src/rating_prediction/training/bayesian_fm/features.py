"""The relation blocks myFM samples from, built from the fitted ratings only.

- the user block: each user's one-hot, the movies it rated (implicit) and its
  demographics (one-hot age, gender, occupation and zip-code region);
- the movie block: each movie's one-hot, the users who rated it (flipped), its genres
  and the year in its title;
- the time block (optional): the rating date, one row per time bucket.

The one-hots and the implicit parts of an id absent from the fitted ratings are zero.
The side parts (genres, year, demographics) are per-id data, not ratings: every mapped id
keeps its own, but their vocabulary (the columns) is what the fitted ids have, so a
genre, year or occupation only an unfitted id has gets no parameter. The time buckets
start at the fitted ratings' first day and end at their last; a bucket no fitted rating
falls in is an all-zero row, and a date outside the span falls in the nearest end bucket.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
import scipy.sparse as sps

with warnings.catch_warnings():  # myFM 0.4 imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import myfm

from rating_prediction.parameters import BayesianFMFeatures

ID_COLUMNS = ("userIdMapped", "movieIdMapped")
DAY_SECONDS = 86_400
# A title's trailing year, as MovieLens writes it: "Toy Story (1995)".
TITLE_YEAR = r"\((\d{4})\)\s*$"
# The demographic columns of the users table; the zip code's first character is its
# region (a whole zip code nearly names its user, which the one-hot already does).
DEMOGRAPHICS = ("age", "gender", "occupation", "zip")


@dataclass(frozen=True)
class TimeBuckets:
    """Rating dates in buckets of ``width`` seconds from ``origin`` (unix seconds): a
    timestamp ``t`` falls in ``clamp(floor((t - origin) / width), 0, n_buckets - 1)``."""

    origin: int
    width: int
    n_buckets: int

    @classmethod
    def spanning(cls, timestamps: pl.Series, bucket_days: int) -> TimeBuckets:
        """Buckets of ``bucket_days`` days from the first day of ``timestamps`` (the
        fitted ratings') to the bucket of the last one."""
        if timestamps.is_empty() or timestamps.null_count():
            raise ValueError(
                "training.bayesian_fm.features.time_bucket_days: the time feature "
                "needs every fitted rating's timestamp, and "
                f"{timestamps.null_count()} of {timestamps.len()} have none (a file "
                "of your own without ingestion.file.columns.timestamp). Name the "
                "file's timestamp column, or set time_bucket_days to null."
            )
        origin = int(timestamps.min()) // DAY_SECONDS * DAY_SECONDS
        width = bucket_days * DAY_SECONDS
        return cls(origin, width, (int(timestamps.max()) - origin) // width + 1)

    def of(self, timestamps: pl.Series) -> np.ndarray:
        """The bucket of each timestamp."""
        buckets = (timestamps.to_numpy().astype(np.int64) - self.origin) // self.width
        return np.clip(buckets, 0, self.n_buckets - 1)

    def served(self) -> dict[str, int]:
        """The served model's ``time`` argument: a request without a timestamp is
        scored at the last bucket of the fitted data ("now")."""
        return {
            "origin": self.origin,
            "width": self.width,
            "n_buckets": self.n_buckets,
            "default_bucket": self.n_buckets - 1,
        }


@dataclass(frozen=True)
class SideFeatures:
    """Per-id side data, each part ``n_ids x n_values`` (every mapped id's row, the
    vocabulary still to be cut to the fitted ids'): the user block's and the movie
    block's extra parts, in feature order (the movies': genres, then the year)."""

    users: tuple[sps.csr_matrix, ...] = ()
    movies: tuple[sps.csr_matrix, ...] = ()


@dataclass(frozen=True)
class RelationBlocks:
    """Per-id feature rows of the blocks, built from the fitted ratings.

    ``users`` has a row per user: its one-hot, then (``implicit``) the movies it rated,
    then its side parts; ``movies`` a row per movie: its one-hot, then (``flipped``) the
    users who rated it, then its side parts (genres, year). With ``time``, a third
    block has a row per time bucket (``time_rows``: the one-hot of the buckets the
    fitted ratings fall in). ``groups`` lists the width of each part, in feature order
    (user parts, movie parts, time): each part gets its own prior in the sampler.
    """

    users: sps.csr_matrix
    movies: sps.csr_matrix
    groups: tuple[int, ...]
    time: TimeBuckets | None = None
    time_rows: sps.csr_matrix | None = None

    @classmethod
    def from_ratings(
        cls,
        ratings: pl.DataFrame,
        id_counts: tuple[int, int],
        *,
        implicit: bool = True,
        flipped: bool = True,
        side: SideFeatures = SideFeatures(),
        time_bucket_days: int | None = None,
    ) -> RelationBlocks:
        """The blocks of ``ratings`` (the fitted ratings only): ``side`` holds the side
        parts (:func:`side_features`); ``time_bucket_days`` the width of a time bucket
        in days (``None``: no time block; ``ratings`` then need no ``timestamp``)."""
        n_users, n_movies = id_counts
        users, movies = (
            ratings[column].to_numpy().astype(np.int64) for column in ID_COLUMNS
        )
        user_parts = _parts(users, movies, (n_users, n_movies), implicit)
        user_parts += _fitted_vocabulary(side.users, users, n_users)
        movie_parts = _parts(movies, users, (n_movies, n_users), flipped)
        movie_parts += _fitted_vocabulary(side.movies, movies, n_movies)
        groups = [part.shape[1] for part in [*user_parts, *movie_parts]]
        time, time_rows = None, None
        if time_bucket_days is not None:
            time = TimeBuckets.spanning(ratings["timestamp"], time_bucket_days)
            seen = np.bincount(time.of(ratings["timestamp"]), minlength=time.n_buckets)
            time_rows = sps.diags((seen > 0).astype(np.float64), format="csr")
            groups.append(time.n_buckets)
        return cls(
            users=sps.hstack(user_parts, format="csr"),
            movies=sps.hstack(movie_parts, format="csr"),
            groups=tuple(groups),
            time=time,
            time_rows=time_rows,
        )

    def for_rows(self, ratings: pl.DataFrame) -> list[myfm.RelationBlock]:
        """myFM's relation blocks for the (user, movie[, timestamp]) rows of
        ``ratings``."""
        users, movies = (ratings[column].to_numpy() for column in ID_COLUMNS)
        blocks = [
            myfm.RelationBlock(users.astype(np.int64), self.users),
            myfm.RelationBlock(movies.astype(np.int64), self.movies),
        ]
        if self.time is not None:
            buckets = self.time.of(ratings["timestamp"])
            blocks.append(myfm.RelationBlock(buckets, self.time_rows))
        return blocks

    @property
    def row_columns(self) -> tuple[str, ...]:
        """The columns of a rating :meth:`for_rows` reads."""
        return ID_COLUMNS + (("timestamp",) if self.time is not None else ())


def _parts(
    own: np.ndarray, other: np.ndarray, sizes: tuple[int, int], with_other: bool
) -> list[sps.csr_matrix]:
    """``[one-hot]`` or ``[one-hot, 1/sqrt(n) over the other ids rated with it]``; an id
    absent from ``own`` gets an all-zero row (no parameters: the project's fallback)."""
    n_own, n_other = sizes
    seen = np.bincount(own, minlength=n_own) > 0
    parts = [sps.diags(seen.astype(np.float64), format="csr")]
    if with_other:
        pairs = sps.csr_matrix(
            (np.ones(len(own)), (own, other)), shape=(n_own, n_other)
        )
        pairs.data[:] = 1.0  # a pair rated twice counts once
        parts.append(_normalised_rows(pairs))
    return parts


def _fitted_vocabulary(
    parts: tuple[sps.csr_matrix, ...], fitted: np.ndarray, n_ids: int
) -> list[sps.csr_matrix]:
    """Each side part cut to the columns some fitted id has (an empty part dropped):
    a value only unfitted ids have would get a parameter no rating informs."""
    seen = np.bincount(fitted, minlength=n_ids)[:n_ids] > 0
    kept = []
    for part in parts:
        rows = part[:n_ids].tocsr()
        used = np.asarray(abs(rows[seen]).sum(axis=0)).ravel() > 0
        if used.any():
            kept.append(rows[:, np.flatnonzero(used)].tocsr())
    return kept


def _normalised_rows(matrix: sps.csr_matrix) -> sps.csr_matrix:
    """Each non-empty row of a 0/1 matrix divided by the square root of its count."""
    counts = np.asarray(matrix.sum(axis=1)).ravel()
    scale = np.divide(1.0, np.sqrt(counts), out=np.zeros(len(counts)), where=counts > 0)
    return (sps.diags(scale) @ matrix).tocsr()


def genre_matrix(movies: pl.DataFrame, movie_mapping: pl.DataFrame) -> sps.csr_matrix:
    """``n_movies x n_genres``: each mapped movie's genres (``|``-joined in ``movies``,
    null for none), rows normalised like the implicit features."""
    genres = (
        movie_mapping.join(movies.select("movieId", "genres"), on="movieId", how="left")
        .select("movieIdMapped", pl.col("genres").str.split("|"))
        .explode("genres")
        .drop_nulls("genres")
    )
    pairs = _one_hot(genres["movieIdMapped"], genres["genres"], movie_mapping.height)
    return _normalised_rows(pairs)


def year_matrix(movies: pl.DataFrame, movie_mapping: pl.DataFrame) -> sps.csr_matrix:
    """``n_movies x n_years``: the one-hot of the year in each mapped movie's title
    (``Title (1995)``); a title without one has an all-zero row."""
    years = (
        movie_mapping.join(movies.select("movieId", "title"), on="movieId", how="left")
        .select(
            "movieIdMapped",
            pl.col("title").str.strip_chars().str.extract(TITLE_YEAR).alias("year"),
        )
        .drop_nulls("year")
    )
    return _one_hot(years["movieIdMapped"], years["year"], movie_mapping.height)


def demographic_matrices(
    users: pl.DataFrame, user_mapping: pl.DataFrame
) -> tuple[sps.csr_matrix, ...]:
    """One ``n_users x n_values`` one-hot per demographic column of ``users``
    (``userId``, ``age``, ``gender``, ``occupation``, ``zip``; nulls allowed): the
    mapped users' age, gender, occupation and zip-code region (its first character).
    A column no mapped user has a value of gives no matrix."""
    missing = [c for c in ("userId", *DEMOGRAPHICS) if c not in users.columns]
    if missing:
        raise ValueError(
            "training.bayesian_fm.features.user_demographics: the users table lacks "
            f"the column(s) {missing} (it has {users.columns})."
        )
    values = user_mapping.join(
        users.select(
            "userId",
            *(pl.col(c).cast(pl.String) for c in ("age", "gender", "occupation")),
            pl.col("zip").cast(pl.String).str.strip_chars().str.slice(0, 1),
        ),
        on="userId",
        how="left",
    )
    matrices = []
    for column in DEMOGRAPHICS:
        known = values.select("userIdMapped", column).drop_nulls(column)
        known = known.filter(pl.col(column) != "")
        if not known.is_empty():
            matrices.append(
                _one_hot(known["userIdMapped"], known[column], user_mapping.height)
            )
    return tuple(matrices)


def _one_hot(rows: pl.Series, values: pl.Series, n_rows: int) -> sps.csr_matrix:
    """``n_rows x n_distinct_values``, a 1 at each (row, value); values sorted."""
    vocabulary = sorted(values.unique().to_list())
    columns = values.replace_strict(
        vocabulary, list(range(len(vocabulary))), return_dtype=pl.Int64
    )
    matrix = sps.csr_matrix(
        (np.ones(len(rows)), (rows.to_numpy(), columns.to_numpy())),
        shape=(n_rows, len(vocabulary)),
    )
    matrix.data[:] = 1.0  # a value listed twice counts once
    return matrix


def side_features(
    options: BayesianFMFeatures, tables: dict[str, pl.DataFrame | None]
) -> SideFeatures:
    """The side parts ``options`` asks for (genres, release year, demographics), from
    ``tables``: ``movies``, ``movie_mapping``, ``users``, ``user_mapping``.

    Raises:
        ValueError: Naming the switch, when the table it needs is missing.
    """
    movie_parts = []
    if options.genres:
        movie_parts.append(genre_matrix(*_tables(tables, "movies", "genres")))
    if options.release_year:
        movie_parts.append(year_matrix(*_tables(tables, "movies", "release_year")))
    user_parts = ()
    if options.user_demographics:
        user_parts = demographic_matrices(
            *_tables(tables, "users", "user_demographics")
        )
    return SideFeatures(users=user_parts, movies=tuple(movie_parts))


def _tables(
    tables: dict[str, pl.DataFrame | None], kind: str, switch: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``tables[kind]`` and its id mapping; an error naming ``switch`` without them."""
    mapping = "user_mapping" if kind == "users" else "movie_mapping"
    found = tables.get(kind), tables.get(mapping)
    if found[0] is None or found[1] is None:
        raise ValueError(
            f"training.bayesian_fm.features.{switch} needs the {kind} table and "
            f"{mapping}, and the fit was given none: run it through the training "
            f"pipeline (which reads them), or set {switch} to false."
        )
    return found
