"""The demo crawl end to end: `curate run` over a WARC with a truncated record exits 0, quarantines that
record with file and offset, counts non-documents per reason, filters URLs as planted, and the default
extraction method recovers the planted article text without the boilerplate."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from filters.html_extract import extract
from pipeline.demo.web_pages import WARC_NAME, crawl_input, load_crawl_truth, score_extraction, write_crawl
from pipeline.warc import read_warc
from stages.extract import ExtractConfig, method_options
from tests.conftest import curate, write_config

LISTS = "crawl/lists"


def web_config(executor: str = "local", **extra: Any) -> dict[str, Any]:
    """The demo's web part: url_filter, extract, normalize over the crawl (paths relative to the cwd)."""
    return {"name": "web", "output": "out", "executor": executor, "workers": 2, "partition_rows": 40,
            "inputs": [crawl_input()],
            "stages": [{"name": "url_filter", "block_domains": [f"{LISTS}/block_domains.txt", f"{LISTS}/blacklists"],
                        "block_substrings": [f"{LISTS}/block_substrings.txt"],
                        "allow_domains": [f"{LISTS}/allow_domains.txt"], "banned_words": [f"{LISTS}/banned_words.txt"],
                        "soft_banned_words": [f"{LISTS}/soft_banned_words.txt"],
                        "banned_subwords": [f"{LISTS}/banned_subwords.txt"]},
                       {"name": "extract"}, {"name": "normalize"}], **extra}


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crawl")
    write_crawl(root, 160, seed=5)
    return root


def _ids(out: Path, stage: str, sub: str) -> list[str]:
    return [i for p in sorted((out / stage / sub).glob("*.parquet")) for i in pq.read_table(p, columns=["id"])
            .column("id").to_pylist()]


def _removed(out: Path, stage: str) -> dict[str, str]:
    rows = [r for p in sorted((out / stage / "removed").glob("*.parquet"))
            for r in pq.read_table(p, columns=["id", "reason"]).to_pylist()]
    return {r["id"]: r["reason"] for r in rows}


def test_demo_crawl_is_deterministic(tmp_path: Path) -> None:
    a, b = write_crawl(tmp_path / "a", 30, seed=2), write_crawl(tmp_path / "b", 30, seed=2)
    digest = [hashlib.sha256(Path(x["warc"]).read_bytes()).hexdigest() for x in (a, b)]
    assert digest[0] == digest[1] and a["by_kind"] == b["by_kind"]
    assert a["by_kind"]["truncated"] == 1 and a["by_kind"]["non_200"] and a["by_kind"]["non_html"]


def test_default_method_recovers_articles_and_drops_boilerplate(crawl: Path) -> None:
    truth = load_crawl_truth(crawl)
    docs = {d["id"]: d for _, d in read_warc("crawl", str(crawl / "crawl" / WARC_NAME), WARC_NAME, "warc")
            if isinstance(d, dict)}
    charsets = Counter(r["charset_declared"] for r in truth if r["kind"] == "page")
    assert set(charsets) == {"http", "meta", "none"}  # several charsets, some undeclared
    cfg = ExtractConfig(name="extract")
    texts = {i: extract(cfg.method, d["html"], d["url"], method_options(cfg)) for i, d in docs.items()}
    score = score_extraction(texts, truth)
    assert score["pages"] == 159 and score["sentences"] > 1500
    assert score["sentence_recall"] >= 0.95, score
    assert score["boilerplate_kept"] <= 0.05, score
    plain = ExtractConfig(name="extract", method="plain")
    bare = score_extraction({i: extract("plain", d["html"], d["url"], method_options(plain)) for i, d in docs.items()},
                            truth)
    assert bare["boilerplate_kept"] > 0.5  # the pages really carry boilerplate: the score can fail


def test_curate_run_on_the_crawl(crawl: Path) -> None:
    write_config(crawl / "pipeline.yaml", web_config())
    proc = curate("run", "pipeline.yaml", cwd=crawl)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = crawl / "out"
    truth = load_crawl_truth(crawl)
    kinds = Counter(r["kind"] for r in truth)
    ingest = json.loads((out / "ingest" / "_manifest.json").read_text())
    skipped = ingest["stats"]["skipped"]
    assert sum(v for k, v in skipped.items() if k.startswith("record_type:")) == (
        kinds["warcinfo"] + kinds["request"] + kinds["metadata"] + kinds["revisit"])
    assert skipped["http_status:404"] + skipped["http_status:301"] == kinds["non_200"]
    assert skipped["content_type:image/png"] + skipped["content_type:application/json"] == kinds["non_html"]
    assert ingest["counts"]["in"] == kinds["page"] + kinds["truncated"]
    # the truncated record: quarantined with file and offset, the records after it still read
    [cut] = [r for r in truth if r["kind"] == "truncated"]
    quarantine = [r for p in sorted((out / "quarantine").glob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    assert [(q["file"], q["offset"]) for q in quarantine] == [(WARC_NAME, cut["offset"])]
    pages = [r for r in truth if r["kind"] == "page"]
    assert any(r["offset"] > cut["offset"] for r in pages)
    # every page exactly once: kept at the end, or removed by one stage
    removed = {s: _removed(out, s) for s in ("url_filter", "extract", "normalize")}
    kept = _ids(out, "normalize", "data")
    everything = kept + [i for r in removed.values() for i in r]
    assert sorted(everything) == sorted(r["id"] for r in pages)
    # url_filter removes exactly the planted pages, each for the planted reason
    assert removed["url_filter"] == {r["id"]: r["url_filter"] for r in pages if r["url_filter"]}
    assert set(removed["url_filter"].values()) == {"url_filter:domain", "url_filter:substring", "url_filter:word"}
    # text after extract: the article, its paragraphs on separate lines, and no html column
    table = pq.read_table(sorted((out / "extract" / "data").glob("*.parquet"))[0])
    assert "html" not in table.column_names
    first = table.slice(0, 1).to_pylist()[0]
    row = next(r for r in pages if r["id"] == first["id"])
    assert row["article"][0] in first["text"] and first["text"].count("\n") >= 3
    meta = json.loads(first["meta"])
    assert meta["offset"] == row["offset"] and meta["file"] == WARC_NAME and meta["warc_date"]
