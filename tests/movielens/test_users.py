"""The users' demographics: ml-100k's ``u.user`` and ml-1m's ``users.dat`` read into
the users table, with the errors of the other release files; none for the releases that
ship no users file."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import polars as pl
import pytest

from rating_prediction.data.schema import USERS_SCHEMA
from rating_prediction.movielens import (
    RELEASES,
    SYNTHETIC_RELEASE,
    MovieLensError,
    ReleaseSource,
    UsersFormat,
    locate_release,
    parse_u_user,
    parse_users_dat,
    read_users,
    release_layout,
)
from rating_prediction.movielens.readers import USERS_PARSERS
from tests.movielens.fixtures import USERS, users_file, write_zip
from tests.movielens.test_unreadable_files import RESTORE, release_folder

# The releases that ship a users file, and its format.
WITH_USERS = {"ml-100k": "u.user", "ml-1m": "users.dat"}


def read_error(raw_dir: Path, release: str) -> str:
    with pytest.raises(MovieLensError) as error:
        read_users(locate_release(raw_dir, release))
    return str(error.value)


def test_only_ml_100k_and_ml_1m_ship_users_and_each_format_has_a_parser():
    shipped = {
        release: layout.users_format
        for release, layout in RELEASES.items()
        if layout.users_format is not None
    }
    assert shipped == WITH_USERS
    assert set(USERS_PARSERS) == set(get_args(UsersFormat))


@pytest.mark.parametrize("as_zip", [True, False], ids=["zip", "folder"])
@pytest.mark.parametrize("release", list(WITH_USERS))
def test_a_release_users_file_becomes_the_users_table(
    tmp_path, make_release, release, as_zip
):
    make_release(tmp_path, release, as_zip=as_zip)
    users = read_users(locate_release(tmp_path, release))
    assert users.schema == USERS_SCHEMA
    # The file's values in the table's column order, codes kept as written.
    assert users.rows() == USERS[WITH_USERS[release]]


def test_u_user_keeps_ml_100k_values_and_reads_latin_1():
    content = "7|57|M|administrator|91344\r\n8|36|M|programmer|Genève\n"
    users = parse_u_user(content.encode("latin-1"))
    assert users.rows() == [
        (7, 57, "M", "administrator", "91344"),
        (8, 36, "M", "programmer", "Genève"),
    ]


def test_users_dat_keeps_ml_1m_codes():
    """ml-1m's README: age 1 is "Under 18", 56 "56+"; occupation 10 "K-12 student"."""
    users = parse_users_dat(b"1::F::1::10::48067\n6040::M::25::6::11106\n")
    assert users.rows() == [(1, 1, "F", "10", "48067"), (6040, 25, "M", "6", "11106")]
    assert users.schema == USERS_SCHEMA


def test_an_empty_zip_code_is_null():
    users = parse_u_user(b"1|24|M|technician|\n")
    assert users["zip"].to_list() == [None]


@pytest.mark.parametrize(
    "release", [*sorted(set(RELEASES) - set(WITH_USERS)), SYNTHETIC_RELEASE]
)
def test_a_release_without_a_users_file_has_no_user_rows(tmp_path, release):
    """Nothing is read: ingestion gives the rated users null demographics."""
    users = read_users(ReleaseSource(release, tmp_path / "absent"))
    assert users.is_empty()
    assert users.schema == USERS_SCHEMA


@pytest.mark.parametrize(
    ("release", "line", "fields"),
    [
        ("ml-100k", b"4|24|M|technician\n", "4 '|'-separated field(s)"),
        ("ml-1m", b"4::M::25::technician::55117::x\n", "6 '::'-separated field(s)"),
    ],
    ids=["u.user-too-few", "users.dat-too-many"],
)
def test_a_line_with_the_wrong_number_of_fields_names_file_and_line(
    tmp_path, release, line, fields
):
    file_name = WITH_USERS[release]
    folder = release_folder(
        tmp_path, release, **{file_name.replace(".", "_"): users_file(file_name) + line}
    )
    message = read_error(tmp_path, release)
    columns = "userId, age, gender" if release == "ml-100k" else "userId, gender, age"
    assert message.startswith(
        f"{folder / file_name}: line 4 has {fields}, expected 5 ({columns}, "
        "occupation, zip)."
    )
    assert RESTORE in message


def test_users_dat_with_commas_names_the_separator(tmp_path):
    commas = users_file("users.dat").replace(b"::", b",")
    release_folder(tmp_path, "ml-1m", users_dat=commas)
    message = read_error(tmp_path, "ml-1m")
    assert "line 1 has 1 '::'-separated field(s)" in message
    assert "it seems to use commas" in message


@pytest.mark.parametrize(
    ("release", "line", "problem"),
    [
        ("ml-100k", b"4|twenty|M|writer|55117\n", "- age: 1 value(s) are non-numeric"),
        ("ml-100k", b"4||M|writer|55117\n", "- age: 1 value(s) are missing"),
        ("ml-1m", b"4.5::M::25::6::55117\n", "- userId: 1 value(s) are not integers"),
    ],
    ids=["non-numeric-age", "missing-age", "fractional-id"],
)
def test_a_value_that_does_not_parse_names_file_and_row(
    tmp_path, release, line, problem
):
    file_name = WITH_USERS[release]
    archive = write_zip(
        tmp_path / f"{release}.zip",
        release_layout(release).folder,
        {file_name: users_file(file_name) + line},
    )
    message = read_error(tmp_path, release)
    assert message.startswith(
        f"{file_name} in {archive}: 1 row(s) hold values that cannot be read"
    )
    assert problem in message
    assert "│ 4   ┆ 4" in message  # the fourth data line, its values as written


def test_a_user_on_two_lines_is_an_error(tmp_path):
    twice = users_file("u.user") + b"2|30|F|artist|10003\n"
    folder = release_folder(tmp_path, "ml-100k", u_user=twice)
    message = read_error(tmp_path, "ml-100k")
    assert message.startswith(
        f"{folder / 'u.user'}: 1 user id(s) are on more than one line (first: [2])"
    )


def test_an_empty_users_file_names_the_file(tmp_path):
    folder = release_folder(tmp_path, "ml-1m", users_dat=b"\n")
    message = read_error(tmp_path, "ml-1m")
    assert message.startswith(f"{folder / 'users.dat'}: the file is empty. {RESTORE}")


def test_a_folder_without_its_users_file_says_what_to_restore(tmp_path):
    folder = release_folder(tmp_path, "ml-100k")
    (folder / "u.user").unlink()
    assert read_error(tmp_path, "ml-100k") == (
        f"{folder} holds no u.user: the ml-100k release ships it; restore the "
        "folder or use the zip archive."
    )


def test_zip_codes_stay_text_with_their_leading_zeros():
    users = parse_u_user(b"1|7|F|none|00501\n")
    assert users.schema["zip"] == pl.String
    assert users["zip"].to_list() == ["00501"]
