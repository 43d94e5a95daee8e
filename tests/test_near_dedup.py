"""`near_dedup` through the real runner: accuracy on the demo corpus's planted near-duplicates,
identical results for any worker count and partitioning, survivor rule, persistent index."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.demo.corpus import load_truth, write_demo_corpus
from tests.conftest import curate, write_config

DEMO_DOCS = 2000
DEMO_INPUTS = [
    {"name": "web", "path": "demo/web/*.jsonl.gz", "format": "jsonl.gz", "url_field": "url"},
    {"name": "forum", "path": "demo/forum/*.jsonl.zst", "format": "jsonl.zst", "id_field": "doc_id",
     "text_field": "body", "url_field": "link"},
    {"name": "encyclopedia", "path": "demo/encyclopedia/*.parquet", "format": "parquet", "id_field": "id"},
    {"name": "code", "path": "demo/code/*.jsonl", "format": "jsonl", "id_field": "id"},
    {"name": "math", "path": "demo/math", "format": "hf", "id_field": "id"},
]


def _config(output: str, inputs: list[dict[str, Any]], workers: int = 1, partition_rows: int = 500,
            **stage: Any) -> dict[str, Any]:
    return {"name": "nd", "output": output, "workers": workers, "seed": 5, "partition_rows": partition_rows,
            "inputs": inputs, "stages": [{"name": "near_dedup", **stage}]}


def _docs(out: Path) -> dict[str, dict[str, Any]]:
    """id -> row (text, dup_cluster, dup_of, reason) over kept and removed documents."""
    rows: dict[str, dict[str, Any]] = {}
    for sub in ("data", "removed"):
        for f in sorted((out / "near_dedup" / sub).glob("*.parquet")):
            t = pq.read_table(f)
            cols = [c for c in ("id", "text", "dup_cluster", "dup_of", "reason") if c in t.column_names]
            for row in t.select(cols).to_pylist():
                row.setdefault("reason", None)
                rows[row["id"]] = row
    return rows


@pytest.fixture(scope="module")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("near_dedup_demo")
    write_demo_corpus(root / "demo", n_docs=DEMO_DOCS, seed=0)
    write_config(root / "one.yaml", _config("out1", DEMO_INPUTS, workers=1, partition_rows=500))
    write_config(root / "two.yaml", _config("out2", DEMO_INPUTS, workers=2, partition_rows=173))
    curate("run", "one.yaml", cwd=root, check=True)
    curate("run", "two.yaml", cwd=root, check=True)
    return root, load_truth(root / "demo")


def _families(truth: list[dict[str, Any]]) -> dict[str, str]:
    """Planted duplicate families (near and exact copies of one original): id -> family root."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for t in truth:
        for other in (t.get("near_dup_of"), t.get("exact_dup_of")):
            if other and t["id"]:
                a, b = find(t["id"]), find(other)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return {t["id"]: find(t["id"]) for t in truth if t["id"]}


def test_planted_near_duplicates_found_with_high_precision(demo_runs: tuple[Path, list[dict[str, Any]]]) -> None:
    root, truth = demo_runs
    docs = _docs(root / "out1")
    family = _families(truth)
    planted = [t for t in truth if t.get("near_dup_of") and t.get("jaccard") is not None and t["id"] in docs]
    high = [t for t in planted if t["jaccard"] >= 0.85]
    assert len(high) >= 30
    found = [t for t in high if docs[t["id"]]["dup_cluster"] is not None
             and docs[t["id"]]["dup_cluster"] == docs[t["near_dup_of"]]["dup_cluster"]]
    recall = len(found) / len(high)
    assert recall >= 0.95, [(t["id"], t["jaccard"]) for t in high if t not in found]

    removed = [d for d in docs.values() if d["reason"]]
    assert removed and all(d["reason"] == f"near_dup:of={d['dup_of']}" for d in removed)
    correct = 0
    for d in removed:
        survivor = d["dup_of"]
        same_family = family.get(d["id"], d["id"]) == family.get(survivor, survivor)
        # pages that are near-identical by the documented normalization (digits folded, e.g.
        # "Item 83,172 is out of stock." vs "Item 66,424 ...") are duplicates too, planted or not
        if same_family or _jaccard_folded(d["text"], docs[survivor]["text"]) >= 0.8:
            correct += 1
    precision = correct / len(removed)
    assert precision >= 0.99
    # survivors are kept, carry their own id as cluster, and never point elsewhere
    for d in removed:
        s = docs[d["dup_of"]]
        assert s["reason"] is None and s["dup_cluster"] == s["id"] and s["dup_of"] is None
    # manifest accounting and CJK handling
    manifest = json.loads((root / "out1" / "near_dedup" / "_manifest.json").read_text())
    c = manifest["counts"]
    assert c["in"] == c["kept"] + c["removed"] and c["by_reason"] == {"near_dup": c["removed"]}
    assert manifest["stats"]["cjk_docs"] > 100
    zh_planted = [t for t in high if t.get("lang") == "zh"]
    assert zh_planted and all(t in found for t in zh_planted)


