"""GroupLens MovieLens releases: where their files live, how to read them, how to fetch them.

Every reader returns a polars DataFrame with compact dtypes (Int32 ids, Float32 ratings,
Int64 timestamps) and never builds Python objects per rating: ML-25M's 25 million ratings
take 500 MB in memory and parse in about 10 seconds.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import polars as pl
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

GROUPLENS_BASE_URL = "https://files.grouplens.org/datasets/movielens"
SYNTHETIC_RELEASE = "synthetic"

RATINGS_SCHEMA: dict[str, pl.DataType] = {
    "userId": pl.Int32(),
    "movieId": pl.Int32(),
    "rating": pl.Float32(),
    "timestamp": pl.Int64(),
}
MOVIES_SCHEMA: dict[str, pl.DataType] = {
    "movieId": pl.Int32(),
    "title": pl.String(),
    "genres": pl.String(),
}

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

RatingsFormat = Literal["u.data", "ratings.dat", "ratings.csv"]
MoviesFormat = Literal["u.item", "movies.dat", "movies.csv"]


class MovieLensError(ValueError):
    """A MovieLens release is unknown, unavailable, corrupt or malformed."""


@dataclass(frozen=True)
class ReleaseLayout:
    """Where a release keeps its files and which format each one has.

    Attributes:
        folder: Name of the folder the release's zip extracts to.
        ratings_format: File name (and thereby format) of the ratings file.
        movies_format: File name (and thereby format) of the movie titles file.
    """

    folder: str
    ratings_format: RatingsFormat
    movies_format: MoviesFormat


# Domain knowledge about the published archives, not configuration.
RELEASES: dict[str, ReleaseLayout] = {
    "ml-100k": ReleaseLayout("ml-100k", "u.data", "u.item"),
    "ml-1m": ReleaseLayout("ml-1m", "ratings.dat", "movies.dat"),
    "ml-10m": ReleaseLayout("ml-10M100K", "ratings.dat", "movies.dat"),
    "ml-20m": ReleaseLayout("ml-20m", "ratings.csv", "movies.csv"),
    "ml-25m": ReleaseLayout("ml-25m", "ratings.csv", "movies.csv"),
    "ml-32m": ReleaseLayout("ml-32m", "ratings.csv", "movies.csv"),
    "ml-latest-small": ReleaseLayout("ml-latest-small", "ratings.csv", "movies.csv"),
    "ml-latest": ReleaseLayout("ml-latest", "ratings.csv", "movies.csv"),
}
# The synthetic sample is written exactly like ml-latest-small, so it is read the same way.
SYNTHETIC_LAYOUT = ReleaseLayout(SYNTHETIC_RELEASE, "ratings.csv", "movies.csv")


@dataclass(frozen=True)
class ReleaseSource:
    """A release present on disk: either its zip archive or its extracted folder.

    Attributes:
        release: Release name, e.g. ``ml-1m`` or ``synthetic``.
        path: The ``.zip`` archive, or the folder that directly holds the release's files.
    """

    release: str
    path: Path

    @property
    def layout(self) -> ReleaseLayout:
        """The file layout of this release."""
        return release_layout(self.release)


def release_layout(release: str) -> ReleaseLayout:
    """Return the file layout of a release (a GroupLens name or ``synthetic``).

    Raises:
        MovieLensError: If the name is not a known release.
    """
    if release == SYNTHETIC_RELEASE:
        return SYNTHETIC_LAYOUT
    if release not in RELEASES:
        valid = ", ".join([SYNTHETIC_RELEASE, *RELEASES])
        raise MovieLensError(f"Unknown MovieLens release {release!r}; valid: {valid}.")
    return RELEASES[release]


def release_url(release: str, base_url: str = GROUPLENS_BASE_URL) -> str:
    """Return the download URL of a release's zip archive."""
    release_layout(release)
    return f"{base_url.rstrip('/')}/{release}.zip"


def locate_release(raw_dir: Path, release: str) -> ReleaseSource | None:
    """Find a release in ``raw_dir`` as an extracted folder or as ``<release>.zip``.

    A folder counts only if it holds the release's ratings file, so a half-extracted
    folder falls back to the archive. Checked in order: ``<release>/``,
    ``<zip folder>/`` (e.g. ``ml-10M100K/``), ``<release>/<zip folder>/``,
    ``<release>.zip``.

    Returns:
        The located source, or ``None`` if the release is not in ``raw_dir``.
    """
    layout = release_layout(release)
    for folder in (
        raw_dir / release,
        raw_dir / layout.folder,
        raw_dir / release / layout.folder,
    ):
        if (folder / layout.ratings_format).is_file():
            return ReleaseSource(release, folder)
    archive = raw_dir / f"{release}.zip"
    if archive.is_file():
        return ReleaseSource(release, archive)
    return None


