"""Why polars could not read a release file: the line that breaks the format, said in
the file's terms, with what to do about it.

polars' own errors name neither the file nor the line ("empty CSV", "invalid utf-8
sequence", a SchemaError about ``new_columns``). When a read fails, the file is scanned
again line by line (only then, so the fast path stays fast) for the first problem.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import polars as pl

from rating_prediction.movielens.releases import MovieLensError

from .common import Content

RESTORE_ADVICE = (
    "Fix the file, or restore the release's original: delete the archive or folder "
    "it came from and run again to download it afresh."
)
SEPARATOR_NAMES = {",": "comma", "\t": "tab", "|": "'|'", ";": "semicolon"}


@dataclass(frozen=True)
class TextLayout:
    """How a file format lays out its lines.

    Attributes:
        separator: Between fields; only single characters are checked field by field.
        quoted: Fields may be double-quoted and hold separators and newlines (CSV).
        columns: The fields of every line of a format without a header; ``None`` when
            the first line is a header naming them.
        utf8_only: ``False`` for formats that may be Latin-1 (ml-100k, ml-1m).
    """

    separator: str
    quoted: bool = False
    columns: tuple[str, ...] | None = None
    utf8_only: bool = True


class _LineProblem(Exception):
    """The first line that breaks the layout, said in the file's terms."""


@contextmanager
def explained_read_errors(
    content: Content, file_name: str, layout: TextLayout
) -> Iterator[None]:
    """Turn polars' errors while reading ``content`` into a MovieLensError naming
    ``file_name``, the first line that breaks ``layout``, and what to do."""
    try:
        yield
    except pl.exceptions.PolarsError as error:
        problem = _first_problem(content, layout) or (
            f"it could not be read ({str(error).splitlines()[0]})"
        )
        raise MovieLensError(f"{file_name}: {problem}. {RESTORE_ADVICE}") from error


def check_lines(content: Content, file_name: str, layout: TextLayout) -> None:
    """Raise a MovieLensError naming ``file_name`` and its first line that breaks
    ``layout`` (an empty file, the wrong number of fields, ...), as a failed read
    would; for the small files read line by line, whose splitting fails on nothing."""
    problem = _first_problem(content, layout)
    if problem is not None:
        raise MovieLensError(f"{file_name}: {problem}. {RESTORE_ADVICE}")


def _first_problem(content: Content, layout: TextLayout) -> str | None:
    """Describe the first line of ``content`` that breaks ``layout`` (None if none)."""
    try:
        rows = _rows(_text_lines(content, layout.utf8_only), layout)
        first = next(rows, None)
        if first is None:
            return "the file is empty"
        for line_number, fields in itertools.chain([first], rows):
            _check_fields(line_number, fields, first[1], layout)
    except _LineProblem as problem:
        return str(problem)
    return None


def _check_fields(
    line_number: int, fields: list[str], first: list[str], layout: TextLayout
) -> None:
    """Raise if a line has more fields than the header names, or (without a header)
    other than the format's number of fields."""
    if layout.columns is None:
        if len(fields) > len(first):
            raise _LineProblem(
                f"line {line_number} has {len(fields)} fields but the header names "
                f"{len(first)} ({', '.join(first)}): a field that contains a "
                f"{_separator_name(layout.separator)} must be in double quotes"
            )
        return
    if len(fields) != len(layout.columns):
        raise _LineProblem(
            f"line {line_number} has {len(fields)} "
            f"{_separator_name(layout.separator)}-separated field(s), expected "
            f"{len(layout.columns)} ({', '.join(layout.columns)})"
            + _other_separator_hint(fields, layout.separator)
        )


def _other_separator_hint(fields: list[str], separator: str) -> str:
    line = separator.join(fields)
    for other, name in SEPARATOR_NAMES.items():
        if other != separator and len(fields) == 1 and other in line:
            return (
                f"; it seems to use {name}s, but this format separates fields with "
                f"{_separator_name(separator)}s"
            )
    return ""


def _separator_name(separator: str) -> str:
    return SEPARATOR_NAMES.get(separator, repr(separator))


def _rows(lines: Iterator[str], layout: TextLayout) -> Iterator[tuple[int, list[str]]]:
    """(first line number, fields) of each non-blank record."""
    if len(layout.separator) != 1:
        # csv reads single-character separators only: a "::" line is split here, its
        # fields counted only where the format names them.
        for line_number, line in enumerate(lines, start=1):
            if line.strip():
                fields = line.rstrip("\r\n").split(layout.separator)
                yield line_number, fields if layout.columns else []
        return
    reader = csv.reader(
        lines,
        delimiter=layout.separator,
        strict=layout.quoted,
        quoting=csv.QUOTE_MINIMAL if layout.quoted else csv.QUOTE_NONE,
    )
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            raise _LineProblem(_csv_problem(error, start, reader.line_num)) from error
        if fields and fields != [""]:
            yield start, fields


def _csv_problem(error: csv.Error, start: int, line_number: int) -> str:
    """Say where a record with broken quoting starts and where the break shows."""
    escaping = 'a quote inside a quoted field is written ""'
    if "unexpected end of data" in str(error):
        return (
            f"the double quote opened on line {start} is never closed, so the rest of "
            f"the file would be one field ({escaping})"
        )
    if line_number > start:
        return (
            f"the double quote opened on line {start} closes only on line "
            f"{line_number} ({error}): a quote is missing there or on line {start} "
            f"({escaping})"
        )
    return f"line {line_number} is not valid CSV ({error}; {escaping})"


def _text_lines(content: Content, utf8_only: bool) -> Iterator[str]:
    """Decode ``content`` line by line, raising on the first line that is not UTF-8
    (unless Latin-1 is accepted)."""
    with _open_binary(content) as binary:
        for line_number, line in enumerate(binary, start=1):
            try:
                yield line.decode("utf-8")
            except UnicodeDecodeError as error:
                if not utf8_only:
                    yield line.decode("latin-1")
                    continue
                raise _LineProblem(
                    f"line {line_number} is not valid UTF-8 (byte "
                    f"0x{line[error.start]:02x}, the line's byte {error.start + 1}): "
                    "the file must be UTF-8, as GroupLens' files are (convert it, "
                    "e.g. with `iconv -f latin1 -t utf-8`)"
                ) from error


def _open_binary(content: Content) -> BinaryIO:
    return content.open("rb") if isinstance(content, Path) else io.BytesIO(content)
