"""In-file parallelism on Spark: a JSONL file read in byte ranges and a Parquet file in runs of row
groups by Spark tasks give the bytes of whole-file reading with the local executor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.spark_util import require_pyspark
from tests.test_ingest_split import _files, _run, _write_inputs

require_pyspark()


def test_spark_splits_give_the_bytes_of_whole_file_reading(spark: Any, tmp_path: Path) -> None:
    from pipeline.config import validate
    from pipeline.runner import Runner
    from tests.spark_util import TEST_CONF

    _write_inputs(tmp_path)
    reference = _files(_run(tmp_path, "whole", 1 << 40, 1))
    inputs = [{"name": "j", "path": str(tmp_path / "big.jsonl"), "format": "jsonl", "split_bytes": 9000},
              {"name": "z", "path": str(tmp_path / "small.jsonl.gz"), "format": "jsonl.gz"},
              {"name": "p", "path": str(tmp_path / "many.parquet"), "format": "parquet", "id_field": "id",
               "split_bytes": 2000}]
    cfg = {"name": "split", "output": str(tmp_path / "spark"), "workers": 2, "seed": 1, "partition_rows": 230,
           "executor": "spark", "spark": {"master": "local[2]", "conf": TEST_CONF},
           "inputs": inputs, "stages": [{"name": "normalize"}]}
    Runner(validate(cfg)).run()
    assert _files(tmp_path / "spark") == reference
