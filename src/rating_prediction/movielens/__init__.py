"""GroupLens MovieLens releases: where their files live, how to read them, how to fetch them.

Every reader returns a polars DataFrame with compact dtypes (Int32 ids, Float32 ratings,
Int64 timestamps) and never builds Python objects per rating (measured times and memory:
the docs' Performance page).

- :mod:`.releases`: the registry of releases and where a release lies on disk.
- :mod:`.download`: fetching a release archive, verified against its MD5.
- :mod:`.parsers`: one module per file format family.
- :mod:`.readers`: a release's ratings, movies and users, through its formats'
  parsers.
"""

from .download import download_release, parse_md5_listing
from .parsers.common import require_columns
from .parsers.csv_files import parse_movies_csv, parse_ratings_csv, scan_ratings_csv
from .parsers.dat_files import parse_movies_dat, parse_ratings_dat, parse_users_dat
from .parsers.ml_100k import parse_u_data, parse_u_item, parse_u_split, parse_u_user
from .readers import (
    FOLD_PAIRS_SCHEMA,
    explain_unreadable_ratings,
    read_fold,
    read_fold_pairs,
    read_movies,
    read_ratings,
    read_users,
    scan_ratings,
)
from .releases import (
    GROUPLENS_BASE_URL,
    ML_100K_CV_FOLDS,
    ML_100K_FOLDS,
    RELEASES,
    SYNTHETIC_LAYOUT,
    SYNTHETIC_RELEASE,
    MovieLensError,
    MoviesFormat,
    RatingsFormat,
    ReleaseLayout,
    ReleaseSource,
    UsersFormat,
    locate_release,
    release_layout,
    release_url,
)

__all__ = [
    "FOLD_PAIRS_SCHEMA",
    "GROUPLENS_BASE_URL",
    "ML_100K_CV_FOLDS",
    "ML_100K_FOLDS",
    "RELEASES",
    "SYNTHETIC_LAYOUT",
    "SYNTHETIC_RELEASE",
    "MovieLensError",
    "MoviesFormat",
    "RatingsFormat",
    "ReleaseLayout",
    "ReleaseSource",
    "UsersFormat",
    "download_release",
    "explain_unreadable_ratings",
    "locate_release",
    "parse_md5_listing",
    "parse_movies_csv",
    "parse_movies_dat",
    "parse_ratings_csv",
    "parse_ratings_dat",
    "parse_u_data",
    "parse_u_item",
    "parse_u_split",
    "parse_u_user",
    "parse_users_dat",
    "read_fold",
    "read_fold_pairs",
    "read_movies",
    "read_ratings",
    "read_users",
    "release_layout",
    "release_url",
    "require_columns",
    "scan_ratings",
    "scan_ratings_csv",
]
