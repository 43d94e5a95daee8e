"""The web stages on Spark (local[2]) decide what the local executor decides: the demo crawl and a text
input side by side (one partition schema), through url_filter, extract and normalize. Skipped without
pyspark or Java, except under CI=true, where that is a failure."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.spark_util import TEST_CONF, require_pyspark

require_pyspark()

from pipeline.demo.web_pages import write_crawl  # noqa: E402 - after the pyspark check
from tests.test_spark import outcome, run_in_process  # noqa: E402
from tests.test_web_pipeline import web_config  # noqa: E402


def _largest_page_chars(root: Path) -> int:
    from pipeline.demo.web_pages import WARC_NAME
    from pipeline.warc import read_warc

    pages = [d.get("html") or "" for _, d in read_warc("crawl", str(root / "crawl" / WARC_NAME), WARC_NAME, "warc")
             if isinstance(d, dict)]
    return max(len(p.decode("utf-8") if isinstance(p, bytes) else p) for p in pages)  # UTF-8 pages come as bytes


def _config(root: Path, executor: str) -> dict[str, Any]:
    cfg = web_config(executor, spark={"master": "local[2]", "conf": TEST_CONF})
    cfg["output"] = str(root / f"out-{executor}")
    cfg["inputs"] = [{**cfg["inputs"][0], "path": str(root / cfg["inputs"][0]["path"])},
                     {"name": "notes", "path": str(root / "notes.jsonl"), "url_field": "url"}]
    for stage in cfg["stages"]:
        if stage["name"] == "extract":  # the largest page goes as extract:too_large, the rest are extracted
            stage["max_html_chars"] = _largest_page_chars(root) - 1
        for key, value in list(stage.items()):
            if isinstance(value, list):
                stage[key] = [str(root / v) for v in value]
    return cfg


def test_web_stages_decide_the_same_on_spark(tmp_path: Path, spark: Any) -> None:
    write_crawl(tmp_path, 90, seed=11)
    notes = [{"text": f"A plain text note number {i} about the harbour.", "url": url}
             for i, url in enumerate(["https://ok.example/a", "https://spam.casino-jackpot-wins.example/b", None])]
    (tmp_path / "notes.jsonl").write_text("".join(json.dumps(n) + "\n" for n in notes))
    run_in_process(_config(tmp_path, "local"))
    run_in_process(_config(tmp_path, "spark"))
    for stage in ("ingest", "url_filter", "extract", "normalize"):
        local, remote = outcome(tmp_path / "out-local", stage), outcome(tmp_path / "out-spark", stage)
        assert remote["executor"] == "spark"
        assert (local["kept"], local["removed"], local["counts"]) == (remote["kept"], remote["removed"],
                                                                      remote["counts"]), stage
    reasons = {r for _, r in outcome(tmp_path / "out-spark", "url_filter")["removed"]}
    assert {"url_filter:domain", "url_filter:substring", "url_filter:word"} <= reasons
    assert "extract:too_large" in {r for _, r in outcome(tmp_path / "out-spark", "extract")["removed"]}
    assert len(outcome(tmp_path / "out-spark", "extract")["kept"]) > 60
    texts = [_extracted(tmp_path / f"out-{ex}") for ex in ("local", "spark")]
    assert texts[0] == texts[1]  # the same text and formula count for every page
    assert any(n for _, n in texts[0].values())  # the crawl's math pages counted formulas


def _extracted(out: Path) -> dict[str, tuple[str, int | None]]:
    import pyarrow.parquet as pq

    rows = [r for f in sorted((out / "extract" / "data").glob("part-*.parquet"))
            for r in pq.read_table(f, columns=["id", "text", "math_formulas"]).to_pylist()]
    return {r["id"]: (r["text"], r["math_formulas"]) for r in rows}
