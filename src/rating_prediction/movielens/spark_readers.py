"""A release's ratings, or a ratings file of the user's own, as a Spark DataFrame:
the files :mod:`.readers` reads, parsed by Spark's executors (``kedro run --env
spark``), so no machine ever holds all the ratings.

Every value is parsed leniently (``try_cast``): a value that does not parse becomes null
and flags its row (``UNREADABLE``), so one pass over the file counts every problem
(:func:`spark_profile`) and the checks name the file and show a few rows, as on one
machine. Formats: ``ratings.csv`` (ml-20m and later, the synthetic sample), the
``::``-separated ``ratings.dat`` (ml-1m, ml-10m), ml-100k's tab-separated ``u.data``,
and a file of your own (``.csv``, ``.tsv`` or ``.parquet``).
"""

from __future__ import annotations

import logging
import operator
import zipfile
from dataclasses import replace
from functools import reduce
from typing import Any

import polars as pl
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from rating_prediction.data.schema import MAX_ID, RATINGS_SCHEMA, RatingScale
from rating_prediction.runtime.atomic import atomic_destination

from .own_file import ID_COLUMNS, TEXT_IDS, OwnFile
from .parsers.common import file_label, release_file
from .releases import MovieLensError, ReleaseSource, locate_release

logger = logging.getLogger(__name__)

# A row's place in its file (increasing in file order): the latest of a repeated
# (user, movie) pair with equal timestamps is the one further down, as on one machine.
ROW = "_row"
# Whether a value of the row is present but does not parse.
UNREADABLE = "_unreadable"
# The headerless text formats: each line split on this (a Java regex) into at most four
# fields, extra ones left in the last, so that a wrong line shows as a bad value.
LINE_SEPARATORS = {"ratings.dat": "::", "u.data": "\t"}
SPARK_TYPES = {"rating": "float", "timestamp": "bigint"}
# strftime directives (ingestion.file.timestamp_format) and the Java patterns Spark
# parses the same text with.
JAVA_PATTERNS = {
    "Y": "yyyy",
    "y": "yy",
    "m": "MM",
    "b": "MMM",
    "B": "MMMM",
    "d": "dd",
    "j": "DDD",
    "H": "HH",
    "I": "hh",
    "p": "a",
    "M": "mm",
    "S": "ss",
    "z": "Z",
    "T": "HH:mm:ss",
    "F": "yyyy-MM-dd",
}
OWN_FILE_SUFFIXES = (".csv", ".tsv", ".parquet")


def spark_readable(source: ReleaseSource) -> ReleaseSource:
    """``source`` as files Spark can read: a release found as a zip is extracted once
    into ``<raw_dir>/<release>/`` (whole, or not at all), where later runs find it.

    Raises:
        MovieLensError: If a file of the user's own is a zip (Spark reads plain files),
            or the folder to extract into exists without the release's ratings.
    """
    if source.own is not None:
        suffix = source.own.ratings_path.suffix.lower()
        if suffix not in OWN_FILE_SUFFIXES:
            raise MovieLensError(
                f"{source.own.label} is a {suffix} file; Spark reads "
                f"{', '.join(OWN_FILE_SUFFIXES)} files only: extract it and point "
                "ingestion.file.path at the file inside."
            )
        return source
    if source.path.is_dir():
        return source
    target = source.path.with_suffix("")
    if target.exists():
        raise MovieLensError(
            f"{target} exists but holds no {source.layout.ratings_format}, so Spark "
            f"cannot read {source.release} from it (nor from {source.path}, a zip): "
            "remove the folder, and the next run extracts the archive there."
        )
    logger.info("Extracting %s for Spark, which reads files, not zips", source.path)
    with atomic_destination(target) as partial, zipfile.ZipFile(source.path) as zipped:
        zipped.extractall(partial)
    located = locate_release(source.path.parent, source.release)
    if located is None or not located.path.is_dir():
        raise MovieLensError(
            f"{source.path} holds no {source.layout.ratings_format} for Spark to read."
        )
    return replace(source, path=located.path)


def read_spark_ratings(spark: SparkSession, source: ReleaseSource) -> DataFrame:
    """The ratings of ``source`` (from :func:`spark_readable`) as a lazy Spark
    DataFrame: ``userId``, ``movieId`` (bigint, or string for text ids of a file of
    your own), ``rating`` (float), ``timestamp`` (bigint Unix seconds), null where a
    value is missing or does not parse, with ``UNREADABLE`` and ``ROW``.

    Raises:
        MovieLensError: If the file lacks a column the contract (or
            ``ingestion.file.columns``) names.
    """
    if source.own is not None:
        raw = _own_file(spark, source.own)
        targets = _own_targets(source.own)
    else:
        raw = _release_file(spark, source)
        targets = {"userId": "bigint", "movieId": "bigint", **SPARK_TYPES}
    raw = raw.withColumn(ROW, F.monotonically_increasing_id())
    pattern = _timestamp_pattern(source.own)
    parsed = {
        column: _parsed(raw, column, target, pattern)
        for column, target in targets.items()
    }
    unreadable = [_present(raw, column) & parsed[column].isNull() for column in parsed]
    return raw.select(
        *(value.alias(column) for column, value in parsed.items()),
        _any(unreadable).alias(UNREADABLE),
        ROW,
    )


