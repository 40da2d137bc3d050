"""Writes that leave every output complete or absent: the data goes to a hidden
sibling named ``.partial-<pid>-<name>`` and is renamed over the target only once it
is whole. A failed write removes its partial file and leaves the previous output
untouched; one left by a killed process is removed by the next ``kedro run``
(:func:`rating_prediction.runtime.run_guard.remove_partial_files`)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kedro.io import DatasetError

PARTIAL_PREFIX = ".partial-"


def partial_path(target: Path) -> Path:
    """The hidden sibling ``target`` is written to before it is renamed into place."""
    return target.with_name(f"{PARTIAL_PREFIX}{os.getpid()}-{target.name}")


def remove_path(path: Path) -> None:
    """Removes a file or a folder, if present."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_destination(target: Path) -> Iterator[Path]:
    """Yields the partial path to write ``target`` to (a file or a folder), then renames
    it into place; on any failure (a full disk, Ctrl-C) removes it and raises a
    :class:`DatasetError` naming ``target``, whose previous content is untouched."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = partial_path(target)
    remove_path(partial)
    try:
        yield partial
        _replace(partial, target)
    except Exception as error:
        remove_path(partial)
        raise DatasetError(_write_failure(target, error)) from error
    except BaseException:
        remove_path(partial)
        raise


def _replace(partial: Path, target: Path) -> None:
    """Renames ``partial`` over ``target``; a folder cannot be renamed over a non-empty
    one, so the old folder steps aside first (a reader then finds it absent, never
    half-written)."""
    if partial.is_dir() and target.exists():
        old = partial_path(target.with_name(f"old-{target.name}"))
        remove_path(old)
        os.replace(target, old)
        os.replace(partial, target)
        remove_path(old)
    else:
        os.replace(partial, target)


def _write_failure(target: Path, error: Exception) -> str:
    free = shutil.disk_usage(target.parent).free
    return (
        f"Could not write {target}: {type(error).__name__}: {error}. "
        f"Free space on its filesystem: {free:,} bytes. The previous {target.name} "
        "(if any) is untouched and no partial file is left; free some space or fix "
        "the cause and rerun."
    )
