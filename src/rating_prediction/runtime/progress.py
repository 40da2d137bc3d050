"""Progress of a long step, with an estimate of the time left.

On a terminal (``sys.stderr.isatty()``) a tqdm bar is drawn, with its elapsed and
remaining time. Without one (CI, a pipe, a log file) an INFO line goes to the caller's
logger, so both the console and the file log get it, at most once every
:data:`INTERVAL_S` seconds and only once the step has run that long, so a quick step
prints nothing::

    bayesian_fm sampling: 120/400 samples (30%), 25 s so far, about 58 s left

The estimate is the time so far per unit done times the units left. A step that logged
a line closes with one more, its total time. Amounts in bytes (unit ``"B"``) are shown
in MB.

- :class:`Progress`: a step of ``total`` units, advanced as they are done;
- :func:`waiting`: a single long call that reports nothing itself (one polars read),
  a line every interval with the time so far;
- :func:`key_values`: the settings a step tried, for its line.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from tqdm import tqdm

# Without a terminal: the least time between two progress lines, and before the first.
INTERVAL_S = 10.0
# Where progress reads the time, unless given a clock (tests swap it).
CLOCK: Callable[[], float] = time.monotonic
# How often a :func:`waiting` call looks at the time (and redraws its bar on a terminal).
REDRAW_S = 1.0
BYTES = "B"
MB = 1e6

_logger = logging.getLogger(__name__)
T = TypeVar("T")


class Progress:
    """A step of ``total`` ``unit`` (``None``: unknown), reported as it advances.

    Use it as a context manager, or :meth:`close` it; :meth:`track` wraps an
    iterable. ``logger`` is the calling module's (default: this module's);
    ``interval`` (default :data:`INTERVAL_S`) and ``clock`` (default :data:`CLOCK`)
    are there for tests.

    Example::

        with Progress("bayesian_fm sampling", 400, "samples", logger=logger) as p:
            for _ in range(400):
                draw_a_sample()
                p.advance()
    """

    def __init__(
        self,
        what: str,
        total: float | None,
        unit: str = "",
        *,
        logger: logging.Logger | None = None,
        interval: float | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.done: float = 0
        self.lines = 0
        self._logger = logger or _logger
        self._interval = INTERVAL_S if interval is None else interval
        self._clock = clock or CLOCK
        self._started = self._reported = self._clock()
        self._closed = False
        self._bar = _terminal_bar(what, total, unit) if _on_a_terminal() else None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        self.close(finished=kind is None)

    def advance(self, n: float = 1) -> None:
        """``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.total is None or self.done < self.total:
            self.report()  # once all is done, the closing line says so

    def report(self) -> None:
        """Log the progress line if the step has run an interval since the last one
        (or since its start); on a terminal, redraw the bar."""
        if self._bar is not None:
            self._bar.refresh()
            return
        now = self._clock()
        if self._closed or now - self._reported < self._interval:
            return
        self._reported = now
        self.lines += 1
        elapsed = now - self._started
        self._logger.info(
            "%s %s so far%s", self._head(), _duration(elapsed), self._left(elapsed)
        )

    def track(self, items: Iterable[T]) -> Iterator[T]:
        """Each of ``items``, counting one unit done when the next is asked for (the
        caller's work on an item is inside its time); closed at the end."""
        with self:
            for item in items:
                yield item
                self.advance()

    def close(self, finished: bool = True) -> None:
        """Remove the bar; without a terminal, if a line was logged and the step
        ``finished`` (not stopped by an error), log its total time."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif finished and self.lines:
            elapsed = _duration(self._clock() - self._started)
            done = self._amount()
            self._logger.info(
                "%s: done%s in %s", self.what, f", {done}" if done else "", elapsed
            )

    def _head(self) -> str:
        """``what: 120/400 samples (30%),`` (``what:`` alone for an unknown amount)."""
        amount = self._amount()
        if self.total:
            amount += f" ({self.done / self.total:.0%})"
        return f"{self.what}: {amount}," if amount else f"{self.what}:"

    def _amount(self) -> str:
        if self.total is None and not self.done:
            return ""
        unit, scale = ("MB", MB) if self.unit == BYTES else (self.unit, 1)
        done = _number(self.done / scale, scale != 1)
        if self.total is not None:
            done += f"/{_number(self.total / scale, scale != 1)}"
        return f"{done} {unit}".rstrip()

    def _left(self, elapsed: float) -> str:
        if not self.total or not self.done:
            return ""
        left = elapsed / self.done * max(self.total - self.done, 0)
        return f", about {_duration(left)} left"


@contextmanager
def waiting(
    what: str,
    *,
    logger: logging.Logger | None = None,
    interval: float | None = None,
    clock: Callable[[], float] | None = None,
) -> Iterator[Progress]:
    """Report one long call that says nothing of its own progress (``what: 20 s so
    far``, no estimate) from a background thread, while the ``with`` block runs."""
    progress = Progress(what, None, logger=logger, interval=interval, clock=clock)
    stop = threading.Event()

    def beats() -> None:
        while not stop.wait(min(progress._interval, REDRAW_S)):
            progress.report()

    thread = threading.Thread(target=beats, name=f"progress of {what}", daemon=True)
    with progress:
        thread.start()
        try:
            yield progress
        finally:
            stop.set()
            thread.join()


def key_values(values: Mapping[str, Any]) -> str:
    """``rank=50, reg_param=0.125``: floats to 4 significant digits."""
    return ", ".join(
        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
        for key, value in values.items()
    )


def _on_a_terminal() -> bool:
    return sys.stderr is not None and sys.stderr.isatty()


def _terminal_bar(what: str, total: float | None, unit: str) -> tqdm:
    """tqdm's bar on stderr, gone once done; bytes in kB, MB, GB."""
    if total is None and not unit:
        return tqdm(
            desc=what, bar_format="{desc}: {elapsed}", file=sys.stderr, leave=False
        )
    return tqdm(
        desc=what,
        total=total,
        unit=unit,
        unit_scale=unit == BYTES,
        file=sys.stderr,
        leave=False,
        dynamic_ncols=True,
    )


def _number(value: float, fractional: bool) -> str:
    return (
        f"{value:,.1f}"
        if fractional or not float(value).is_integer()
        else f"{value:,.0f}"
    )


def _duration(seconds: float) -> str:
    """``25 s``, ``4 min 05 s``, ``2 h 03 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
