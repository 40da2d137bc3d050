"""What keeps a ``kedro run`` honest when things go wrong: one run per project at a time
(a file lock), partial files of killed runs removed, and an MLflow run status that
tells the truth (FAILED on error, KILLED on Ctrl-C, SIGTERM or kill -9).

Used by :class:`rating_prediction.hooks.RunGuardHooks` and
:class:`rating_prediction.hooks.RunStatusHooks`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import signal
import socket
import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import mlflow
from filelock import FileLock, Timeout
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus, RunStatus

from rating_prediction.runtime.atomic import PARTIAL_PREFIX, remove_path

logger = logging.getLogger(__name__)

LOCK_FILE = ".kedro-run.lock"
HOLDER_FILE = ".kedro-run.pid"
# Folders of the project where outputs (and so partial files) are written.
OUTPUT_FOLDERS = ("data", "conf")
TAG_PREFIX = "rating_prediction."
# A fit's checkpoints live in the system's temporary folder, in a folder named with this
# prefix and the run's PID, so that the next run can remove those of killed processes.
CHECKPOINT_PREFIX = "rating-prediction-"


class ProjectBusyError(RuntimeError):
    """Another ``kedro run`` holds the project's lock."""


class RunLock:
    """The project's lock, held for a whole ``kedro run``; the holder's PID is written
    beside it so that a refused run can name it."""

    def __init__(self, project_path: Path) -> None:
        self._lock = FileLock(project_path / LOCK_FILE, timeout=0)
        self._holder = project_path / HOLDER_FILE

    def acquire(self) -> None:
        try:
            self._lock.acquire()
        except Timeout:
            raise ProjectBusyError(
                f"Another kedro run ({self._read_holder()}) is running in this "
                f"project: it holds {self._lock.lock_file}. Only one run at a time may "
                "write a project's outputs; wait for it to finish (or stop it) and run "
                "again."
            ) from None
        started = datetime.now(UTC).isoformat(timespec="seconds")
        self._holder.write_text(f"PID {os.getpid()}, started {started}\n")

    def release(self) -> None:
        if self._lock.is_locked:
            self._holder.unlink(missing_ok=True)
            self._lock.release(force=True)

    def _read_holder(self) -> str:
        try:
            return self._holder.read_text().strip()
        except OSError:
            return "PID unknown"


def remove_partial_files(project_path: Path) -> list[Path]:
    """Removes the partial files of runs that were killed mid-write (only call with
    the lock held) and Lightning checkpoint folders of processes that are gone."""
    removed = [
        path
        for folder in OUTPUT_FOLDERS
        for path in sorted((project_path / folder).rglob(f"{PARTIAL_PREFIX}*"))
    ]
    checkpoint = re.compile(rf"{re.escape(CHECKPOINT_PREFIX)}(\d+)-")
    for path in Path(tempfile.gettempdir()).glob(f"{CHECKPOINT_PREFIX}*"):
        match = checkpoint.match(path.name)
        if match and not _process_exists(int(match.group(1))):
            removed.append(path)
    for path in removed:
        remove_path(path)
    if removed:
        logger.warning(
            "Removed %d partial file(s) left by an interrupted run: %s",
            len(removed),
            ", ".join(str(path) for path in removed),
        )
    return removed


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def project_tags(project_path: Path) -> dict[str, str]:
    """Tags that tie an MLflow run to this project on this host (a hash of the path,
    which may be private) and to its process."""
    project = hashlib.sha256(str(project_path.resolve()).encode()).hexdigest()[:16]
    return {
        f"{TAG_PREFIX}project": project,
        f"{TAG_PREFIX}host": socket.gethostname(),
        f"{TAG_PREFIX}pid": str(os.getpid()),
    }


def close_orphaned_runs(project_path: Path, current_run_id: str) -> list[str]:
    """Marks KILLED the runs of this project left RUNNING by a killed process (with the
    lock held, no other run of the project can be alive), their RUNNING nested runs too,
    and marks FAILED the models they left PENDING."""
    client = MlflowClient()
    experiment_id = client.get_run(current_run_id).info.experiment_id
    tags = project_tags(project_path)
    orphans = [
        run.info.run_id
        for run in client.search_runs(
            [experiment_id],
            filter_string=(
                "attributes.status = 'RUNNING' and "
                f"tags.`{TAG_PREFIX}project` = '{tags[f'{TAG_PREFIX}project']}' and "
                f"tags.`{TAG_PREFIX}host` = '{tags[f'{TAG_PREFIX}host']}'"
            ),
        )
        if run.info.run_id != current_run_id
    ]
    for run_id in orphans:
        nested = client.search_runs(
            [experiment_id],
            filter_string=(
                "attributes.status = 'RUNNING' and "
                f"tags.`mlflow.parentRunId` = '{run_id}'"
            ),
        )
        for run in [*nested, client.get_run(run_id)]:
            client.set_terminated(
                run.info.run_id, RunStatus.to_string(RunStatus.KILLED)
            )
        for model in client.search_logged_models(
            experiment_ids=[experiment_id],
            filter_string=f"source_run_id = '{run_id}'",
        ):
            if model.status == LoggedModelStatus.PENDING:
                client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        logger.warning(
            "MLflow run %s was left RUNNING by a kedro run that was killed; marked "
            "KILLED (and any model it was logging FAILED).",
            run_id,
        )
    return orphans


class RunEndGuard:
    """Ends the MLflow run as KILLED when the run was interrupted (Ctrl-C, SIGTERM) and
    as FAILED otherwise, when :meth:`end_unfinished_run` is called at exit before the
    run finished.

    Kedro reports only ``Exception``s to ``on_pipeline_error``; a ``KeyboardInterrupt``
    or Lightning's ``sys.exit(1)`` after its graceful shutdown would otherwise reach
    MLflow's own exit handler, which ends the run FINISHED.
    """

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._on_signal)

    def uninstall(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def end_unfinished_run(self) -> None:
        if mlflow.active_run() is None:
            return
        status = RunStatus.KILLED if self.interrupted else RunStatus.FAILED
        while mlflow.active_run():
            mlflow.end_run(RunStatus.to_string(status))

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        self.interrupted = True
        previous = self._previous.get(number)
        if callable(previous):
            previous(number, frame)
        else:
            raise KeyboardInterrupt(f"interrupted by {signal.Signals(number).name}")
