"""Ingest: every format, stable ids, and every malformed record quarantined with file/line/field."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.config import InputConfig
from pipeline.ids import derived_doc_id
from pipeline.ingest import InputFile, ingest_file, list_input_files, read_jsonl, read_table_rows


def _file(path: Path, fmt: str = "jsonl", **kw: str) -> InputFile:
    inp = InputConfig(name="src", path=str(path), format=fmt, **kw)
    return InputFile(0, 0, inp, str(path), path.name)


def _rows(f: InputFile) -> list[tuple[int, dict | None, dict | None]]:
    reader = read_table_rows if f.input.format in ("parquet", "hf") else read_jsonl
    return list(reader(f))


def test_jsonl_malformed_kinds_are_quarantined_with_line_and_field(tmp_path: Path) -> None:
    lines = [
        json.dumps({"text": "good one", "url": "http://a"}).encode(),
        b'{"text": "unterminated',
        json.dumps({"text": ["a list"]}).encode(),
        json.dumps({"txt": "wrong field"}).encode(),
        json.dumps({"text": "\t \n"}).encode(),
        b'{"text": "bad \xc3\x28 bytes"}',
        json.dumps([1, 2]).encode(),
        b'{"text": "lone \\ud800 surrogate"}',
        b"",  # blank line: not a record
        json.dumps({"text": "nul \u0000 inside", "meta": {"deep": [[[[1]]]]}}).encode(),
        json.dumps({"text": "x", "url": 7}).encode(),
        b"[" * 100000 + b"]" * 100000,
    ]
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    rows = _rows(_file(path, url_field="url"))
    bad = {line: (q["field"], q["error"]) for line, _, q in rows if q}
    good = {line: d for line, d, _ in rows if d}
    assert set(good) == {1, 10}
    assert good[1]["id"] == derived_doc_id("src", "f.jsonl", 1) and good[1]["url"] == "http://a"
    assert "\x00" in good[10]["text"] and json.loads(good[10]["meta"])["fields"]["meta"] == {"deep": [[[[1]]]]}
    assert bad[2][1].startswith("invalid JSON")
    assert bad[3] == ("text", "text must be a string, got list")
    assert bad[4] == ("text", "missing text field")
    assert bad[5] == ("text", "empty text")
    assert bad[6] == (None, "invalid UTF-8 at byte 14")
    assert bad[7] == (None, "record is a JSON list, not an object")
    assert bad[8][0] == "text" and "surrogate" in bad[8][1]
    assert bad[11] == ("url", "url must be a string, got int")
    assert bad[12][1].startswith("invalid JSON")
    assert 9 not in bad and 9 not in good


def test_truncated_gzip_keeps_what_was_read_and_reports_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl.gz"
    payload = "".join(json.dumps({"text": f"document {i} " * 50}) + "\n" for i in range(200)).encode()
    data = gzip.compress(payload)
    path.write_bytes(data[: len(data) // 2])
    rows = _rows(_file(path, "jsonl.gz"))
    good = [d for _, d, _ in rows if d]
    bad = [q for _, _, q in rows if q]
    assert 0 < len(good) < 200
    assert len(bad) == 1 and bad[0]["error"].startswith(f"unreadable after line {len(good)}")


def test_id_field_rules(tmp_path: Path) -> None:
    path = tmp_path / "ids.jsonl"
    recs = [{"id": 5, "text": "a"}, {"id": True, "text": "b"}, {"text": "c"}, {"id": " ", "text": "d"},
            {"id": "x", "text": "e"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    rows = _rows(_file(path, id_field="id"))
    assert [d["id"] for _, d, _ in rows if d] == ["5", "x"]
    assert [q["error"] for _, _, q in rows if q] == ["id must be a string or integer, got bool", "missing id field",
                                                     "empty id"]


def test_parquet_rows_and_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"id": ["a", "b", "c"], "body": ["one", None, "three"]}), path)
    rows = _rows(_file(path, "parquet", id_field="id", text_field="body"))
    assert [(line, d["id"]) for line, d, _ in rows if d] == [(1, "a"), (3, "c")]
    assert [(line, q["field"], q["error"]) for line, _, q in rows if q] == [(2, "body", "text must be a string, "
                                                                             "got NoneType")]
    rows = _rows(_file(path, "parquet", text_field="text"))
    assert all(q and q["error"] == "missing text field" for _, _, q in rows) and len(rows) == 3


def test_hf_load_from_disk_and_local_load_dataset(tmp_path: Path) -> None:
    import datasets

    saved = tmp_path / "saved"
    datasets.Dataset.from_dict({"text": ["alpha", "beta"], "n": [1, 2]}).save_to_disk(str(saved))
    rows = _rows(_file(saved, "hf"))
    assert [d["text"] for _, d, _ in rows] == ["alpha", "beta"]
    assert json.loads(rows[0][1]["meta"])["fields"] == {"n": 1}
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "train.jsonl").write_text(json.dumps({"text": "gamma"}) + "\n" + json.dumps({"text": ""}) + "\n")
    rows = _rows(_file(raw, "hf"))
    assert [d["text"] for _, d, _ in rows if d] == ["gamma"]
    assert [q["error"] for _, _, q in rows if q] == ["empty text"]


def test_zst_and_partitioning_gives_stable_ids(tmp_path: Path) -> None:
    import zstandard

    path = tmp_path / "in" / "z.jsonl.zst"
    path.parent.mkdir()
    path.write_bytes(zstandard.ZstdCompressor().compress(
        "".join(json.dumps({"text": f"doc {i}"}) + "\n" for i in range(25)).encode()))
    files = list_input_files([InputConfig(name="z", path=str(tmp_path / "in" / "*.zst"), format="jsonl.zst")])
    assert files[0].relpath == "z.jsonl.zst"
    ids = {}
    for rows_per_part in (4, 100):
        stage_dir = tmp_path / f"out{rows_per_part}" / "ingest"
        result = ingest_file((files[0], stage_dir, rows_per_part, "h"))
        assert result["records"] == 25 and result["quarantined"] == 0
        assert len(result["parts"]) == (7 if rows_per_part == 4 else 1)
        tables = [pq.read_table(stage_dir / "_raw" / f"{p}.parquet") for p in result["parts"]]
        ids[rows_per_part] = [i for t in tables for i in t.column("id").to_pylist()]
    assert ids[4] == ids[100] and len(set(ids[4])) == 25


@pytest.mark.parametrize("pattern", ["nothing/*.jsonl", "missing_dir"])
def test_unmatched_paths_are_config_errors(tmp_path: Path, pattern: str) -> None:
    from pipeline.config import ConfigError

    fmt = "hf" if "*" not in pattern else "jsonl"
    with pytest.raises(ConfigError, match=r"inputs\[0\]\.path"):
        list_input_files([InputConfig(name="x", path=str(tmp_path / pattern), format=fmt)])


def test_repeated_ids_keep_their_first_record_and_quarantine_the_others(tmp_path: Path) -> None:
    """The id check's in-memory pass (`ids_distinct`) only says whether some id repeats; when one
    does, the group-by names the rows: the first occurrence (input order) stays, the rest go to the
    quarantine with file and line."""
    from pipeline.config import validate
    from pipeline.ids import ids_distinct
    from pipeline.runner import Runner

    for name, ids in (("a.jsonl", ["x", "y", "x", "z"]), ("b.jsonl", ["w", "y", "v"])):
        (tmp_path / name).write_text("".join(json.dumps({"id": i, "text": f"{name} {n}"}) + "\n"
                                             for n, i in enumerate(ids)))
    cfg = validate({"name": "ids", "output": str(tmp_path / "out"), "partition_rows": 2, "stages": [],
                    "inputs": [{"name": "a", "path": str(tmp_path / "a.jsonl"), "id_field": "id"},
                               {"name": "b", "path": str(tmp_path / "b.jsonl"), "id_field": "id"}]})
    Runner(cfg).run()
    data = sorted((tmp_path / "out" / "ingest" / "data").glob("*.parquet"))
    kept = [r for p in data for r in pq.read_table(p).to_pylist()]
    assert [(r["id"], r["text"]) for r in kept] == [("x", "a.jsonl 0"), ("y", "a.jsonl 1"), ("z", "a.jsonl 3"),
                                                    ("w", "b.jsonl 0"), ("v", "b.jsonl 2")]
    assert ids_distinct(data) and not ids_distinct(data, limit=4)  # over the limit: "not known distinct"
    bad = [r for p in sorted((tmp_path / "out" / "quarantine").glob("*duplicate-ids.parquet"))
           for r in pq.read_table(p).to_pylist()]
    assert [(r["id"], r["file"], r["line"]) for r in bad] == [("x", "a.jsonl", 3), ("y", "b.jsonl", 2)]
    raw = tmp_path / "dup.parquet"
    pq.write_table(pa.table({"id": ["p", "q", "p"]}), raw)
    assert not ids_distinct([raw])
    pq.write_table(pa.table({"id": pa.array([], pa.string())}), raw)
    assert ids_distinct([raw])
