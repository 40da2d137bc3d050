"""Nodes of the ``spark_preparation`` pipeline: the data_ingestion and data_processing
pipelines' work on Spark DataFrames, with the same parameters, checks and messages.
Nothing here collects the ratings: only counts, a few rows of an error message, the
movies (read on the driver, as they are small) and the mappings' sizes.
"""

from __future__ import annotations

import logging
from typing import Any

import polars as pl
from pyspark.sql import DataFrame

from rating_prediction.data.schema import MAX_ID
from rating_prediction.data.spark_processing import (
    apply_mappings,
    id_mapping,
    label_counts,
    labelled,
    split_parts,
    top_movies,
)
from rating_prediction.data.splitting import TEST, TRAIN, VAL
from rating_prediction.movielens import (
    MovieLensError,
    ReleaseSource,
    explain_unreadable_ratings,
)
from rating_prediction.movielens.parsers.common import file_label
from rating_prediction.movielens.spark_readers import (
    UNREADABLE,
    first_rows,
    id_dtype_names,
    latest_ratings,
    problem_flags,
    read_spark_ratings,
    spark_profile,
    spark_readable,
    unreadable_rows,
)
from rating_prediction.parameters import ProcessingParameters, parse
from rating_prediction.pipelines.data_ingestion.nodes import (
    # The one-machine pipeline's rules, reused so both engines check alike: the scale
    # ratings are held to, and how a message names the file and the scale.
    _declared_scale,
    _inferred_scale,
    _label,
    _scale_text,
    clean_movies,
    prepare_raw_release,
)
from rating_prediction.runtime.spark import active_session

logger = logging.getLogger(__name__)


def prepare_spark_release(ingestion: dict[str, Any]) -> ReleaseSource:
    """The configured release (or file of your own) ready, as files Spark reads: a
    release's zip is extracted once (see
    :func:`~rating_prediction.pipelines.data_ingestion.nodes.prepare_raw_release`).

    Raises:
        ParameterError: If the ``ingestion`` block is invalid.
        MovieLensError: If the release cannot be made available, or a file of your
            own is a zip.
    """
    return spark_readable(prepare_raw_release(ingestion))


def read_release_ratings(raw_release: ReleaseSource) -> DataFrame:
    """The release's ratings as a lazy Spark DataFrame, parsed leniently (nothing is
    read yet)."""
    return read_spark_ratings(active_session(), raw_release)


def check_spark_release(
    raw_ratings: DataFrame, raw_release: ReleaseSource
) -> dict[str, Any]:
    """Every rating checked in one pass on the executors, as data_ingestion checks
    them (values that do not parse, missing values, ids outside 0..MAX_ID, ratings
    outside the scale); what the pass found (``ratings_profile``), which every node
    that writes waits for, so that bad ratings leave nothing written.

    Raises:
        MovieLensError: Naming the file, counting the rows at fault and showing up to
            five.
    """
    declared = _declared_scale(raw_release)
    timestamps = raw_release.own is None or raw_release.own.has_timestamps
    flags = problem_flags(raw_ratings, declared, timestamps)
    profile = spark_profile(raw_ratings, flags)
    if profile[UNREADABLE]:
        _explain_unreadable(raw_ratings, raw_release, profile[UNREADABLE])
    if not profile["rows"]:
        raise MovieLensError(f"{_file_name(raw_release)} holds no ratings.")
    problems = {
        "missing": "have missing values",
        "ids_out_of_range": f"have an integer id outside 0..{MAX_ID} (set "
        "ingestion.file.ids: string to read every id as text)",
        "out_of_range": f"have a rating outside {_scale_text(declared, raw_release)}",
    }
    for name, problem in problems.items():
        if profile[name]:
            shown = first_rows(raw_ratings, flags[name])
            raise MovieLensError(
                f"{_label(raw_release)}{profile[name]} row(s) {problem}; first "
                f"{shown.height}:\n{shown}"
            )
    scale = declared or _inferred_scale(profile, raw_release)
    logger.info("%d ratings read and checked on Spark", profile["rows"])
    return {
        "rows": profile["rows"],
        "rating_scale": scale.to_dict(),
        "own_ids": raw_release.own is not None,
        "id_dtypes": id_dtype_names(raw_ratings),
    }


