"""Where a ``kedro run`` spends its time and memory: per pipeline, from Kedro's node log.

Runs ``kedro run --env <env>`` (plus ``--params``) in the project with a logging
configuration that stamps every record with its time to the millisecond, measures the
run's wall time and peak resident memory (``getrusage`` of the child: the figure
``/usr/bin/time -v`` prints as "Maximum resident set size") and samples its resident
memory twice a second (Linux ``/proc``). The time from one node's completion to the
next's goes to that next node (loading its inputs, running, saving its outputs), summed
per pipeline, training per variant; so does the largest memory sample. Prints markdown
tables: time and peak memory per pipeline, and wall time, peak memory and the test RMSE
of every entry of ``data/08_reporting/metrics.json``.

Run: ``python benchmarks/pipeline_timings.py --env scale [--params "..."]``
(``--log-file`` keeps the timestamped log; the run's own output goes to stderr.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

PROJECT_ROOT = Path(__file__).resolve().parents[1]
METRICS = PROJECT_ROOT / "data" / "08_reporting" / "metrics.json"
# Only `kedro run --pipelines <name>` runs these; `kedro run` does not.
RUN_ALONE = ("__default__", "cross_validation", "tuning")
STARTUP = "startup (imports, configuration, MLflow run)"
TEARDOWN = "after the last node (MLflow model logged and registered)"
GENERATION = "of which synthetic data generation"

LOGGING_CONFIG = """\
version: 1
disable_existing_loggers: False
formatters:
  stamped:
    format: "%(created).3f %(name)s %(levelname)s %(message)s"
handlers:
  file:
    class: logging.FileHandler
    filename: {log_file}
    formatter: stamped
  console:
    class: logging.StreamHandler
    stream: ext://sys.stderr
    formatter: stamped
loggers:
  kedro:
    level: INFO
  rating_prediction:
    level: INFO
root:
  handlers: [file, console]
