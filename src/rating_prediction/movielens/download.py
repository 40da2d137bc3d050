"""Downloading a GroupLens release archive, verified against its published MD5."""

from __future__ import annotations

import base64
import hashlib
import http.client
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from rating_prediction.runtime.progress import Progress
from rating_prediction.runtime.redaction import url_without_credentials

from .releases import GROUPLENS_BASE_URL, MovieLensError, release_url

logger = logging.getLogger(__name__)

# The two listing formats, md5sum's and BSD's, one line per file.
_MD5_LINES = (
    re.compile(r"(?P<md5>[0-9a-fA-F]{32})\s+(?P<file>\S.*)"),
    re.compile(r"MD5\s*\((?P<file>.+)\)\s*=\s*(?P<md5>[0-9a-fA-F]{32})"),
)


def parse_md5_listing(text: str, archive_name: str, listing_url: str) -> str:
    """Extract the MD5 of ``archive_name`` from a GroupLens ``.md5`` listing.

    Only a line that names the archive counts: ``<hex>  <file>`` (md5sum, ``*<file>``
    or a path ending in ``/<file>`` too) or ``MD5 (<file>) = <hex>`` (BSD). A digest
    anywhere else on the page (another file's, an HTML error page's) is ignored.

    Raises:
        MovieLensError: If no line names the archive (the message names the page).
    """
    for line in text.splitlines():
        for pattern in _MD5_LINES:
            match = pattern.fullmatch(line.strip())
            if match and _names(match["file"], archive_name):
                return match["md5"].lower()
    raise MovieLensError(
        f"The checksum page {url_without_credentials(listing_url)} has no line naming "
        f"{archive_name} (expected '<md5>  {archive_name}' or 'MD5 ({archive_name}) = "
        f"<md5>'); it starts {text[:200]!r}. Check ingestion.base_url, or download "
        f"{archive_name} by hand and place it in ingestion.raw_dir."
    )


def _names(listed: str, archive_name: str) -> bool:
    return listed.lstrip("*").replace("\\", "/").rsplit("/", 1)[-1] == archive_name


def download_release(
    release: str,
    raw_dir: Path,
    base_url: str = GROUPLENS_BASE_URL,
    timeout_s: float = 60.0,
) -> Path:
    """Download ``<base_url>/<release>.zip`` into ``raw_dir`` and verify its MD5.

    The archive is streamed to ``raw_dir/.<release>.zip.part`` and renamed to
    ``<release>.zip`` only once its checksum matches, so an interrupted or corrupt
    download never leaves a file that looks valid. The partial file is removed on any
    failure, Ctrl-C included; one left by a killed process is replaced by the next
    download. The archive gets the permissions of any new file (``0666`` less the
    umask: ``0644`` under the usual umask ``022``). Logs and errors show the URL
    without credentials. One download per ``raw_dir`` at a time: the project's run
    lock ensures it within a project.

    Returns:
        The path of the verified archive.

    Raises:
        MovieLensError: If the server cannot be reached or answers with an error (the
            message names the file to place by hand), if the checksum page names no
            checksum for the archive, or if the checksum differs.
    """
    url = release_url(release, base_url)
    archive = raw_dir / f"{release}.zip"
    logger.info(
        "Downloading MovieLens release %s from %s",
        release,
        url_without_credentials(url),
    )
    expected_md5 = _published_md5(url, archive, timeout_s)
    raw_dir.mkdir(parents=True, exist_ok=True)
    _download_verified(url, archive, expected_md5, timeout_s)
    logger.info("Saved %s (MD5 %s verified)", archive, expected_md5)
    return archive


def _published_md5(url: str, archive: Path, timeout_s: float) -> str:
    """The MD5 of the archive at ``url``, read from the ``<url>.md5`` listing."""
    listing = _fetch(f"{url}.md5", url, archive, timeout_s)
    return parse_md5_listing(
        listing.decode("utf-8", "replace"), archive.name, f"{url}.md5"
    )


def _download_verified(
    url: str, archive: Path, expected_md5: str, timeout_s: float
) -> None:
    """Stream ``url`` into ``.<archive name>.part`` next to ``archive`` (replacing one
    left by a killed process) and rename it to ``archive`` only if its MD5 is
    ``expected_md5``; the partial file is removed on any failure, Ctrl-C included."""
    partial = archive.with_name(f".{archive.name}.part")
    if partial.exists():
        logger.warning("Replacing %s, left by an interrupted download", partial)
        partial.unlink()
    try:
        with _new_file(partial) as sink:
            actual_md5 = _stream(url, archive, sink, timeout_s)
        if actual_md5 != expected_md5:
            raise MovieLensError(
                f"Checksum mismatch for {url_without_credentials(url)}: expected MD5 "
                f"{expected_md5}, got {actual_md5}. The download was discarded; try "
                "again."
            )
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)


def _new_file(path: Path) -> BinaryIO:
    """Create ``path`` for writing, with a new file's usual permissions (``0666``
    less the umask; ``tempfile.mkstemp`` would give ``0600``)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    return os.fdopen(os.open(path, flags, 0o666), "wb")


def _request(url: str) -> urllib.request.Request:
    """``url`` as urllib can send it: credentials in the URL (``user:password@``, which
    urllib would take for part of the host name) go in a Basic Authorization header."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return urllib.request.Request(url)
    host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    netloc = f"{host}:{parts.port}" if parts.port else str(host)
    user, password = (
        urllib.parse.unquote(v or "") for v in (parts.username, parts.password)
    )
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return urllib.request.Request(
        urllib.parse.urlunsplit(parts._replace(netloc=netloc)),
        headers={"Authorization": f"Basic {token}"},
    )


def _fetch(url: str, archive_url: str, archive: Path, timeout_s: float) -> bytes:
    """Return the body of a small HTTP resource."""
    with _download_errors(url, archive_url, archive):
        with urllib.request.urlopen(_request(url), timeout=timeout_s) as response:
            return response.read()


def _stream(url: str, archive: Path, sink: BinaryIO, timeout_s: float) -> str:
    """Stream ``url`` into ``sink``, reporting the MB received and the time left (a bar
    on a terminal, a line every so often elsewhere); return the content's MD5."""
    digest = hashlib.md5()  # GroupLens publishes MD5 checksums only
    received = 0
    with _download_errors(url, url, archive):
        with urllib.request.urlopen(_request(url), timeout=timeout_s) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            what = f"downloading {archive.name}"
            with Progress(what, total, "B", logger=logger) as progress:
                while chunk := response.read(1 << 20):
                    sink.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    progress.advance(len(chunk))
    # urllib ends a cut-off body silently; the length tells it apart from a bad file.
    if total is not None and received != total:
        raise MovieLensError(
            f"Download of {url_without_credentials(url)} was interrupted after "
            f"{received} of {total} bytes; try again."
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
        f"Could not fetch {url_without_credentials(url)} ({reason}). Without network "
        f"access, download {url_without_credentials(archive_url)} by hand and place "
        f"{archive.name} in {archive.parent.resolve()} (or extract it there)."
    )
