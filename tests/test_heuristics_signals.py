"""`signals: decisive` and `signals: all` give the same decisions and reasons; decisive leaves the
columns of the rules it never evaluated null, and every value it did compute equals the `all` one.

On real text (the shared article set's human-made article bodies, `../shared/data`), on the demo
corpus and on generated edge cases, in both compat modes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from stages.heuristics import FILTERS, HeuristicsConfig, Stage
from tests import oracle

REPO = Path(__file__).resolve().parents[1]
ARTICLES = REPO.parent / "shared" / "data" / "article-extraction" / "ground-truth.json"
ORDER = ["gopher_repetition", "gopher_quality", "c4", "fineweb"]  # FineWeb's order (c4 rewrites for fineweb)


def article_texts() -> list[str]:
    if not ARTICLES.exists():
        if os.environ.get("CI") == "true":
            raise FileNotFoundError(f"{ARTICLES} is missing (the shared article set)")
        pytest.skip(f"{ARTICLES} not found (the shared article set)")
    pages = json.loads(ARTICLES.read_text(encoding="utf-8"))
    return [p["articleBody"] for _, p in sorted(pages.items()) if p.get("articleBody")]


def demo_texts(tmp: Path) -> list[str]:
    from pipeline.demo.corpus import write_demo_corpus
    from tests.test_stage_heuristics import load_demo_docs

    write_demo_corpus(tmp / "demo", 500, 4)
    return load_demo_docs(tmp / "demo").column("text").to_pylist()


def run(texts: list[str], **settings: object) -> pa.Table:
    stage = Stage(HeuristicsConfig(name="heuristics", kind="heuristics", filters=ORDER, **settings), None)
    stage.setup()
    ids = pa.array([f"d{i:05d}" for i in range(len(texts))], pa.string())
    return stage.apply(pa.table({"id": ids, "text": pa.array(texts, pa.string()),
                                 "source": pa.array(["web"] * len(texts), pa.string())}))


def check_modes(texts: list[str], compat: str) -> dict[str, int]:
    full = run(texts, compat=compat, signals="all")
    short = run(texts, compat=compat, signals="decisive")
    reasons = full.column("reason").to_pylist()
    assert short.column("reason").to_pylist() == reasons
    assert short.column("text").to_pylist() == full.column("text").to_pylist()  # c4's rewrite as well
    assert short.schema == full.schema
    decided = {name: 0 for name in ORDER}
    for i, reason in enumerate(reasons):
        failed_at = ORDER.index(reason.split(":")[0]) if reason else len(ORDER)
        if reason:
            decided[reason.split(":")[0]] += 1
        for k, name in enumerate(ORDER):
            for col in FILTERS[name].SIGNALS:
                value, reference = short.column(col)[i].as_py(), full.column(col)[i].as_py()
                assert reference is not None, (col, i)  # `all`: every statistic
                if k > failed_at:
                    assert value is None, (col, i, reason)  # never evaluated
                elif k < failed_at:
                    assert value == reference, (col, i, reason)  # passed: every rule evaluated
                else:
                    assert value is None or value == reference, (col, i, reason)
    return decided


@pytest.mark.parametrize("compat", ["datatrove", "paper"])
def test_same_decisions_on_real_articles(compat: str) -> None:
    texts = article_texts()
    decided = check_modes(texts, compat)
    assert sum(decided.values()) > 0  # some real articles fail a rule: the comparison means something


@pytest.mark.parametrize("compat", ["datatrove", "paper"])
def test_same_decisions_on_demo_and_edge_cases(tmp_path: Path, compat: str) -> None:
    texts = demo_texts(tmp_path) + oracle.edge_case_texts(300, seed=9)
    decided = check_modes(texts, compat)
    assert all(decided[name] > 0 for name in ORDER), decided  # each filter decides some documents


def test_decisive_skips_ngram_statistics_of_documents_failing_on_lines() -> None:
    """gopher_repetition's line rules come first: a document failing them gets no n-gram statistics."""
    spam = "\n".join(["Buy cheap watches now at the best price in town today."] * 12)
    prose = oracle.prose(__import__("random").Random(1), 40)
    short = run([spam, prose], signals="decisive")
    assert short.column("reason").to_pylist()[0].startswith("gopher_repetition:dup_")
    assert short.column("gopher_dup_line_ratio")[0].as_py() > 0.3
    assert short.column("gopher_top_2gram_ratio")[0].as_py() is None
    assert short.column("gopher_word_count")[0].as_py() is None  # a later filter
    assert short.column("gopher_top_2gram_ratio")[1].as_py() is not None


def test_default_mode_is_decisive_and_all_when_tagging() -> None:
    assert HeuristicsConfig(name="heuristics", kind="heuristics").signals_mode() == "decisive"
    assert HeuristicsConfig(name="heuristics", kind="heuristics", tag_only=True).signals_mode() == "all"
    spam = "\n".join(["Buy cheap watches now at the best price in town today."] * 12)
    tagged = run([spam], tag_only=True)
    assert tagged.column("reason").to_pylist() == [None]
    assert tagged.column("fineweb_char_dup_ratio")[0].as_py() is not None  # every statistic
    assert run([spam]).column("fineweb_char_dup_ratio")[0].as_py() is None
    assert not np.isnan(tagged.column("gopher_top_2gram_ratio")[0].as_py())
