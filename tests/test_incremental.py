"""Scheduled incremental runs: only new files, deduplicated against all earlier generations."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import curate, pipeline_config, write_config


def test_incremental_generations(tmp_path: Path, corpus_dir: Path) -> None:
    shutil.copytree(corpus_dir / "corpus", tmp_path / "corpus")
    write_config(tmp_path / "pipeline.yaml", pipeline_config())
    first = curate("--log-format", "json", "run", "--incremental", cwd=tmp_path, check=True)
    logs = [json.loads(line) for line in first.stderr.splitlines() if line.startswith("{")]
    assert logs and all({"time", "level", "message"} <= set(entry) for entry in logs)
    gen1 = json.loads((tmp_path / "out" / "generations.json").read_text())["generations"][0]
    assert gen1["status"] == "finished" and len(gen1["files"]) == 5
    kept1 = pq.read_table(tmp_path / "out" / "gen-00001" / "shards" / "text" / "parquet").to_pylist()

    # a new file: 3 exact duplicates of documents kept by generation 1 (one with other case/spacing) + 2 new
    new_docs = [{"text": kept1[0]["text"]}, {"text": kept1[1]["text"].upper()}, {"text": kept1[2]["text"] + "  "},
                {"text": "A brand new document about lanterns and islands."},
                {"text": "Another new one, about meadows in winter."}]
    (tmp_path / "corpus" / "jsonl" / "z-new.jsonl").write_text("".join(json.dumps(d) + "\n" for d in new_docs))
    second = curate("run", "--incremental", cwd=tmp_path, check=True)
    assert "already done" not in second.stderr
    registry = json.loads((tmp_path / "out" / "generations.json").read_text())
    gen2 = registry["generations"][1]
    assert [f["path"].rsplit("/", 1)[-1] for f in gen2["files"]] == ["z-new.jsonl"]
    dedup = json.loads((tmp_path / "out" / "gen-00002" / "exact_dedup" / "_manifest.json").read_text())
    assert dedup["counts"] == {"in": 5, "kept": 2, "removed": 3, "added": 0, "by_reason": {"exact_dup": 3}}
    removed = pq.read_table(tmp_path / "out" / "gen-00002" / "exact_dedup" / "removed").to_pylist()
    assert {r["reason"].split("of=")[1] for r in removed} == {d["id"] for d in kept1[:3]}
    assert registry["total_docs_out"] == len(kept1) + 2

    third = curate("run", "--incremental", cwd=tmp_path)
    assert third.returncode == 0 and "nothing new" in third.stdout
    assert len(json.loads((tmp_path / "out" / "generations.json").read_text())["generations"]) == 2
    status = curate("status", "out", cwd=tmp_path, check=True)
    assert status.stdout.startswith("2 generation(s)")


def test_interrupted_generation_is_resumed(tmp_path: Path, corpus_dir: Path, default_run: Path) -> None:
    shutil.copytree(corpus_dir / "corpus", tmp_path / "corpus")
    write_config(tmp_path / "pipeline.yaml", pipeline_config())
    killed = curate("run", "--incremental", cwd=tmp_path, env={"CURATE_FAULT_KILL_AT": "30"})
    assert killed.returncode == -9
    registry = json.loads((tmp_path / "out" / "generations.json").read_text())
    assert registry["generations"][0]["status"] == "running"
    curate("run", "--incremental", cwd=tmp_path, check=True)
    registry = json.loads((tmp_path / "out" / "generations.json").read_text())
    assert [g["status"] for g in registry["generations"]] == ["finished"]
    reference = default_run / "out"  # a plain run of the same config and corpus
    docs = pq.read_table(tmp_path / "out" / "gen-00001" / "shards" / "text" / "parquet").column("id").to_pylist()
    assert sorted(docs) == sorted(pq.read_table(reference / "shards" / "text" / "parquet").column("id").to_pylist())