def _jaccard_folded(a: str, b: str, n: int = 5) -> float:
    """Word 5-gram Jaccard after the stage's normalization, written plainly (independent check)."""
    def grams(text: str) -> set[tuple[str, ...]]:
        t = unicodedata.normalize("NFKD", text)
        t = "".join("0" if unicodedata.category(c) == "Nd" else c for c in t
                    if unicodedata.category(c) != "Mn" and unicodedata.category(c)[0] not in "PS").lower()
        toks = t.split()
        return {tuple(toks)} if 0 < len(toks) < n else {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}

    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y) if x | y else 1.0


def test_same_result_for_any_workers_and_partitioning(demo_runs: tuple[Path, list[dict[str, Any]]]) -> None:
    root, _ = demo_runs
    one, two = _docs(root / "out1"), _docs(root / "out2")
    assert one.keys() == two.keys()
    assert one == two
    m1 = json.loads((root / "out1" / "near_dedup" / "_manifest.json").read_text())["counts"]
    m2 = json.loads((root / "out2" / "near_dedup" / "_manifest.json").read_text())["counts"]
    assert m1 == m2


# ----------------------------------------------------------------------------------------------
# survivor rule and the persistent index, on a small hand-made corpus

WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ra", "si", "tu", "ve", "zo")
         for b in ("bar", "cen", "dol", "fin", "gor", "hul", "jam", "kip", "lun", "mox")]


def _text(rng: random.Random, n: int = 120) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def _edit(rng: random.Random, text: str, k: int = 1) -> str:
    words = text.split()
    for _ in range(k):
        words[rng.randrange(len(words))] = rng.choice(WORDS)
    return " ".join(words)


def _run_here(cwd: Path, config: dict[str, Any], fresh: bool = False) -> None:
    """The runner in this process (one worker): relative paths resolved against `cwd`."""
    from pipeline.config import validate
    from pipeline.runner import Runner

    config = {**config, "output": str(cwd / config["output"])}
    config["inputs"] = [{**i, "path": str(cwd / i["path"])} for i in config["inputs"]]
    config["stages"] = [{**s, "index": str(cwd / s["index"])} if s.get("index") else s for s in config["stages"]]
    config["allow_write_outside_output"] = [str(cwd / d) for d in config.get("allow_write_outside_output", [])]
    Runner(validate(config)).run(fresh=fresh)


def test_survivor_rule_and_persistent_index(tmp_path: Path) -> None:
    rng = random.Random(9)
    a_texts = [_text(rng) for _ in range(30)]
    # run A: a1 is a near copy of a0 of the same length, so the smaller id survives; a3 is a longer
    # near copy of a2, so a3 survives by length (ingest keeps extra fields in `meta`, so there is
    # no quality_score column here; that rule is tested on the reduce directly below)
    a_texts[1] = _edit(rng, a_texts[0])
    a_texts[3] = a_texts[2] + " " + " ".join(a_texts[2].split()[:3])
    (tmp_path / "a").mkdir()
    pq.write_table(pa.table({"id": [f"a{i:02d}" for i in range(30)], "text": a_texts}), tmp_path / "a" / "a.parquet")
    inputs_a = [{"name": "a", "path": "a/*.parquet", "format": "parquet", "id_field": "id"}]
    shared = {"allow_write_outside_output": ["idx"]}  # one index for two corpora, outside both outputs: opt in
    _run_here(tmp_path, {**_config("out_a", inputs_a, partition_rows=7, index="idx"), **shared})
    docs_a = _docs(tmp_path / "out_a")
    assert docs_a["a01"]["reason"] == "near_dup:of=a00" and docs_a["a00"]["reason"] is None
    assert docs_a["a02"]["reason"] == "near_dup:of=a03"
    assert sum(d["reason"] is not None for d in docs_a.values()) == 2
    assert len(list((tmp_path / "idx").glob("gen-*"))) == 1

    # run B against the index: near copies of A's kept documents are removed as duplicates of them
    b_rows = [{"id": f"b{i:02d}", "text": _text(rng)} for i in range(20)]
    b_rows += [{"id": f"c{i:02d}", "text": _edit(rng, a_texts[i + 4], k=1)} for i in range(8)]
    b_rows.append({"id": "c98", "text": a_texts[1]})  # copy of a1, which run A removed as a copy of a0
    b_rows.append({"id": "b99", "text": _edit(rng, b_rows[0]["text"])})  # duplicate within run B
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in b_rows))
    inputs_b = [{"name": "b", "path": "b/*.jsonl", "format": "jsonl", "id_field": "id"}]
    config_b = {**_config("out_b", inputs_b, partition_rows=9, index="idx"), **shared}
    _run_here(tmp_path, config_b)
    docs_b = _docs(tmp_path / "out_b")
    for i in range(8):
        assert docs_b[f"c{i:02d}"]["reason"] == f"near_dup:of=a{i + 4:02d}"
        assert docs_b[f"c{i:02d}"]["dup_cluster"] == f"a{i + 4:02d}"
    assert docs_b["c98"]["reason"] == "near_dup:of=a00"
    pair = sorted((docs_b["b00"]["reason"] or "", docs_b["b99"]["reason"] or ""))
    assert pair in (["", "near_dup:of=b00"], ["", "near_dup:of=b99"])
    assert sum(d["reason"] is not None for d in docs_b.values()) == 10
    assert len(list((tmp_path / "idx").glob("gen-*"))) == 2

    # a fresh rerun of B replaces its own generation and does not match itself
    _run_here(tmp_path, config_b, fresh=True)
    assert _docs(tmp_path / "out_b") == docs_b
    assert len(list((tmp_path / "idx").glob("gen-*"))) == 2


