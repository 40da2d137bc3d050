"""A tiny release in ml-100k's format with its official split files, written by tests;
the same ratings, movies and users in ml-1m's format.

ml-100k itself is not available offline; these files have its exact formats: ``u.data``
and the split files are tab-separated user, item, rating, timestamp; ``u.item`` is
``|``-separated with 19 genre flags; ``u.user`` is ``|``-separated user id, age, gender,
occupation, zip code. ``u1`` ... ``u5`` split the ratings into five disjoint test sets
(as the real ``mku.sh`` does); ``ua``/``ub`` hold out a few ratings per user. ml-1m's
``ratings.dat``, ``movies.dat`` and ``users.dat`` are ``::``-separated, its users'
age and occupation given as codes.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from rating_prediction.data.schema import ML_100K_GENRES
from rating_prediction.movielens import ML_100K_CV_FOLDS

N_USERS, N_MOVIES = 60, 40
# ml-100k names occupations; ml-1m numbers its age groups (by their lowest age) and
# occupations.
OCCUPATIONS = ("technician", "writer", "student", "educator", "other")
ML_1M_AGE_GROUPS = (1, 18, 25, 35, 45, 50, 56)


def ml_100k_user(user: int) -> tuple[int, int, str, str, str]:
    """(user id, age, gender, occupation, zip code) of a 1-based user, as ``u.user``
    gives them."""
    return (
        user,
        15 + user % 50,
        "MF"[user % 2],
        OCCUPATIONS[user % len(OCCUPATIONS)],
        f"{10_000 + 37 * user:05d}",
    )


def ml_1m_user(user: int) -> tuple[int, int, str, str, str]:
    """(user id, age group, gender, occupation code, zip code) of a 1-based user, as
    ``users.dat`` gives them."""
    return (
        user,
        ML_1M_AGE_GROUPS[user % len(ML_1M_AGE_GROUPS)],
        "FM"[user % 2],
        str(user % 21),
        f"{20_000 + 41 * user:05d}",
    )


def ml_100k_rows(seed: int = 0) -> list[tuple[int, int, int, int]]:
    """(user, item, rating, timestamp) of a learnable bias model, whole stars, 1-based."""
    rng = np.random.default_rng(seed)
    user_bias = rng.normal(0, 0.7, N_USERS)
    movie_bias = rng.normal(0, 0.7, N_MOVIES)
    rows = []
    for user in range(N_USERS):
        for movie in rng.choice(N_MOVIES, size=20, replace=False):
            rating = np.clip(round(3.5 + user_bias[user] + movie_bias[movie]), 1, 5)
            rows.append(
                (user + 1, int(movie) + 1, int(rating), 880_000_000 + len(rows))
            )
    return rows


def ml_100k_files(seed: int = 0) -> dict[str, bytes]:
    """Every file the project reads from ml-100k: u.data, u.item and the split files."""
    rows = ml_100k_rows(seed)
    order = np.random.default_rng(seed + 1).permutation(len(rows))
    files = {"u.data": _lines(rows), "u.item": _u_item(), "u.user": _u_user()}
    for index, fold in enumerate(ML_100K_CV_FOLDS):
        test = {int(i) for i in order[index :: len(ML_100K_CV_FOLDS)]}
        files[f"{fold}.base"] = _lines([r for i, r in enumerate(rows) if i not in test])
        files[f"{fold}.test"] = _lines([r for i, r in enumerate(rows) if i in test])
    for fold, offset in (("ua", 0), ("ub", 3)):
        test = {i for i, r in enumerate(rows) if (i + offset) % 20 < 3}
        files[f"{fold}.base"] = _lines([r for i, r in enumerate(rows) if i not in test])
        files[f"{fold}.test"] = _lines([r for i, r in enumerate(rows) if i in test])
    return files


def write_ml_100k(raw_dir: Path, as_zip: bool = False, seed: int = 0) -> Path:
    """``raw_dir/ml-100k/`` (or ``raw_dir/ml-100k.zip``) holding the tiny release."""
    files = ml_100k_files(seed)
    if as_zip:
        raw_dir.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(raw_dir / "ml-100k.zip", "w") as archive:
            for name, content in files.items():
                archive.writestr(f"ml-100k/{name}", content)
        return raw_dir / "ml-100k.zip"
    folder = raw_dir / "ml-100k"
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def write_ml_1m(raw_dir: Path, seed: int = 0) -> Path:
    """``raw_dir/ml-1m/`` holding the ratings of :func:`ml_100k_rows` in ml-1m's
    format, with its ``movies.dat`` and ``users.dat``."""
    ratings = ["::".join(map(str, row)) for row in ml_100k_rows(seed)]
    movies = [f"{m}::Movie {m} (1995)::Drama" for m in range(1, N_MOVIES + 1)]
    users = [
        f"{user}::{gender}::{age}::{occupation}::{zip_code}"
        for user, age, gender, occupation, zip_code in map(
            ml_1m_user, range(1, N_USERS + 1)
        )
    ]
    folder = raw_dir / "ml-1m"
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in (
        ("ratings.dat", ratings),
        ("movies.dat", movies),
        ("users.dat", users),
    ):
        (folder / name).write_text("".join(f"{line}\n" for line in lines))
    return folder


def _lines(rows: list[tuple[int, int, int, int]]) -> bytes:
    return "".join("\t".join(map(str, row)) + "\n" for row in rows).encode("ascii")


def _u_item() -> bytes:
    flags = "|".join("1" if i == 0 else "0" for i in range(len(ML_100K_GENRES)))
    return "".join(
        f"{movie}|Movie {movie} (1995)|01-Jan-1995||http://us.imdb.com/x|{flags}\n"
        for movie in range(1, N_MOVIES + 1)
    ).encode("latin-1")


def _u_user() -> bytes:
    return "".join(
        "|".join(map(str, ml_100k_user(user))) + "\n" for user in range(1, N_USERS + 1)
    ).encode("latin-1")
