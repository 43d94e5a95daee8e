"""`decontaminate` (remove and mask) and `paragraph_dedup` (max_docs and keep: first, paragraphs and
lines) on Spark `local[2]` decide exactly as on the local executor: kept ids, removed ids with their
reasons, manifest counts and stats, contamination tables and byte-identical shards."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from pipeline.demo.corpus import demo_inputs, write_demo_corpus
from pipeline.demo.plants import EVAL_SET
from tests.spark_util import TEST_CONF, require_pyspark

require_pyspark()

from tests.test_spark import outcome, run_in_process, shard_files  # noqa: E402 - after the pyspark check


def config(demo: Path, out: Path, executor: str) -> dict[str, Any]:
    eval_sets = [{"name": EVAL_SET, "path": str(demo / "eval" / f"{EVAL_SET}.jsonl")}]
    stages = [
        {"name": "normalize"},
        {"name": "decon_remove", "kind": "decontaminate", "eval_sets": eval_sets},
        {"name": "decon_mask", "kind": "decontaminate", "input": "normalize", "eval_sets": eval_sets,
         "action": "mask", "margin": 50, "min_chars": 1500},
        {"name": "boilerplate", "kind": "paragraph_dedup", "max_docs": 4},
        {"name": "lines", "kind": "paragraph_dedup", "unit": "line", "min_unit_chars": 20},
        {"name": "shard", "formats": ["parquet", "jsonl.zst"], "max_shard_bytes": 100_000},
    ]
    return {"name": "decon-spark", "output": str(out), "executor": executor, "workers": 2, "seed": 2,
            "partition_rows": 150, "inputs": demo_inputs(demo), "stages": stages,
            "spark": {"master": "local[2]", "conf": TEST_CONF}}


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory, spark: Any) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("decon_spark")
    write_demo_corpus(root / "demo", 700, seed=5)
    cfg = config(root / "demo", root / "local", "local")
    run_in_process(cfg)
    run_in_process(config(root / "demo", root / "spark", "spark"))
    return {"local": root / "local", "spark": root / "spark", "stages": [s["name"] for s in cfg["stages"]]}


def test_same_decisions_and_bytes(both: dict[str, Any]) -> None:
    acted = {}
    for stage in both["stages"]:
        local, spark = outcome(both["local"], stage), outcome(both["spark"], stage)
        assert (local["executor"], spark["executor"]) == ("local", "spark")
        for key in ("kept", "removed", "counts", "files"):
            assert spark[key] == local[key], f"{stage}: {key} differs"
        stats = [json.loads((both[e] / stage / "_manifest.json").read_text())["stats"] for e in ("local", "spark")]
        assert stats[0] == stats[1], stage
        files = [{k: v for k, v in json.loads((both[e] / stage / "_manifest.json").read_text())["files"].items()
                  if k != "shards/README.md"} for e in ("local", "spark")]  # the card names the config hash
        assert files[0] == files[1], stage  # every kept and removed partition byte for byte
        acted[stage] = stats[0]
    assert acted["decon_remove"]["eval_sets"][EVAL_SET]["docs_matched"] > 5
    assert acted["decon_mask"]["masked_docs"] > 5
    assert acted["boilerplate"]["units_removed"] > 20 and acted["lines"]["units_removed"] > 0
    for stage in ("decon_remove", "decon_mask"):
        local, spark = (pq.read_table(both[e] / stage / "contamination.parquet") for e in ("local", "spark"))
        assert local.num_rows > 5 and local.equals(spark)
    assert shard_files(both["local"]) == shard_files(both["spark"])
