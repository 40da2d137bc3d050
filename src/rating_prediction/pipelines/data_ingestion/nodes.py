"""Nodes of the data ingestion pipeline."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from rating_prediction.data.schema import (
    MAX_ID,
    MOVIELENS_SCALE,
    MOVIES_SCHEMA,
    NO_GENRES,
    RATING_MAX,
    RATINGS_SCHEMA,
    USERS_SCHEMA,
    RatingScale,
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
from rating_prediction.movielens.own_file import locate_own_file
from rating_prediction.movielens.releases import check_predefined_folds
from rating_prediction.movielens.synthetic import ensure_synthetic_release
from rating_prediction.parameters import (
    OWN_FILE,
    CrossValidationParameters,
    IngestionParameters,
    ProcessingParameters,
    parse,
)
from rating_prediction.runtime.progress import waiting

logger = logging.getLogger(__name__)

ID_COLUMNS = ("userId", "movieId")


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
    if release == OWN_FILE and parameters.file is not None:
        own = locate_own_file(parameters.file)
        logger.info("Reading your ratings file %s", own.ratings_path)
        return ReleaseSource(OWN_FILE, own.ratings_path, own)
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
    if release == SYNTHETIC_RELEASE:
        step = parameters.synthetic.rating_step
        return replace(source, rating_scale=RatingScale(step, RATING_MAX))
    return source


def check_ratings(
    raw_ratings: pl.LazyFrame | pl.DataFrame, source: ReleaseSource | None = None
) -> dict[str, Any]:
    """Check every rating in one streaming pass, before anything is written; return
    what the pass found (``ratings_profile``): counts, whether the rows come sorted,
    the id types, the rating scale and the rated users' ids (``user_ids``).

    ``source`` is the release (or file of the user's own) the ratings were scanned
    from: a value that does not parse is then reported with the file's name, line or
    rows, and a file of the user's own brings its declared scale (or none, and the
    scale is inferred from the ratings).

    Raises:
        MovieLensError: If columns are missing, a value does not parse, or rows hold
            missing values or ratings outside the scale (the message counts them and
            shows up to five).
    """
    own_ids = source is not None and source.own is not None
    ratings = _typed_ratings(raw_ratings, own_ids)
    declared = _declared_scale(source)
    timestamps = source is None or source.own is None or source.own.has_timestamps
    profile = _profile(ratings, source, declared, timestamps)
    problems = {
        "missing": (_has_null(timestamps), "have missing values"),
        "ids_out_of_range": (
            _id_out_of_range(ratings.collect_schema()),
            f"have an integer id outside 0..{MAX_ID} (set ingestion.file.ids: "
            "string to read every id as text)",
        ),
        "out_of_range": (
            _outside(declared),
            f"have a rating outside {_scale_text(declared, source)}",
        ),
    }
    for count, (is_bad, problem) in problems.items():
        _reject_rows(ratings, is_bad, profile[count], problem, source)
    scale = declared or _inferred_scale(profile, source)
    schema = ratings.collect_schema()
    return {
        **{
            name: profile[name]
            for name in ("rows", "users", "movies", "unordered", "user_ids")
        },
        "rating_scale": scale.to_dict(),
        "own_ids": own_ids,
        "id_dtypes": {column: str(schema[column]) for column in ID_COLUMNS},
    }


def check_release(
    raw_ratings: pl.LazyFrame | pl.DataFrame, raw_release: ReleaseSource
) -> tuple[dict[str, Any], ReleaseSource]:
    """:func:`check_ratings` of ``raw_release``'s ratings, and the release once they
    passed (``checked_release``): the nodes that read more of it and write a file run
    only then, so bad ratings leave nothing written."""
    return check_ratings(raw_ratings, raw_release), raw_release


def clean_ratings(
    raw_ratings: pl.LazyFrame | pl.DataFrame,
    ratings_profile: dict[str, Any] | None = None,
) -> tuple[pl.LazyFrame, dict[str, Any]]:
    """The checked ratings with the latest rating per (user, movie), sorted by user and
    movie; with them, the data set's rating scale (``rating_scale``, a JSON dict).

    ``ratings_profile`` is :func:`check_ratings`'s (run here when not given). Input
    already sorted by (userId, movieId) without a repeated pair, as GroupLens releases
    and the synthetic sample are, comes back as a lazy plan that the ``ratings``
    dataset streams to parquet without ever holding it; other input is sorted and
    deduplicated in memory.

    Raises:
        MovieLensError: As :func:`check_ratings`.
    """
    profile = ratings_profile or check_ratings(raw_ratings)
    ratings = _typed_ratings(raw_ratings, profile["own_ids"])
    if profile["unordered"] == 0:
        _log_counts(profile["rows"], profile["users"], profile["movies"])
        return ratings, profile["rating_scale"]
    deduplicated = _sorted_latest(ratings.collect())
    dropped = profile["rows"] - deduplicated.height
    if dropped:
        logger.warning(
            "Dropped %d duplicated (userId, movieId) rating(s), keeping the latest",
            dropped,
        )
    _log_counts(deduplicated.height, profile["users"], profile["movies"])
    return deduplicated.lazy(), profile["rating_scale"]


def _typed_ratings(
    raw_ratings: pl.LazyFrame | pl.DataFrame, own_ids: bool
) -> pl.LazyFrame:
    """The contract's four columns: ratings Float32, timestamps Int64, ids Int32 (a
    release's) or, with ``own_ids``, as a file of the user's own has them (Int64 or
    String)."""
    schema = raw_ratings.lazy().collect_schema()
    require_columns(schema.names(), list(RATINGS_SCHEMA), "ratings")
    for column in ID_COLUMNS:
        if not (schema[column].is_integer() or schema[column] == pl.String):
            raise MovieLensError(
                f"Ratings: {column} must hold integer or text ids, not {schema[column]}."
            )
    return raw_ratings.lazy().select(
        pl.col(column)
        if own_ids and column in ID_COLUMNS
        else pl.col(column).cast(dtype)
        for column, dtype in RATINGS_SCHEMA.items()
    )


def _declared_scale(source: ReleaseSource | None) -> RatingScale | None:
    """The scale ratings are checked against: MovieLens's for a release, the declared
    one (or none: inferred) for a file of the user's own."""
    if source is None:
        return MOVIELENS_SCALE
    if source.own is None:
        return source.rating_scale
    declared = source.own.settings.rating_scale
    return RatingScale(*declared) if declared is not None else None


