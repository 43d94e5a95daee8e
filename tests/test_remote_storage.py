"""Inputs and outputs on an S3-compatible object store (`s3://` / `s3a://`).

The store is moto's S3 server on a local port: a real HTTP endpoint speaking the S3 protocol, which
both fsspec (s3fs) and Arrow's own S3 client reach through `AWS_ENDPOINT_URL`, exactly as they would
reach MinIO, Ceph or AWS. A run on the store must give the same shards, byte for byte, as a run on the
local disk, resume after a SIGKILL, and refuse a second concurrent run (a lease, as there is no flock).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import INPUTS, build_corpus, build_tokenizer, curate, pipeline_config, shard_digests, write_config

if os.environ.get("CI"):  # CI installs the dev extra: a missing S3 client or endpoint is a failure there
    import moto.server as moto_server
    import s3fs  # noqa: F401
else:
    pytest.importorskip("s3fs")
    moto_server = pytest.importorskip("moto.server")

BUCKET = "curate-test"
STAGES: list[dict[str, Any]] = [
    {"name": "normalize"},
    {"name": "exact_dedup"},
    {"name": "heuristics", "filters": ["gopher_repetition"]},
    {"name": "near_dedup", "threshold": 0.8},
    {"name": "domain", "kind": "domain_classifier", "rules": [
        {"source": "a", "domain": "web"}, {"source": "b", "domain": "web"}, {"source": "c", "domain": "forum"},
        {"source": "d", "domain": "wiki"}, {"source": "e", "domain": "math"}]},
    {"name": "tokenize", "tokenizer": "TOKENIZER"},
    {"name": "mix", "weighting": "natural", "budget_tokens": 15000},
    {"name": "shard", "formats": ["parquet", "jsonl.zst", "megatron"], "tokenizer": "TOKENIZER",
     "max_shard_bytes": 30000},
]


@pytest.fixture(scope="module")
def s3_env() -> Iterator[dict[str, str]]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://{host}:{port}", "CURATE_LEASE_S": "6", "CURATE_LEASE_SETTLE_S": "0.2"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    import boto3

    boto3.client("s3").create_bucket(Bucket=BUCKET)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def _fs() -> Any:
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    return s3fs.S3FileSystem()


@pytest.fixture(scope="module")
def remote_corpus(s3_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """The five-format test corpus, uploaded under s3://BUCKET/corpus/."""
    root = tmp_path_factory.mktemp("remote_src")
    build_corpus(root / "corpus")
    _fs().put(str(root / "corpus"), f"{BUCKET}/corpus", recursive=True)
    return f"s3a://{BUCKET}/corpus"


def _config(tmp: Path, tokenizer_dir: Path, output: str, inputs_root: str | None, **extra: Any) -> Path:
    inputs = json.loads(json.dumps(INPUTS))
    if inputs_root:
        for inp in inputs:
            inp["path"] = inp["path"].replace("corpus", inputs_root, 1)
    stages = json.loads(json.dumps(STAGES).replace("TOKENIZER", str(tokenizer_dir)))
    cfg = pipeline_config(output=output, inputs=inputs, stages=stages, partition_rows=64, **extra)
    return write_config(tmp / f"pipeline-{abs(hash(output))}.yaml", cfg)


def _remote_manifest(uri: str) -> dict[str, Any]:
    return json.loads(_fs().cat(f"{uri.split('://', 1)[1]}/shards/manifest.json"))


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory: pytest.TempPathFactory, tokenizer_dir: Path) -> Path:
    work = tmp_path_factory.mktemp("remote_ref")
    build_corpus(work / "corpus")
    config = _config(work, tokenizer_dir, "out", None)
    curate("run", str(config), cwd=work, check=True)
    return work / "out"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tokenizer(tmp_path_factory.mktemp("tok"))


def test_remote_inputs_and_output_give_the_local_shards(
        tmp_path: Path, s3_env: dict[str, str], remote_corpus: str, local_reference: Path,
        tokenizer_dir: Path) -> None:
    output = f"s3a://{BUCKET}/runs/same"
    config = _config(tmp_path, tokenizer_dir, output, remote_corpus)
    curate("run", str(config), cwd=tmp_path, check=True)
    remote = _remote_manifest(output)
    local = json.loads((local_reference / "shards" / "manifest.json").read_text())
    assert {s["file"]: s["sha256"] for s in remote["shards"]} == shard_digests(local_reference)
    assert (remote["docs"], remote["tokens"]) == (local["docs"], local["tokens"])
    fs = _fs()
    idx = sorted(p.name for p in (local_reference / "shards" / "megatron").glob("*.idx"))
    assert idx and all(fs.cat(f"{BUCKET}/runs/same/shards/megatron/{name}") ==
                       (local_reference / "shards" / "megatron" / name).read_bytes() for name in idx)
    for stage in ("ingest", "exact_dedup", "near_dedup", "mix"):
        here = json.loads((local_reference / stage / "_manifest.json").read_text())["counts"]
        there = json.loads(fs.cat(f"{BUCKET}/runs/same/{stage}/_manifest.json"))["counts"]
        assert here == there, stage
    # the quarantine names the remote file and line, like a local one
    quarantine = fs.glob(f"{BUCKET}/runs/same/quarantine/*.parquet")
    assert quarantine
    # a second run reuses every finished stage (manifests and checksums read from the store)
    again = curate("run", str(config), cwd=tmp_path, check=True)
    assert "shard: already done" in again.stderr
    # notebook API and status read the run where it is
    from pipeline import open_run

    view = open_run(output)
    stats = view.stats().set_index("stage")
    assert stats.loc["shard", "state"] == "done"
    assert len(view.docs("shard")) == remote["docs"]
    status = curate("status", output, cwd=tmp_path, check=True)
    assert "shard" in status.stdout
    curate("report", output, cwd=tmp_path, check=True)
    assert b"ling-curate report" in _fs().cat(f"{BUCKET}/runs/same/report.html")


