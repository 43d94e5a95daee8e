"""Notebook API and the HTML report: numbers equal the manifests, every figure present."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import pipeline
from tests.conftest import curate, pipeline_config, write_config
from tests.test_mix_shards import DOMAIN_RULES, tokenizer_dir  # noqa: F401 - fixture


class Cells(HTMLParser):
    """Collects text of elements carrying data-* attributes, keyed by those attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple, str] = {}
        self.images = 0
        self.figures: list[str] = []
        self._key: tuple | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        data = tuple(sorted((k, v) for k, v in attrs if k.startswith("data-")))
        if tag == "td" and data:
            self._key = data
            self.cells[data] = ""
        if tag == "figure":
            self.figures.append(dict(attrs).get("data-figure") or "")
        if tag == "svg":  # figures are inline SVG (pipeline/svg_chart.py)
            self.images += 1

    def handle_data(self, data: str) -> None:
        if self._key is not None:
            self.cells[self._key] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._key = None


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path, quality_model: Path,
                 tokenizer_dir: Path) -> Path:  # noqa: F811
    root = tmp_path_factory.mktemp("reportrun")
    (root / "corpus").symlink_to(corpus_dir / "corpus")
    cfg = pipeline_config()
    cfg["stages"] = [{"name": "normalize"}, {"name": "exact_dedup"},
                     {"name": "quality", "kind": "quality_classifier", "model": str(quality_model), "keep_top": 0.6},
                     {"name": "domain", "kind": "domain_classifier", "rules": DOMAIN_RULES},
                     {"name": "tokenize", "tokenizer": str(tokenizer_dir)},
                     {"name": "mix", "weighting": "unimax", "budget_tokens": 15000},
                     {"name": "shard", "formats": ["parquet"]}]
    write_config(root / "pipeline.yaml", cfg)
    curate("run", cwd=root, check=True)
    curate("report", "out", cwd=root, check=True)
    return root / "out"


def test_report_numbers_equal_manifests(finished_run: Path) -> None:
    page = (finished_run / "report.html").read_text()
    parser = Cells()
    parser.feed(page)
    for stage in ("ingest", "normalize", "exact_dedup", "quality", "mix", "shard"):
        counts = json.loads((finished_run / stage / "_manifest.json").read_text())["counts"]
        for field in ("in", "added", "kept", "removed"):
            assert parser.cells[(("data-field", field), ("data-stage", stage))] == str(counts[field]), (stage, field)
        for reason, n in counts["by_reason"].items():
            assert parser.cells[(("data-reason", reason), ("data-stage", stage))] == str(n)
    shards = json.loads((finished_run / "shards" / "manifest.json").read_text())
    for domain, row in shards["domains"].items():
        assert parser.cells[(("data-domain", domain), ("data-field", "realized_tokens"))] == str(row["realized_tokens"])
    # figures: funnel, quality and domain score histograms, budget
    assert parser.images >= 4 and parser.images == len(parser.figures)
    assert {"funnel", "quality_score", "domain_score", "budget"} <= set(parser.figures)
    assert 'data-score="quality_score"' in page
    assert "<script" not in page and "http://" not in page.replace("http://example", "")


def test_notebook_api(finished_run: Path) -> None:
    run = pipeline.open_run(finished_run)
    stats = run.stats()
    assert list(stats["stage"]) == ["ingest", "normalize", "exact_dedup", "quality", "domain", "tokenize", "mix",
                                    "shard"]
    assert (stats["state"] == "done").all()
    docs = run.docs("quality", columns=["id", "quality_score"], limit=5)
    assert list(docs.columns) == ["id", "quality_score"] and len(docs) == 5
    removed = run.removed("exact_dedup")
    doc_id = removed["id"].iloc[0]
    path = run.explain(doc_id)
    assert list(path["stage"]) == ["ingest", "normalize", "exact_dedup"]
    assert path["decision"].tolist() == ["kept", "kept", "removed"]
    assert path["reason"].iloc[-1].startswith("exact_dup:of=")
    survivor = path["reason"].iloc[-1].split("of=")[1]
    trace = run.explain(survivor)
    assert "quality" in set(trace["stage"]) and "quality_score" in trace["signals"].iloc[3]
    quarantined = run.quarantine()
    assert len(quarantined) == 5
    side = run.sample("quality", reason="quality:", n=3)
    assert set(side["side"]) <= {"removed", "kept"} and (side["side"] == "kept").sum() == 3
    assert re.match(r"quality:", side[side["side"] == "removed"]["reason"].iloc[0])
    fig = run.plot_funnel()
    assert fig.axes[0].get_title() == "Documents per stage"
    fig = run.plot_scores("quality_score", by="decision")
    assert any("threshold" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_svg_charts_draw_every_group_bar_and_mark() -> None:
    """The report's figures: one filled step outline per group on the shared bins, a dashed line per
    threshold, one rectangle per bar whose heights follow the values (stacked bars add up)."""
    import numpy as np

    from pipeline import svg_chart

    edges = np.linspace(0.0, 10.0, 11)
    page = svg_chart.histogram(edges, [("kept", [1] * 10), ("removed", [0, 5, 0, 0, 0, 0, 0, 0, 0, 2])],
                               [("threshold min_x=3", 3.0)], "x (stage)", "x")
    assert page.count("<polygon") == 2 and page.count('stroke-dasharray="4 3"') == 2  # line and legend
    steps = re.findall(r'<polygon points="([^"]+)"', page)
    assert [len(p.split()) for p in steps] == [2 + 2 * 10] * 2  # two corners per bin and the base ends
    assert "<script" not in page and "http://" not in page
    stacked = svg_chart.bars(["a", "b"], [("kept", [30, 10]), ("removed", [10, 0])], "t", "stage", "docs",
                             stacked=True)
    heights = [float(h) for h in re.findall(r'height="([^"]+)" fill="#[0-9a-f]+" fill-opacity="0.85"', stacked)]
    assert len(heights) == 4  # kept a, kept b, removed a, removed b
    a_total, b_total = heights[0] + heights[2], heights[1] + heights[3]
    assert abs(a_total / b_total - 4.0) < 0.05 and heights[3] == 0.0
    assert svg_chart.nice_ticks(0, 21000) == [0, 5000, 10000, 15000, 20000]