def _scale_text(scale: RatingScale | None, source: ReleaseSource | None) -> str:
    if scale is None:
        return "the finite numbers"
    where = " (ingestion.file.rating_scale)" if source and source.own else ""
    return f"{scale.min}..{scale.max}{where}"


def _outside(scale: RatingScale | None) -> pl.Expr:
    if scale is None:
        return ~pl.col("rating").is_finite()
    return ~pl.col("rating").is_between(scale.min, scale.max)


def _inferred_scale(
    profile: dict[str, Any], source: ReleaseSource | None
) -> RatingScale:
    low, high = profile["lowest"], profile["highest"]
    if low is None or not low < high:
        raise MovieLensError(
            f"{_label(source)}every rating is {low}: a rating scale needs two values. "
            "Declare it in ingestion.file.rating_scale, e.g. [1, 5]."
        )
    logger.info(
        "Rating scale inferred from the data: %s..%s (ingestion.file.rating_scale is "
        "null; declare it to fix the scale).",
        low,
        high,
    )
    return RatingScale(float(low), float(high), inferred=True)


def _label(source: ReleaseSource | None) -> str:
    if source is not None and source.own is not None:
        return f"{source.own.label}: "
    return "Ratings: "


def _profile(
    ratings: pl.LazyFrame,
    source: ReleaseSource | None,
    scale: RatingScale | None,
    timestamps: bool,
) -> dict[str, Any]:
    """One streaming pass: rows, rows with a missing value, ratings outside the scale,
    the lowest and highest rating, distinct users (and their ids) and movies, and rows
    whose (userId, movieId) does not come strictly after the previous row's (out of
    order, or a repeated pair)."""
    try:
        with waiting("checking every rating (one streaming pass)", logger=logger):
            profile = ratings.select(
                pl.len().alias("rows"),
                _has_null(timestamps).sum().alias("missing"),
                _outside(scale).sum().alias("out_of_range"),
                _id_out_of_range(ratings.collect_schema())
                .sum()
                .alias("ids_out_of_range"),
                pl.col("rating").min().alias("lowest"),
                pl.col("rating").max().alias("highest"),
                pl.col("userId").n_unique().alias("users"),
                # The users table of a release without demographics lists them: taken
                # here, in the pass that reads every rating anyway.
                pl.col("userId").unique().implode().alias("user_ids"),
                pl.col("movieId").n_unique().alias("movies"),
                _out_of_order(ratings.collect_schema()).sum().alias("unordered"),
            ).collect(engine="streaming")
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError) as error:
        if source is not None:
            explain_unreadable_ratings(source)
        raise MovieLensError(
            f"{_label(source)}the ratings file does not parse ({error}). Fix or "
            "remove the row at fault."
        ) from error
    counts = profile.drop("user_ids").row(0, named=True)
    return {
        name: value if name in ("lowest", "highest") else int(value or 0)
        for name, value in counts.items()
    } | {"user_ids": profile["user_ids"].explode().drop_nulls()}


def _out_of_order(schema: pl.Schema) -> pl.Expr:
    """Per row, whether its (userId, movieId) does not come strictly after the
    previous row's."""
    user, movie = pl.col("userId"), pl.col("movieId")
    if schema["userId"] == pl.Int32 and schema["movieId"] == pl.Int32:
        # A release's ids: one packed Int64 key compares faster than two columns.
        pair = user.cast(pl.Int64) * 2**32 + movie
        return pair <= pair.shift(1)
    previous_user = user.shift(1)
    return (user < previous_user) | (
        (user == previous_user) & (movie <= movie.shift(1))
    )


