"""Release files that cannot be read stop ingestion with a message that names the file
(its path, or its name and archive), the line or rows at fault and what to do."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rating_prediction.movielens import (
    MovieLensError,
    locate_release,
    read_movies,
    read_ratings,
    release_layout,
)
from tests.movielens.fixtures import (
    MOVIES,
    RATINGS,
    movies_file,
    ratings_file,
    release_files,
    write_folder,
    write_zip,
)

RESTORE = "Fix the file, or restore the release's original"
RATINGS_HEADER = b"userId,movieId,rating,timestamp\n"
MOVIES_HEADER = b"movieId,title,genres\n"


def release_folder(raw_dir: Path, release: str, **files: bytes) -> Path:
    """A tiny release folder whose files are replaced by ``files`` (``.`` as ``_``)."""
    replaced = {name.replace("_", "."): content for name, content in files.items()}
    return write_folder(raw_dir / release, {**release_files(release), **replaced})


def read_error(raw_dir: Path, release: str, read=read_ratings) -> str:
    with pytest.raises(MovieLensError) as error:
        read(locate_release(raw_dir, release))
    return str(error.value)


def test_an_id_beyond_32_bits_is_out_of_range_not_non_numeric(tmp_path):
    big = 2**31
    folder = release_folder(
        tmp_path,
        "ml-latest-small",
        ratings_csv=ratings_file("ratings.csv", [*RATINGS, (big, 10, 4.0, 5)]),
        movies_csv=MOVIES_HEADER + f"{big},Too Big (2020),Drama\n".encode(),
    )
    message = read_error(tmp_path, "ml-latest-small")
    assert message.startswith(f"{folder / 'ratings.csv'}: 1 row(s) hold values")
    assert (
        "- userId: 1 value(s) are outside the supported range "
        "-2147483648..2147483647 (ids are stored as 32-bit integers): renumber the ids"
    ) in message
    assert "non-numeric" not in message
    assert f"│ 4   ┆ {big}" in message  # the data line, with the value as written
    message = read_error(tmp_path, "ml-latest-small", read_movies)
    assert message.startswith(f"{folder / 'movies.csv'}: 1 row(s)")
    assert "- movieId: 1 value(s) are outside the supported range" in message


def test_a_timestamp_beyond_64_bits_is_out_of_range(tmp_path):
    release_folder(
        tmp_path,
        "ml-1m",
        ratings_dat=ratings_file("ratings.dat", [(1, 10, 4.0, 2**63)]),
    )
    message = read_error(tmp_path, "ml-1m")
    assert (
        "- timestamp: 1 value(s) are outside the supported range "
        "-9223372036854775808..9223372036854775807"
    ) in message


def test_a_u_data_with_commas_names_the_separator(tmp_path):
    commas = ratings_file("u.data").replace(b"\t", b",")
    folder = release_folder(tmp_path, "ml-100k", u_data=commas)
    message = read_error(tmp_path, "ml-100k")
    assert message == (
        f"{folder / 'u.data'}: line 1 has 1 tab-separated field(s), expected 4 "
        "(userId, movieId, rating, timestamp); it seems to use commas, but this format "
        f"separates fields with tabs. {RESTORE}: delete the archive or folder it came "
        "from and run again to download it afresh."
    )


@pytest.mark.parametrize("file_name", ["ratings.csv", "movies.csv"])
def test_an_empty_file_in_an_archive_names_the_archive(tmp_path, file_name):
    archive = write_zip(
        tmp_path / "ml-25m.zip",
        "ml-25m",
        {**release_files("ml-25m"), file_name: b""},
    )
    read = read_ratings if file_name == "ratings.csv" else read_movies
    message = read_error(tmp_path, "ml-25m", read)
    assert message.startswith(f"{file_name} in {archive}: the file is empty. {RESTORE}")


def test_a_ratings_file_with_a_header_only_holds_no_ratings(tmp_path):
    folder = release_folder(tmp_path, "ml-20m", ratings_csv=RATINGS_HEADER)
    message = read_error(tmp_path, "ml-20m")
    assert message.startswith(f"{folder / 'ratings.csv'} holds no ratings. {RESTORE}")


def test_a_latin_1_movies_csv_names_the_line_and_the_conversion(tmp_path):
    latin_1 = movies_file("movies.csv").decode("utf-8").encode("latin-1")
    folder = release_folder(tmp_path, "ml-latest", movies_csv=latin_1)
    message = read_error(tmp_path, "ml-latest", read_movies)
    assert message.startswith(
        f"{folder / 'movies.csv'}: line 2 is not valid UTF-8 (byte 0xe9, the line's "
        "byte 7): the file must be UTF-8"
    )
    assert "iconv -f latin1 -t utf-8" in message


@pytest.mark.parametrize(
    ("position", "problem"),
    [
        (1, "the double quote opened on line 3 closes only on line 4"),
        (2, "the double quote opened on line 4 is never closed"),
    ],
    ids=["closed-by-the-next-quote", "never-closed"],
)
def test_an_unclosed_quote_names_the_line_it_opens_on(tmp_path, position, problem):
    lines = [f'{movie_id},"{title}",{genres}\n' for movie_id, title, genres in MOVIES]
    lines.insert(position, '15,"Unclosed (1999),Drama\n')
    folder = release_folder(
        tmp_path, "ml-32m", movies_csv=MOVIES_HEADER + "".join(lines).encode()
    )
    message = read_error(tmp_path, "ml-32m", read_movies)
    assert message.startswith(f"{folder / 'movies.csv'}: {problem}")
    assert 'a quote inside a quoted field is written ""' in message


def test_a_line_with_an_unquoted_comma_names_the_line(tmp_path):
    unquoted = MOVIES_HEADER + b"1,American President, The (1995),Drama\n"
    folder = release_folder(tmp_path, "ml-latest-small", movies_csv=unquoted)
    message = read_error(tmp_path, "ml-latest-small", read_movies)
    assert message.startswith(
        f"{folder / 'movies.csv'}: line 2 has 4 fields but the header names 3 "
        "(movieId, title, genres): a field that contains a comma must be in double "
        "quotes."
    )


def test_a_u_item_line_with_missing_fields_names_the_line(tmp_path):
    truncated = movies_file("u.item").split(b"|01-Jan-1995")[0] + b"\n"
    folder = release_folder(tmp_path, "ml-100k", u_item=truncated)
    message = read_error(tmp_path, "ml-100k", read_movies)
    assert message.startswith(
        f"{folder / 'u.item'}: line 1 has 2 '|'-separated field(s), expected 24 "
        "(movieId, title, released,"
    )


def test_a_ratings_dat_that_is_not_utf_8_names_the_line(tmp_path):
    release_folder(
        tmp_path, "ml-10m", ratings_dat=ratings_file("ratings.dat") + b"1::\xff::4::5\n"
    )
    message = read_error(tmp_path, "ml-10m")
    assert f"{release_layout('ml-10m').ratings_format}: line 4 is not valid" in message


def test_a_folder_without_its_movies_file_says_what_to_restore(tmp_path):
    folder = release_folder(tmp_path, "ml-1m")
    (folder / "movies.dat").unlink()
    message = read_error(tmp_path, "ml-1m", read_movies)
    assert message == (
        f"{folder} holds no movies.dat: the ml-1m release ships it; restore the "
        "folder or use the zip archive."
    )


def test_an_encrypted_archive_member_names_the_member_and_the_archive(tmp_path):
    archive = write_zip(tmp_path / "ml-1m.zip", "ml-1m", release_files("ml-1m"))
    content = bytearray(archive.read_bytes())
    # Set the "encrypted" flag in every local (PK\3\4) and central (PK\1\2) header.
    for signature, flags_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        for header in re.finditer(re.escape(signature), content):
            content[header.start() + flags_offset] |= 0x1
    archive.write_bytes(bytes(content))
    message = read_error(tmp_path, "ml-1m")
    assert message == (
        f"ratings.dat in {archive} cannot be extracted (File 'ml-1m/ratings.dat' is "
        "encrypted, password required for extraction); GroupLens archives are plain "
        "zip files: delete it to download it again, or extract it into "
        f"{tmp_path / 'ml-1m'} yourself."
    )
