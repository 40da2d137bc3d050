"""Which configuration environment the run uses, for the code Kedro gives no
environment to: ``register_pipelines()`` takes no arguments, yet ``--env spark`` needs
other pipelines than a plain run.

:class:`RunEnvironmentStore` is Kedro's own (ephemeral) session store that also records
the environment when ``KedroSession.create`` stores it, which happens before any
pipeline is loaded (``settings.SESSION_STORE_CLASS``). Before any session exists (``kedro
registry list``), the environment is ``KEDRO_ENV``'s, as the next session's would be.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kedro.framework import project
from kedro.framework.session.store import BaseSessionStore

# A configuration environment is a Spark one when its folder holds this file: the
# settings the session is built from (conf/spark/spark.yml).
SPARK_SETTINGS_FILE = "spark.yml"
CONF_FOLDER = "conf"
# The machine's own overrides (Kedro's default run environment), never a Spark
# environment itself.
LOCAL_ENV = "local"


@dataclass
class RunEnvironment:
    """The environment (``None``: the default one) and project of the latest session."""

    env: str | None = None
    project_path: Path | None = None


# The latest session's environment; None until a session is created in this process.
_latest: RunEnvironment | None = None


class RunEnvironmentStore(BaseSessionStore):
    """Kedro's default session store (nothing persisted), recording the run's
    environment and project for :func:`run_environment`.

    A session that names another environment than the previous one in this process
    (a notebook's second session) also makes Kedro load the pipelines again, for the
    new environment.
    """

    def __init__(self, path: str, session_id: str) -> None:
        super().__init__(path, session_id)
        _record(RunEnvironment())

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        if key == "env":
            _record(RunEnvironment(value, _current().project_path))
        elif key == "project_path":
            _record(RunEnvironment(_current().env, Path(value)))


def _current() -> RunEnvironment:
    return _latest if _latest is not None else RunEnvironment()


def _record(environment: RunEnvironment) -> None:
    global _latest  # noqa: PLW0603 (the one place the run's environment is kept)
    previous = run_environment()
    _latest = environment
    if previous.env != environment.env:
        _reload_pipelines()


def _reload_pipelines() -> None:
    """Makes Kedro call ``register_pipelines()`` again on its next pipeline lookup
    (it keeps the first result for the process otherwise)."""
    if project.PACKAGE_NAME is not None:
        project.pipelines.configure(f"{project.PACKAGE_NAME}.pipeline_registry")


def run_environment() -> RunEnvironment:
    """The latest session's environment and project; before any session, ``KEDRO_ENV``
    and the working directory (what the next session will use)."""
    if _latest is None:
        return RunEnvironment(os.environ.get("KEDRO_ENV") or None, Path.cwd())
    return _latest


def env_uses_spark(conf_source: Path, env: str | None) -> bool:
    """Whether ``env`` (a folder of ``conf_source``) is a Spark environment: it holds
    ``spark.yml``. The default environment never is, whatever conf/local holds: a
    ``spark.yml`` there only overrides a Spark environment's settings."""
    if env is None or env == LOCAL_ENV:
        return False
    return (conf_source / env / SPARK_SETTINGS_FILE).is_file()


def run_uses_spark() -> bool:
    """Whether the run's environment is a Spark one (``kedro run --env spark``)."""
    environment = run_environment()
    project_path = environment.project_path or Path.cwd()
    return env_uses_spark(project_path / CONF_FOLDER, environment.env)
