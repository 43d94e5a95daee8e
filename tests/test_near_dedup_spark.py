"""No removal by chain on Spark: the planted chain, star and append-style copy give the local
executor's clusters, byte for byte in what each document carries (dup_of, dup_cluster, dup_count)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.near_dup_shapes import planted_shapes
from tests.spark_util import require_pyspark
from tests.test_near_dedup_clusters import expected, run_stage

require_pyspark()


def test_planted_shapes_cluster_the_same_on_spark(spark: Any, tmp_path: Path) -> None:
    texts = planted_shapes()
    local = run_stage(tmp_path, texts, workers=2, partition_rows=4)
    on_spark = run_stage(tmp_path, texts, workers=2, partition_rows=4, executor="spark")
    assert on_spark == local == expected(texts)
    assert on_spark["c01"]["dup_of"] == "c00" and on_spark["c03"]["dup_of"] is None
    contained = run_stage(tmp_path, texts, partition_rows=6, executor="spark", similarity="containment",
                          num_perm=100, bands=25, rows=4)
    assert contained == expected(texts, "containment") and contained["a0"]["dup_of"] == "a1"