def parse_md5_listing(text: str) -> str:
    """Extract the hex digest from a GroupLens ``.md5`` file.

    Accepts both ``<hex>  <filename>`` (md5sum) and ``MD5 (<filename>) = <hex>`` (BSD).

    Raises:
        MovieLensError: If no 32-digit hex digest is found.
    """
    match = re.search(r"(?<![0-9a-fA-F])[0-9a-fA-F]{32}(?![0-9a-fA-F])", text)
    if match is None:
        raise MovieLensError(f"No MD5 checksum found in {text[:200]!r}.")
    return match.group(0).lower()


def download_release(
    release: str,
    raw_dir: Path,
    base_url: str = GROUPLENS_BASE_URL,
    timeout_s: float = 60.0,
) -> Path:
    """Download ``<base_url>/<release>.zip`` into ``raw_dir`` and verify its MD5.

    The archive is streamed to a temporary file in ``raw_dir`` and renamed to
    ``<release>.zip`` only once its checksum matches, so an interrupted or corrupt
    download never leaves a file that looks valid.

    Returns:
        The path of the verified archive.

    Raises:
        MovieLensError: If the server cannot be reached or answers with an error (the
            message names the file to place by hand), or if the checksum differs.
    """
    url = release_url(release, base_url)
    archive = raw_dir / f"{release}.zip"
    logger.info("Downloading MovieLens release %s from %s", release, url)
    expected_md5 = parse_md5_listing(
        _fetch(f"{url}.md5", url, archive, timeout_s).decode("utf-8", "replace")
    )
    raw_dir.mkdir(parents=True, exist_ok=True)
    descriptor, partial_name = tempfile.mkstemp(
        prefix=f".{archive.name}.", suffix=".part", dir=raw_dir
    )
    partial = Path(partial_name)
    try:
        with os.fdopen(descriptor, "wb") as sink:
            actual_md5 = _stream(url, archive, sink, timeout_s)
        if actual_md5 != expected_md5:
            raise MovieLensError(
                f"Checksum mismatch for {url}: expected MD5 {expected_md5}, "
                f"got {actual_md5}. The download was discarded; try again."
            )
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    logger.info("Saved %s (MD5 %s verified)", archive, expected_md5)
    return archive


def _fetch(url: str, archive_url: str, archive: Path, timeout_s: float) -> bytes:
    """Return the body of a small HTTP resource."""
    with _download_errors(url, archive_url, archive):
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.read()


def _stream(url: str, archive: Path, sink: BinaryIO, timeout_s: float) -> str:
    """Stream ``url`` into ``sink`` with a progress bar; return the content's MD5."""
    digest = hashlib.md5()  # GroupLens publishes MD5 checksums only
    with _download_errors(url, url, archive):
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total, unit="B", unit_scale=True, desc=archive.name, leave=False
            ) as progress:
                while chunk := response.read(1 << 20):
                    sink.write(chunk)
                    digest.update(chunk)
                    progress.update(len(chunk))
    # urllib ends a cut-off body silently; the length tells it apart from a bad file.
    if total is not None and progress.n != total:
        raise MovieLensError(
            f"Download of {url} was interrupted after {progress.n} of {total} bytes; "
            "try again."
        )
    return digest.hexdigest()


@contextmanager
def _download_errors(url: str, archive_url: str, archive: Path) -> Iterator[None]:
    """Turn network failures into a MovieLensError that says how to proceed offline."""
    try:
        yield
    except urllib.error.HTTPError as error:
        reason = f"HTTP {error.code} {error.reason}"
        raise _download_failed(url, archive_url, archive, reason) from error
    except (OSError, http.client.HTTPException) as error:
        reason = str(getattr(error, "reason", None) or error)
        raise _download_failed(url, archive_url, archive, reason) from error


def _download_failed(
    url: str, archive_url: str, archive: Path, reason: str
) -> MovieLensError:
    return MovieLensError(
        f"Could not fetch {url} ({reason}). Without network access, download "
        f"{archive_url} by hand and place {archive.name} in "
        f"{archive.parent.resolve()} (or extract it there)."
    )


