"""Duplicate counts and rehydration: exact_dedup and near_dedup record on each survivor how many
copies it stands for (`dup_count`, summed across the two stages); mix with `rehydrate:` repeats a
document by FineWeb-2's weight table for its cluster size, inside the token budget and epoch caps."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from tests.conftest import build_tokenizer
from tests.near_dup_shapes import Words

# planted exact-duplicate clusters: size -> copies the default table gives (1:1, 2:2, 3:3, 5:5,
# 100:8, 1000:1, linear between, rounded half up)
SIZES = {1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 50: 6, 100: 8, 300: 6, 1000: 1}


def _corpus(root: Path) -> tuple[Path, dict[str, int]]:
    """One document per cluster size (its copies differ in case and spacing), ids c<size>-<i>."""
    words = Words(8)
    rows = []
    size_of = {}
    for size in SIZES:
        text = " ".join(words.take(40))
        for i in range(size):
            variant = text.upper() if i % 2 else text.replace(" ", "  ")
            rows.append({"id": f"c{size:04d}-{i:04d}", "text": variant if i else text})
        size_of[f"c{size:04d}-0000"] = size
    random.Random(1).shuffle(rows)
    path = root / "docs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, size_of


def _run(root: Path, stages: list[dict[str, Any]], name: str) -> Path:
    from pipeline.config import validate
    from pipeline.runner import Runner

    path = root / "docs.jsonl"
    cfg = {"name": "dc", "output": str(root / name), "workers": 1, "seed": 2, "partition_rows": 250,
           "inputs": [{"name": "web", "path": str(path), "format": "jsonl", "id_field": "id"}], "stages": stages}
    Runner(validate(cfg)).run()
    return root / name


def _report(out: Path) -> dict[str, Any]:
    return json.loads((out / "mix" / "_manifest.json").read_text())["stats"]["domains"]["web"]


def _rows(out: Path, stage: str, cols: list[str]) -> list[dict[str, Any]]:
    files = sorted((out / stage / "data").glob("*.parquet"))
    return [r for f in files for r in pq.read_table(f, columns=cols).to_pylist()]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int], Path]:
    root = tmp_path_factory.mktemp("dup_counts")
    _, size_of = _corpus(root)
    tok = root / "tok"
    tok.mkdir()
    build_tokenizer(tok)
    return root, size_of, tok


def test_exact_and_near_dedup_count_the_copies_a_survivor_stands_for(corpus: tuple[Path, dict[str, int], Path]
                                                                      ) -> None:
    root, size_of, _ = corpus
    out = _run(root, [{"name": "exact_dedup"}], "exact")
    counts = {r["id"]: r["dup_count"] for r in _rows(out, "exact_dedup", ["id", "dup_count"])}
    assert counts == size_of
    removed = pq.read_table(out / "exact_dedup" / "removed").column("dup_count").to_pylist()
    assert set(removed) == {None}


def test_near_dedup_adds_up_the_exact_duplicate_counts(tmp_path: Path) -> None:
    """Three exact copies of a text and two of a near copy of it: 5 copies behind one survivor."""
    from pipeline.config import validate
    from pipeline.runner import Runner

    words = Words(2).take(300)
    near = list(words)
    near[150] = "zzzzzz"
    rows = [{"id": f"a{i}", "text": " ".join(words)} for i in range(3)]
    rows += [{"id": f"b{i}", "text": " ".join(near)} for i in range(2)]
    rows.append({"id": "c0", "text": " ".join(Words(3).take(300))})
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = {"name": "dc", "output": str(tmp_path / "out"), "workers": 1, "seed": 2, "partition_rows": 2,
           "inputs": [{"name": "web", "path": str(tmp_path / "docs.jsonl"), "format": "jsonl", "id_field": "id"}],
           "stages": [{"name": "exact_dedup"}, {"name": "near_dedup", "survivor": ["id"]}]}
    Runner(validate(cfg)).run()
    exact = {r["id"]: r["dup_count"] for r in _rows(tmp_path / "out", "exact_dedup", ["id", "dup_count"])}
    assert exact == {"a0": 3, "b0": 2, "c0": 1}
    near = {r["id"]: r["dup_count"] for r in _rows(tmp_path / "out", "near_dedup", ["id", "dup_count"])}
    assert near == {"a0": 5, "c0": 1}


def test_rehydration_repeats_documents_by_the_weight_table(corpus: tuple[Path, dict[str, int], Path]) -> None:
    root, size_of, tok = corpus
    base = [{"name": "exact_dedup"}, {"name": "tokenize", "tokenizer": str(tok)}]
    out = _run(root, [*base, {"name": "mix", "by": "source", "rehydrate": True}], "mix_all")
    tokens = {r["id"]: r["n_tokens"] for r in _rows(out, "tokenize", ["id", "n_tokens"])}
    got: dict[str, int] = {}
    for r in _rows(out, "mix", ["id"]):
        got[r["id"]] = got.get(r["id"], 0) + 1
    # the budget defaults to the unique tokens; the rehydrated pool (copies x tokens) is larger, so a
    # partial pass takes copies in shuffle order until the budget is met
    unique = sum(tokens.values())
    report = _report(out)
    assert report["rehydrated_tokens"] == sum(SIZES[size_of[k]] * t for k, t in tokens.items())
    for doc, n in got.items():
        assert n <= SIZES[size_of[doc]], doc  # a partial pass: some of a document's table copies
    realized = sum(n * tokens[d] for d, n in got.items())
    assert realized == report["realized_tokens"] and realized >= report["target_tokens"]
    assert realized - max(tokens[d] for d in got) < report["target_tokens"]  # less than one document over
    assert report["available_tokens"] == unique and set(tokens) == set(size_of)

    # a budget of exactly one rehydrated pass: every document with its full table copies
    pool = report["rehydrated_tokens"]
    out = _run(root, [*base, {"name": "mix", "by": "source", "rehydrate": True, "budget_tokens": pool,
                              "max_epochs": 10}], "mix_pool")
    got = {}
    for r in _rows(out, "mix", ["id", "epoch"]):
        got[r["id"]] = got.get(r["id"], 0) + 1
    assert got == {d: SIZES[s] for d, s in size_of.items()}

    # the epoch cap counts unique tokens: a budget far beyond max_epochs x unique stops at the cap
    out = _run(root, [*base, {"name": "mix", "by": "source", "rehydrate": True, "budget_tokens": 10 * pool,
                              "max_epochs": 2}], "mix_capped")
    report = _report(out)
    assert report["target_tokens"] == 2 * report["available_tokens"]
    assert report["target_tokens"] <= report["realized_tokens"] < report["target_tokens"] + max(tokens.values())
    copies: dict[str, int] = {}
    for r in _rows(out, "mix", ["id"]):
        copies[r["id"]] = copies.get(r["id"], 0) + 1
    assert all(n <= SIZES[size_of[d]] for d, n in copies.items())  # 2 x unique < one rehydrated pass here


def test_rehydration_table_from_the_config_and_errors(corpus: tuple[Path, dict[str, int], Path]) -> None:
    from filters.rehydration import copies, default_table
    from pipeline.config import ConfigError, validate

    _, _, tok = corpus
    assert default_table() == {1: 1.0, 2: 2.0, 3: 3.0, 5: 5.0, 100: 8.0, 1000: 1.0}
    assert list(copies([1, 2, 3, 4, 5, 50, 100, 300, 1000, 5000, 0], default_table())) == [
        1, 2, 3, 4, 5, 6, 8, 6, 1, 1, 1]
    cfg = {"name": "x", "output": "o", "inputs": [{"name": "d", "path": "d.jsonl"}]}
    tokenize = {"name": "tokenize", "tokenizer": str(tok)}
    ok = validate({**cfg, "stages": [{"name": "exact_dedup"}, tokenize,
                                     {"name": "mix", "by": "source", "rehydrate": {1: 1, 10: 3}}]})
    assert ok.stages[2].rehydration() == {1: 1.0, 10: 3.0}
    with pytest.raises(ConfigError) as err:
        validate({**cfg, "stages": [tokenize, {"name": "mix", "by": "source", "rehydrate": True}]})
    assert "stages.mix: needs column dup_count" in str(err.value)
    with pytest.raises(ConfigError) as err:
        validate({**cfg, "stages": [{"name": "mix", "rehydrate": {0: 1}}]})
    assert "stages.mix.rehydrate" in str(err.value)


@pytest.mark.parametrize(("rule", "survivor"), [(["id"], "a0"), ([{"source_priority": ["forum", "web"]}], "b0"),
                                                (["newest"], "a2"), (["length", "id"], "b1")])
def test_exact_dedup_survivor_policies(tmp_path: Path, rule: list[Any], survivor: str) -> None:
    from pipeline.config import validate
    from pipeline.runner import Runner

    text = " ".join(Words(4).take(50))
    web = [{"id": "a0", "text": text, "date": "2021-01-01"}, {"id": "a2", "text": text.upper(), "date": "2024-03-01"}]
    forum = [{"id": "b0", "text": "  " + text + "  ", "date": "2020-01-01"}, {"id": "b1", "text": "   " + text + "   "}]
    for name, rows in (("web", web), ("forum", forum)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    inputs = [{"name": n, "path": str(tmp_path / f"{n}.jsonl"), "id_field": "id"} for n in ("web", "forum")]
    cfg = {"name": "x", "output": str(tmp_path / "out"), "workers": 1, "seed": 2, "partition_rows": 1,
           "inputs": inputs, "stages": [{"name": "exact_dedup", "survivor": rule}]}
    Runner(validate(cfg)).run()
    kept = {r["id"]: r["dup_count"] for r in _rows(tmp_path / "out", "exact_dedup", ["id", "dup_count"])}
    assert kept == {survivor: 4}
