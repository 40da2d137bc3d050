"""Fixtures for the MovieLens and data ingestion tests: tiny releases in every format,
an HTTP server."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rating_prediction.data.schema import ML_100K_GENRES
from rating_prediction.movielens import release_layout

# (userId, movieId, rating, timestamp), deliberately not sorted.
RATINGS = [(2, 10, 5.0, 978300762), (1, 20, 3.5, 978300761), (1, 10, 4.0, 978300760)]
# (movieId, title, genres); the accented title checks Latin-1 decoding.
MOVIES = [(10, "Amélie (2001)", "Comedy|Romance"), (20, "Heat (1995)", "Action|Crime")]
# (userId, age, gender, occupation, zip) as each users file gives them: ml-100k's age
# in years and occupation by name, ml-1m's age group and occupation codes. User 3 has
# no rating; the Canadian zip code is ml-100k's kind of non-numeric one.
USERS = {
    "u.user": [
        (1, 24, "M", "technician", "85711"),
        (2, 53, "F", "other", "T8H1N"),
        (3, 23, "M", "writer", "32067"),
    ],
    "users.dat": [
        (1, 1, "F", "10", "48067"),
        (2, 56, "M", "16", "70072"),
        (3, 25, "M", "15", "55117"),
    ],
}


def ratings_file(file_format: str, rows: list[tuple] = RATINGS) -> bytes:
    """Ratings in one of the GroupLens formats."""
    if file_format == "u.data":
        lines = ["\t".join(str(value) for value in row) for row in rows]
    elif file_format == "ratings.dat":
        lines = ["::".join(str(value) for value in row) for row in rows]
    else:
        lines = ["userId,movieId,rating,timestamp"]
        lines += [",".join(str(value) for value in row) for row in rows]
    return ("\n".join(lines) + "\n").encode("ascii")


def movies_file(file_format: str, encoding: str = "utf-8") -> bytes:
    """Movie titles in one of the GroupLens formats."""
    if file_format == "u.item":
        lines = []
        for movie_id, title, genres in MOVIES:
            flags = [
                "1" if genre in genres.split("|") else "0" for genre in ML_100K_GENRES
            ]
            lines.append(
                f"{movie_id}|{title}|01-Jan-1995||http://us.imdb.com/x|"
                + "|".join(flags)
            )
        return ("\n".join(lines) + "\n").encode("latin-1")
    if file_format == "movies.dat":
        lines = [f"{movie_id}::{title}::{genres}" for movie_id, title, genres in MOVIES]
        return ("\n".join(lines) + "\n").encode(encoding)
    lines = ["movieId,title,genres"]
    lines += [f'{movie_id},"{title}",{genres}' for movie_id, title, genres in MOVIES]
    return ("\n".join(lines) + "\n").encode("utf-8")


def users_file(file_format: str, rows: list[tuple] | None = None) -> bytes:
    """Users in ml-100k's ``u.user`` or ml-1m's ``users.dat`` format (``USERS``)."""
    rows = USERS[file_format] if rows is None else rows
    if file_format == "u.user":
        lines = ["|".join(str(value) for value in row) for row in rows]
        return ("\n".join(lines) + "\n").encode("latin-1")
    # UserID::Gender::Age::Occupation::Zip-code
    lines = [
        f"{user}::{gender}::{age}::{occupation}::{zip_code}"
        for user, age, gender, occupation, zip_code in rows
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def release_files(release: str) -> dict[str, bytes]:
    """The ratings, movies and (ml-100k, ml-1m) users files of a tiny release, as its
    layout names them."""
    layout = release_layout(release)
    # ml-1m's movies.dat is Latin-1, ml-10m's UTF-8: both must read the same.
    encoding = "latin-1" if release == "ml-1m" else "utf-8"
    files = {
        layout.ratings_format: ratings_file(layout.ratings_format),
        layout.movies_format: movies_file(layout.movies_format, encoding),
    }
    if layout.users_format is not None:
        files[layout.users_format] = users_file(layout.users_format)
    return files


def write_zip(path: Path, folder: str, files: dict[str, bytes]) -> Path:
    """Write a zip whose members sit in ``folder/``, like GroupLens archives."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{folder}/", "")
        for name, content in files.items():
            archive.writestr(f"{folder}/{name}", content)
    return path


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    """Write files into an extracted release folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def md5_hex(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


@dataclass
class FakeGroupLens:
    """A local HTTP server answering configured paths with (status, body)."""

    base_url: str
    routes: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    # Paths whose responses claim more bytes than they send, like a dropped connection.
    truncated: set[str] = field(default_factory=set)
    # Paths whose responses send half their body, then wait for `resume`.
    stalled: set[str] = field(default_factory=set)
    resume: threading.Event = field(default_factory=threading.Event)
    # When set, every request must carry it in a Basic Authorization header.
    credentials: str | None = None

    def publish(
        self, release: str, archive: bytes, md5_listing: str | None = None
    ) -> None:
        """Serve ``<release>.zip`` and its ``.md5`` listing (the right one by default)."""
        listing = md5_listing or f"{md5_hex(archive)}  {release}.zip\n"
        self.routes[f"/{release}.zip"] = (200, archive)
        self.routes[f"/{release}.zip.md5"] = (200, listing.encode())


@pytest.fixture
def grouplens_server() -> Iterator[FakeGroupLens]:
    """A fake files.grouplens.org on 127.0.0.1, serving from a background thread."""
    fake = FakeGroupLens(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = fake.routes.get(self.path, (404, b"not found"))
            if fake.credentials is not None:
                token = base64.b64encode(fake.credentials.encode()).decode()
                if self.headers.get("Authorization") != f"Basic {token}":
                    status, body = 401, b"unauthorized"
            self.send_response(status)
            claimed = len(body) * 2 if self.path in fake.truncated else len(body)
            self.send_header("Content-Length", str(claimed))
            self.end_headers()
            self.close_connection = True
            if self.path in fake.stalled:
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                fake.resume.wait(timeout=60)
                with contextlib.suppress(ConnectionError):  # the client was killed
                    self.wfile.write(body[len(body) // 2 :])
                return
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    yield fake
    fake.resume.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A localhost URL on which nothing listens, standing in for no network."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/datasets/movielens"


@pytest.fixture
def make_release() -> Callable[..., Path]:
    """Write a tiny release into a raw folder as a zip or an extracted folder."""

    def make(raw_dir: Path, release: str, as_zip: bool) -> Path:
        files = release_files(release)
        if as_zip:
            return write_zip(
                raw_dir / f"{release}.zip", release_layout(release).folder, files
            )
        return write_folder(raw_dir / release, files)

    return make
