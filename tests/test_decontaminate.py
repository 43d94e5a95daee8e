"""`decontaminate` and `paragraph_dedup`: the n-gram and unit functions, and both stages on the demo
corpus (its planted eval items and boilerplate, per truth.jsonl): the issue's acceptance figures, no
eval text in the shards, the same shards for one and two workers, and `action: mask`."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.ngrams import Membership, ngram_keys, ngram_keys_by_length, normalize, token_spans, tokenize
from filters.units import drop_units, split_units, unit_keys
from pipeline.demo.corpus import demo_inputs, load_truth, write_demo_corpus
from pipeline.demo.plants import EVAL_SET
from pipeline.demo.wordlists import load
from pipeline.hashing import siphash64
from stages.decontaminate import DecontaminateConfig, build_eval_table, item_ngrams, match
from stages.paragraph_dedup import Plan, _losers

# ----------------------------------------------------------------------------------------------
# pieces


def test_normalization_and_tokens_agree_with_exact_spans() -> None:
    texts = ["Hello, WORLD!  The ﬁrst-rate café\n\ncosts 1,000.", "我们今天去公園吧。カタカナ and English", "", "—!?"]
    assert normalize(pa.array(texts)).to_pylist() == [
        "hello world the first rate café costs 1 000", "我 们 今 天 去 公 園 吧 カ タ カ ナ and english", "", ""]
    tokens = tokenize(pa.array(texts))
    for i, text in enumerate(texts):
        words, spans = token_spans(text)
        assert list(siphash64(words)) == list(tokens.hashes[tokens.text == i])
        assert [text[a:b].lower().replace("ﬁ", "fi") for a, b in spans] == words
    assert tokens.cjk.sum() == 12


def test_ngram_keys_stay_inside_a_text_and_lengths_never_collide() -> None:
    tokens = tokenize(pa.array(["a b c d", "c d e", "a b c"]))
    pos, keys = ngram_keys(tokens.hashes, tokens.text, 3)
    assert tokens.text[pos].tolist() == [0, 0, 1, 2]
    assert keys[0] == keys[3] and len(set(keys.tolist())) == 3  # "a b c" twice
    _, k2 = ngram_keys(tokens.hashes, tokens.text, 2)
    assert not set(k2.tolist()) & set(keys.tolist())


def test_membership_and_lengths_at_once() -> None:
    rng = np.random.default_rng(3)
    keys = np.unique(rng.integers(0, 2**63, 5000, dtype=np.uint64) * np.uint64(2))
    member = Membership(keys)
    probe = np.concatenate([keys[::7], keys[:300] + np.uint64(1), np.array([keys[0]] * 3, np.uint64)])
    hit, lo, hi = member.lookup(probe)
    assert hit.tolist() == [*range(len(keys[::7])), *range(len(keys[::7]) + 300, len(probe))]
    assert (keys[lo] == probe[hit]).all() and (hi - lo == 1).all()
    tokens = tokenize(pa.array(["a b c d e f", "b c d"]))
    both = ngram_keys_by_length(tokens.hashes, tokens.text, (2, 3, 9))
    for n in (2, 3):
        pos, k = ngram_keys(tokens.hashes, tokens.text, n)
        assert (both[n][0] == pos).all() and (both[n][1] == k).all()
    assert len(both[9][0]) == 0


def _cfg(tmp_path: Path, items: list[dict[str, Any]], **kw: Any) -> DecontaminateConfig:
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return DecontaminateConfig(name="d", eval_sets=[{"name": "qa", "path": str(path)}], **kw)


def test_long_short_and_cjk_items(tmp_path: Path) -> None:
    long_q = "which river did the old ferryman cross before the great winter storm of that long year"
    items = [{"question": long_q, "answer": "the Velmar"},  # 18 tokens: six 13-grams
             {"question": "Who hid the salt charter?", "answer": "Oszor"},  # 6 tokens: matched whole
             {"question": "Yes", "answer": "no"},  # under min_item_tokens: never matched
             {"question": "北京是中华人民共和国的首都，也是全国的政治文化中心和国际交往中心。", "answer": "对"}]
    cfg = _cfg(tmp_path, items)
    table, stats = build_eval_table(cfg)
    assert stats["sets"]["qa"] == {"items": 4, "ngrams": 6 + 1 + 13, "items_matchable": 3}
    assert stats["lengths"] == [6, 13, 20]
    docs = [f"Intro.\n\n{long_q.upper()}! The Velmar.\n\nBye.",  # long item, case and punctuation changed
            "Quiz: who hid the SALT charter? Oszor, of course.",  # the short item, whole
            "Who hid the salt charter? Nobody knows.",  # the short item's question alone: no match
            "他说：北京是中华人民共和国的首都，也是全国的政治文化中心。",  # 20 Han characters in a row
            "which river did the old ferryman cross before the great winter"]  # 12 words: too few
    t = table
    found = match(tokenize(pa.array(docs)), tuple(stats["lengths"]), Membership(t.column("hash").to_numpy()),
                  t.column("set").to_numpy(), t.column("item").to_numpy())
    hits = sorted(set(zip(found[0].tolist(), found[4].tolist(), strict=True)))
    assert hits == [(0, 0), (1, 1), (3, 3)]
    _, keys, n_of = item_ngrams(tokenize(pa.array(["a b c"])), cfg)
    assert len(keys) == 0 and n_of.tolist() == [3]


def test_mask_cuts_matches_with_margin(tmp_path: Path) -> None:
    from stages.decontaminate import Plan as DPlan
    from stages.decontaminate import mask_text

    q = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
    cfg = _cfg(tmp_path, [{"question": q, "answer": ""}], margin=3)
    table, stats = build_eval_table(cfg)
    plan = DPlan("", "", ("qa",), 13, 20, tuple(stats["lengths"]), "mask", 3, 10)
    text = f"Keep this start.\n\n{q.title()}.\n\nKeep this end."
    masked, cut = mask_text(text, plan, Membership(table.column("hash").to_numpy()))
    assert masked == "Keep this star\nnd." or masked.startswith("Keep this sta")
    assert "One" not in masked and "Fourteen" not in masked and cut == len(text) - len(masked.replace("\n", ""))


def test_units_split_the_same_in_both_engines() -> None:
    text = "Head line\n\n  \n\nSecond para\nwith two lines\n\n\nThird!\n"
    doc, index, keys, chars = unit_keys(pa.array([text, "x"]), "paragraph")
    parts = split_units(text, "paragraph")
    assert [parts[2 * i].strip() for i in index[doc == 0]] == ["Head line", "Second para\nwith two lines", "Third!"]
    assert chars.tolist() == [9, 26, 6, 1]
    assert drop_units(text, "paragraph", {0}) == ("Second para\nwith two lines\n\n\nThird!", 9)
    assert drop_units(text, "paragraph", {1}) == ("Head line\n\n\nThird!", 26)
    doc, index, keys, _ = unit_keys(pa.array(["a\nb\nA!"]), "line")
    assert index.tolist() == [0, 1, 2] and keys[0] == keys[2]


def _rows(keys: list[int], ids: list[str], units: list[int]) -> pa.Table:
    n = len(keys)
    return pa.table({"key": pa.array(keys, pa.uint64()), "part": pa.array([0] * n, pa.int32()),
                     "row": pa.array(range(n), pa.int64()), "unit": pa.array(units, pa.int32()), "id": ids})


def test_losers_keep_first_and_max_docs() -> None:
    t = _rows([7, 7, 7, 9, 9, 5], ["b", "a", "a", "c", "d", "e"], [0, 3, 1, 0, 2, 0])
    first = _losers(Plan("paragraph", None, 0, 0), t).to_pylist()
    # key 7: ("a", 1) is first; ("a", 3) and ("b", 0) lose; key 9: "d" loses; key 5 once
    assert [(r["row"], r["unit"]) for r in first] == [(0, 0), (1, 3), (4, 2)]
    boiler = _losers(Plan("paragraph", 1, 0, 0), t).to_pylist()
    assert [r["row"] for r in boiler] == [0, 1, 2, 3, 4]  # 7: docs a, b; 9: c, d; 5: one doc
    assert _losers(Plan("paragraph", 2, 0, 0), t).num_rows == 0
    assert _losers(Plan("paragraph", 2, 0, 0), pa.table({})).num_rows == 0


# ----------------------------------------------------------------------------------------------
# the demo


def demo_config(demo: Path, out: Path, workers: int = 1, action: str = "remove", **extra: Any) -> dict[str, Any]:
    decon: dict[str, Any] = {"name": "decontaminate", "action": action,
                             "eval_sets": [{"name": EVAL_SET, "path": str(demo / "eval" / f"{EVAL_SET}.jsonl")}]}
    decon.update(extra)
    return {"name": "decon", "output": str(out), "workers": workers, "seed": 1, "partition_rows": 200,
            "inputs": demo_inputs(demo),
            "stages": [{"name": "normalize"}, decon, {"name": "paragraph_dedup", "max_docs": 5},
                       {"name": "shard", "formats": ["parquet", "jsonl.zst"], "max_shard_bytes": 400_000}]}


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    from pipeline.config import validate
    from pipeline.runner import Runner

    return Runner(validate(cfg)).run()


def texts(out: Path, stage: str, sub: str = "data") -> dict[str, str]:
    files = sorted((out / stage / sub).glob("part-*.parquet"))
    return {r["id"]: r["text"] for f in files for r in pq.read_table(f, columns=["id", "text"]).to_pylist()}


def shard_bytes(out: Path) -> dict[str, bytes]:
    root = out / "shards"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "README.md"}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("decon_demo") / "demo"
    write_demo_corpus(root, 1500, seed=3)
    return root


@pytest.fixture(scope="module")
def runs(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("decon_runs")
    run(demo_config(demo, root / "one", workers=1))
    run(demo_config(demo, root / "two", workers=2))
    return {"one": root / "one", "two": root / "two"}


def test_planted_contamination_is_removed_and_nothing_else(demo: Path, runs: dict[str, Path]) -> None:
    out = runs["one"]
    truth = {t["id"]: t for t in load_truth(demo)}
    seen = texts(out, "normalize")
    removed = texts(out, "decontaminate", "removed")
    planted = {i for i in seen if (truth[i].get("plants") or {}).get("item") is not None}
    verbatim = {i for i in planted if truth[i]["plants"]["variant"] == "verbatim"}
    assert len(verbatim) >= 30 and {truth[i]["plants"]["position"] for i in verbatim} == {"start", "middle", "end"}
    assert len(verbatim & set(removed)) >= 0.99 * len(verbatim)
    assert set(removed) <= planted  # no clean document removed
    edited = planted - verbatim
    print(f"verbatim {len(verbatim & set(removed))}/{len(verbatim)}, edited {len(edited & set(removed))}/{len(edited)}")
    manifest = json.loads((out / "decontaminate" / "_manifest.json").read_text())
    stats = manifest["stats"]["eval_sets"][EVAL_SET]
    assert stats["items"] == 200 and stats["docs_matched"] == len(removed)
    contamination = pq.read_table(out / "decontaminate" / "contamination.parquet")
    assert contamination.column_names == ["id", "eval_set", "item", "ngrams"]
    assert set(contamination.column("id").to_pylist()) == set(removed)
    assert stats["items_found"] == len(set(contamination.column("item").to_pylist()))
    items_of: dict[str, set[int]] = {}
    for row in contamination.to_pylist():
        items_of.setdefault(row["id"], set()).add(row["item"])
        assert row["ngrams"] >= 1
    # the planted item is among those found (items from one template can share a 13-gram, as in real benchmarks)
    assert all(truth[i]["plants"]["item"] in found for i, found in items_of.items())
    assert manifest["counts"]["by_reason"] == {f"decontaminate:{EVAL_SET}": len(removed)}


def test_boilerplate_goes_and_single_sentences_stay(runs: dict[str, Path]) -> None:
    out = runs["one"]
    before, after = texts(out, "decontaminate"), texts(out, "paragraph_dedup")
    boilerplate = load("eval_qa")["BOILERPLATE"]
    copies = [(i, b) for i, t in before.items() for b in boilerplate if b in t]
    assert len(copies) >= 50
    gone = sum(1 for i, b in copies if i not in after or b not in after[i])
    assert gone >= 0.99 * len(copies)
    sentences = Counter(s for t in before.values() for s in re.split(r"(?<=[.!?])\s+|\n+", t) if s.strip())
    kept_text = "\n".join(after.values()) + "\n".join(texts(out, "paragraph_dedup", "removed").values())
    once = [s for s, n in sentences.items() if n == 1]
    assert len(once) > 1000 and all(s in kept_text for s in once)
    stats = json.loads((out / "paragraph_dedup" / "_manifest.json").read_text())["stats"]
    assert stats["units_removed"] >= len(copies) and stats["chars_removed"] > 100 * len(copies)


def test_no_eval_item_text_reaches_the_shards(demo: Path, runs: dict[str, Path]) -> None:
    items = [json.loads(line) for line in (demo / "eval" / f"{EVAL_SET}.jsonl").read_text().splitlines()]
    shards = pq.read_table(runs["one"] / "shards" / "text" / "parquet", columns=["text"]).column("text")
    corpus = "\n".join(shards.to_pylist())
    assert not [i["question"] for i in items if i["question"] in corpus]
    cfg = DecontaminateConfig(name="d", eval_sets=[{"name": "qa", "path": str(demo / "eval" / f"{EVAL_SET}.jsonl")}])
    table, stats = build_eval_table(cfg)
    found = match(tokenize(shards), tuple(stats["lengths"]), Membership(table.column("hash").to_numpy()),
                  table.column("set").to_numpy(), table.column("item").to_numpy())
    assert len(found[0]) == 0  # not one eval n-gram (or short item) in any shard document
    leftovers = [f for f in (runs["one"] / "decontaminate").rglob("*") if f.is_file() and f.suffix == ".parquet"
                 and "/removed/" not in str(f) and "/data/" not in str(f)]
    for f in leftovers:  # contamination tables hold ids and numbers only
        assert all(pa.types.is_integer(c.type) or c.name in ("id", "eval_set") for c in pq.read_schema(f))


def test_any_worker_count_gives_the_same_bytes(runs: dict[str, Path]) -> None:
    assert shard_bytes(runs["one"]) == shard_bytes(runs["two"])
    for stage in ("decontaminate", "paragraph_dedup"):
        one, two = (json.loads((runs[k] / stage / "_manifest.json").read_text()) for k in ("one", "two"))
        assert one["files"] == two["files"]  # every kept and removed partition, byte for byte
        assert one["stats"] == two["stats"] and one["counts"] == two["counts"]
    c1, c2 = (pq.read_table(runs[k] / "decontaminate" / "contamination.parquet") for k in ("one", "two"))
    assert c1.equals(c2)


def test_mask_action(demo: Path, runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "mask"
    cfg = demo_config(demo, out, action="mask", margin=20, min_chars=1500)
    cfg["stages"] = cfg["stages"][:2]
    run(cfg)
    truth = {t["id"]: t for t in load_truth(demo)}
    removed_by_remove = texts(runs["one"], "decontaminate", "removed")
    kept, removed = texts(out, "decontaminate"), texts(out, "decontaminate", "removed")
    assert set(removed) < set(removed_by_remove)  # short pages go, the rest is masked and kept
    assert {r for r in pq.read_table(out / "decontaminate" / "removed", columns=["reason"]).column(
        "reason").to_pylist()} == {"decontaminate:too_short"}
    masked = set(removed_by_remove) - set(removed)
    assert masked and all(len(kept[i]) >= 1500 for i in masked)
    items = [json.loads(line) for line in (demo / "eval" / f"{EVAL_SET}.jsonl").read_text().splitlines()]
    before = texts(out, "normalize")
    for i in masked:
        item = items[truth[i]["plants"]["item"]]
        if truth[i]["plants"]["variant"] == "verbatim":  # every window matches: all of it is cut
            assert item["question"] not in kept[i]
            assert len(kept[i]) <= len(before[i]) - len(item["question"]) - len(item["answer"]) - 20  # a margin
        assert kept[i] != before[i]
    stats = json.loads((out / "decontaminate" / "_manifest.json").read_text())["stats"]
    assert stats["masked_docs"] == len(masked) + len(removed)
    assert np.all(pq.read_table(out / "decontaminate" / "contamination.parquet").column("ngrams").to_numpy() > 0)


def test_eval_set_formats_and_errors(tmp_path: Path) -> None:
    import datasets

    from stages.decontaminate import EvalSetConfig, read_items

    rows = {"question": ["Which river?", "Who hid it?"], "choices": [["a", "b"], ["c"]], "answer": ["b", None]}
    pq.write_table(pa.table(rows), tmp_path / "e.parquet")
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "hf"))
    fields = ["question", "choices", "answer"]
    for fmt, path in (("parquet", tmp_path / "e.parquet"), ("hf", tmp_path / "hf")):
        got = read_items(EvalSetConfig(name="x", path=str(path), format=fmt, fields=fields))
        assert got == ["Which river? a b b", "Who hid it? c"], fmt
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok"}\n{"question": \n')
    with pytest.raises(ValueError, match=r"bad\.jsonl, line 2: invalid JSON"):
        read_items(EvalSetConfig(name="x", path=str(bad)))
    with pytest.raises(ValueError, match="has no field 'prompt'"):
        read_items(EvalSetConfig(name="x", path=str(tmp_path / "e.parquet"), format="parquet", fields=["prompt"]))
    with pytest.raises(ValueError, match="eval set names repeat"):
        DecontaminateConfig(name="d", eval_sets=[{"name": "a", "path": "x"}, {"name": "a", "path": "y"}])
