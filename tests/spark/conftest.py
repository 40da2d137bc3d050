"""The Spark tests' session: one ``local[2]`` SparkSession for this folder's tests.

Starting a JVM takes some 15 s, so every Spark test shares one session (package scope:
it stops after this folder's last test, so the idle JVM's heartbeats and 1.5 GB do not
weigh on the tests after it), started as ``kedro run --env spark`` starts its own
(:func:`rating_prediction.runtime.spark.start_session`) with conf/spark/spark.yml's
settings made small: two cores, no web UI, four shuffle partitions. Every test of this
folder is marked ``spark`` (``pytest -m "not spark"`` leaves them out); those that
need the session skip where no Java 17+ is found.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rating_prediction.runtime.spark import (
    SparkSettings,
    SparkSetupError,
    find_java,
    start_session,
)

SPARK_TESTS = Path(__file__).parent
TEST_SETTINGS = {
    "spark.master": "local[2]",
    "spark.app.name": "rating-prediction-tests",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.sql.session.timeZone": "UTC",
    "spark.driver.memory": "1g",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test in this folder is a Spark test."""
    for item in items:
        if SPARK_TESTS in Path(item.path).parents:
            item.add_marker(pytest.mark.spark)


@pytest.fixture(scope="package")
def spark() -> Iterator:
    """A ``local[2]`` SparkSession shared by this folder's tests, stopped after them."""
    try:
        find_java()
    except SparkSetupError as error:
        pytest.skip(str(error))
    session = start_session(SparkSettings(TEST_SETTINGS, "tests/spark/conftest.py"))
    yield session
    session.stop()