def test_survivor_rule_prefers_quality_then_length_then_id() -> None:
    from filters.dup_clusters import survivor_pairs

    rank = (("quality_score", True, "double"), ("length", True, "int64"), ("id", False, "string"))
    rows = [  # root, id, quality, length, is_index
        (0, "d0", 0.2, 900, False), (0, "d1", 0.7, 100, False), (0, "d2", None, 5000, False),  # quality wins
        (3, "d3", None, 100, False), (3, "d4", None, 300, False),  # no scores: longest wins
        (5, "d5", 0.5, 300, False), (5, "d6", 0.5, 300, False),  # full tie: smallest id
        (7, "d7", 0.9, 999, False), (7, "old", None, 1, True),  # an index document always survives
    ]
    table = pa.table({"root": [r[0] for r in rows], "node": list(range(len(rows))),
                      "part": pa.array([-1 if r[4] else 0 for r in rows], pa.int32()), "row": list(range(len(rows))),
                      "id": [r[1] for r in rows], "is_index": [r[4] for r in rows], "weight": [1] * len(rows),
                      "rank_quality_score": pa.array([r[2] for r in rows], pa.float64()),
                      "rank_length": [r[3] for r in rows]})
    out = survivor_pairs(table, rank).to_pylist()
    by_id = {rows[o["u"]][1]: o["s_id"] for o in out}
    assert by_id == {"d0": "d1", "d2": "d1", "d3": "d4", "d6": "d5", "d7": "old"}
    assert all(o["removable"] for o in out)


@pytest.mark.parametrize(("verify", "shingle"), [(True, "auto"), (False, "auto"), (True, "char"), (False, "word")])
def test_short_empty_and_cjk_documents(tmp_path: Path, verify: bool, shingle: str) -> None:
    """Documents without any word (only punctuation), shorter than a shingle, and Chinese text, in
    partitions of two rows, with and without verification (in-process runner: fast)."""
    from pipeline.config import validate
    from pipeline.runner import Runner

    docs = [{"id": "e1", "text": "!!!"}, {"id": "e2", "text": "???"}, {"id": "s1", "text": "hi"},
            {"id": "s2", "text": "Hi!"}, {"id": "s3", "text": "bye"},
            {"id": "z1", "text": "今天天气很好，我们去公园散步吧。公园里有很多花和树。"},
            {"id": "z2", "text": "今天天气很好，我们去公园散步吧。公园里有很多花和树！"},
            {"id": "z3", "text": "明天可能下雨，记得带伞出门。路上注意安全，早点回家。"}]
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    cfg = validate(_config(str(tmp_path / "out"), [{"name": "d", "path": str(tmp_path / "d.jsonl"), "id_field": "id"}],
                           partition_rows=2, verify=verify, shingle=shingle))
    Runner(cfg).run()
    got = {d["id"]: d["reason"] for d in _docs(tmp_path / "out").values()}
    assert got == {"e1": None, "e2": None, "s1": "near_dup:of=s2", "s2": None, "s3": None, "z1": None,
                   "z2": "near_dup:of=z1", "z3": None}
    stats = json.loads((tmp_path / "out" / "near_dedup" / "_manifest.json").read_text())["stats"]
    assert stats["empty_shingle_docs"] == 2
    assert stats["cjk_docs"] == {"auto": 3, "char": 8, "word": 0}[shingle]