"""

COMPLETED = re.compile(r"^(?P<time>\d+\.\d+) \S+ INFO Completed node: (?P<node>\S+)")
STAMPED = re.compile(r"^(?P<time>\d+\.\d+) ")
GENERATING = "Generating a synthetic release"
SAMPLE_SECONDS = 0.5
# (row key: a node's name or a part of the run, start, end), epoch seconds.
Span = tuple[str, float, float]


def node_pipelines() -> dict[str, str]:
    """Each node's name -> its table row: the registered pipeline that holds it,
    ``training: <variant>`` for the training namespaces."""
    bootstrap_project(PROJECT_ROOT)
    rows = {}
    for name, pipeline in pipelines.items():
        if name in RUN_ALONE:
            continue
        for node in pipeline.nodes:
            variant = node.namespace.split(".")[0] if node.namespace else None
            rows[node.name] = f"training: {variant}" if name == "training" else name
    return rows


def spans(lines: Iterable[str], started: float, ended: float) -> list[Span]:
    """``(row key, start, end)`` of each part of a run that started and ended at
    ``started`` and ``ended`` (epoch seconds), from its stamped log ``lines``: startup
    until the first node loads its inputs, each node from the previous completion to
    its own, teardown after the last. The key is the node's name, or ``STARTUP``,
    ``TEARDOWN`` or ``GENERATION`` (a node that logs ``Generating a synthetic
    release``, listed again under that key)."""
    parts: list[Span] = []
    previous = None
    generating = False
    for line in lines:
        stamp = STAMPED.match(line)
        if previous is None and stamp and "Loading data from" in line:
            previous = float(stamp["time"])
            parts.append((STARTUP, started, previous))
        generating = generating or GENERATING in line
        completed = COMPLETED.match(line)
        if not completed or previous is None:
            continue
        parts.append((completed["node"], previous, float(completed["time"])))
        if generating:
            parts.append((GENERATION, previous, float(completed["time"])))
            generating = False
        previous = float(completed["time"])
    if previous is not None:
        parts.append((TEARDOWN, previous, ended))
    return parts


def per_row(
    parts: list[Span], rows: dict[str, str], memory: list[tuple[float, int]]
) -> dict[str, tuple[float, int]]:
    """Seconds and largest memory sample (kB; 0 without samples) per table row;
    ``rows`` maps node names to rows, other keys are rows of their own."""
    table: dict[str, tuple[float, int]] = {}
    for key, start, end in parts:
        row = rows.get(key, key)
        peak = max((kb for at, kb in memory if start <= at <= end), default=0)
        seconds, largest = table.get(row, (0.0, 0))
        table[row] = (seconds + end - start, max(largest, peak))
    return table


def time_table(table: dict[str, tuple[float, int]], wall: float) -> str:
    """Markdown table of seconds, share and peak memory per row, in pipeline order."""
    order = [STARTUP, "data_ingestion", GENERATION, "data_processing"]
    order += sorted(row for row in table if row.startswith("training"))
    order += ["evaluation", "reporting", "inference", TEARDOWN]
    order += sorted(set(table) - set(order))
    lines = [
        "| part of the run | wall time (s) | share | peak memory (GB) |",
        "|---|---:|---:|---:|",
    ]
    for row in order:
        if row in table:
            seconds, peak_kb = table[row]
            label = f"  ({row})" if row == GENERATION else row
            lines.append(
                f"| {label} | {seconds:.1f} | {100 * seconds / wall:.0f}% "
                f"| {peak_kb / 1024**2:.1f} |"
            )
    lines.append(f"| total | {wall:.1f} | 100% | |")
    return "\n".join(lines)


def summary_table(wall: float, peak_kb: int, metrics: dict) -> str:
    """Markdown: wall time, peak resident memory, test RMSE of every rating entry."""
    rmse = {
        entry: values["test"]["rmse"]
        for entry, values in metrics.items()
        if "rmse" in values.get("test", {})
    }
    minutes, rest = divmod(wall, 60)
    header = ["wall time", "peak resident memory", *(f"{e} test RMSE" for e in rmse)]
    values = [
        f"{int(minutes)} min {rest:.0f} s",
        f"{peak_kb / 1024**2:.2f} GB",
        *(f"{value:.4f}" for value in rmse.values()),
    ]
    return "\n".join(
        "| " + " | ".join(line) + " |"
        for line in (header, ["---:"] * len(header), values)
    )


def run(
    env: str, params: str | None, log_file: Path
) -> tuple[float, float, int, list[tuple[float, int]]]:
    """Run the project; return its start and end (epoch seconds), exit status and
    resident memory samples ``(time, kB)``."""
    with tempfile.TemporaryDirectory() as folder:
        config = Path(folder) / "logging.yml"
        config.write_text(LOGGING_CONFIG.format(log_file=log_file))
        command = [sys.executable, "-m", "kedro", "run", "--env", env]
        command += ["--params", params] if params else []
        environment = {**os.environ, "KEDRO_LOGGING_CONFIG": str(config)}
        started = time.time()
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment)
        memory = []
        while process.poll() is None:
            memory.append((time.time(), resident_kb(process.pid)))
            time.sleep(SAMPLE_SECONDS)
        return started, time.time(), process.returncode, memory


def resident_kb(pid: int) -> int:
    """The process's resident memory in kB (0 where /proc is not available)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(found[1]) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="scale", help="Kedro environment (conf/<env>)")
    parser.add_argument("--params", help="passed to kedro run --params")
    parser.add_argument("--log-file", type=Path, help="keep the timestamped log here")
    args = parser.parse_args()
    rows = node_pipelines()
    with tempfile.TemporaryDirectory() as folder:
        log_file = (args.log_file or Path(folder) / "run.log").resolve()
        started, ended, status, memory = run(args.env, args.params, log_file)
        lines = log_file.read_text().splitlines()
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    wall = ended - started
    print(f"\nkedro run --env {args.env}: exit status {status}\n")
    table = per_row(spans(lines, started, ended), rows, memory)
    print(time_table(table, wall) + "\n")
    metrics = json.loads(METRICS.read_text()) if status == 0 else {}
    print(summary_table(wall, peak_kb, metrics))
    sys.exit(status)


if __name__ == "__main__":
    main()