def read_ratings(source: ReleaseSource) -> pl.DataFrame:
    """Read the ratings of a release (any GroupLens format) with compact dtypes.

    Returns:
        Columns userId (Int32), movieId (Int32), rating (Float32), timestamp (Int64), in
        file order, unvalidated apart from parsing.
    """
    file_format = source.layout.ratings_format
    content = _file_content(source, file_format)
    if file_format == "u.data":
        return parse_u_data(content)
    if file_format == "ratings.dat":
        return parse_ratings_dat(content)
    return parse_ratings_csv(content)


def read_movies(source: ReleaseSource) -> pl.DataFrame:
    """Read the movie titles of a release (any GroupLens format).

    Returns:
        Columns movieId (Int32), title (String), genres (String, ``|``-joined).
    """
    file_format = source.layout.movies_format
    content = _file_content(source, file_format)
    if file_format == "u.item":
        return parse_u_item(content)
    if file_format == "movies.dat":
        return parse_movies_dat(content)
    return parse_movies_csv(content)


def _file_content(source: ReleaseSource, file_name: str) -> Path | bytes:
    """Return a file of a release: its path in a folder, or its bytes from the zip.

    Paths let polars scan lazily; zip members must be decompressed into memory.
    """
    if source.path.is_dir():
        return source.path / file_name
    try:
        with zipfile.ZipFile(source.path) as archive:
            members = [
                name
                for name in archive.namelist()
                if name == file_name or name.endswith(f"/{file_name}")
            ]
            if not members:
                raise MovieLensError(
                    f"{source.path} holds no {file_name}; is it the {source.release} "
                    "archive? Delete it to download it again."
                )
            # The shallowest match is the release's own file, not a nested copy.
            return archive.read(min(members, key=lambda name: name.count("/")))
    except zipfile.BadZipFile as error:
        raise MovieLensError(
            f"{source.path} is not a valid zip archive ({error}); delete it to "
            "download it again."
        ) from error


def parse_ratings_csv(content: Path | bytes) -> pl.DataFrame:
    """Parse a ``ratings.csv`` (header userId,movieId,rating,timestamp; ml-20m and later)."""
    header = pl.scan_csv(content, infer_schema=False).collect_schema().names()
    require_columns(header, list(RATINGS_SCHEMA), "ratings.csv")
    try:
        return (
            pl.scan_csv(content, infer_schema=False, schema_overrides=RATINGS_SCHEMA)
            .select(list(RATINGS_SCHEMA))
            .collect()
        )
    except pl.exceptions.ComputeError:
        raw = pl.scan_csv(content, infer_schema=False).select(list(RATINGS_SCHEMA))
        return _cast_ratings(raw, "ratings.csv")


def parse_u_data(content: Path | bytes) -> pl.DataFrame:
    """Parse ml-100k's ``u.data`` (tab-separated user, item, rating, timestamp)."""
    try:
        return pl.scan_csv(
            content,
            separator="\t",
            has_header=False,
            quote_char=None,
            new_columns=list(RATINGS_SCHEMA),
            infer_schema=False,
            schema_overrides=RATINGS_SCHEMA,
        ).collect()
    except pl.exceptions.ComputeError:
        raw = _split_lines(content, "\t", list(RATINGS_SCHEMA))
        return _cast_ratings(raw, "u.data")


def parse_ratings_dat(content: Path | bytes) -> pl.DataFrame:
    """Parse a ``ratings.dat`` (``::``-separated; ml-1m and ml-10m)."""
    raw = _split_lines(content, "::", list(RATINGS_SCHEMA))
    return _cast_ratings(raw, "ratings.dat")


def parse_movies_csv(content: Path | bytes) -> pl.DataFrame:
    """Parse a ``movies.csv`` (quoted CSV movieId,title,genres in UTF-8)."""
    movies = pl.read_csv(content, infer_schema=False)
    require_columns(movies.columns, list(MOVIES_SCHEMA), "movies.csv")
    return _cast_movies(movies, "movies.csv")


def parse_movies_dat(content: Path | bytes) -> pl.DataFrame:
    """Parse a ``movies.dat`` (``::``-separated; UTF-8 in ml-10m, Latin-1 in ml-1m)."""
    movies = _split_lines(_as_utf8(content), "::", list(MOVIES_SCHEMA)).collect()
    return _cast_movies(movies, "movies.dat")


