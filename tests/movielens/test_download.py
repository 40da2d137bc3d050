"""What a download leaves behind: an archive with a new file's permissions, no partial
file after any failure (Ctrl-C and a killed process included), no credentials in its
messages."""

from __future__ import annotations

import logging
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rating_prediction
from rating_prediction.movielens import MovieLensError, download, download_release
from tests.movielens.fixtures import movies_file, ratings_file, write_zip

RELEASE = "ml-latest-small"
PARTIAL = f".{RELEASE}.zip.part"


@pytest.fixture
def archive_bytes(tmp_path) -> bytes:
    """A release of 3 MB, so that half of it is more than one read of the download."""
    files = {
        "ratings.csv": ratings_file("ratings.csv"),
        "movies.csv": movies_file("movies.csv"),
        "README.txt": random.Random(0).randbytes(3 << 20),
    }
    return write_zip(
        tmp_path / "source" / f"{RELEASE}.zip", RELEASE, files
    ).read_bytes()


@pytest.fixture
def published(grouplens_server, archive_bytes):
    grouplens_server.publish(RELEASE, archive_bytes)
    return grouplens_server


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o027, 0o640)])
def test_the_archive_gets_a_new_files_permissions(
    tmp_path, published, umask, mask, expected
):
    raw_dir = tmp_path / "raw"
    raw_dir.mkdir()
    stale = raw_dir / PARTIAL  # left with mkstemp's 0600 by an older version
    stale.write_bytes(b"old")
    stale.chmod(0o600)
    umask(mask)
    archive = download_release(RELEASE, raw_dir, published.base_url)
    assert mode(archive) == expected
    assert sorted(path.name for path in raw_dir.iterdir()) == [f"{RELEASE}.zip"]


def test_ctrl_c_during_the_download_leaves_no_partial_file(
    tmp_path, published, monkeypatch
):
    def interrupt(self, n: float = 1) -> None:
        raise KeyboardInterrupt  # Ctrl-C once the first chunk is written

    monkeypatch.setattr(download.Progress, "advance", interrupt)
    raw_dir = tmp_path / "raw"
    with pytest.raises(KeyboardInterrupt):
        download_release(RELEASE, raw_dir, published.base_url)
    assert list(raw_dir.iterdir()) == []


def test_a_killed_download_leaves_a_partial_file_that_the_next_one_replaces(
    tmp_path, published, archive_bytes, caplog
):
    raw_dir = tmp_path / "raw"
    published.stalled.add(f"/{RELEASE}.zip")
    downloader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from rating_prediction.movielens import download_release; "
            "download_release(sys.argv[1], Path(sys.argv[2]), sys.argv[3])",
            RELEASE,
            str(raw_dir),
            published.base_url,
        ],
        env={
            **os.environ,
            "PYTHONPATH": str(Path(rating_prediction.__file__).parents[1]),
        },
    )
    partial = raw_dir / PARTIAL
    deadline = time.monotonic() + 60
    while not (partial.exists() and partial.stat().st_size > 0):
        assert downloader.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    downloader.send_signal(signal.SIGKILL)
    downloader.wait(timeout=30)
    assert 0 < partial.stat().st_size < len(archive_bytes)  # what a kill leaves

    published.stalled.clear()
    published.resume.set()
    with caplog.at_level(logging.WARNING):
        archive = download_release(RELEASE, raw_dir, published.base_url)
    assert archive.read_bytes() == archive_bytes
    assert sorted(path.name for path in raw_dir.iterdir()) == [f"{RELEASE}.zip"]
    assert f"Replacing {partial}, left by an interrupted download" in caplog.text


def test_credentials_in_base_url_stay_out_of_messages_and_logs(
    tmp_path, published, caplog
):
    published.credentials = "alice:other"  # the server refuses these: 401
    host = published.base_url.removeprefix("http://")
    with caplog.at_level(logging.INFO), pytest.raises(MovieLensError) as error:
        download_release(RELEASE, tmp_path / "raw", f"http://alice:s3cret@{host}", 5)
    message = str(error.value)
    assert message.startswith(f"Could not fetch http://***@{host}/{RELEASE}.zip.md5")
    assert f"download http://***@{host}/{RELEASE}.zip by hand" in message
    assert f"from http://***@{host}/{RELEASE}.zip" in caplog.text
    assert "alice" not in message + caplog.text
    assert "s3cret" not in message + caplog.text


def test_credentials_in_the_base_url_are_sent_as_basic_auth(
    tmp_path, grouplens_server, archive_bytes, caplog
):
    grouplens_server.publish(RELEASE, archive_bytes)
    grouplens_server.credentials = "alice:p@ss:word"
    host = grouplens_server.base_url.removeprefix("http://")
    with caplog.at_level(logging.INFO):
        archive = download_release(
            RELEASE, tmp_path / "raw", f"http://alice:p%40ss%3Aword@{host}"
        )
    assert archive.read_bytes() == archive_bytes
    assert "p%40ss" not in caplog.text and "p@ss" not in caplog.text