def _release_file(spark: SparkSession, source: ReleaseSource) -> DataFrame:
    """A release's ratings file as text columns under the contract's names."""
    file_format = source.layout.ratings_format
    path = str(release_file(source, file_format))
    label = file_label(source, file_format)
    if file_format == "ratings.csv":
        table = spark.read.option("header", True).csv(path)
        _require(table.columns, list(RATINGS_SCHEMA), label, "the contract")
        return table.select(list(RATINGS_SCHEMA))
    fields = F.split(F.col("value"), LINE_SEPARATORS[file_format], len(RATINGS_SCHEMA))
    lines = spark.read.text(path).filter(F.trim(F.col("value")) != "")
    return lines.select(
        [
            F.get(fields, index).alias(column)
            for index, column in enumerate(RATINGS_SCHEMA)
        ]
    )


def _own_file(spark: SparkSession, own: OwnFile) -> DataFrame:
    """A file of the user's own, its named columns under the contract's names (as
    the file has them: text from a .csv/.tsv, typed from a .parquet)."""
    columns = own.settings.columns
    named = {columns.user: "userId", columns.item: "movieId", columns.rating: "rating"}
    if columns.timestamp is not None:
        named[columns.timestamp] = "timestamp"
    path = str(own.ratings_path.resolve())
    if own.ratings_path.suffix.lower() == ".parquet":
        table = spark.read.parquet(path)
    else:
        table = (
            spark.read.option("header", True)
            .option("sep", own.settings.separator)
            .csv(path)
        )
    _require(table.columns, list(named), own.label, "ingestion.file.columns")
    return table.select([F.col(f"`{name}`").alias(to) for name, to in named.items()])


def _own_targets(own: OwnFile) -> dict[str, str]:
    ids = {
        column: "string" if dtype == TEXT_IDS else "bigint"
        for column, dtype in own.id_dtypes.items()
    }
    # Without a timestamp column, timestamps are null (the temporal split refuses).
    return {**ids, **SPARK_TYPES}


def _require(found: list[str], wanted: list[str], label: str, key: str) -> None:
    missing = [column for column in wanted if column not in found]
    if missing:
        raise MovieLensError(
            f"{label} lacks the column(s) {missing} that {key} names; its columns are "
            f"{found}. Fix {key} (or the separator, if the file's columns show as one)."
        )


def _parsed(raw: DataFrame, column: str, target: str, pattern: str | None) -> Column:
    """``column`` of ``raw`` as ``target`` (null where it does not parse): text is
    stripped first, typed columns (parquet) are cast; timestamps come as Unix seconds,
    text ones read with ``pattern`` where there is one."""
    if column not in raw.columns:
        return F.lit(None).cast(target)
    value, found = F.col(column), raw.schema[column].dataType
    if isinstance(found, T.StringType):
        text = F.trim(value)
        if column == "timestamp" and pattern is not None:
            return F.unix_seconds(F.try_to_timestamp(text, F.lit(pattern)))
        return text if target == "string" else text.try_cast(target)
    if isinstance(found, T.TimestampType | T.TimestampNTZType | T.DateType):
        return F.unix_seconds(value.cast("timestamp")).cast(target)
    return value.cast(target) if target != "string" else value.cast("string")


def _present(raw: DataFrame, column: str) -> Column:
    """Whether the file holds a value for ``column`` (an empty text is none)."""
    if column not in raw.columns:
        return F.lit(False)
    value = F.col(column)
    if isinstance(raw.schema[column].dataType, T.StringType):
        return value.isNotNull() & (F.trim(value) != "")
    return value.isNotNull()


def _any(conditions: list[Column]) -> Column:
    """Whether any of ``conditions`` holds (false, never null, where none does)."""
    return F.coalesce(reduce(operator.or_, conditions, F.lit(False)), F.lit(False))


def _timestamp_pattern(own: OwnFile | None) -> str | None:
    if own is None or own.settings.timestamp_format is None:
        return None
    return java_datetime_pattern(own.settings.timestamp_format)


