"""In-file parallelism: a large plain JSONL file read in byte ranges and a Parquet file in runs of row
groups give exactly the partitions, ids, line numbers and quarantine rows of whole-file reading, for
any split size and worker count; compressed JSONL stays whole."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.ingest import InputFile, list_input_files
from pipeline.ingest_split import partition_pieces, plan_splits


def _write_inputs(root: Path) -> None:
    rng = random.Random(3)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
    lines: list[bytes] = []
    for i in range(1500):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(5, 60) if i != 700 else 5000))
        kind = i % 97  # line 701 (~30 KB) is longer than most ranges: it swallows their next cut
        if kind == 5:
            lines.append(b"{not json")
        elif kind == 11:
            lines.append(b"")  # blank: skipped, but counted as a line
        elif kind == 17:
            lines.append(b'{"text": "caf\xe9"}')  # invalid UTF-8
        elif kind == 23:
            lines.append(json.dumps({"body": text}).encode())  # missing text field
        else:
            lines.append(json.dumps({"text": text, "n": i}).encode())
    (root / "big.jsonl").write_bytes(b"\n".join(lines))  # the last line has no newline
    with gzip.open(root / "small.jsonl.gz", "wb") as fh:
        fh.write(b"\n".join(lines[:300]) + b"\n")
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 40))) for _ in range(1200)]
    texts[7], texts[500], texts[1199] = "", None, "   "  # type: ignore[call-overload]
    pq.write_table(pa.table({"id": [f"p{i}" for i in range(1200)], "text": texts}), root / "many.parquet",
                   row_group_size=37)


def _run(root: Path, out: str, split_bytes: int, workers: int) -> Path:
    from pipeline.config import validate
    from pipeline.runner import Runner

    inputs = [{"name": "j", "path": str(root / "big.jsonl"), "format": "jsonl", "split_bytes": split_bytes},
              {"name": "z", "path": str(root / "small.jsonl.gz"), "format": "jsonl.gz", "split_bytes": split_bytes},
              {"name": "p", "path": str(root / "many.parquet"), "format": "parquet", "id_field": "id",
               "split_bytes": split_bytes}]
    cfg = {"name": "split", "output": str(root / out), "workers": workers, "seed": 1, "partition_rows": 230,
           "inputs": inputs, "stages": [{"name": "normalize"}]}
    Runner(validate(cfg)).run()
    return root / out


def _files(out: Path) -> dict[str, bytes]:
    found = sorted([*(out / "ingest" / "data").glob("*.parquet"), *(out / "quarantine").glob("*.parquet"),
                    *(out / "normalize" / "data").glob("*.parquet")])
    return {str(p.relative_to(out)): p.read_bytes() for p in found}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("split_inputs")
    _write_inputs(root)
    return root


def test_splits_give_the_bytes_of_whole_file_reading(inputs: Path) -> None:
    whole = _run(inputs, "whole", 1 << 40, 1)
    reference = _files(whole)
    manifest = json.loads((whole / "ingest" / "_manifest.json").read_text())["counts"]
    assert manifest["by_reason"]["quarantine:invalid_json"] > 0 and manifest["by_reason"]["quarantine:empty_text"] > 0
    quarantine = pq.read_table(whole / "quarantine" / "part-000-00000.parquet").to_pylist()
    assert {q["line"] for q in quarantine if q["error"].startswith("invalid JSON")} == {
        i + 1 for i in range(1500) if i % 97 == 5}
    for split_bytes, workers in ((4096, 2), (10_000, 1), (77_777, 2), (1500, 2)):
        got = _run(inputs, f"s{split_bytes}-{workers}", split_bytes, workers)
        assert _files(got) == reference, (split_bytes, workers)
        assert json.loads((got / "ingest" / "_manifest.json").read_text())["counts"] == manifest


def test_what_is_split_and_where(inputs: Path, tmp_path: Path) -> None:
    from pipeline.config import validate

    cfg = validate({"name": "x", "output": str(inputs / "o"), "inputs": [
        {"name": "j", "path": str(inputs / "big.jsonl"), "split_bytes": 10_000},
        {"name": "z", "path": str(inputs / "small.jsonl.gz"), "split_bytes": 100},
        {"name": "p", "path": str(inputs / "many.parquet"), "split_bytes": 1}], "stages": []})
    files: list[InputFile] = list_input_files(cfg.inputs)
    jsonl = plan_splits(files[0], 10_000)
    data = (inputs / "big.jsonl").read_bytes()
    assert jsonl is not None and len(jsonl) > 5 and jsonl[0].start == 0 and jsonl[-1].stop == len(data)
    for a, b in zip(jsonl[:-1], jsonl[1:], strict=True):
        assert a.stop == b.start and data[b.start - 1:b.start] == b"\n"
    long_line = data.index(b"\n", sum(len(line) + 1 for line in data.split(b"\n")[:700]))  # line 701 ends here
    assert [s for s in jsonl if s.stop - s.start > 10_000 + 500] == [s for s in jsonl if s.start < long_line < s.stop]
    even = tmp_path / "even.jsonl"
    even.write_bytes(b"".join(json.dumps({"text": f"document {i:05d}"}).encode() + b"\n" for i in range(3000)))
    for slots in (1, 2, 3, 4):  # as many equal ranges for every worker (a multiple of the slots), each <= split_bytes
        ranges = plan_splits(InputFile(0, 0, files[0].input, str(even), "even.jsonl"), 10_000, slots)
        assert ranges is not None and len(ranges) % slots == 0 and len(ranges) >= 9  # 81,000 bytes
        assert [s.start for s in ranges[1:]] == [s.stop for s in ranges[:-1]] and ranges[-1].stop == 81_000
        sizes = [s.stop - s.start for s in ranges]
        assert max(sizes) <= 10_000 and max(sizes) - min(sizes) <= 2 * 27  # a 27-byte line at either end
    assert plan_splits(files[1], 100) is None  # compressed: whole
    parquet = plan_splits(files[2], 1)
    assert parquet is not None and len(parquet) == pq.ParquetFile(inputs / "many.parquet").num_row_groups
    assert [s.first for s in parquet[:3]] == [1, 38, 75]
    assert partition_pieces([3, 0, 5], ["a", "b", "c"], 4) == [[("a", 0, 3), ("c", 0, 1)], [("c", 1, 4)]]
    assert partition_pieces([0], ["a"], 4) == [[]]




@pytest.mark.parametrize("kill_at", [2, 9, 17])
def test_killed_split_ingest_resumes_to_the_same_bytes(inputs: Path, tmp_path: Path, kill_at: int) -> None:
    """SIGKILL at the n-th file the split ingest commits (pieces, partitions, quarantine), then
    `curate run` again: the bytes of whole-file reading."""
    import os
    import subprocess
    import sys

    from tests.conftest import REPO, write_config

    reference = _files(_run(inputs, "whole", 1 << 40, 1))
    cfg = {"name": "split", "output": str(tmp_path / "out"), "workers": 1, "seed": 1, "partition_rows": 230,
           "inputs": [{"name": "j", "path": str(inputs / "big.jsonl"), "format": "jsonl", "split_bytes": 9000},
                      {"name": "z", "path": str(inputs / "small.jsonl.gz"), "format": "jsonl.gz"},
                      {"name": "p", "path": str(inputs / "many.parquet"), "format": "parquet", "id_field": "id",
                       "split_bytes": 2000}],
           "stages": [{"name": "normalize"}]}
    config = write_config(tmp_path / "split.yaml", cfg)
    env = {**os.environ, "PYTHONPATH": str(REPO), "CURATE_FAULT_KILL_AT": str(kill_at),
           "CURATE_FAULT_MATCH": r"ingest/(_splits|_raw|_files)|quarantine/"}
    killed = subprocess.run([sys.executable, "-m", "pipeline", "run", str(config)], env=env, capture_output=True)
    assert killed.returncode == -9
    env.pop("CURATE_FAULT_KILL_AT")
    subprocess.run([sys.executable, "-m", "pipeline", "run", str(config)], env=env, check=True, capture_output=True)
    assert _files(tmp_path / "out") == reference