def _id_out_of_range(schema: pl.Schema) -> pl.Expr:
    """Per row, whether an integer id lies outside 0..MAX_ID (the range every request
    and parameter id is checked against); text ids are never out of range."""
    outside = [
        ~pl.col(column).is_between(0, MAX_ID)
        for column in ID_COLUMNS
        if schema[column].is_integer()
    ]
    return pl.any_horizontal(*outside, False).fill_null(False)


def _has_null(timestamps: bool = True) -> pl.Expr:
    columns = [c for c in RATINGS_SCHEMA if timestamps or c != "timestamp"]
    return pl.any_horizontal(pl.col(column).is_null() for column in columns)


def _sorted_latest(ratings: pl.DataFrame) -> pl.DataFrame:
    """``ratings`` sorted by (userId, movieId, timestamp), the latest of each pair kept
    (without timestamps, the last in file order)."""
    ratings = ratings.sort("userId", "movieId", "timestamp", maintain_order=True)
    # After this sort, a row followed by the same pair has a later rating of that pair.
    superseded = (pl.col("userId") == pl.col("userId").shift(-1)) & (
        pl.col("movieId") == pl.col("movieId").shift(-1)
    )
    return ratings.filter(~superseded.fill_null(False))


def _log_counts(n_ratings: int, n_users: int, n_movies: int) -> None:
    logger.info("%d ratings by %d users of %d movies", n_ratings, n_users, n_movies)


def clean_movies(
    raw_movies: pl.DataFrame, ratings_profile: dict[str, Any] | None = None
) -> pl.DataFrame:
    """Keep one row per movie id, sorted, with null genres where a movie has none.

    Movie ids keep the ratings' id type (``ratings_profile``'s, checked: the ratings
    passed :func:`check_ratings` before this runs).

    Raises:
        MovieLensError: If the movies' ids are of another type than the ratings'.
    """
    require_columns(raw_movies.columns, list(MOVIES_SCHEMA), "movies")
    id_dtype = raw_movies.schema["movieId"]
    wanted = (ratings_profile or {}).get("id_dtypes", {}).get("movieId")
    if wanted is not None and (id_dtype == pl.String) != (wanted == "String"):
        raise MovieLensError(
            f"The items' ids are {id_dtype} but the ratings' movieIds are {wanted}: "
            "both files must use the same ids."
        )
    movie_id = pl.col("movieId")
    if id_dtype.is_integer() and wanted in (None, "Int32"):
        movie_id = movie_id.cast(MOVIES_SCHEMA["movieId"])
    return (
        raw_movies.select(
            movie_id,
            pl.col("title").cast(MOVIES_SCHEMA["title"]),
            pl.col("genres").cast(MOVIES_SCHEMA["genres"]),
        )
        .with_columns(
            pl.when(~pl.col("genres").is_in(["", NO_GENRES])).then(pl.col("genres"))
        )
        .unique("movieId", keep="first", maintain_order=True)
        .sort("movieId")
    )


def clean_users(
    raw_users: pl.DataFrame, ratings_profile: dict[str, Any]
) -> pl.DataFrame:
    """The users table: the release's demographics (``raw_users``, one row per line
    of its users file), or, for a release without one, every rated user
    (``ratings_profile``'s ``user_ids``) with null demographics; sorted by
    ``userId``, which takes the ratings' id type.

    Rated users missing from a users file get no row here (a warning counts them):
    a join on ``userId`` gives them null demographics, as a release without the file.
    """
    rated = ratings_profile["user_ids"].alias("userId").to_frame()
    if raw_users.is_empty():
        logger.info("No users file: the users table holds no demographics")
        users = rated.with_columns(
            pl.lit(None, dtype).alias(column)
            for column, dtype in USERS_SCHEMA.items()
            if column != "userId"
        )
    else:
        users = raw_users.select(USERS_SCHEMA.names()).cast(
            {"userId": rated.schema["userId"]}
        )
        missing = rated.join(users, on="userId", how="anti").height
        if missing:
            logger.warning(
                "%d rated user(s) are not in the release's users file: their "
                "demographics are null",
                missing,
            )
    return users.sort("userId")


def _reject_rows(
    ratings: pl.LazyFrame,
    is_bad: pl.Expr,
    count: int,
    problem: str,
    source: ReleaseSource | None = None,
) -> None:
    """Raise if ``count`` rows match ``is_bad``, showing up to five with their row
    numbers (only then is the input read again)."""
    if count:
        bad_rows = (
            ratings.with_row_index("row", offset=1).filter(is_bad).head(5).collect()
        )
        raise MovieLensError(
            f"{_label(source)}{count} row(s) {problem}; first {bad_rows.height}:\n"
            f"{bad_rows}"
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
