"""A clean console: a default ``kedro run`` shows no warning, and no pipeline reads
another namespace's dotted dataset names (Kedro warns about that once per process,
whichever pipeline is built first, so each pipeline is checked on its own)."""

from __future__ import annotations

import importlib
import pkgutil
import re
import warnings

import pytest
from kedro.pipeline.node import _DOTTED_DATASET_NAME_WARNED, Node

import rating_prediction.pipelines

DOTTED_NAMES = "One or more dataset names contain '.' characters"
PIPELINES = sorted(
    module.name
    for module in pkgutil.iter_modules(rating_prediction.pipelines.__path__)
    if module.ispkg
)
# What a default run printed before these were fixed; each must stay away.
KNOWN_WARNINGS = {
    "dotted dataset names (reporting, evaluation, inference, cross_validation)": (
        DOTTED_NAMES
    ),
    "Lightning's logging interval (training/trainer.py)": (
        r"The number of training batches \(\d+\) is smaller than the logging interval"
    ),
    "omegaconf's deprecation, raised by Kedro and kedro-mlflow": (
        r"register_new_resolver\(\) is deprecated"
    ),
    "MLflow's type hints, for kedro-mlflow's KedroPipelineModel": (
        r"Add type hints to the `predict` method"
    ),
    "torch's LeafSpec deprecation, raised by Lightning": (
        r"`isinstance\(treespec, LeafSpec\)` is deprecated"
    ),
}
# What a default run may print without a terminal (the bound).
MAX_CONSOLE_LINES = 150
# A record of the project's conf/logging.yml file handler (info.log).
RECORD = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} - (?P<logger>\S+) - (?P<level>[A-Z]+) - ",
    re.MULTILINE,
)
# Outside logging: a warning Python prints itself, or a WARNING line of a library that
# logs to stderr on its own (MLflow).
STDERR_WARNING = re.compile(r"^.*(\w+Warning: |\bWARNING\b).*$", re.MULTILINE)


@pytest.mark.parametrize("name", PIPELINES)
def test_no_node_reads_dotted_names_outside_their_namespace(name, monkeypatch):
    module = importlib.import_module(f"rating_prediction.pipelines.{name}")
    # Kedro warns once per process; let it warn again for this pipeline.
    monkeypatch.setattr(Node, _DOTTED_DATASET_NAME_WARNED, False, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module.create_pipeline()
    assert [str(w.message) for w in caught if DOTTED_NAMES in str(w.message)] == []


def _warnings_of_the_run(log: str, stderr: str) -> list[str]:
    """The WARNING (or worse) records of ``log`` (info.log) and the warning lines of
    ``stderr``."""
    starts = list(RECORD.finditer(log))
    records = [
        log[start.start() : end.start() if end else len(log)].strip()
        for start, end in zip(starts, [*starts[1:], None])
        if start["level"] not in ("DEBUG", "INFO")
    ]
    return records + STDERR_WARNING.findall(stderr)


@pytest.mark.slow
def test_a_default_kedro_run_prints_no_warning(default_kedro_run):
    stdout, stderr = default_kedro_run.stdout, default_kedro_run.stderr
    assert default_kedro_run.returncode == 0, stderr[-3000:]
    log = (default_kedro_run.project / "info.log").read_text()
    assert "Pipeline execution completed successfully" in log
    shown = _warnings_of_the_run(log, stderr)
    known = {
        what: [warning for warning in shown if re.search(pattern, warning)]
        for what, pattern in KNOWN_WARNINGS.items()
    }
    assert {what: found for what, found in known.items() if found} == {}
    assert shown == []
    # Without a terminal: a line per node that took a while, the quick ones counted,
    # the results, nothing wrapped; the file log keeps every catalog load and save and
    # every node's line.
    # Lines as a log file or `wc -l` counts them: a progress bar's redraws (carriage
    # returns) stay on its line.
    printed = (stdout + stderr).rstrip("\n").split("\n")
    assert len(printed) <= MAX_CONSOLE_LINES, "\n".join(printed)
    assert "Loading data from" not in stdout
    assert "Loading data from" in log
    assert any(
        re.search(r"\[\d+/\d+\] bayesian_fm.train_model: ", line) for line in printed
    )
    assert re.search(r"\[\d+/\d+\] split_ratings_node: ", log)
    assert any(re.search(r"^.* \d+ of \d+ nodes took under", line) for line in printed)
    assert "Results on the test split:" in stdout
