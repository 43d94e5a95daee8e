"""The Spark executor gives the local executor's outputs: kept ids and removal reasons per stage,
manifest counts, and byte-identical text and Megatron shards; a SIGKILLed Spark run resumes from its
finished stages; the generic primitives keep their contracts (connected components against union-find,
with every other executor primitive: tests/test_executors.py).

Skipped without pyspark or Java, except under CI=true, where that is a failure. One SparkSession
(`local[2]`) serves the whole test session; only the run that gets killed starts its own.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, write_config
from tests.spark_util import TEST_CONF, full_config, require_pyspark

require_pyspark()

def run_in_process(cfg: dict[str, Any]) -> dict[str, Any]:
    from pipeline.config import validate
    from pipeline.runner import Runner

    return Runner(validate(cfg)).run()


def stage_names(cfg: dict[str, Any]) -> list[str]:
    return ["ingest", *[s["name"] for s in cfg["stages"]]]


def outcome(out: Path, stage: str) -> dict[str, Any]:
    """What a stage decided: kept ids (with copies), removed id -> reason, and its manifest counts."""
    def rows(sub: str, cols: list[str]) -> list[dict[str, Any]]:
        files = sorted((out / stage / sub).glob("part-*.parquet"))
        return [r for f in files for r in pq.read_table(f, columns=cols).to_pylist()]

    manifest = json.loads((out / stage / "_manifest.json").read_text())
    return {"kept": sorted(r["id"] for r in rows("data", ["id"])),
            "removed": sorted((r["id"], r["reason"]) for r in rows("removed", ["id", "reason"])),
            "counts": manifest["counts"], "tokens": manifest["tokens"], "executor": manifest["executor"],
            "files": sorted(p.name for p in (out / stage / "data").glob("part-*.parquet"))}


def shard_files(out: Path) -> dict[str, bytes]:
    root = out / "shards"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "README.md"}


def curate_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def kill_mid_stage(cwd: Path, config: Path, out: Path, victim: str) -> dict[str, Any]:
    """Start `curate run`, SIGKILL it once `victim` has been running for a moment; report what was done."""
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", str(config)], cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=curate_env())
    deadline = time.monotonic() + 400
    try:
        while not (out / victim / "_stage.json").exists():
            if proc.poll() is not None:
                raise AssertionError(f"the run ended before {victim}: {proc.communicate()[1][-3000:]}")
            assert time.monotonic() < deadline, f"the run never reached {victim}"
            time.sleep(0.05)
        time.sleep(1.0)  # inside the stage: its Spark jobs are running
    finally:
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    started = [s.name for s in out.iterdir() if (s / "_stage.json").exists()]
    done = [s for s in started if (out / s / "_manifest.json").exists()]
    return {"returncode": proc.returncode, "stderr": err, "started": started, "done": done}


@pytest.fixture(scope="module")
def both_runs(tmp_path_factory: pytest.TempPathFactory, spark_demo: Path, spark_models: dict[str, str],
              spark_local_run: Path, spark: Any) -> dict[str, Any]:
    """The full pipeline with the local executor (the session's `spark_local_run`), and with Spark:
    `curate run` SIGKILLed in the middle of near_dedup, then resumed (in this process, on the test
    session's Spark). Every stage is computed by Spark once: those before the kill by the killed
    process, the rest by the resume."""
    root = tmp_path_factory.mktemp("spark_vs_local")
    cfg = full_config(spark_demo, spark_models, root / "spark", "spark")
    config = write_config(root / "spark.yaml", cfg)
    killed = kill_mid_stage(root, config, root / "spark", "near_dedup")
    resumed = run_in_process(cfg)
    return {"local": spark_local_run, "spark": root / "spark", "cfg": cfg, "killed": killed, "resumed": resumed}


# ----------------------------------------------------------------------------------------------
# the same outputs


def test_every_stage_decides_the_same(both_runs: dict[str, Any]) -> None:
    removed_total = 0
    for stage in stage_names(both_runs["cfg"]):
        local, spark = outcome(both_runs["local"], stage), outcome(both_runs["spark"], stage)
        assert spark["executor"] == "spark" and local["executor"] == "local"
        for key in ("kept", "removed", "counts", "tokens", "files"):
            assert spark[key] == local[key], f"{stage}: {key} differs"
        removed_total += len(local["removed"])
    assert removed_total > 40  # the planted problems were found (dups, languages, quality, mix)
    by_stage = {s: outcome(both_runs["local"], s)["counts"]["by_reason"] for s in stage_names(both_runs["cfg"])}
    assert by_stage["exact_dedup"].get("exact_dup") and by_stage["near_dedup"].get("near_dup")
    assert by_stage["quality"].get("quality:not_top") and by_stage["mix"].get("mix:not_selected")
    assert by_stage["code_filter"].get("code_filter:generated") and by_stage["code_filter"].get("code_filter:minified")
    secrets = [json.loads((both_runs[k] / "secrets" / "_manifest.json").read_text())["stats"]
               for k in ("local", "spark")]
    assert secrets[0] == secrets[1] and secrets[0]["secrets_docs"] >= 2
    math = [pq.read_table(both_runs[k] / "math_detect" / "data", columns=["id", "math_score", "is_math"]).sort_by("id")
            for k in ("local", "spark")]
    assert math[0].equals(math[1]) and math[0].num_rows > 0


def test_shards_are_byte_identical(both_runs: dict[str, Any]) -> None:
    local, spark = shard_files(both_runs["local"]), shard_files(both_runs["spark"])
    assert sorted(local) == sorted(spark)
    assert sum(1 for f in local if f.startswith("text/parquet/")) >= 3
    assert any(f.endswith(".bin") for f in local) and any(f.endswith(".jsonl.zst") for f in local)
    for name in local:
        assert spark[name] == local[name], name


def test_global_statistics_match(both_runs: dict[str, Any]) -> None:
    def stats(out: Path, stage: str) -> dict[str, Any]:
        return json.loads((out / stage / "_manifest.json").read_text())["stats"]

    local, spark = stats(both_runs["local"], "mix"), stats(both_runs["spark"], "mix")
    assert spark["domains"] == local["domains"] and spark["realized_tokens"] == local["realized_tokens"]
    local, spark = stats(both_runs["local"], "quality"), stats(both_runs["spark"], "quality")
    assert spark["threshold"] == local["threshold"]
    assert spark["bucket_boundaries"] == local["bucket_boundaries"]
    assert spark["score_mean"] == pytest.approx(local["score_mean"], rel=1e-5)


def test_later_stages_run_locally_on_spark_outputs(both_runs: dict[str, Any], tmp_path: Path) -> None:
    """A Spark run's finished stages are reused by the local executor (and give the same shards)."""
    out = tmp_path / "mixed"
    shutil.copytree(both_runs["spark"], out)
    for stage in ("mix", "shard", "shards"):
        shutil.rmtree(out / stage)
    cfg = {**both_runs["cfg"], "output": str(out), "executor": "local"}
    summary = run_in_process(cfg)
    cached = {s["stage"] for s in summary["stages"] if s.get("cached")}
    assert cached == set(stage_names(cfg)) - {"mix", "shard"}
    assert shard_files(out) == shard_files(both_runs["local"])


# ----------------------------------------------------------------------------------------------
# a killed Spark run resumes


def test_sigkill_mid_stage_then_resume(both_runs: dict[str, Any]) -> None:
    killed, resumed, out = both_runs["killed"], both_runs["resumed"], both_runs["spark"]
    assert killed["returncode"] == -signal.SIGKILL
    assert "ingest" in killed["done"] and "shard" not in killed["done"]
    assert set(killed["started"]) - set(killed["done"]), "the kill did not land inside a stage"
    cached = {s["stage"] for s in resumed["stages"] if s.get("cached")}
    assert cached == set(killed["done"])  # finished stages are reused, the rest is computed
    assert resumed["status"] == "finished"
    assert not list(out.rglob("*.tmp")) and not (out / "_lock").exists()
    # and the shards are the local run's: test_shards_are_byte_identical


# ----------------------------------------------------------------------------------------------
# pieces


def test_map_and_group_by_key_keep_the_local_contract(spark: Any, tmp_path: Path) -> None:
    import functools

    from pipeline.config import validate
    from pipeline.executors.local import LocalExecutor
    from pipeline.executors.spark import SparkExecutor

    parts = []
    for i in range(5):
        ids = [f"d{i}-{j}" for j in range(30 + i)]
        keys = np.array([(j * 2654435761 + i) % 97 for j in range(len(ids))], dtype=np.uint64) << np.uint64(57)
        p = tmp_path / f"part-{i}.parquet"
        pq.write_table(pa.table({"id": ids, "key": keys}), p)
        parts.append(p)
    cfg = validate({"output": str(tmp_path / "o"), "executor": "spark",
                    "inputs": [{"name": "x", "path": "x", "format": "jsonl"}]})
    ex = SparkExecutor(cfg)
    assert ex.map(_square, list(range(7))) == [i * i for i in range(7)]
    for partitioner in ("hash", "range"):
        key_fn = functools.partial(_keys, partitioner)
        ours = ex.group_by_key(parts, key_fn, _reduce, tmp_path / f"s-{partitioner}", n_buckets=6,
                               partitioner=partitioner)
        theirs = LocalExecutor(1).group_by_key(parts, key_fn, _reduce, tmp_path / f"l-{partitioner}", n_buckets=6,
                                               partitioner=partitioner)
        assert [pq.read_table(p).to_pylist() for p in ours] == [pq.read_table(p).to_pylist() for p in theirs]
    with pytest.raises(Exception, match="ValueError: bad item 3"):
        ex.map(_fail_on_3, [1, 2, 3])
    ex.close()


def _square(x: int) -> int:
    return x * x


def _slow_square(x: int) -> int:
    time.sleep(0.7)
    return x * x


def test_map_progress_moves_while_tasks_run(spark: Any, tmp_path: Path) -> None:
    """Progress comes from Spark's status tracker while the job runs, not only `0/n` then `n/n`."""
    from pipeline.config import validate
    from pipeline.executors.spark import SparkExecutor

    cfg = validate({"output": str(tmp_path / "o"), "executor": "spark",
                    "inputs": [{"name": "x", "path": "x", "format": "jsonl"}]})
    ex = SparkExecutor(cfg)
    seen: list[tuple[int, int]] = []
    assert ex.map(_slow_square, list(range(8)), progress=lambda d, t: seen.append((d, t))) == [
        i * i for i in range(8)]
    done = [d for d, _ in seen]
    assert seen[0] == (0, 8) and seen[-1] == (8, 8)
    assert any(0 < d < 8 for d in done), seen  # movement between the start and the end
    assert done == sorted(done) and {t for _, t in seen} == {8}
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None  # the job group is cleared


def _fail_on_3(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x


def _keys(partitioner: str, path: Path, part: int) -> pa.Table:
    t = pq.read_table(path)
    key = t.column("key") if partitioner == "range" else t.column("key").cast(pa.string())
    return pa.table({"key": key, "id": t.column("id"), "part": pa.array([part] * t.num_rows, pa.int32())})


def _reduce(table: pa.Table) -> pa.Table:
    """Order-sensitive on purpose: the bucket's rows in arrival order, with their position."""
    if table.num_rows == 0:
        return pa.table({"id": pa.array([], pa.string()), "pos": pa.array([], pa.int64())})
    return pa.table({"id": table.column("id"), "pos": pa.array(np.arange(table.num_rows))})


def test_input_order_shards_and_file_uris(spark: Any, both_runs: dict[str, Any], tmp_path: Path) -> None:
    """`shuffle: false` keeps the input order, `columns` selects; `file://` URIs for inputs and output.
    Both runs continue from the finished stages of the runs above (only the changed shard stage runs)."""
    outs = {}
    for executor in ("local", "spark"):
        outs[executor] = tmp_path / executor
        shutil.copytree(both_runs[executor], outs[executor], ignore=shutil.ignore_patterns("shards", "shard"))
        cfg = json.loads(json.dumps(both_runs["cfg"]))
        cfg.update(output=f"file://{outs[executor]}", executor=executor)
        for i in cfg["inputs"]:
            i["path"] = f"file://{i['path']}"
        cfg["stages"][-1] = {"name": "shard", "formats": ["parquet", "jsonl.zst"], "shuffle": False,
                             "columns": ["text", "source"], "max_shard_docs": 40}
        summary = run_in_process(cfg)
        assert [s["stage"] for s in summary["stages"] if not s.get("cached")] == ["shard"]
    local, spark_files = shard_files(outs["local"]), shard_files(outs["spark"])
    mixed = sorted((outs["spark"] / "mix" / "data").glob("*.parquet"))
    mixed_ids = [i for f in mixed for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]
    assert len(mixed_ids) > 80  # at least three shards of 40
    # every 40 documents one shard, in two formats
    assert len([f for f in local if f.startswith("text/")]) == 2 * -(-len(mixed_ids) // 40)
    assert spark_files == local
    first = pq.read_table(outs["spark"] / "shards" / "text" / "parquet" / "part-00000.parquet")
    assert first.column_names == ["id", "text", "source"]
    expected = mixed_ids[:40]
    assert first.column("id").to_pylist() == expected


def test_relative_paths_with_a_session_started_elsewhere(spark: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """An existing session's Python workers run in the JVM's working directory, not the caller's: a
    config with relative inputs and output must still read and write under the caller's directory."""
    from pipeline.config import validate
    from pipeline.runner import Runner
    from tests.conftest import build_corpus, pipeline_config

    jvm_cwd = Path(os.getcwd())
    work = tmp_path / "elsewhere"
    build_corpus(work / "corpus", n=60)
    monkeypatch.chdir(work)
    output = f"out-{tmp_path.name}"
    cfg = validate(pipeline_config(output=output, executor="spark", workers=1,
                                   spark={"master": "local[2]", "conf": TEST_CONF}))
    Runner(cfg).run()
    manifest = json.loads((work / output / "shards" / "manifest.json").read_text())
    assert manifest["docs"] > 0
    assert not (jvm_cwd / output).exists()
