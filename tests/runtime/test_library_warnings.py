"""The library warnings the package ignores: each only from the library that raises it."""

from __future__ import annotations

import logging
import os
import re
import warnings

import pytest

from rating_prediction.runtime.library_warnings import (
    LIBRARY_WARNINGS,
    ignore_library_warnings,
)

# A message of each entry, as its library words it.
SAMPLES = [
    (
        UserWarning,
        "register_new_resolver() is deprecated and will be removed in a future "
        "release.\nUse register_resolver() instead.\n",
    ),
    (
        UserWarning,
        "\x1b[33mAdd type hints to the `predict` method to enable data validation and "
        "automatic signature inference during model logging.\x1b[0m",
    ),
    (
        FutureWarning,
        "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, "
        "TreeSpec) and treespec.is_leaf()` instead.",
    ),
]
CASES = [
    (module, category, message)
    for entry in LIBRARY_WARNINGS
    for category, message in SAMPLES
    if category is entry.category and re.match(entry.message, message, re.IGNORECASE)
    for module in entry.modules
]


def _source(module: str) -> str:
    return os.sep + os.path.join("site-packages", *module.split(".")) + ".py"


def _warn_from(module: str, message: str, category: type[Warning]) -> list[str]:
    """What is shown of ``message`` warned from ``module``, the package's filters
    set after a catch-all "always"."""
    code = compile("warnings.warn(message, category)", _source(module), "exec")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ignore_library_warnings()
        exec(
            code,
            {"__name__": module, "warnings": warnings, "message": message}
            | {"category": category},
        )
    return [str(warning.message) for warning in caught]


def test_every_entry_has_a_sample_from_each_of_its_modules():
    assert len(CASES) == sum(len(entry.modules) for entry in LIBRARY_WARNINGS)


@pytest.mark.parametrize(("module", "category", "message"), CASES)
def test_each_is_ignored_from_its_library_only(module, category, message):
    assert _warn_from(module, message, category) == []
    assert _warn_from("rating_prediction.nodes", message, category) == [message]
    assert _warn_from(f"{module}_other", message, category) == [message]
    other = "Something else is deprecated"
    assert _warn_from(module, other, category) == [other]


@pytest.mark.parametrize(("module", "category", "message"), CASES)
def test_each_is_dropped_on_its_way_to_the_log_only(module, category, message):
    """Warnings routed to logging (Kedro's RichHandler) pass the ``py.warnings``
    filter, which MLflow's own ``simplefilter("once")`` cannot get ahead of."""
    logger = logging.getLogger("py.warnings")

    def passes(source: str, text: str) -> list[bool]:
        """Whether the record passes, as Python and as Lightning format it."""
        formatted = [
            f"{source}:187: {category.__name__}: {text}\n",
            f"{source}:187: {text}\n",
        ]
        return [
            all(
                f.filter(logger.makeRecord("py.warnings", 30, "", 0, shown, (), None))
                for f in logger.filters
            )
            for shown in formatted
        ]

    ignore_library_warnings()
    assert passes("/venv/lib" + _source(module), message) == [False, False]
    assert passes("/project/src/rating_prediction/nodes.py", message) == [True, True]
    assert passes("/venv/lib" + _source(module), "Something else") == [True, True]
