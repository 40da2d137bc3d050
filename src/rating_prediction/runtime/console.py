"""What a run prints: a line per node that took a while, the results and every
warning; the rest of the log (each catalog load and save, Kedro's node banners,
Lightning's device notices, the lines of quick nodes) goes to the file log only. ``conf/logging.yml`` configures both handlers; the project's
hooks call :func:`narrow_console` when a run's context is created.

Without a terminal (CI, a pipe, a notebook's captured output) records are printed one
per line, unwrapped; in a terminal through Kedro's rich handler.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from kedro.logging import RichHandler

# Loggers whose INFO records are detail: kept in the file log, not printed.
DETAIL_LOGGERS = (
    "kedro.io.data_catalog",
    "kedro.pipeline.node",
    "kedro.validation",
    "kedro_mlflow.framework.hooks",
    "pytorch_lightning.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
)
# The runner's record that stays: the run's end, with its time.
RUNNER_SUMMARY = "Pipeline execution completed"
PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(message)s"
# A record logged with ``extra=FILE_ONLY`` reaches the file log, not the console.
FILE_ONLY = {"console": False}


class ConsoleFilter(logging.Filter):
    """Passes warnings and errors, and the INFO records a reader of the run needs."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        if not getattr(record, "console", True):
            return False
        if record.name.startswith(DETAIL_LOGGERS):
            return False
        if record.name.startswith("kedro.runner"):
            return record.getMessage().startswith(RUNNER_SUMMARY)
        return True


def narrow_console(logger: logging.Logger | None = None) -> None:
    """Narrows ``logger``'s (the root's) console handlers to :class:`ConsoleFilter`'s
    records, and without a terminal swaps Kedro's rich handler for plain lines, one
    record a line, never wrapped (rich wraps at 80 columns when it sees no terminal).
    File handlers keep every record. Idempotent."""
    logger = logger or logging.getLogger()
    for handler in list(logger.handlers):
        if not _prints(handler):
            continue
        console = handler
        if isinstance(handler, RichHandler) and not sys.stdout.isatty():
            console = logging.StreamHandler(sys.stdout)
            console.setLevel(handler.level)
            console.setFormatter(logging.Formatter(PLAIN_FORMAT, datefmt="%H:%M:%S"))
            logger.removeHandler(handler)
            logger.addHandler(console)
        if not any(isinstance(f, ConsoleFilter) for f in console.filters):
            console.addFilter(ConsoleFilter())


def _prints(handler: logging.Handler) -> bool:
    """Whether ``handler`` writes to the console (not a file, not a test's capture)."""
    if isinstance(handler, RichHandler):
        return True
    stream = getattr(handler, "stream", None)
    return not isinstance(handler, logging.FileHandler) and stream in (
        sys.stdout,
        sys.stderr,
    )


@contextmanager
def warnings_only(logger: logging.Logger | None = None) -> Iterator[None]:
    """Within the block, ``logger``'s (the root's) console handlers print warnings and
    errors only; file handlers keep every record. For a notebook's run cell, which
    then shows a short summary instead of a line per node."""
    logger = logger or logging.getLogger()
    consoles = [handler for handler in logger.handlers if _prints(handler)]
    levels = [handler.level for handler in consoles]
    for handler in consoles:
        handler.setLevel(max(handler.level, logging.WARNING))
    try:
        yield
    finally:
        for handler, level in zip(consoles, levels):
            handler.setLevel(level)
