"""Tests of the GroupLens registry, readers and downloader."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import get_args

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from rating_prediction.movielens import (
    RELEASES,
    MovieLensError,
    MoviesFormat,
    RatingsFormat,
    ReleaseSource,
    download_release,
    locate_release,
    parse_md5_listing,
    parse_movies_csv,
    parse_movies_dat,
    parse_ratings_csv,
    parse_ratings_dat,
    parse_u_data,
    parse_u_item,
    read_movies,
    read_ratings,
    release_layout,
)
from rating_prediction.movielens.readers import MOVIES_PARSERS, RATINGS_PARSERS
from tests.fakes import ratings_frame
from tests.movielens.fixtures import (
    MOVIES,
    RATINGS,
    md5_hex,
    movies_file,
    ratings_file,
    write_zip,
)

EXPECTED_RATINGS = ratings_frame(RATINGS)


def leftovers(folder: Path) -> list[str]:
    """Names of the files a failed download left behind."""
    return sorted(path.name for path in folder.iterdir()) if folder.exists() else []


def expected_movies(genres: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "movieId": [movie[0] for movie in MOVIES],
            "title": [movie[1] for movie in MOVIES],
            "genres": genres,
        },
        schema={"movieId": pl.Int32, "title": pl.String, "genres": pl.String},
    )


class TestRegistry:
    def test_unknown_release_lists_the_valid_ones(self):
        with pytest.raises(MovieLensError, match="ml-5m") as error:
            release_layout("ml-5m")
        for release in ["synthetic", *RELEASES]:
            assert release in str(error.value)

    def test_ml_10m_extracts_to_its_own_folder_name(self):
        assert release_layout("ml-10m").folder == "ml-10M100K"
        assert release_layout("ml-100k").ratings_format == "u.data"

    def test_synthetic_is_read_like_ml_latest_small(self):
        synthetic, small = (
            release_layout("synthetic"),
            release_layout("ml-latest-small"),
        )
        assert (synthetic.ratings_format, synthetic.movies_format) == (
            small.ratings_format,
            small.movies_format,
        )


class TestLocateRelease:
    def test_missing_release_is_none(self, tmp_path):
        assert locate_release(tmp_path, "ml-1m") is None

    def test_prefers_extracted_folder_over_zip(self, tmp_path, make_release):
        make_release(tmp_path, "ml-1m", as_zip=True)
        folder = make_release(tmp_path, "ml-1m", as_zip=False)
        assert locate_release(tmp_path, "ml-1m") == ReleaseSource("ml-1m", folder)

    def test_half_extracted_folder_falls_back_to_zip(self, tmp_path, make_release):
        archive = make_release(tmp_path, "ml-1m", as_zip=True)
        (tmp_path / "ml-1m").mkdir()
        (tmp_path / "ml-1m" / "movies.dat").write_text("1::A (1990)::Drama\n")
        assert locate_release(tmp_path, "ml-1m") == ReleaseSource("ml-1m", archive)

    @pytest.mark.parametrize(
        "folder", ["ml-10M100K", "ml-10m/ml-10M100K"], ids=["zip-name", "nested"]
    )
    def test_finds_folder_named_as_inside_the_zip(self, tmp_path, folder):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "ratings.dat").write_bytes(ratings_file("ratings.dat"))
        assert locate_release(tmp_path, "ml-10m").path == tmp_path / folder


class TestReadEveryRelease:
    def test_every_format_has_a_parser(self):
        assert set(RATINGS_PARSERS) == set(get_args(RatingsFormat))
        assert set(MOVIES_PARSERS) == set(get_args(MoviesFormat))

    @pytest.mark.parametrize("as_zip", [True, False], ids=["zip", "folder"])
    @pytest.mark.parametrize("release", list(RELEASES))
    def test_reads_ratings_and_movies(self, tmp_path, make_release, release, as_zip):
        make_release(tmp_path, release, as_zip=as_zip)
        source = locate_release(tmp_path, release)
        assert source.path.suffix == (".zip" if as_zip else "")

        assert_frame_equal(read_ratings(source), EXPECTED_RATINGS)
        genres = [movie[2] for movie in MOVIES]
        assert_frame_equal(read_movies(source), expected_movies(genres))

    def test_zip_without_the_ratings_file_is_rejected(self, tmp_path):
        archive = write_zip(tmp_path / "ml-1m.zip", "ml-1m", {"README": b"hi"})
        with pytest.raises(MovieLensError, match="holds no ratings.dat"):
            read_ratings(ReleaseSource("ml-1m", archive))

    def test_corrupt_zip_is_rejected(self, tmp_path):
        archive = tmp_path / "ml-1m.zip"
        archive.write_bytes(b"PK\x03\x04 not really a zip")
        with pytest.raises(MovieLensError, match="not a valid zip"):
            read_ratings(ReleaseSource("ml-1m", archive))


class TestParsers:
    def test_u_item_genre_flags_become_a_joined_string(self):
        line = "7|Nothing (1990)|01-Jan-1990||http://x|" + "|".join(["0"] * 19)
        movies = parse_u_item(movies_file("u.item") + line.encode("latin-1") + b"\n")
        assert movies["genres"].to_list() == ["Comedy|Romance", "Action|Crime", None]
        assert movies["title"][0] == "Amélie (2001)"

    @pytest.mark.parametrize("encoding", ["latin-1", "utf-8"])
    def test_movies_dat_in_either_encoding(self, encoding):
        movies = parse_movies_dat(movies_file("movies.dat", encoding))
        assert_frame_equal(movies, expected_movies([movie[2] for movie in MOVIES]))

    def test_movies_csv_keeps_quoted_commas(self):
        content = b'movieId,title,genres\n1,"American President, The (1995)",Drama\n'
        assert parse_movies_csv(content)["title"].to_list() == [
            "American President, The (1995)"
        ]

    def test_ratings_dat_accepts_windows_line_endings(self):
        content = ratings_file("ratings.dat").replace(b"\n", b"\r\n")
        assert_frame_equal(parse_ratings_dat(content), EXPECTED_RATINGS)

    def test_ratings_csv_with_reordered_columns(self):
        content = b"timestamp,rating,movieId,userId\n5,4.5,2,1\n"
        assert parse_ratings_csv(content).row(0) == (1, 2, 4.5, 5)

    def test_ratings_csv_missing_columns(self):
        with pytest.raises(MovieLensError, match=r"lacks column\(s\) \['timestamp'\]"):
            parse_ratings_csv(b"userId,movieId,rating\n1,2,3.0\n")

    def test_movies_csv_missing_columns(self):
        with pytest.raises(MovieLensError, match=r"lacks column\(s\) \['genres'\]"):
            parse_movies_csv(b"movieId,title\n1,A\n")

    @pytest.mark.parametrize(
        ("parse", "file_format"),
        [
            (parse_ratings_csv, "ratings.csv"),
            (parse_u_data, "u.data"),
            (parse_ratings_dat, "ratings.dat"),
        ],
    )
    def test_non_numeric_values_are_counted_and_shown(self, parse, file_format):
        bad_rows = [(1, "x", 4.0, 5)] * 6 + [(2, 3, "four", 5)]
        content = ratings_file(file_format, RATINGS + bad_rows)
        with pytest.raises(
            MovieLensError, match="7 row\\(s\\) hold values that cannot be read"
        ) as error:
            parse(content)
        message = str(error.value)
        assert message.startswith(f"{file_format}: ")
        assert "- movieId: 6 value(s) are non-numeric\n" in message
        assert "- rating: 1 value(s) are non-numeric\n" in message
        assert "shape: (5," in message  # five rows shown, not all seven
        assert "│ 4   " in message  # the first bad row's number

    def test_extra_fields_are_rejected(self):
        content = ratings_file("u.data") + b"1\t2\t3\t4\t5\n"
        with pytest.raises(
            MovieLensError, match="timestamp: 1 value\\(s\\) are non-num"
        ):
            parse_u_data(content)

    def test_missing_fields_become_nulls_for_validation(self):
        ratings = parse_ratings_dat(ratings_file("ratings.dat") + b"3::4\n")
        assert ratings.row(3) == (3, 4, None, None)

    def test_movies_with_non_integer_id(self):
        with pytest.raises(
            MovieLensError, match="movieId: 1 value\\(s\\) are non-numeric"
        ):
            parse_movies_csv(b"movieId,title,genres\n1,A,Drama\nx,B,Drama\n")


LISTING_URL = "https://alice:pw@example.org/movielens/ml-1m.zip.md5"
ML_1M_MD5 = "0123456789abcdef0123456789abcdef"


class TestMd5Listing:
    @pytest.mark.parametrize(
        "listing",
        [
            "0123456789ABCDEF0123456789abcdef  ml-1m.zip\n",
            "0123456789abcdef0123456789abcdef *ml-1m.zip\r\n",
            "0123456789abcdef0123456789abcdef  ./releases/ml-1m.zip\n",
            "MD5 (ml-1m.zip) = 0123456789abcdef0123456789abcdef\n",
        ],
        ids=["md5sum", "md5sum-binary", "md5sum-path", "bsd"],
    )
    def test_both_formats(self, listing):
        assert parse_md5_listing(listing, "ml-1m.zip", LISTING_URL) == ML_1M_MD5

    def test_the_line_naming_the_archive_is_used(self):
        listing = (
            "ffffffffffffffffffffffffffffffff  ml-10m.zip\n"
            "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee  ml-1m.zip.sig\n"
            f"{ML_1M_MD5}  ml-1m.zip\n"
        )
        assert parse_md5_listing(listing, "ml-1m.zip", LISTING_URL) == ML_1M_MD5

    @pytest.mark.parametrize(
        "page",
        [
            "<html>Not Found</html>",
            f"<html><!-- build {ML_1M_MD5} -->ml-1m.zip moved</html>",
            f"{ML_1M_MD5}  ml-10m.zip\n",
        ],
        ids=["no-digest", "digest-on-a-page", "another-file"],
    )
    def test_a_page_without_the_archive_line_is_refused_naming_the_url(self, page):
        with pytest.raises(MovieLensError) as error:
            parse_md5_listing(page, "ml-1m.zip", LISTING_URL)
        message = str(error.value)
        assert message.startswith(
            "The checksum page https://***@example.org/movielens/ml-1m.zip.md5 has no "
            "line naming ml-1m.zip"
        )
        assert "Check ingestion.base_url, or download ml-1m.zip by hand" in message
        assert "alice" not in message and "pw@" not in message


class TestDownload:
    @pytest.fixture
    def archive_bytes(self, tmp_path) -> bytes:
        path = write_zip(
            tmp_path / "source" / "ml-latest-small.zip",
            "ml-latest-small",
            {
                "ratings.csv": ratings_file("ratings.csv"),
                "movies.csv": movies_file("movies.csv"),
            },
        )
        return path.read_bytes()

    @pytest.mark.parametrize("bsd_listing", [False, True], ids=["md5sum", "bsd"])
    def test_success_verifies_and_saves(
        self, tmp_path, grouplens_server, archive_bytes, bsd_listing
    ):
        listing = f"MD5 (ml-latest-small.zip) = {md5_hex(archive_bytes)}"
        grouplens_server.publish(
            "ml-latest-small", archive_bytes, listing if bsd_listing else None
        )
        raw_dir = tmp_path / "raw"
        archive = download_release(
            "ml-latest-small", raw_dir, grouplens_server.base_url
        )
        assert archive == raw_dir / "ml-latest-small.zip"
        assert archive.read_bytes() == archive_bytes
        assert [path.name for path in raw_dir.iterdir()] == ["ml-latest-small.zip"]
        assert_frame_equal(
            read_ratings(locate_release(raw_dir, "ml-latest-small")), EXPECTED_RATINGS
        )

    def test_checksum_mismatch_leaves_no_file(
        self, tmp_path, grouplens_server, archive_bytes
    ):
        listing = "0" * 32 + "  ml-latest-small.zip"
        grouplens_server.publish("ml-latest-small", archive_bytes, listing)
        raw_dir = tmp_path / "raw"
        with pytest.raises(MovieLensError, match="Checksum mismatch") as error:
            download_release("ml-latest-small", raw_dir, grouplens_server.base_url)
        assert "0" * 32 in str(error.value)
        assert md5_hex(archive_bytes) in str(error.value)
        assert leftovers(raw_dir) == []

    def test_interrupted_download_leaves_no_file(
        self, tmp_path, grouplens_server, archive_bytes
    ):
        grouplens_server.publish("ml-latest-small", archive_bytes)
        grouplens_server.truncated.add("/ml-latest-small.zip")
        raw_dir = tmp_path / "raw"
        with pytest.raises(MovieLensError, match="interrupted"):
            download_release("ml-latest-small", raw_dir, grouplens_server.base_url)
        assert leftovers(raw_dir) == []

    @pytest.mark.parametrize("status", [404, 500])
    def test_server_error_on_archive(
        self, tmp_path, grouplens_server, archive_bytes, status
    ):
        grouplens_server.publish("ml-latest-small", archive_bytes)
        grouplens_server.routes["/ml-latest-small.zip"] = (status, b"oops")
        raw_dir = tmp_path / "raw"
        with pytest.raises(MovieLensError, match=f"HTTP {status}") as error:
            download_release("ml-latest-small", raw_dir, grouplens_server.base_url)
        assert f"{grouplens_server.base_url}/ml-latest-small.zip (" in str(error.value)
        assert leftovers(raw_dir) == []

    def test_missing_checksum_file(self, tmp_path, grouplens_server):
        raw_dir = tmp_path / "raw"
        with pytest.raises(MovieLensError, match="ml-100k.zip.md5 \\(HTTP 404"):
            download_release("ml-100k", raw_dir, grouplens_server.base_url)
        assert leftovers(raw_dir) == []

    def test_no_network_names_file_folder_and_url(self, tmp_path, closed_port_url):
        raw_dir = tmp_path / "raw"
        with pytest.raises(MovieLensError) as error:
            download_release("ml-100k", raw_dir, closed_port_url, timeout_s=5)
        message = str(error.value)
        assert f"download {closed_port_url}/ml-100k.zip by hand" in message
        assert f"place ml-100k.zip in {raw_dir.resolve()}" in message
        assert leftovers(raw_dir) == []


def test_zip_members_are_found_without_the_expected_folder(tmp_path):
    """Some mirrors re-zip releases flat; the file is found anyway."""
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as flat:
        flat.writestr("u.data", ratings_file("u.data"))
    assert_frame_equal(
        read_ratings(ReleaseSource("ml-100k", archive)), EXPECTED_RATINGS
    )
