"""Warnings that the project's libraries raise about each other, which no change to the
project can stop: each is ignored by its category, message and the module that raises
it, nothing wider, so that every other warning still shows.

:func:`ignore_library_warnings` runs when the package is imported (its ``__init__``):
under ``kedro run`` that is when Kedro loads ``settings.py``, before it reads any
configuration or imports kedro-mlflow. Drop an entry once the libraries named in its
comment have fixed it.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from typing import NamedTuple


class LibraryWarning(NamedTuple):
    category: type[Warning]
    # A regular expression matched from the start of the message.
    message: str
    # The modules the warning is attributed to (``warnings.warn``'s stack level).
    modules: tuple[str, ...]


LIBRARY_WARNINGS = (
    # omegaconf 2.4 deprecated `OmegaConf.register_new_resolver`; Kedro 1.7's
    # OmegaConfigLoader still registers with it (its `globals` and `runtime_params`
    # resolvers, and `custom_resolvers` such as the project's `oc.env`: settings.py),
    # as does kedro-mlflow 2.0.3's hook (`km.random_name`).
    LibraryWarning(
        UserWarning,
        r"register_new_resolver\(\) is deprecated",
        ("kedro.config.omegaconf_config", "kedro_mlflow.framework.hooks.mlflow_hook"),
    ),
    # MLflow 3 asks every PythonModel subclass for type hints on `predict`; kedro-mlflow
    # 2.0.3's KedroPipelineModel, defined whenever kedro-mlflow is imported, has none
    # (the project's own ServedModelPyfunc has them). MLflow colours the message.
    LibraryWarning(
        UserWarning,
        r"(\x1b\[[0-9;]*m)?Add type hints to the `predict` method",
        ("mlflow.pyfunc.utils.data_validation",),
    ),
    # torch 2.13 deprecated `LeafSpec`; pytorch-lightning 2.6.6's CombinedLoader, which
    # wraps every fit's data loaders, still creates one.
    LibraryWarning(
        FutureWarning,
        r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        ("pytorch_lightning.utilities._pytree",),
    ),
)


class _CapturedLibraryWarnings(logging.Filter):
    """Drops the ``py.warnings`` records (warnings that ``logging.captureWarnings``
    routes to logging, as Kedro's RichHandler does) of :data:`LIBRARY_WARNINGS`.

    Needed for MLflow's: it wraps its check in ``simplefilter("once", UserWarning)``,
    which goes before any filter of ours, so it reaches logging anyway. A record reads
    ``<file>:<line>: <category>: <message>``, without the category for a warning
    raised in Lightning's files (Lightning replaces ``warnings.formatwarning``).
    """

    def __init__(self) -> None:
        super().__init__()
        self._patterns = [
            re.compile(
                rf"^.*{_source_path(module)}:\d+: "
                rf"(?:{warning.category.__name__}: )?(?i:{warning.message})",
                re.DOTALL,
            )
            for warning in LIBRARY_WARNINGS
            for module in warning.modules
        ]

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(pattern.match(text) for pattern in self._patterns)


def _source_path(module: str) -> str:
    """The end of ``module``'s file path, as a regular expression."""
    return re.escape(os.sep + module.replace(".", os.sep) + ".py")


_CAPTURED = _CapturedLibraryWarnings()


def ignore_library_warnings() -> None:
    """Ignore each warning of :data:`LIBRARY_WARNINGS`, and nothing else."""
    for warning in LIBRARY_WARNINGS:
        modules = "|".join(re.escape(module) for module in warning.modules)
        warnings.filterwarnings(
            "ignore", warning.message, warning.category, rf"({modules})\Z"
        )
    logging.getLogger("py.warnings").addFilter(_CAPTURED)
