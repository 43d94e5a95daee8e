"""The demo corpus generator: layout, determinism, ground truth, planted problems, text quality.

Later stages are evaluated against truth.jsonl, so these tests read the files back with the real
readers (gzip, zstandard, pyarrow, datasets) and check the truth against what is actually there.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo.corpus import (
    MALFORMED_KINDS,
    load_truth,
    normalize_for_exact,
    normalize_for_shingles,
    shingle_jaccard,
    write_demo_corpus,
)
from pipeline.demo.text import shingle_set
from pipeline.ids import derived_doc_id

N_DOCS = 1500
HAN = re.compile(r"[\u4e00-\u9fff]")
KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff]")
STOP_WORDS = {"the", "be", "to", "of", "and", "that", "have", "with"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo")
    summary = write_demo_corpus(out, n_docs=N_DOCS, seed=0)
    return out, summary


@pytest.fixture(scope="module")
def truth(corpus: tuple[Path, dict[str, Any]]) -> list[dict[str, Any]]:
    return load_truth(corpus[0])


@pytest.fixture(scope="module")
def records(corpus: tuple[Path, dict[str, Any]]) -> dict[tuple[str, str, int], Any]:
    """Every record as stored: (source, file, line) -> raw bytes (JSONL) or a row dict."""
    return _read_all(corpus[0])


def _read_all(out: Path) -> dict[tuple[str, str, int], Any]:
    import datasets
    import pyarrow.parquet as pq
    import zstandard

    recs: dict[tuple[str, str, int], Any] = {}
    for path in sorted((out / "web").glob("*.jsonl.gz")):
        with gzip.open(path, "rb") as fh:
            for i, raw in enumerate(fh.read().split(b"\n")[:-1], start=1):
                recs[("web", path.name, i)] = raw
    for path in sorted((out / "forum").glob("*.jsonl.zst")):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
        for i, raw in enumerate(data.split(b"\n")[:-1], start=1):
            recs[("forum", path.name, i)] = raw
    for path in sorted((out / "code").glob("*.jsonl")):
        for i, raw in enumerate(path.read_bytes().split(b"\n")[:-1], start=1):
            recs[("code", path.name, i)] = raw
    for path in sorted((out / "encyclopedia").glob("*.parquet")):
        for i, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            recs[("encyclopedia", path.name, i)] = row
    ds = datasets.load_from_disk(str(out / "math"))
    for i, row in enumerate(ds.to_list(), start=1):
        recs[("math", "math", i)] = row
    return recs


FIELDS = {"web": (None, "text", "url"), "forum": ("doc_id", "body", "link"), "code": ("id", "text", "url"),
          "encyclopedia": ("id", "text", "url"), "math": ("id", "text", None)}


def _texts(truth: list[dict[str, Any]], records: dict[tuple[str, str, int], Any]) -> dict[str, str]:
    """id -> text of every valid record."""
    out = {}
    for t in truth:
        if t["malformed"]:
            continue
        rec = records[(t["source"], t["file"], t["line"])]
        if isinstance(rec, bytes):
            rec = json.loads(rec)
        out[t["id"]] = rec[FIELDS[t["source"]][1]]
    return out


def _hash_tree(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------------------------


def test_layout_and_summary(corpus: tuple[Path, dict[str, Any]]) -> None:
    out, summary = corpus
    assert summary["n_docs"] == N_DOCS
    assert sum(summary["by_source"].values()) == N_DOCS
    for source, pattern in (("web", "part-*.jsonl.gz"), ("forum", "part-*.jsonl.zst"),
                            ("encyclopedia", "part-*.parquet"), ("code", "part-*.jsonl"),
                            ("math", "data-*.arrow")):
        files = sorted((out / source).glob(pattern))
        assert len(files) >= 2, source
        assert [f.name for f in files] == summary["files"][source]
    assert (out / "math" / "state.json").exists()
    assert not list(out.glob(".*tmp*"))
    # deterministic gzip: no mtime, no file name in the header
    head = (out / "web" / "part-0000.jsonl.gz").read_bytes()[:10]
    assert head[4:8] == b"\0\0\0\0" and not head[3] & 0x08


def test_deterministic(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    write_demo_corpus(a, n_docs=300, seed=7)
    write_demo_corpus(b, n_docs=300, seed=7)
    write_demo_corpus(c, n_docs=300, seed=8)
    ha, hb, hc = _hash_tree(a), _hash_tree(b), _hash_tree(c)
    assert ha == hb
    assert ha.keys() == hc.keys()
    assert all(ha[k] != hc[k] for k in ha if k.endswith((".gz", ".zst", ".parquet", ".jsonl", ".arrow")))


def test_truth_covers_every_record(truth: list[dict[str, Any]],
                                   records: dict[tuple[str, str, int], Any]) -> None:
    keys = [(t["source"], t["file"], t["line"]) for t in truth]
    assert len(keys) == len(set(keys))
    assert set(keys) == set(records)
    ids = [t["id"] for t in truth]
    assert len(ids) == len(set(ids))
    for t in truth:
        rec = records[(t["source"], t["file"], t["line"])]
        if t["malformed"]:
            continue
        if isinstance(rec, bytes):
            rec = json.loads(rec)
        id_f, text_f, url_f = FIELDS[t["source"]]
        expected_id = rec[id_f] if id_f else derived_doc_id(t["source"], t["file"], t["line"])
        assert t["id"] == expected_id
        assert isinstance(rec[text_f], str) and len(rec[text_f]) == t["n_chars"]
        if url_f:
            assert rec[url_f].startswith("https://")
        assert t["lang"] in ("en", "zh") and t["quality"] in ("high", "low", "spam", "short")
    math_rows = [t for t in truth if t["source"] == "math"]
    assert [t["line"] for t in math_rows] == list(range(1, len(math_rows) + 1))


def test_malformed_records(truth: list[dict[str, Any]], records: dict[tuple[str, str, int], Any]) -> None:
    bad = [t for t in truth if t["malformed"]]
    kinds = Counter(t["malformed"] for t in bad)
    assert set(kinds) == set(MALFORMED_KINDS)
    assert 10 <= len(bad) <= 0.03 * N_DOCS
    assert {t["source"] for t in bad} <= {"web", "forum", "code"}
    for t in bad:
        raw = records[(t["source"], t["file"], t["line"])]
        text_f = FIELDS[t["source"]][1]
        kind = t["malformed"]
        if kind == "invalid_utf8":  # bad bytes, or an escaped lone surrogate that cannot be encoded
            try:
                json.loads(raw.decode("utf-8"))[text_f].encode("utf-8")
                raise AssertionError(f"valid UTF-8: {raw!r}")
            except UnicodeError:
                pass
            continue
        text = raw.decode("utf-8")
        if kind == "bad_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(text)
            continue
        rec = json.loads(text)
        if kind == "missing_text":
            assert text_f not in rec
        elif kind == "non_string_text":
            assert not isinstance(rec[text_f], str)
        else:
            assert isinstance(rec[text_f], str) and not rec[text_f].strip()
    # valid records share the files with the malformed ones
    bad_files = {(t["source"], t["file"]) for t in bad}
    assert any((t["source"], t["file"]) in bad_files for t in truth if not t["malformed"])


def test_exact_duplicates(truth: list[dict[str, Any]], records: dict[tuple[str, str, int], Any]) -> None:
    texts = _texts(truth, records)
    dups = [t for t in truth if t["exact_dup_of"]]
    planted = [t for t in dups if t["dup_variant"] != "accidental"]
    assert 0.02 * N_DOCS <= len(planted) <= 0.04 * N_DOCS
    variants = Counter(t["dup_variant"] for t in planted)
    assert {"identical", "whitespace", "case"} <= set(variants)
    by_id = {t["id"]: t for t in truth}
    for t in dups:
        a, b = texts[t["id"]], texts[t["exact_dup_of"]]
        assert normalize_for_exact(a) == normalize_for_exact(b)
        if t["dup_variant"] == "accidental":  # template-made pages that coincide, in any domain
            assert t["quality"] in ("low", "spam", "short")
            continue
        assert (a == b) == (t["dup_variant"] == "identical"), t
        orig = by_id[t["exact_dup_of"]]
        assert (orig["lang"], orig["domain"], orig["quality"]) == (t["lang"], t["domain"], t["quality"])
    # no other document shares its normalized text with anything
    seen: dict[str, str] = {}
    dup_ids = {t["id"] for t in dups}
    for doc_id, text in texts.items():
        if doc_id in dup_ids:
            continue
        key = normalize_for_exact(text)
        assert key not in seen, (doc_id, seen.get(key))
        seen[key] = doc_id


def test_near_duplicates(truth: list[dict[str, Any]], records: dict[tuple[str, str, int], Any]) -> None:
    texts = _texts(truth, records)
    by_id = {t["id"]: t for t in truth}
    near = [t for t in truth if t["near_dup_of"] and t["dup_variant"] != "accidental"]
    assert 0.04 * N_DOCS <= len(near) <= 0.06 * N_DOCS
    js = []
    for t in near:
        orig = by_id[t["near_dup_of"]]
        assert orig["quality"] == "high" and not orig["exact_dup_of"] and not orig["near_dup_of"]
        a, b = texts[t["id"]], texts[t["near_dup_of"]]
        j = shingle_jaccard(a, b)
        assert j == pytest.approx(t["jaccard"], abs=1e-6)
        assert j < 1.0 and normalize_for_exact(a) != normalize_for_exact(b)
        assert t["exact_dup_of"] is None and t["quality"] == "high"
        js.append(j)
    assert min(js) < 0.55 and max(js) > 0.93
    buckets = Counter(min(int(j * 10), 9) for j in js)
    assert sum(1 for b in range(5, 10) if buckets[b]) >= 4  # spread over 0.5 .. 0.98


def test_independent_documents_are_not_similar(truth: list[dict[str, Any]],
                                               records: dict[tuple[str, str, int], Any]) -> None:
    """Unrelated high/low documents share almost no 5-grams, so dedup finds only what was planted."""
    texts = _texts(truth, records)
    docs = [t for t in truth if not t["malformed"] and t["quality"] in ("high", "low")]
    cluster = {t["id"]: t["exact_dup_of"] or t["near_dup_of"] or t["id"] for t in docs}
    sets = {t["id"]: shingle_set(texts[t["id"]]) for t in docs}
    index: dict[Any, list[str]] = defaultdict(list)
    for doc_id, s in sets.items():
        for sh in s:
            index[sh].append(doc_id)
    shared: Counter[tuple[str, str]] = Counter()
    for ids in index.values():
        if 1 < len(ids) < 50:
            for i in range(len(ids)):
                for j in range(i + 1, len(ids)):
                    shared[(ids[i], ids[j])] += 1
    worst = 0.0
    for (a, b), n in shared.items():
        if cluster[a] == cluster[b]:
            continue
        j = n / (len(sets[a]) + len(sets[b]) - n)
        worst = max(worst, j)
    assert worst < 0.45
    by_quality = defaultdict(list)
    for t in docs:
        if not t["exact_dup_of"] and not t["near_dup_of"]:
            by_quality[t["quality"]].append(t["id"])
    pairs = list(zip(by_quality["high"][:200], by_quality["high"][200:400], strict=False))
    mean = sum(shingle_jaccard(texts[a], texts[b]) for a, b in pairs) / len(pairs)
    assert mean < 0.02


def test_proportions(summary_and_truth: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
    summary, truth = summary_and_truth
    valid = [t for t in truth if not t["malformed"]]
    n = len(valid)
    assert n == N_DOCS
    zh = sum(t["lang"] == "zh" for t in valid) / n
    assert 0.15 <= zh <= 0.22
    assert {t["domain"] for t in valid if t["lang"] == "zh"} == {"news", "encyclopedia", "forum"}
    domains = Counter(t["domain"] for t in valid)
    assert set(domains) == {"news", "encyclopedia", "code", "forum", "math"}
    assert all(c >= 0.08 * n for c in domains.values())
    q = Counter(t["quality"] for t in valid)
    assert 0.65 <= q["high"] / n <= 0.82
    assert 0.10 <= q["low"] / n <= 0.20
    assert 0.04 <= q["spam"] / n <= 0.10
    assert 0.03 <= q["short"] / n <= 0.08
    assert summary["by_quality"] == dict(q)
    sources = Counter(t["source"] for t in valid)
    assert sources == Counter({"web": 600, "forum": 300, "encyclopedia": 300, "code": 150, "math": 150})


@pytest.fixture(scope="module")
def summary_and_truth(corpus: tuple[Path, dict[str, Any]],
                      truth: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    return corpus[1], truth


def test_scripts(truth: list[dict[str, Any]], records: dict[tuple[str, str, int], Any]) -> None:
    texts = _texts(truth, records)
    for t in truth:
        if t["malformed"]:
            continue
        text = texts[t["id"]]
        assert not KANA.search(text), t["id"]
        han = len(HAN.findall(text))
        if t["lang"] == "zh":
            assert han >= 0.5 * len(re.sub(r"[\W\d_]", "", text)), t["id"]
        else:
            assert han == 0, t["id"]


def test_clean_english_documents(truth: list[dict[str, Any]], records: dict[tuple[str, str, int], Any]) -> None:
    texts = _texts(truth, records)
    clean = [t for t in truth if not t["malformed"] and t["lang"] == "en" and t["quality"] == "high"
             and t["domain"] != "code" and not t["near_dup_of"] and t["dup_variant"] != "case"]
    assert len(clean) > 600
    for t in clean:
        text = texts[t["id"]]
        words = text.split()
        assert 50 <= len(words) <= 1000, t["id"]
        assert sum(w.lower().strip(".,;:!?\"'") in STOP_WORDS for w in words) >= 2
        lines = [line.strip() for line in text.split("\n") if line.strip()]
        assert len(lines) == len(set(lines)), t["id"]
        assert all(line.endswith((".", "?", "!", '"')) for line in lines), t["id"]
        assert "{" not in text and "lorem ipsum" not in text.lower()
        assert not re.search(r"javascript|cookie|privacy policy|terms of use", text, re.I), t["id"]
        alpha = sum(any(c.isalpha() for c in w) for w in words) / len(words)
        assert alpha >= 0.8, t["id"]
        assert text.count("\n") / len(words) < 0.3
    spam = [t for t in truth if not t["malformed"] and t["quality"] in ("spam", "short")]
    assert {t["subtype"] for t in spam if t["quality"] == "spam"} >= {
        "cookie_notice", "javascript_notice", "lorem_ipsum", "repeated_lines", "bullet_list", "symbol_heavy"}


def _naive_bayes_accuracy(train: list[tuple[list[str], str]], test: list[tuple[list[str], str]]) -> list[str]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    prior: Counter[str] = Counter()
    for toks, label in train:
        counts[label].update(toks)
        prior[label] += 1
    vocab = {w for c in counts.values() for w in c}
    totals = {label: sum(c.values()) for label, c in counts.items()}
    out = []
    for toks, _ in test:
        scores = {label: math.log(prior[label]) + sum(
            math.log((counts[label][w] + 1) / (totals[label] + len(vocab))) for w in toks if w in vocab)
            for label in counts}
        out.append(max(scores, key=lambda k: scores[k]))
    return out


def _features(text: str) -> list[str]:
    toks = normalize_for_shingles(text)
    return toks + [a + " " + b for a, b in zip(toks, toks[1:], strict=False)]


def test_quality_and_domain_are_learnable(truth: list[dict[str, Any]],
                                          records: dict[tuple[str, str, int], Any]) -> None:
    """A bag-of-words classifier (a stand-in for fastText) separates high from low, and the domains."""
    texts = _texts(truth, records)
    docs = [t for t in truth if not t["malformed"] and not t["exact_dup_of"] and not t["near_dup_of"]]
    qual = [(_features(texts[t["id"]]), t["quality"]) for t in docs if t["quality"] in ("high", "low")]
    pred = _naive_bayes_accuracy(qual[::2], qual[1::2])
    gold = [label for _, label in qual[1::2]]
    tp = sum(p == g == "low" for p, g in zip(pred, gold, strict=True))
    fp = sum(p == "low" != g for p, g in zip(pred, gold, strict=True))
    fn = sum(g == "low" != p for p, g in zip(pred, gold, strict=True))
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.9
    dom = [(_features(texts[t["id"]]), t["domain"]) for t in docs if t["quality"] in ("high", "low")]
    pred = _naive_bayes_accuracy(dom[::2], dom[1::2])
    acc = sum(p == g for p, (_, g) in zip(pred, dom[1::2], strict=True)) / len(pred)
    assert acc >= 0.9


def test_shingles() -> None:
    assert normalize_for_shingles("The Cat, the HAT!  sat.") == ["the", "cat", "the", "hat", "sat"]
    assert normalize_for_shingles("北京市，今天 晴。") == ["北", "京", "市", "今", "天", "晴"]
    a = "one two three four five six seven"
    assert shingle_jaccard(a, a) == 1.0
    assert shingle_jaccard(a, "eight nine ten eleven twelve") == 0.0
    assert shingle_jaccard(a, a.upper() + "!") == 1.0
    assert shingle_jaccard(a, "one two three four five six eight") == pytest.approx(2 / 4)
    assert shingle_jaccard("", "") == 1.0
