"""The console's filter: what a run prints, and what only its file log keeps."""

from __future__ import annotations

import io
import logging
import sys

import pytest
from kedro.logging import RichHandler

from rating_prediction.runtime.console import (
    ConsoleFilter,
    narrow_console,
    warnings_only,
)


def record(name: str, message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, None, None)


@pytest.mark.parametrize(
    ("name", "message", "shown"),
    [
        ("kedro.io.data_catalog", "Loading data from ratings", False),
        ("kedro.pipeline.node", "Running node: split_ratings_node", False),
        ("kedro.runner.sequential_runner", "Completed 3 out of 97 tasks", False),
        (
            "kedro.runner.sequential_runner",
            "Pipeline execution completed successfully in 60.1 sec.",
            True,
        ),
        ("pytorch_lightning.utilities.rank_zero", "GPU available: False", False),
        ("rating_prediction.hooks", "[3/97] split_ratings_node: 0.1 s", True),
        ("rating_prediction.pipelines.reporting.summary", "Results on the test", True),
    ],
)
def test_what_the_console_shows(name, message, shown):
    assert ConsoleFilter().filter(record(name, message)) is shown


def test_every_warning_is_shown():
    detail = record("kedro.io.data_catalog", "a dataset problem", logging.WARNING)
    assert ConsoleFilter().filter(detail)


def test_narrowing_swaps_rich_for_plain_lines_without_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())  # not a terminal
    logger = logging.getLogger("test_console_narrowing")
    logger.propagate = False
    logger.handlers = [RichHandler(), logging.FileHandler("/dev/null", delay=True)]
    capture = logging.StreamHandler(io.StringIO())  # a test's capture: left alone
    logger.addHandler(capture)
    narrow_console(logger)
    narrow_console(logger)  # idempotent
    console = [h for h in logger.handlers if getattr(h, "stream", None) is sys.stdout]
    assert len(console) == 1 and not isinstance(console[0], RichHandler)
    assert [type(f) for f in console[0].filters] == [ConsoleFilter]
    assert capture.filters == []
    logger.setLevel(logging.INFO)
    logger.info("x" * 200)
    logging.getLogger("test_console_narrowing.kedro").info("not a detail logger")
    assert len(sys.stdout.getvalue().splitlines()) == 2  # one line each, unwrapped


def test_warnings_only_quiets_the_console_for_a_block_not_the_file_log(
    monkeypatch, tmp_path
):
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    logger = logging.getLogger("test_console_warnings_only")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    console = logging.StreamHandler(sys.stdout)
    file_log = logging.FileHandler(tmp_path / "info.log")
    logger.handlers = [console, file_log]
    with warnings_only(logger):
        logger.info("a node's line")
        logger.warning("a warning")
    logger.info("after the block")
    assert sys.stdout.getvalue().splitlines() == ["a warning", "after the block"]
    assert console.level == logging.NOTSET  # restored
    file_log.close()
    assert (tmp_path / "info.log").read_text().splitlines() == [
        "a node's line",
        "a warning",
        "after the block",
    ]