def _explain_unreadable(ratings: DataFrame, source: ReleaseSource, count: int) -> None:
    """Raises the one-machine path's explanation of the values that do not parse
    (the file is streamed on the driver, only when it holds such values); Spark's own
    rows where that finds none."""
    explain_unreadable_ratings(source)
    shown = unreadable_rows(ratings)
    raise MovieLensError(
        f"{_file_name(source)}: {count} row(s) hold values that cannot be read; fix "
        f"or remove them. First {shown.height} (unreadable values shown as null):\n"
        f"{shown}"
    )


def _file_name(source: ReleaseSource) -> str:
    if source.own is not None:
        return source.own.label
    return file_label(source, source.layout.ratings_format)


def clean_spark_ratings(
    raw_ratings: DataFrame, ratings_profile: dict[str, Any]
) -> tuple[DataFrame, dict[str, Any]]:
    """The checked ratings, the latest of each (userId, movieId) kept (one shuffle),
    and the data set's rating scale (``rating_scale``)."""
    return latest_ratings(raw_ratings), ratings_profile["rating_scale"]


def spark_movies(
    raw_movies: pl.DataFrame, ratings_profile: dict[str, Any]
) -> DataFrame:
    """The movies (read on the driver: one row per movie, small), cleaned as on one
    machine (:func:`~rating_prediction.pipelines.data_ingestion.nodes.clean_movies`),
    as a Spark DataFrame.

    Raises:
        MovieLensError: If the movies' ids are of another type than the ratings'.
    """
    movies = clean_movies(raw_movies, ratings_profile)
    return active_session().createDataFrame(movies.to_arrow())


def filter_top_movies(ratings: DataFrame, processing: dict[str, Any]) -> DataFrame:
    """The ratings of the ``processing.top_n_movies`` most-rated movies (all if
    ``null``), equal counts ranked by ascending ``movieId``.

    Raises:
        ValueError: If there are no ratings.
    """
    top_n_movies = parse(ProcessingParameters, processing, "processing").top_n_movies
    if ratings.limit(1).count() == 0:
        raise ValueError(
            "The input 'ratings' is empty: there is nothing to process. "
            "Check the spark_preparation output and the 'ingestion.dataset' parameter."
        )
    return top_movies(ratings, top_n_movies)


def create_user_mapping(ratings: DataFrame) -> DataFrame:
    """Each ``userId`` and its 0-based ``userIdMapped`` in ascending id order."""
    return id_mapping(ratings, "userId")


def create_movie_mapping(ratings: DataFrame) -> DataFrame:
    """Each ``movieId`` and its 0-based ``movieIdMapped`` in ascending id order."""
    return id_mapping(ratings, "movieId")


def apply_id_mappings(
    ratings: DataFrame, user_mapping: DataFrame, movie_mapping: DataFrame
) -> DataFrame:
    """The ratings with both mapped ids (a join with each written mapping)."""
    logger.info(
        "Mapped %d users and %d movies", user_mapping.count(), movie_mapping.count()
    )
    return apply_mappings(ratings, user_mapping, movie_mapping)


def split_ratings(
    ratings: DataFrame, processing: dict[str, Any]
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Train, val and test by ``processing.split`` (``hash`` or ``temporal``): the
    same (userId, movieId) membership as one machine's split with the same seed.

    Raises:
        ValueError: If the strategy is one Spark does not run, or the training split
            is empty.
    """
    split = parse(ProcessingParameters, processing, "processing").split
    parts = labelled(ratings, split.strategy, list(split.fractions), split.seed)
    counts = label_counts(parts)
    if not counts[TRAIN]:
        raise ValueError(
            f"The training split is empty ({sum(counts.values())} ratings, fractions "
            f"{list(split.fractions)}); raise the first of "
            "'processing.split.fractions'."
        )
    logger.info(
        "Split %d ratings (%s) on Spark: train %d, val %d, test %d.",
        sum(counts.values()),
        split.strategy,
        counts[TRAIN],
        counts[VAL],
        counts[TEST],
    )
    return split_parts(parts)
