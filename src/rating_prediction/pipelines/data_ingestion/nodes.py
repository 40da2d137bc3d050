"""Nodes of the data ingestion pipeline."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import polars as pl

from rating_prediction.data.schema import (
    MOVIELENS_SCALE,
    MOVIES_SCHEMA,
    NO_GENRES,
    RATING_MAX,
    RATING_MIN,
    RATINGS_SCHEMA,
)
from rating_prediction.movielens import (
    SYNTHETIC_RELEASE,
    MovieLensError,
    ReleaseSource,
    download_release,
    explain_unreadable_ratings,
    locate_release,
    read_fold_pairs,
    release_layout,
    require_columns,
)
from rating_prediction.movielens.releases import check_predefined_folds
from rating_prediction.movielens.synthetic import ensure_synthetic_release
from rating_prediction.parameters import (
    CrossValidationParameters,
    IngestionParameters,
    ProcessingParameters,
    parse,
)

logger = logging.getLogger(__name__)


def prepare_raw_release(ingestion: dict[str, Any]) -> ReleaseSource:
    """Make the configured release available in ``raw_dir`` and say where it is.

    The synthetic sample is (re)generated if its settings changed; a GroupLens release
    is used as found (zip or extracted folder) or else downloaded once.

    Raises:
        ParameterError: If the ``ingestion`` block has an unknown, missing or invalid
            key (the message names it), before anything is read or written.
        MovieLensError: If the release is unknown or cannot be made available.
    """
    parameters = parse(IngestionParameters, ingestion, "ingestion")
    release = parameters.dataset
    raw_dir = Path(parameters.raw_dir)
    release_layout(release)  # fail on an unknown name before touching the disk
    if release == SYNTHETIC_RELEASE:
        ensure_synthetic_release(raw_dir / SYNTHETIC_RELEASE, parameters.synthetic)
    elif locate_release(raw_dir, release) is None:
        download_release(
            release, raw_dir, parameters.base_url, parameters.download_timeout_s
        )
    source = locate_release(raw_dir, release)
    if source is None:  # only if the files vanished while this node ran
        raise MovieLensError(f"{release} is missing from {raw_dir} after preparing it.")
    logger.info("Reading MovieLens release %s from %s", release, source.path)
    return source


def clean_ratings(
    raw_ratings: pl.LazyFrame | pl.DataFrame, source: ReleaseSource | None = None
) -> tuple[pl.LazyFrame, dict[str, Any]]:
    """Validate ratings, keep the latest rating per (user, movie), sort by user and movie;
    with them, the data set's rating scale (``rating_scale``, a JSON dict).

    ``source`` is the release the ratings were scanned from: a value that does not
    parse is then reported with the file's name, line or rows.

    One streaming pass checks the input (nulls, range, order). Input already sorted by
    (userId, movieId) without a repeated pair, as GroupLens releases and the synthetic
    sample are, comes back as a lazy plan that the ``ratings`` dataset streams to
    parquet without ever holding it; other input is sorted and deduplicated in memory.

    Raises:
        MovieLensError: If columns are missing, a value does not parse, or rows hold
            nulls or ratings outside 0.5..5 (the message counts them and shows up to
            five).
    """
    columns = raw_ratings.lazy().collect_schema().names()
    require_columns(columns, list(RATINGS_SCHEMA), "ratings")
    ratings = raw_ratings.lazy().select(
        pl.col(column).cast(dtype) for column, dtype in RATINGS_SCHEMA.items()
    )
    profile = _profile(ratings, source)
    _reject_rows(ratings, _has_null(), profile["missing"], "have missing values")
    _reject_rows(
        ratings,
        ~pl.col("rating").is_between(RATING_MIN, RATING_MAX),
        profile["out_of_range"],
        f"have a rating outside {RATING_MIN}..{RATING_MAX}",
    )
    scale = MOVIELENS_SCALE.to_dict()
    if profile["unordered"] == 0:
        _log_counts(profile["rows"], profile["users"], profile["movies"])
        return ratings, scale
    deduplicated = _sorted_latest(ratings.collect())
    dropped = profile["rows"] - deduplicated.height
    if dropped:
        logger.warning(
            "Dropped %d duplicated (userId, movieId) rating(s), keeping the latest",
            dropped,
        )
    _log_counts(deduplicated.height, profile["users"], profile["movies"])
    return deduplicated.lazy(), scale


def _profile(ratings: pl.LazyFrame, source: ReleaseSource | None) -> dict[str, int]:
    """One streaming pass: rows, rows with a null, ratings out of range, distinct users
    and movies, and rows whose (userId, movieId) does not come strictly after the
    previous row's (out of order, or a repeated pair)."""
    pair = pl.col("userId").cast(pl.Int64) * 2**32 + pl.col("movieId")
    try:
        profile = ratings.select(
            pl.len().alias("rows"),
            _has_null().sum().alias("missing"),
            (~pl.col("rating").is_between(RATING_MIN, RATING_MAX))
            .sum()
            .alias("out_of_range"),
            pl.col("userId").n_unique().alias("users"),
            pl.col("movieId").n_unique().alias("movies"),
            (pair <= pair.shift(1)).sum().alias("unordered"),
        ).collect(engine="streaming")
    except pl.exceptions.ComputeError as error:
        if source is not None:
            explain_unreadable_ratings(source)
        raise MovieLensError(
            f"Ratings: the release's ratings file does not parse ({error}). Fix or "
            "remove the row at fault."
        ) from error
    return {name: int(value or 0) for name, value in profile.row(0, named=True).items()}


