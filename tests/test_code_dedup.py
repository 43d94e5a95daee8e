"""Code-aware dedup and decontamination: code shingles for near_dedup, whitespace-blind exact_dedup,
code benchmarks (HumanEval/MBPP layouts) with comments stripped on both sides."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.code_language import code_documents, code_languages
from filters.code_tokens import code_tokens, strip_comments
from filters.minhash import shingle_sets
from pipeline.config import ConfigError, validate
from pipeline.index_store import IndexStore
from stages.decontaminate import EvalSetConfig
from stages.near_dedup import Stage as NearDedup
from tests.conftest import curate, write_config

ORIGINAL = '''def moving_average(values, window):
    """Mean of each run of `window` consecutive values."""
    if window <= 0:
        raise ValueError("window must be positive")
    total = sum(values[:window])
    out = [total / window]
    for i in range(window, len(values)):
        total += values[i] - values[i - window]
        out.append(total / window)
    return out
'''
REFORMATTED = ORIGINAL.replace("    ", "\t").replace(" = ", "=").replace("(values, window)", "( values,window )")
SIGN_FLIPPED = ORIGINAL.replace("total += values[i] - values[i - window]", "total -= values[i] + values[i - window]")


def jaccard(a: str, b: str, mode: str) -> float:
    sets = shingle_sets(pa.array([a, b]), 0, mode, 5)  # type: ignore[arg-type]
    a_set = set(sets.values[sets.offsets[0]:sets.offsets[1]].tolist())
    b_set = set(sets.values[sets.offsets[1]:sets.offsets[2]].tolist())
    return len(a_set & b_set) / len(a_set | b_set)


def test_code_tokens() -> None:
    assert code_tokens(pa.array(["x+=1.5;if(a==b)->c", "", "  "])).to_pylist() == [
        ["x", "+=", "1.5", ";", "if", "(", "a", "==", "b", ")", "->", "c"], [], []]


def test_code_shingles_ignore_formatting_and_see_operators() -> None:
    assert jaccard(ORIGINAL, REFORMATTED, "code") == 1.0
    assert jaccard(ORIGINAL, REFORMATTED, "word") < 0.8  # prose shingles see the re-spacing
    assert jaccard(ORIGINAL, SIGN_FLIPPED, "word") > jaccard(ORIGINAL, SIGN_FLIPPED, "code")


def shingles(texts: list[str], mode: str, code: list[bool] | None = None) -> list[set[int]]:
    sets = shingle_sets(pa.array(texts), 3, mode, 5, code=None if code is None else np.array(code))  # type: ignore[arg-type]
    return [set(sets.values[sets.offsets[i]:sets.offsets[i + 1]].tolist()) for i in range(len(texts))]


def test_auto_shingles_code_as_code_and_the_rest_as_before() -> None:
    """`shingle: auto`: the documents marked as code get exactly `code` mode's shingles, the others exactly
    what auto gave them before (words; characters for CJK), whatever the batch holds beside them."""
    cjk = "今天天气很好我们一起去公园散步然后吃午饭" * 3
    prose = "The quick brown fox jumps over the lazy dog while the cat sleeps on the warm mat."
    texts, code = [ORIGINAL, prose, cjk, REFORMATTED], [True, False, False, True]
    auto = shingles(texts, "auto", code)
    assert auto[0] == shingles([ORIGINAL], "code")[0] and auto[3] == shingles([REFORMATTED], "code")[0]
    assert auto[0] == auto[3]  # formatting-blind
    assert auto[1] == shingles([prose], "word")[0] and auto[2] == shingles([cjk], "char")[0]
    assert shingles(texts, "auto") == shingles(texts, "auto", [False] * 4)  # no mask: as before
    assert shingles(texts, "word", code) == shingles(texts, "word")  # other modes ignore the mask
    assert shingles([prose, ORIGINAL], "auto", [False, True]) == [auto[1], auto[0]]  # batch-independent


def test_code_documents() -> None:
    languages = ["Python", "en", "Markdown", None, None, None, "Go", None]
    paths = [None, None, "README.md", "src/lib.rs", "NOTES.txt", None, "x.go", None]
    sources = ["code", "web", "code", "code", "code", "web", "web", "repos"]
    assert code_documents(languages, paths, sources, ["repos"]).tolist() == [
        True, False, False, True, False, False, True, True]
    assert {"Python", "JSON", "Dockerfile", "Go Module"} <= code_languages()
    assert not {"Markdown", "Text", "reStructuredText"} & code_languages()


def test_auto_code_shingles_are_part_of_the_index_settings(tmp_path: Path) -> None:
    """An index built by `shingle: auto` records which documents got code shingles; other code_sources (or
    an index from before, without the key) stop the run instead of mixing meanings."""
    def index(code_sources: list[str]) -> IndexStore:
        cfg = validate({"name": "p", "output": str(tmp_path / "out"), "inputs": [{"name": "a", "path": "x.jsonl"}],
                        "stages": [{"name": "near_dedup", "index": "idx", "code_sources": code_sources}]})
        store = NearDedup(cfg.stages[0], cfg)._index()
        assert store is not None
        return store

    first = index([])
    assert first.params["auto_code"]["sources"] == []
    first.root.mkdir(parents=True)
    (first.root / "_params.json").write_text(json.dumps(first.params))
    index([]).check()
    with pytest.raises(ConfigError, match="auto_code"):
        index(["code"]).check()
    old = {k: v for k, v in first.params.items() if k != "auto_code"}
    (first.root / "_params.json").write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="auto_code"):
        index([]).check()


def test_near_and_exact_dedup_on_code(tmp_path: Path) -> None:
    repo = tmp_path / "repos" / "r"
    (repo / "a").mkdir(parents=True)
    (repo / "b").mkdir()
    (repo / "a" / "stats.py").write_text(ORIGINAL)
    (repo / "b" / "stats.py").write_text(REFORMATTED + "\n\n# vendored copy\n")
    (repo / "b" / "spaced.py").write_text(ORIGINAL.replace(" = ", "=").replace("\n\n", "\n"))
    (repo / "other.py").write_text("import sys\n\nprint(sys.argv[1:])\n")
    write_config(tmp_path / "pipeline.yaml", {
        "name": "p", "output": "out", "workers": 1,
        "inputs": [{"name": "code", "path": "repos/*", "format": "repo"}],
        "stages": [{"name": "exact_dedup", "lowercase": False, "whitespace": "ignore"},
                   {"name": "near_dedup", "threshold": 0.7}]})  # shingle: auto -> code shingles for code
    curate("run", cwd=tmp_path, check=True)
    exact = pq.read_table(tmp_path / "out" / "exact_dedup" / "removed").to_pylist()
    # the re-spaced copy and the original share a key (the survivor is the smaller id)
    assert len(exact) == 1 and exact[0]["reason"].startswith("exact_dup")
    assert exact[0]["path"] in ("a/stats.py", "b/spaced.py")
    near = pq.read_table(tmp_path / "out" / "near_dedup" / "removed").to_pylist()
    # the re-indented, commented copy: Jaccard 0.97 in code shingles, 0.50 in word shingles
    assert len(near) == 1 and near[0]["reason"].startswith("near_dup")
    kept = sorted(pq.read_table(tmp_path / "out" / "near_dedup" / "data").column("path").to_pylist())
    assert len(kept) == 2 and "other.py" in kept


def test_layouts() -> None:
    he = EvalSetConfig(name="he", path="x.jsonl", layout="humaneval")
    assert he.fields == ["prompt", "canonical_solution", "test"] and he.code
    assert EvalSetConfig(name="m", path="x", layout="mbpp").fields == ["text", "code", "test_list"]
    plain = EvalSetConfig(name="q", path="x")
    assert plain.fields == ["question", "answer"] and not plain.code
    texts = pa.array(["a = 1  # note\nb = 2 // c\n/* x */c = 3"])
    assert strip_comments(texts).to_pylist() == ["a = 1   \nb = 2  \n c = 3"]


def test_decontaminate_code_benchmark(tmp_path: Path) -> None:
    item = {"task_id": "demo/0", "prompt": 'def moving_average(values, window):\n    """Mean of each run of `window` '
            'consecutive values."""\n',
            "canonical_solution": ORIGINAL.split('"""\n', 1)[1],
            "test": "def check(candidate):\n    assert candidate([1, 2, 3, 4], 2) == [1.5, 2.5, 3.5]\n"}
    (tmp_path / "eval.jsonl").write_text(json.dumps(item) + "\n")
    commented = ORIGINAL.replace("    total = sum", "    # start with the first window\n    total = sum").replace(
        "        out.append", "        # slide by one\n        out.append")
    repo = tmp_path / "repos" / "r"
    repo.mkdir(parents=True)
    (repo / "leak.py").write_text("import math\n\n\n" + commented)
    (repo / "clean.py").write_text("def median(xs):\n    xs = sorted(xs)\n    return xs[len(xs) // 2]\n")
    stages = [{"name": "decontaminate", "ngram": 13,
               "eval_sets": [{"name": "humaneval_like", "path": "eval.jsonl", "layout": "humaneval"}]}]
    write_config(tmp_path / "pipeline.yaml", {"name": "p", "output": "out", "workers": 1,
                                              "inputs": [{"name": "code", "path": "repos/*", "format": "repo"}],
                                              "stages": stages})
    curate("run", cwd=tmp_path, check=True)
    removed = pq.read_table(tmp_path / "out" / "decontaminate" / "removed").to_pylist()
    assert [(r["path"], r["reason"]) for r in removed] == [("leak.py", "decontaminate:humaneval_like")]
    manifest = json.loads((tmp_path / "out" / "decontaminate" / "_manifest.json").read_text())
    assert manifest["stats"]["eval_sets"]["humaneval_like"]["items_found"] == 1