def test_spark_on_the_store_gives_the_local_shards(
        tmp_path: Path, s3_env: dict[str, str], remote_corpus: str, local_reference: Path,
        tokenizer_dir: Path) -> None:
    """executor: spark with inputs and output on the store: Spark's tasks read and write through the
    same storage layer (no Hadoop S3 connector needed), and the shards are the local executor's."""
    if not os.environ.get("CI"):
        pytest.importorskip("pyspark")
    from tests.spark_util import TEST_CONF

    output = f"s3a://{BUCKET}/runs/spark"
    config = _config(tmp_path, tokenizer_dir, output, remote_corpus, executor="spark",
                     spark={"master": "local[2]", "conf": TEST_CONF})
    curate("run", str(config), cwd=tmp_path, check=True, timeout=600)
    remote = _remote_manifest(output)
    assert {s["file"]: s["sha256"] for s in remote["shards"]} == shard_digests(local_reference)
    fs = _fs()
    for stage in ("ingest", "exact_dedup", "near_dedup", "mix", "shard"):
        manifest = json.loads(fs.cat(f"{BUCKET}/runs/spark/{stage}/_manifest.json"))
        here = json.loads((local_reference / stage / "_manifest.json").read_text())["counts"]
        assert manifest["counts"] == here, stage
    assert json.loads(fs.cat(f"{BUCKET}/runs/spark/near_dedup/_manifest.json"))["executor"] == "spark"


def test_killed_remote_run_resumes_to_identical_shards(
        tmp_path: Path, s3_env: dict[str, str], local_reference: Path, tokenizer_dir: Path) -> None:
    build_corpus(tmp_path / "corpus")
    output = f"s3://{BUCKET}/runs/killed"
    config = _config(tmp_path, tokenizer_dir, output, None)
    # one kill (the 70th commit): what the store adds is the lease a dead run leaves and resuming from the
    # store; killing every step, repeatedly in one output, is the local sweeps' (test_faults_every_stage)
    killed = curate("run", str(config), cwd=tmp_path, env={"CURATE_FAULT_KILL_AT": "70"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    # the dead run's lease blocks a new run until it expires (CURATE_LEASE_S=6 here)
    blocked = curate("run", str(config), cwd=tmp_path)
    assert blocked.returncode == 3 and "in use by another run" in blocked.stderr
    time.sleep(float(s3_env["CURATE_LEASE_S"]) + 0.5)
    resumed = curate("run", str(config), cwd=tmp_path, check=True)
    assert "ingest: already done" in resumed.stderr
    assert {s["file"]: s["sha256"] for s in _remote_manifest(output)["shards"]} == shard_digests(local_reference)
    assert not [k for k in _fs().find(f"{BUCKET}/runs/killed") if k.rsplit("/", 1)[-1].startswith(".")]
    assert not _fs().exists(f"{BUCKET}/runs/killed/_lock")


def test_remote_lease_refuses_a_concurrent_run(tmp_path: Path, s3_env: dict[str, str]) -> None:
    from pipeline.lease import lease_lock
    from pipeline.runner import LockHeld
    from pipeline.storage import location

    lock = location(f"s3a://{BUCKET}/runs/leased/_lock")
    with lease_lock(lock, LockHeld):
        assert json.loads(lock.read_text())["holder"].startswith(f"pid {os.getpid()}")
        with pytest.raises(LockHeld, match="in use by another run"):
            with lease_lock(lock, LockHeld):
                pass
    assert not lock.exists()


def test_unknown_scheme_is_a_config_error(tmp_path: Path) -> None:
    build_corpus(tmp_path / "corpus")
    write_config(tmp_path / "pipeline.yaml", pipeline_config(output="nosuchfs://bucket/out"))
    proc = curate("validate", cwd=tmp_path)
    assert proc.returncode == 2
    assert "output" in proc.stderr and "nosuchfs" in proc.stderr


def test_paths_and_uris() -> None:
    from pipeline.executors.spark import to_uri
    from pipeline.storage import arrow, is_local, location, scheme_of

    assert is_local(location("out/demo")) and is_local(location("file:///data/x"))
    assert str(location("file:///data/x")) == "/data/x"
    remote = location("s3a://bucket/out") / "near_dedup" / "data"
    assert not is_local(remote) and scheme_of(remote) == "s3"
    assert arrow(remote) == "s3://bucket/out/near_dedup/data"  # Arrow's own S3 client
    assert to_uri(remote) == "s3a://bucket/out/near_dedup/data"  # Hadoop's S3 connector on Spark
    assert to_uri("hdfs://nn:8020/corpus") == "hdfs://nn:8020/corpus"
    assert to_uri("/data/x").startswith("file:///")
