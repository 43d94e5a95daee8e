"""The synth stage on Spark: with engine http, generation requests go out from Spark tasks (not the
driver) to a REAL `vllm serve` of the tiny model, and the outputs are the local executor's byte for byte.

The Spark run starts from a copy of the local run's response cache with some rows deleted: only the
misses (and the request that always fails) may leave the driver, the driver writes their results back,
and the cache ends up whole. `HTTPEngine.generate` is made to fail in the driver process during the Spark
run, so a fallback to generating on the driver fails the test; the manifest's `remote_*` counters come
from rows the Spark tasks return.

Skipped without pyspark, Java or vLLM, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_synth_support import SERVED_NAME, Server, require

from tests.conftest import pipeline_config
from tests.spark_util import TEST_CONF, require_pyspark

pytest_plugins = ["test_synth_support"]

require_pyspark()


def synth_config(model: Path, server: Server, output: str, executor: str) -> dict[str, Any]:
    """normalize -> synth (http) -> shard. Short prompts and outputs; several chunks per document, so
    several requests per Spark job; one request always fails (prompt longer than the context)."""
    cfg = pipeline_config(output=output, executor=executor, spark={"master": "local[2]", "conf": TEST_CONF})
    for source in cfg["inputs"]:  # absolute: the Spark session's workers may have another working directory
        source["path"] = str(Path(source["path"]).absolute())
    recipes = [
        {"recipe": "wiki_rephrase", "name": "rephrase", "prompt": "Rewrite this text clearly.\n{{ text }}",
         "select": "source == 'd'", "max_input_tokens": 90, "min_input_tokens": 10, "max_output_tokens": 8,
         "min_output_tokens": 1, "drop_truncated": False},
        {"name": "echo_thrice", "prompt": "Repeat:\n{{ text }}\n{{ text }}\n{{ text }}", "select": "id == 'pq-1'",
         "max_input_tokens": 2000, "min_input_tokens": 10, "max_output_tokens": 8, "min_output_tokens": 1},
    ]  # fmt: skip
    synth = {"name": "synth", "engine": "http", "base_urls": [server.base_url, server.base_url + "/v1"],
             "tokenizer": str(model), "trust_remote_code": True, "recipes": recipes, "max_docs_per_recipe": 5,
             "chunk_size": 6, "concurrency": 4}  # model: discovered from the server
    cfg["stages"] = [{"name": "normalize"}, synth,
                     {"name": "shard", "formats": ["parquet", "jsonl.zst"], "max_shard_bytes": 20000}]
    return cfg


def run_in_process(cfg: dict[str, Any]) -> None:
    from pipeline.config import validate
    from pipeline.runner import Runner

    Runner(validate(cfg)).run()


def manifest(out: Path, stage: str) -> dict[str, Any]:
    return json.loads((out / stage / "_manifest.json").read_text())


def tree_digests(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` but README.md (it names the run's output directory)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != "README.md"}


def cache_keys(path: Path) -> list[str]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return sorted(k for (k,) in db.execute("SELECT key FROM responses"))


def test_http_synth_on_spark_matches_local(workdir: Path, tiny_model_dir: Path, vllm_server: Server, spark: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    require("httpx")
    monkeypatch.chdir(workdir)
    local, remote = workdir / "out_local", workdir / "out_spark"
    run_in_process(synth_config(tiny_model_dir, vllm_server, str(local), "local"))
    ml = manifest(local, "synth")
    s_local = ml["stats"]
    assert ml["executor"] == "local" and s_local["generated"] > 6 and s_local["failed"] == 1
    assert s_local["synthetic_docs"] > 0 and s_local["generated_on"] == "driver"

    # the Spark run starts from the local cache without every other row
    full = cache_keys(local / "_cache" / "synth.sqlite")
    (remote / "_cache").mkdir(parents=True)
    with sqlite3.connect(local / "_cache" / "synth.sqlite") as src, \
            sqlite3.connect(remote / "_cache" / "synth.sqlite") as dst:
        src.backup(dst)
        dst.execute("DELETE FROM responses WHERE key IN (SELECT key FROM responses ORDER BY key LIMIT ?)",
                    (len(full) // 2,))
    deleted = len(full) // 2

    import synth.engine_http

    def on_the_driver(self: Any, requests: Any) -> Any:
        raise AssertionError(f"HTTPEngine.generate called on the driver for {len(requests)} requests")

    monkeypatch.setattr(synth.engine_http.HTTPEngine, "generate", on_the_driver)
    run_in_process(synth_config(tiny_model_dir, vllm_server, str(remote), "spark"))
    monkeypatch.undo()

    ms = manifest(remote, "synth")
    s = ms["stats"]
    assert ms["executor"] == "spark" and s["generated_on"] == "spark_tasks"
    # only the misses left the driver: the deleted rows and the failure (failures are never cached)
    assert s["remote_requests"] == deleted + 1 and s["generated"] == deleted, json.dumps(s)
    assert s["cache_hits"] == s["prompts"] - deleted - 1
    assert s["remote_tasks"] >= 2 and s["remote_jobs"] >= 1 and s["remote_task_seconds"] > 0
    assert cache_keys(remote / "_cache" / "synth.sqlite") == full  # the driver wrote the results back

    # the same documents, failures, counts and shards
    assert ms["counts"] == ml["counts"] and ms["tokens"] == ml["tokens"]
    for key in ("prompts", "failed", "failures_by_cause", "dropped", "dropped_by_cause", "synthetic_docs", "model"):
        assert s[key] == s_local[key], key
    assert s["model"] == SERVED_NAME
    assert ms["files"] == ml["files"]  # sha256 of every data/ and removed/ file
    assert tree_digests(remote / "synth" / "failed") == tree_digests(local / "synth" / "failed")
    assert tree_digests(remote / "synth" / "failed")
    assert manifest(remote, "shard")["counts"] == manifest(local, "shard")["counts"]
    assert tree_digests(remote / "shards") == tree_digests(local / "shards")


def test_spark_http_engine_keeps_the_engine_contract(vllm_server: Server, spark: Any) -> None:
    """Order, per-row failures and duplicates as `HTTPEngine.generate`, with the requests sent from tasks."""
    require("httpx")
    from pipeline.config import validate
    from pipeline.executors.spark import SparkExecutor
    from pipeline.executors.spark_synth import SparkHTTPEngine
    from synth.engine_http import HTTPEngine
    from synth.engines import GenRequest, Sampling

    sp = Sampling(temperature=0.8, top_p=0.95, max_tokens=6, seed=11)
    reqs = [GenRequest(f"r{i}", f"Item {i}: the river and the stone", Sampling(**{**sp.to_dict(), "seed": i}))
            for i in range(5)]
    reqs += [GenRequest("dup", reqs[2].prompt, reqs[2].params), GenRequest("long", "word " * 400, sp)]
    ex = SparkExecutor(validate(pipeline_config(executor="spark")), spark=spark)
    engine = SparkHTTPEngine(ex, [vllm_server.base_url], concurrency=3, timeout_s=60.0)
    assert engine.model == engine.model_id == SERVED_NAME
    got = engine.generate(reqs)
    with HTTPEngine([vllm_server.base_url], SERVED_NAME, concurrency=3) as direct:
        want = direct.generate(reqs)
    assert [r.to_dict() for r in got] == [r.to_dict() for r in want]
    assert got[-1].status == "failed" and "maximum context length" in (got[-1].error or "")
    assert engine.last_stats["unique"] == 6 and engine.last_stats["tasks"] == 2
    assert engine.totals["remote_requests"] == 6 and engine.totals["remote_jobs"] == 1
    assert engine.generate([]) == []


def test_offline_engine_stays_on_the_driver(spark: Any) -> None:
    """engine vllm: no engine from the executor, so the stage builds its own, in the driver process (one
    engine owns the accelerator); engine http: a client whose requests leave from Spark tasks."""
    from pipeline.config import validate
    from pipeline.executors.spark import SparkExecutor
    from pipeline.executors.spark_synth import SparkHTTPEngine

    ex = SparkExecutor(validate(pipeline_config(executor="spark")), spark=spark)
    assert ex.generation_engine("vllm", model="/models/x") is None
    engine = ex.generation_engine("http", base_urls=["http://127.0.0.1:9"], model="served", label="synth")
    assert isinstance(engine, SparkHTTPEngine) and engine.generated_on == "spark_tasks"