def _has_null() -> pl.Expr:
    return pl.any_horizontal(pl.col(column).is_null() for column in RATINGS_SCHEMA)


def _sorted_latest(ratings: pl.DataFrame) -> pl.DataFrame:
    """``ratings`` sorted by (userId, movieId, timestamp), the latest of each pair kept."""
    ratings = ratings.sort("userId", "movieId", "timestamp")
    # After this sort, a row followed by the same pair has a later rating of that pair.
    superseded = (pl.col("userId") == pl.col("userId").shift(-1)) & (
        pl.col("movieId") == pl.col("movieId").shift(-1)
    )
    return ratings.filter(~superseded.fill_null(False))


def _log_counts(n_ratings: int, n_users: int, n_movies: int) -> None:
    logger.info("%d ratings by %d users of %d movies", n_ratings, n_users, n_movies)


def clean_movies(raw_movies: pl.DataFrame) -> pl.DataFrame:
    """Keep one row per movie id, sorted, with null genres where a movie has none."""
    require_columns(raw_movies.columns, list(MOVIES_SCHEMA), "movies")
    return (
        raw_movies.select(
            pl.col(column).cast(dtype) for column, dtype in MOVIES_SCHEMA.items()
        )
        .with_columns(
            pl.when(~pl.col("genres").is_in(["", NO_GENRES])).then(pl.col("genres"))
        )
        .unique("movieId", keep="first", maintain_order=True)
        .sort("movieId")
    )


def _reject_rows(
    ratings: pl.LazyFrame, is_bad: pl.Expr, count: int, problem: str
) -> None:
    """Raise if ``count`` rows match ``is_bad``, showing up to five with their row
    numbers (only then is the input read again)."""
    if count:
        bad_rows = (
            ratings.with_row_index("row", offset=1).filter(is_bad).head(5).collect()
        )
        raise MovieLensError(
            f"Ratings: {count} row(s) {problem}; first {bad_rows.height}:\n{bad_rows}"
        )


def read_predefined_folds(
    raw_release: ReleaseSource,
    processing: dict[str, Any],
    cross_validation: dict[str, Any],
) -> pl.DataFrame:
    """The (userId, movieId) pairs of each predefined fold that the parameters use:
    ``processing.split.fold`` when ``processing.split.strategy`` is ``predefined``,
    and ``cross_validation.folds`` (default: the release's five CV folds) when
    ``cross_validation.scheme`` is ``predefined``. Empty when neither asks.

    Raises:
        ParameterError: If a predefined split is asked of a release without one
            (naming the release and the parameter).
        MovieLensError: If a split file is missing or malformed (naming the file).
    """
    release = raw_release.release
    split = parse(ProcessingParameters, processing, "processing").split
    scheme = parse(CrossValidationParameters, cross_validation, "cross_validation")
    wanted: list[str] = []
    if split.strategy == "predefined":
        check_predefined_folds(release, [split.fold], "processing.split.strategy", True)
        wanted.append(split.fold)
    if scheme.scheme == "predefined":
        check_predefined_folds(
            release, scheme.folds or [], "cross_validation.scheme", True
        )
        wanted.extend(scheme.folds or raw_release.layout.cv_folds)
    wanted = list(dict.fromkeys(wanted))
    if wanted:
        logger.info("Reading the predefined folds %s of %s", wanted, release)
    return read_fold_pairs(raw_release, wanted)
