"""What the Spark test modules share: the pyspark check, the test settings and the one `local[2]`
SparkSession of a test session (the `spark` fixture in conftest.py). Nothing here imports pyspark at
import time, so the fast tier never pays for it."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CI = os.environ.get("CI") == "true"
# Small data, short-lived JVMs: the C1 JIT alone and a serial GC halve warm-up on two shared cores.
TEST_CONF = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2", "spark.ui.enabled": "false",
             "spark.log.level": "ERROR", "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}


def require_pyspark() -> None:
    """Skip the calling test module when pyspark is missing (a failure under CI=true). Call it at module
    level, before importing anything that needs pyspark."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if CI:
            raise
        pytest.skip("pyspark is not installed (pip install -e '.[spark]')", allow_module_level=True)


def start_spark() -> tuple[Any, bool]:
    """The local[2] test session (getOrCreate) and whether we created it. No Java: a skip, or a
    failure under CI."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if CI:
            pytest.fail("no Java runtime for Spark")
        pytest.skip("no Java runtime for Spark")
    from pipeline.config import SparkConfig
    from pipeline.executors.spark import get_session

    return get_session(SparkConfig(master="local[2]", conf=TEST_CONF))