def parse_u_item(content: Path | bytes) -> pl.DataFrame:
    """Parse ml-100k's ``u.item`` (``|``-separated, Latin-1) with genre flag columns.

    The 19 genre flags become a ``|``-joined genre string like the other releases use
    (null when no flag is set).
    """
    flag_columns = [f"is_{genre}" for genre in ML_100K_GENRES]
    items = pl.read_csv(
        _as_utf8(content),
        separator="|",
        has_header=False,
        quote_char=None,
        new_columns=["movieId", "title", "released", "video_released", "imdb_url"]
        + flag_columns,
        infer_schema=False,
    )
    genres = pl.concat_str(
        [
            pl.when(pl.col(flag) == "1").then(pl.lit(genre))
            for flag, genre in zip(flag_columns, ML_100K_GENRES, strict=True)
        ],
        separator="|",
        ignore_nulls=True,
    )
    movies = items.select(
        "movieId", "title", pl.when(genres != "").then(genres).alias("genres")
    )
    return _cast_movies(movies, "u.item")


def _as_utf8(content: Path | bytes) -> bytes:
    """Decode a small text file as UTF-8, falling back to Latin-1 (older releases)."""
    data = content.read_bytes() if isinstance(content, Path) else content
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1").encode("utf-8")
    return data


def _split_lines(
    content: Path | bytes, separator: str, columns: list[str]
) -> pl.LazyFrame:
    """Split each line on a (possibly multi-character) separator into string columns.

    polars' CSV reader takes single-byte separators only, so ``::`` files are read as
    one string column per line and split in a vectorised way. Extra fields stay in the
    last column, so a wrong line shows up as a value that does not parse.
    """
    return (
        pl.scan_lines(content)
        .filter(pl.col("line").str.strip_chars() != "")
        .select(
            pl.col("line")
            .str.splitn(separator, len(columns))
            .struct.rename_fields(columns)
            .struct.unnest()
        )
    )


def _cast_ratings(raw: pl.LazyFrame, file_name: str) -> pl.DataFrame:
    """Cast string rating columns to compact dtypes, rejecting values that do not parse.

    Missing values stay null here (validation reports them); a present value that is
    not a number is an error naming the rows. The typed CSV readers are faster and
    fall back to this path only to tell which rows are bad.
    """
    ratings = raw.select(
        pl.col(column).str.strip_chars().cast(dtype, strict=False).alias(column)
        for column, dtype in RATINGS_SCHEMA.items()
    ).collect()
    unparsed = pl.any_horizontal(pl.col(column).is_null() for column in RATINGS_SCHEMA)
    if ratings.select(unparsed.any()).item():
        _raise_unparsable(raw, file_name)
    return ratings


def _raise_unparsable(raw: pl.LazyFrame, file_name: str) -> None:
    """Raise an error listing the rows whose present values are not numbers."""
    not_a_number = pl.any_horizontal(
        pl.col(column).is_not_null()
        & pl.col(column).str.strip_chars().cast(dtype, strict=False).is_null()
        for column, dtype in RATINGS_SCHEMA.items()
    )
    bad_rows = raw.with_row_index("row", offset=1).filter(not_a_number).collect()
    if bad_rows.height:
        raise MovieLensError(
            f"{file_name}: {bad_rows.height} row(s) hold non-numeric values; first "
            f"{min(bad_rows.height, 5)} (row numbers count data lines from 1):\n"
            f"{bad_rows.head(5)}"
        )


def _cast_movies(movies: pl.DataFrame, file_name: str) -> pl.DataFrame:
    """Cast string movie columns to their dtypes; every movie needs an integer id."""
    typed = movies.select(
        pl.col("movieId").str.strip_chars().cast(pl.Int32(), strict=False),
        pl.col("title").cast(pl.String()),
        pl.col("genres").cast(pl.String()),
    )
    bad_rows = movies.with_row_index("row", offset=1).filter(typed["movieId"].is_null())
    if bad_rows.height:
        raise MovieLensError(
            f"{file_name}: {bad_rows.height} row(s) have a missing or non-integer "
            f"movieId; first {min(bad_rows.height, 5)}:\n{bad_rows.head(5)}"
        )
    return typed


def require_columns(found: list[str], expected: list[str], file_name: str) -> None:
    """Raise if a file with a header lacks any of the expected columns."""
    missing = [column for column in expected if column not in found]
    if missing:
        raise MovieLensError(
            f"{file_name} lacks column(s) {missing}; found {found}, expected {expected}."
        )
