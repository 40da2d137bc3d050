"""Values made safe to record where others read them (MLflow parameters and tags, logs):
no credentials in URLs, no absolute paths that show how a machine is laid out.

- A URL keeps its scheme, host, port and path; user name and password become ``***``
  (``https://alice:pw@host/x`` -> ``https://***@host/x``), and so does every query
  value (``?token=abc`` -> ``?token=***``), since signed URLs carry secrets there.
- An absolute path inside the project becomes relative to the project root
  (``/home/alice/project/data/01_raw`` -> ``data/01_raw``; the root itself is ``.``).
  Any other absolute path, ``~`` paths and Windows drive paths included, becomes
  :data:`OUTSIDE_PROJECT`: nothing of it is kept, since even its last component can
  be a user name. Relative paths are kept as they are.
- ``file:`` and ``sqlite:`` URLs hold local paths and are treated as such.

Strings are searched for URLs and paths anywhere in them (after ``=``, ``:``, quotes,
brackets, commas or spaces, or at the start), so ``raw_dir=/data/x`` is caught too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

OUTSIDE_PROJECT = "<outside the project>"

_BOUNDARY = r"(?<![^\s=:'\"(\[,])"  # start of string, or after one of these characters
_TOKEN_END = r"[^\s'\"<>,;)\]]"
_RECORDABLE = re.compile(
    rf"(?P<url>\b[A-Za-z][A-Za-z0-9+.-]*://{_TOKEN_END}*)"
    rf"|(?P<path>{_BOUNDARY}(?:~[\w.-]*)?/{_TOKEN_END}+)"
    rf"|(?P<drive>{_BOUNDARY}[A-Za-z]:[\\/]{_TOKEN_END}*)"
)
# Schemes whose "URL" is a path on this machine.
_LOCAL_SCHEMES = ("file", "sqlite")


def redact(value: Any, project_path: Path | None) -> Any:
    """``value`` with every string in it (nested in mappings, lists and tuples too)
    redacted by :func:`redact_text`; other values unchanged."""
    if isinstance(value, str | os.PathLike):
        return redact_text(os.fspath(value), project_path)
    if isinstance(value, Mapping):
        return {key: redact(item, project_path) for key, item in value.items()}
    if isinstance(value, list | tuple):
        redacted = [redact(item, project_path) for item in value]
        return redacted if isinstance(value, list) else tuple(redacted)
    return value


def redact_text(text: str, project_path: Path | None) -> str:
    """``text`` with URL credentials masked and absolute paths made relative to
    ``project_path`` or replaced by :data:`OUTSIDE_PROJECT` (see the module)."""

    def replace(match: re.Match[str]) -> str:
        if match["url"]:
            return _redact_url(match["url"], project_path)
        return _redact_path(match[0], project_path)

    return _RECORDABLE.sub(replace, text)


def url_without_credentials(url: str) -> str:
    """``url`` with its user name, password and query values masked as ``***``."""
    return _redact_url(url, None)


def _redact_url(url: str, project_path: Path | None) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced "[" in the host
        return f"{url.partition('://')[0]}://***"
    if parts.scheme.lower() in _LOCAL_SCHEMES and not parts.netloc:
        # sqlite:///relative.db and sqlite:////absolute.db: the path follows "///"
        local = parts.path[1:] if parts.scheme.lower() == "sqlite" else parts.path
        redacted = _redact_path(local, project_path)
        return url if redacted == local else f"{parts.scheme}:{redacted}"
    _, at, host = parts.netloc.rpartition("@")
    if not at and not parts.query:
        return url
    query = urlencode(
        [(key, "***") for key, _ in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*",
    )
    netloc = f"***@{host}" if at else host
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_path(text: str, project_path: Path | None) -> str:
    if not (text.startswith(("/", "~")) or re.match(r"[A-Za-z]:[\\/]", text)):
        return text
    path = Path(os.path.normpath(os.path.expanduser(text)))
    if project_path is not None and path.is_absolute():
        for root in dict.fromkeys([project_path.absolute(), project_path.resolve()]):
            if path.is_relative_to(root):
                return PurePosixPath(path.relative_to(root)).as_posix()
    return OUTSIDE_PROJECT
