"""The GroupLens release registry: which releases exist and where their files live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from rating_prediction.data.schema import MOVIELENS_SCALE, RatingScale
from rating_prediction.parameters import OWN_FILE, ParameterError, ProjectParameters

if TYPE_CHECKING:
    from .own_file import OwnFile

GROUPLENS_BASE_URL = "https://files.grouplens.org/datasets/movielens"
SYNTHETIC_RELEASE = "synthetic"

RatingsFormat = Literal["u.data", "ratings.dat", "ratings.csv"]
MoviesFormat = Literal["u.item", "movies.dat", "movies.csv"]
UsersFormat = Literal["u.user", "users.dat"]


class MovieLensError(ValueError):
    """A MovieLens release is unknown, unavailable, corrupt or malformed."""


@dataclass(frozen=True)
class ReleaseLayout:
    """Where a release keeps its files and which format each one has.

    Attributes:
        folder: Name of the folder the release's zip extracts to.
        ratings_format: File name (and thereby format) of the ratings file.
        movies_format: File name (and thereby format) of the movie titles file.
        folds: The release's own train/test splits: fold ``f`` is the pair of files
            ``<f>.base`` and ``<f>.test`` (ml-100k: ``u1`` ... ``u5``, ``ua``, ``ub``).
        cv_folds: Those of ``folds`` whose test files partition the ratings: the
            release's k-fold cross validation (ml-100k: ``u1`` ... ``u5``).
        users_format: File name (and thereby format) of the users' demographics
            (ml-100k's ``u.user``, ml-1m's ``users.dat``); ``None`` for the releases
            that ship none.
    """

    folder: str
    ratings_format: RatingsFormat
    movies_format: MoviesFormat
    folds: tuple[str, ...] = ()
    cv_folds: tuple[str, ...] = ()
    users_format: UsersFormat | None = None


# ml-100k's official splits: u1..u5 are five disjoint test sets (5-fold cross
# validation); ua and ub hold out exactly 10 ratings per user.
ML_100K_FOLDS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
ML_100K_CV_FOLDS = ML_100K_FOLDS[:5]

# Domain knowledge about the published archives, not configuration.
RELEASES: dict[str, ReleaseLayout] = {
    "ml-100k": ReleaseLayout(
        "ml-100k",
        "u.data",
        "u.item",
        ML_100K_FOLDS,
        ML_100K_CV_FOLDS,
        users_format="u.user",
    ),
    "ml-1m": ReleaseLayout(
        "ml-1m", "ratings.dat", "movies.dat", users_format="users.dat"
    ),
    "ml-10m": ReleaseLayout("ml-10M100K", "ratings.dat", "movies.dat"),
    "ml-20m": ReleaseLayout("ml-20m", "ratings.csv", "movies.csv"),
    "ml-25m": ReleaseLayout("ml-25m", "ratings.csv", "movies.csv"),
    "ml-32m": ReleaseLayout("ml-32m", "ratings.csv", "movies.csv"),
    "ml-latest-small": ReleaseLayout("ml-latest-small", "ratings.csv", "movies.csv"),
    "ml-latest": ReleaseLayout("ml-latest", "ratings.csv", "movies.csv"),
}
# The synthetic sample is written exactly like ml-latest-small, so it is read the same way.
SYNTHETIC_LAYOUT = ReleaseLayout(SYNTHETIC_RELEASE, "ratings.csv", "movies.csv")
# A file of the user's own has no release layout of its own (its reader is own_file's)
# and no predefined folds.
OWN_FILE_LAYOUT = ReleaseLayout(OWN_FILE, "ratings.csv", "movies.csv")


@dataclass(frozen=True)
class ReleaseSource:
    """A release present on disk: either its zip archive or its extracted folder.

    Attributes:
        release: Release name, e.g. ``ml-1m`` or ``synthetic``; ``file`` for a file of
            the user's own.
        path: The ``.zip`` archive, or the folder that directly holds the release's
            files; the ratings file for ``file``.
        own: The user's file, described (``file`` only).
        rating_scale: The scale of a release's ratings: MovieLens's, or the synthetic
            sample's (whole stars from 1 when its ``rating_step`` is 1).
    """

    release: str
    path: Path
    own: OwnFile | None = None
    rating_scale: RatingScale = MOVIELENS_SCALE

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
    if release == OWN_FILE:
        return OWN_FILE_LAYOUT
    if release not in RELEASES:
        valid = ", ".join([SYNTHETIC_RELEASE, *RELEASES])
        raise MovieLensError(
            f"Unknown MovieLens release {release!r}; valid: {valid}, or {OWN_FILE!r} "
            "for a ratings file of your own (described by ingestion.file)."
        )
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


def check_predefined_folds(
    dataset: str, folds: list[str], key: str, predefined: bool
) -> None:
    """A clear error when ``key`` asks for a predefined split ``dataset`` lacks, or
    names folds it does not have.

    Raises:
        ParameterError: Naming the release, the parameter and the valid folds.
    """
    if not predefined:
        return
    try:
        available = release_layout(dataset).folds
    except MovieLensError:
        return  # an unknown release is reported by check_release_parameters
    if not available:
        raise ParameterError(
            f"'{key}' is 'predefined' but the release {dataset!r} (ingestion.dataset) "
            "ships no split files (only ml-100k does: u1..u5, ua, ub); use 'random', "
            "'temporal' or 'kfold'."
        )
    unknown = [fold for fold in folds if fold not in available]
    if unknown:
        raise ParameterError(
            f"'{key}' is 'predefined' but {dataset} has no fold(s) {unknown}; "
            f"valid: {', '.join(available)}."
        )


def check_release_parameters(parameters: ProjectParameters) -> None:
    """The checks of the parameters that need the release registry: the release
    ``ingestion.dataset`` names exists, has the folds a predefined split asks for, and
    the timestamps a temporal split needs.

    Raises:
        ParameterError: Naming the parameter, the release and the valid values.
    """
    dataset = parameters.ingestion.dataset
    try:
        release_layout(dataset)
    except MovieLensError as error:
        raise ParameterError(f"'ingestion.dataset': {error}") from None
    split = parameters.processing.split
    own = parameters.ingestion.file
    if (
        dataset == OWN_FILE
        and own is not None
        and own.columns.timestamp is None
        and split.strategy == "temporal"
    ):
        raise ParameterError(
            "'processing.split.strategy' is 'temporal', which orders each user's "
            "ratings by time, but your file has no timestamp "
            "(ingestion.file.columns.timestamp is null): name its timestamp column, "
            "or use the 'random' split."
        )
    check_predefined_folds(
        dataset,
        [split.fold],
        "processing.split.strategy",
        split.strategy == "predefined",
    )
    cross_validation = parameters.cross_validation
    check_predefined_folds(
        dataset,
        cross_validation.folds or [],
        "cross_validation.scheme",
        cross_validation.scheme == "predefined",
    )
