"""normalize, exact_dedup and shard stage functions, and the executor's group-by primitive."""

from __future__ import annotations

import functools
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.executors.local import LocalExecutor
from pipeline.hashing import shuffle_keys
from pipeline.plans import keep_first_per_key
from stages.exact_dedup import ExactDedupConfig, normalize_url, normalized_for_hash, text_digests
from stages.normalize import NormalizeConfig, normalize_texts


def norm(text: str, **kw: object) -> str:
    cfg = NormalizeConfig(name="normalize", kind="normalize", **kw)
    return normalize_texts(pa.array([text]), cfg)[0].as_py()


def test_normalize_repairs_mojibake_controls_and_whitespace() -> None:
    assert norm("The cafÃ© is â€œopenâ€\x9d") == "The café is \u201copen\u201d"
    assert norm("a\x00b\x07c\u200bd") == "abcd"
    assert norm("  one \t  two  \r\nthree\n\n\n\n\nfour  ") == "one two\nthree\n\nfour"
    assert norm("ｆｕｌｌ", unicode_form="NFKC") == "full"
    assert norm("e\u0301") == "\u00e9"
    assert norm("keep\ttabs  here", collapse_spaces=False) == "keep\ttabs  here"
    assert norm("中文　全角空格") == "中文 全角空格"


def test_normalize_stage_removes_documents_left_empty() -> None:
    from stages.normalize import Stage

    stage = Stage(NormalizeConfig(name="normalize", kind="normalize"), None)  # type: ignore[arg-type]
    table = pa.table({"id": ["a", "b"], "text": ["fine text", "\x00\x01 \u200b"]})
    out = stage.apply(table)
    assert out.column("reason").to_pylist() == [None, "normalize:empty_after_cleaning"]
    assert out.column("normalize_changed").to_pylist() == [False, True]


def test_exact_dedup_keys_ignore_case_and_spacing_only_by_default() -> None:
    cfg = ExactDedupConfig(name="d", kind="exact_dedup")
    texts = pa.array(["Hello  World", "hello world", "hello, world", None])
    keys = text_digests(normalized_for_hash(texts, cfg)).to_pylist()
    assert keys[0] == keys[1] != keys[2] and keys[3] is None
    cfg = ExactDedupConfig(name="d", kind="exact_dedup", ignore_punctuation=True)
    keys = text_digests(normalized_for_hash(texts, cfg)).to_pylist()
    assert keys[0] == keys[2]


def test_url_normalization() -> None:
    assert normalize_url("HTTPS://WWW.Example.com:443/a/b/#frag") == "https://example.com/a/b"
    assert normalize_url("http://example.com/a?x=1") == "http://example.com/a?x=1"
    assert normalize_url("http://example.com:8080/") == "http://example.com:8080"
    assert normalize_url("  ") is None and normalize_url(None) is None


def test_keep_first_per_key_prefers_priority_then_id() -> None:
    table = pa.table({"key": pa.array([b"k", b"k", b"k", b"j"], pa.binary()),
                      "part": pa.array([0, 0, 1, 1], pa.int32()), "row": pa.array([0, 1, 0, 1], pa.int64()),
                      "id": ["c", "a", "b", "z"],
                      "prio_0": pa.array([0, 1, 0, 0], pa.int64())})
    out = keep_first_per_key(table, "dup").to_pylist()
    # group "k": lowest priority wins (c and b), then the smaller id (b); "j" is alone
    assert out == [{"part": 0, "row": 0, "reason": "dup:of=b"}, {"part": 0, "row": 1, "reason": "dup:of=b"}]


def _key_table(task: int, path: Path, part: int) -> pa.Table:
    t = pq.read_table(path)
    return pa.table({"key": t.column("k"), "part": pa.array([part] * t.num_rows, pa.int32()),
                     "row": pa.array(range(t.num_rows), pa.int64()), "id": t.column("id")})


def test_group_by_key_spills_to_buckets_and_is_resumable(tmp_path: Path) -> None:
    parts = []
    for p in range(5):
        path = tmp_path / f"in{p}.parquet"
        keys = [f"key{(p * 7 + i) % 13}" for i in range(20)]
        pq.write_table(pa.table({"k": keys, "id": [f"{p:02d}-{i:02d}" for i in range(20)]}), path)
        parts.append(path)
    reduce_fn = functools.partial(keep_first_per_key, reason_prefix="dup")
    with LocalExecutor(1) as ex:
        results = ex.group_by_key(parts, functools.partial(_key_table, 0), reduce_fn, tmp_path / "work", n_buckets=7)
    assert len(results) == 7
    assert len(list((tmp_path / "work" / "map").glob("b*"))) > 1
    removed = pa.concat_tables([pq.read_table(r) for r in results])
    assert removed.num_rows == 100 - 13
    # a second call reuses finished map and reduce outputs (same files, untouched)
    mtimes = {r: Path(r).stat().st_mtime_ns for r in results}
    with LocalExecutor(1) as ex:
        again = ex.group_by_key(parts, functools.partial(_key_table, 0), reduce_fn, tmp_path / "work", n_buckets=7)
    assert {r: Path(r).stat().st_mtime_ns for r in again} == mtimes


def test_shuffle_keys_depend_on_seed_and_id_only() -> None:
    ids = pa.array(["a", "b", "c"])
    assert list(shuffle_keys(ids, 1)) == list(shuffle_keys(pa.array(["a", "b", "c"]), 1))
    assert list(shuffle_keys(ids, 1)) != list(shuffle_keys(ids, 2))
    assert shuffle_keys(pa.array(["b"]), 1)[0] == shuffle_keys(ids, 1)[1]


def shard_sizes(tmp_path: Path, tables: list[pa.Table], **settings: object) -> list[int]:
    """Documents per shard as the shard stage plans them over sorted files, in order."""
    from pipeline.config import validate
    from stages.shard import ShardConfig, Stage

    files = []
    for i, t in enumerate(tables):
        files.append(str(tmp_path / f"s{i}.parquet"))
        pq.write_table(t, files[-1])
    cfg = ShardConfig(name="shard", kind="shard", **settings)  # type: ignore[arg-type]
    pipeline = validate({"output": str(tmp_path / "o"), "inputs": [{"name": "x", "path": "x", "format": "jsonl"}]})
    stage = Stage(cfg, pipeline)
    return [sum(sl.stop - sl.start for sl in shard) for shard in stage._plan(files)]


def test_shard_plan_caps_bytes_and_docs_across_files(tmp_path: Path) -> None:
    tables = [pa.table({"text": ["x" * 10] * 5}), pa.table({"text": ["y" * 10] * 7})]
    assert shard_sizes(tmp_path, tables, max_shard_bytes=1024, max_shard_docs=5) == [5, 5, 2]
    assert shard_sizes(tmp_path, tables, max_shard_bytes=1024) == [12]
    big = [pa.table({"text": ["z" * 1500, "z"]}), pa.table({"text": pa.array([], pa.string())}),
           pa.table({"text": ["q" * 1030, "w" * 3]})]
    assert shard_sizes(tmp_path, big, max_shard_bytes=1024) == [1, 1, 1, 1]  # an oversized doc is a shard alone
    small = [pa.table({"text": ["a" * 500]}), pa.table({"text": ["b" * 500, "c" * 500]})]
    assert shard_sizes(tmp_path, small, max_shard_bytes=1024) == [2, 1]  # a shard spans two files
    assert shard_sizes(tmp_path, tables, max_shard_bytes=1024, max_shard_docs=1) == [1] * 12