def java_datetime_pattern(time_format: str) -> str:
    """The Java pattern Spark parses ``ingestion.file.timestamp_format`` (strftime)
    with: each directive translated, the text between quoted.

    Raises:
        MovieLensError: For a directive without a Java equivalent, listing those that
            have one.
    """
    parts, literal = [], ""
    characters = iter(time_format)
    for character in characters:
        if character != "%":
            literal += character
            continue
        directive = next(characters, "")
        if directive == "%":
            literal += "%"
            continue
        if directive not in JAVA_PATTERNS:
            valid = " ".join(f"%{code}" for code in JAVA_PATTERNS)
            raise MovieLensError(
                f"ingestion.file.timestamp_format {time_format!r}: %{directive} has no "
                f"equivalent in Spark's date patterns; on Spark use {valid} (and "
                "literal text)."
            )
        parts += [_quoted(literal), JAVA_PATTERNS[directive]]
        literal = ""
    return "".join([*parts, _quoted(literal)])


def _quoted(text: str) -> str:
    """Literal text of a Java date pattern: letters and quotes go inside quotes."""
    if not any(character.isalpha() or character == "'" for character in text):
        return text
    return "'" + text.replace("'", "''") + "'"


def problem_flags(
    ratings: DataFrame, scale: RatingScale | None, timestamps: bool
) -> dict[str, Column]:
    """Per problem the ingestion checks (as on one machine), whether a row has it:
    ``missing`` values, integer ids outside 0..MAX_ID (``ids_out_of_range``), ratings
    outside ``scale`` (or not finite when there is none: ``out_of_range``)."""
    columns = [c for c in RATINGS_SCHEMA if timestamps or c != "timestamp"]
    integer_ids = [
        column
        for column in ID_COLUMNS.values()
        if not isinstance(ratings.schema[column].dataType, T.StringType)
    ]
    rating = F.col("rating")
    outside = (
        F.isnan(rating) | (F.abs(rating) == float("inf"))
        if scale is None
        else ~rating.between(scale.min, scale.max)
    )
    return {
        "missing": _any([F.col(column).isNull() for column in columns]),
        "ids_out_of_range": _any(
            [~F.col(column).between(0, MAX_ID) for column in integer_ids]
        ),
        "out_of_range": F.coalesce(outside, F.lit(False)),
    }


def spark_profile(ratings: DataFrame, flags: dict[str, Column]) -> dict[str, Any]:
    """One pass over the ratings, on the executors: the rows, the rows with an
    unreadable value and with each of ``flags``, the lowest and highest rating."""
    counted = {UNREADABLE: F.col(UNREADABLE), **flags}
    row = ratings.agg(
        F.count(F.lit(1)).alias("rows"),
        *(F.sum(flag.cast("int")).alias(name) for name, flag in counted.items()),
        F.min("rating").alias("lowest"),
        F.max("rating").alias("highest"),
    ).first()
    profile = row.asDict() if row is not None else {}
    return {
        name: value if name in ("lowest", "highest") else int(value or 0)
        for name, value in profile.items()
    }


def first_rows(ratings: DataFrame, flag: Column, count: int = 5) -> pl.DataFrame:
    """Up to ``count`` rows where ``flag`` holds, for an error message (the only rows
    that come to the driver)."""
    rows = ratings.filter(flag).drop(ROW, UNREADABLE).limit(count).collect()
    return pl.DataFrame([row.asDict() for row in rows], infer_schema_length=None)


def unreadable_rows(ratings: DataFrame, count: int = 5) -> pl.DataFrame:
    """Up to ``count`` rows with a value that does not parse (null here)."""
    return first_rows(ratings, F.col(UNREADABLE), count)


def latest_ratings(ratings: DataFrame) -> DataFrame:
    """The checked ratings with one rating per (userId, movieId): the latest (the
    last in the file among equal timestamps), as on one machine; integer ids as int,
    as a release's."""
    latest = F.max_by(F.struct("rating", "timestamp"), F.struct("timestamp", ROW))
    kept = ratings.groupBy("userId", "movieId").agg(latest.alias("latest"))
    return kept.select(
        *(_contract_id(kept, column) for column in ID_COLUMNS.values()),
        F.col("latest.rating").alias("rating"),
        F.col("latest.timestamp").cast("bigint").alias("timestamp"),
    )


def _contract_id(ratings: DataFrame, column: str) -> Column:
    if isinstance(ratings.schema[column].dataType, T.StringType):
        return F.col(column)
    return F.col(column).cast("int").alias(column)


def id_dtype_names(ratings: DataFrame) -> dict[str, str]:
    """Each id column's type as the one-machine profile names it (``Int32`` or
    ``String``): the movies' check reads it."""
    return {
        column: "String"
        if isinstance(ratings.schema[column].dataType, T.StringType)
        else "Int32"
        for column in ID_COLUMNS.values()
    }
