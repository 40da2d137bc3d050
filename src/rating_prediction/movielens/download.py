"""Downloading a GroupLens release archive, verified against its published MD5."""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from .releases import GROUPLENS_BASE_URL, MovieLensError, release_url

logger = logging.getLogger(__name__)


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
