"""End-to-end runner behaviour: accounting invariants, determinism, resume after SIGKILL, lock."""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import curate, pipeline_config, shard_digests, write_config


def _ids(path: Path) -> list[str]:
    files = sorted(path.glob("*.parquet"))
    return [i for f in files for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]


@pytest.fixture(scope="module")
def finished(default_run: Path) -> Path:
    """The session's finished run of the default config (conftest `default_run`): tests only read it."""
    return default_run


def test_accounting_every_id_exactly_once(finished: Path) -> None:
    out = finished / "out"
    stages = ["ingest", "normalize", "exact_dedup", "shard"]
    manifests = {s: json.loads((out / s / "_manifest.json").read_text()) for s in stages}
    for name, m in manifests.items():
        c = m["counts"]
        assert c["in"] + c["added"] == c["kept"] + c["removed"], name
        assert sum(c["by_reason"].values()) == c["removed"], name
    # ingest: 240 planted docs + 5 malformed lines
    assert manifests["ingest"]["counts"]["in"] == 245
    assert manifests["ingest"]["counts"]["removed"] == 5
    assert manifests["exact_dedup"]["counts"]["by_reason"] == {"exact_dup": 12}
    ingested = _ids(out / "ingest" / "data")
    assert len(ingested) == len(set(ingested)) == 240
    final = _ids(out / "shards" / "text" / "parquet")
    removed = [i for s in stages[1:] for i in _ids(out / s / "removed")]
    assert sorted(final + removed) == sorted(ingested)
    assert len(set(final) & set(removed)) == 0
    quarantined = pq.read_table(out / "quarantine").to_pylist()
    assert {(q["file"], q["line"]) for q in quarantined} == {("a.jsonl", n) for n in range(49, 54)}


def test_survivor_is_smallest_id(finished: Path) -> None:
    removed = pq.read_table(finished / "out" / "exact_dedup" / "removed").to_pylist()
    for row in removed:
        survivor = row["reason"].split(":of=")[1]
        assert survivor < row["id"]


def test_workers_do_not_change_shards(workdir: Path, finished: Path) -> None:
    curate("run", "--workers", "2", "--output", "out2", "--set", "partition_rows=7", cwd=workdir, check=True)
    one, two = shard_digests(finished / "out"), shard_digests(workdir / "out2")  # 1 worker, 16 rows
    assert one == two
    assert len(one) >= 4  # several size-capped shards in both formats


def test_resume_skips_finished_stages_and_reruns_changed_ones(workdir: Path, finished: Path) -> None:
    shutil.copytree(finished / "out", workdir / "out", symlinks=True)  # a finished run of this config
    first = shard_digests(workdir / "out")
    again = curate("run", cwd=workdir, check=True)
    assert "already done" in again.stderr and "shard: already done" in again.stderr
    changed = curate("run", "--set", "stages.shard.max_shard_bytes=50000", cwd=workdir, check=True)
    assert "exact_dedup: already done" in changed.stderr
    assert "shard: in" in changed.stderr
    assert shard_digests(workdir / "out") != first


# One kill per step of this run that the five-format ingest reaches first (commit 2: ingest's start
# marker; 9: reading the inputs; 67: ingest's group-by map; 160: normalize's partitions). Every step of
# every stage kind, each killed in its middle (and in a pool worker), is test_faults_every_stage's sweep.
@pytest.mark.parametrize("kill_at", [2, 9, 67, 160])
def test_sigkill_anywhere_then_resume_gives_identical_shards(workdir: Path, finished: Path, kill_at: int) -> None:
    killed = curate("run", cwd=workdir, env={"CURATE_FAULT_KILL_AT": str(kill_at)})
    if killed.returncode == 0:
        pytest.skip(f"run finished in fewer than {kill_at} writes")
    assert killed.returncode == -9
    curate("run", cwd=workdir, check=True)
    assert shard_digests(workdir / "out") == shard_digests(finished / "out")
    final = _ids(workdir / "out" / "shards" / "text" / "parquet")
    assert len(final) == len(set(final)) == 228
    assert not list((workdir / "out").rglob("*.tmp"))


def test_second_concurrent_run_exits_3(workdir: Path) -> None:
    out = workdir / "out"
    out.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl,sys,time; f=open(sys.argv[1],'a+'); fcntl.flock(f, fcntl.LOCK_EX); f.write('pid test'); "
        "f.flush(); print('locked', flush=True); time.sleep(60)"), str(out / "_lock")], stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        proc = curate("run", cwd=workdir)
        assert proc.returncode == 3
        assert "in use by another run" in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    # the lock dies with its holder: the next run proceeds
    curate("run", cwd=workdir, check=True)


def test_lock_released_after_run(finished: Path) -> None:
    lock = finished / "out" / "_lock"
    assert not lock.exists()
    try:
        with open(lock, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody holds it
    finally:
        lock.unlink()  # the shared run stays as the run left it


def test_fresh_starts_over(workdir: Path, finished: Path) -> None:
    shutil.copytree(finished / "out", workdir / "out", symlinks=True)  # a finished run of this config
    marker = workdir / "out" / "normalize" / "stale.txt"
    marker.write_text("x")
    t0 = time.time()
    proc = curate("run", "--fresh", cwd=workdir, check=True)
    assert "already done" not in proc.stderr
    assert not marker.exists()
    run = json.loads((workdir / "out" / "_run.json").read_text())
    assert run["status"] == "finished" and run["config_hash"]
    assert time.time() >= t0


def test_status_shows_counts(finished: Path) -> None:
    proc = curate("status", "out", cwd=finished, check=True)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("run test: finished")
    row = next(line.split() for line in lines if line.startswith("exact_dedup"))
    assert row[2:7] == ["done", "240", "0", "228", "12"]


def test_stage_input_reads_an_earlier_stage(workdir: Path) -> None:
    cfg = pipeline_config()
    cfg["stages"][2]["input"] = "normalize"  # shard the normalized docs, skipping dedup's output
    write_config(workdir / "pipeline.yaml", cfg)
    curate("run", cwd=workdir, check=True)
    assert len(_ids(workdir / "out" / "shards" / "text" / "parquet")) == 240
