"""The default extraction method on real pages, and formulas / code blocks on real-style pages.

- acceptance: the default method scores shingle F1 >= 0.95 on the 181 real pages of
  `../shared/data/article-extraction` (the benchmark's scoring, `filters.extract_score`); a missing set
  fails under CI=true and is a printed skip elsewhere;
- every formula form (MathJax 2 scripts and `\\(..\\)`/`\\[..\\]` delimiters, KaTeX with its TeX
  annotation and rendered copy, MathML without TeX, a placeholder `alttext`) comes out once, as TeX,
  with every method; code blocks keep their line breaks and indentation, fenced;
- the size and time limits remove the page with its reason and the rest of the batch goes on.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import pyarrow as pa
import pytest

from filters import html_math
from filters.extract_score import corpus_score, page_score, snippet_counts
from filters.html_extract import extract_page
from pipeline.config import PipelineConfig
from pipeline.warc import decode_html
from stages.extract import ExtractConfig, method_options
from stages.extract import Stage as Extract
from tests.conftest import REPO

ARTICLES = REPO.parent / "shared" / "data" / "article-extraction"
PAGES = REPO / "tests" / "data" / "extract"
METHODS = ["blocks", "trafilatura", "resiliparse"]


def require(path: Path) -> None:
    if path.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{path} is missing (real data set the acceptance test needs)")
    print(f"skip: {path} is missing")
    pytest.skip(f"{path} is missing")


def test_scorer_follows_the_benchmark_description() -> None:
    truth = "one two three four five six"
    assert page_score(truth, truth) == (1.0, 1.0)
    assert page_score("", "") == (1.0, 1.0)
    p = page_score(truth, "one two three four five six seven eight")  # 3 shingles right, 2 extra
    assert p.recall == 1.0 and p.precision == pytest.approx(3 / 5)
    assert page_score(truth, "").recall == 0.0
    assert corpus_score([(truth, truth), (truth, "")])["f1"] == pytest.approx(2 * 0.5 * 0.5 / 1.0)
    assert snippet_counts(["two  three"], ["seven"], "one two\nthree four") == (1, 0, 0, 1)


def test_default_method_on_real_articles() -> None:
    require(ARTICLES)
    truth = json.loads((ARTICLES / "ground-truth.json").read_text(encoding="utf-8"))
    cfg = ExtractConfig(name="extract")
    assert cfg.method == "blocks"
    pairs = []
    for key, item in sorted(truth.items()):
        html = decode_html(gzip.decompress((ARTICLES / "html" / f"{key}.html.gz").read_bytes()), None)[0]
        pairs.append((item["articleBody"], extract_page(cfg.method, html, item["url"], method_options(cfg)).text))
    score = corpus_score(pairs)
    assert score["pages"] == 181
    assert score["f1"] >= 0.95, score
    plain = corpus_score((t, extract_page("plain", decode_html(gzip.decompress(
        (ARTICLES / "html" / f"{k}.html.gz").read_bytes()), None)[0], None, {}).text)
        for (k, _), (t, _) in zip(sorted(truth.items())[:30], pairs[:30], strict=True))
    assert plain["precision"] < 0.7  # the pages carry boilerplate: the score can fail


def _page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def _formulas(text: str) -> list[str]:
    """Every $...$ / $$...$$ span of the text, in order."""
    return [a or b for a, b in re.findall(r"\$\$(.+?)\$\$|\$([^$]+?)\$", text, re.S)]


@pytest.mark.parametrize("method", METHODS)
def test_mathjax_scripts_and_delimiters(method: str) -> None:
    out = extract_page(method, _page("mathjax2.html"), None, {})
    assert _formulas(out.text) == [
        "(x_i, y_i)", "1 \\le i \\le n+1", "n+1",
        "p(x) = \\sum_{i=1}^{n+1} y_i \\prod_{j \\ne i} \\frac{x - x_j}{x_i - x_j}",
        "x_0 < x_1 < \\dots < x_n", "p(x) = \\frac{\\sum_j w_j y_j/(x-x_j)}{\\sum_j w_j/(x-x_j)}"]
    assert out.formulas == 6
    assert "$$p(x) = \\sum" in out.text  # display mode kept
    assert "1 i n+1" not in out.text and "p(x) = sum" not in out.text  # MathJax's rendered copies dropped
    assert "Each basis polynomial vanishes" in out.text


@pytest.mark.parametrize("method", METHODS)
def test_katex_annotation_once_and_rendered_copy_dropped(method: str) -> None:
    out = extract_page(method, _page("katex.html"), None, {})
    assert _formulas(out.text) == ["I = \\int_{-\\infty}^{\\infty} e^{-x^2}\\,dx",
                                   "I^2 = \\int\\!\\!\\int e^{-(x^2+y^2)}\\,dx\\,dy = \\pi"]
    assert out.formulas == 2
    assert "−x2" not in out.text and "I2=" not in out.text
    assert "$$I^2" in out.text


@pytest.mark.parametrize("method", METHODS)
def test_mathml_without_tex_is_converted(method: str) -> None:
    out = extract_page(method, _page("mathml.html"), None, {})
    formulas = _formulas(out.text)
    assert formulas[:3] == ["(x_i,y_i)", "1\\le i\\le n+1", "n+1"]  # placeholder alttext ignored
    assert "\\det V=\\prod_{1\\le i<j\\le n}(x_j-x_i)" in formulas  # munder under a big operator
    assert "(\\begin{matrix}1 & x_0 \\\\ 1 & x_1\\end{matrix})" in formulas
    assert "\\frac{f^{(n+1)}(\\xi)}{(n+1)!}" in formulas
    assert "\\sqrt{2}" in formulas and "\\sqrt[3]{x}" in formulas
    assert out.formulas == len(formulas) == 8
    assert "Alternative text" not in out.text and "x i , y i" not in out.text


def test_alttext_only_when_it_is_tex() -> None:
    assert html_math.is_real_tex("\\frac{a}{b}") and html_math.is_real_tex("x^2 + y^2")
    for placeholder in ("Alternative text not available", "equation", "Image of a formula", "math"):
        assert not html_math.is_real_tex(placeholder)
    text, n = html_math.normalize_delimiters("It costs $5 and $10; but $x^2$ and \\(a+b\\) are math.")
    assert n == 2 and "$a+b$" in text


@pytest.mark.parametrize("method", [*METHODS, "plain"])
def test_code_blocks_keep_lines_and_indentation(method: str) -> None:
    out = extract_page(method, _page("code.html"), None, {})
    assert ("```python\ndef count_words(path):\n    total = 0\n    with open(path, encoding=\"utf-8\") as f:\n"
            "        for line in f:\n            total += len(line.split())\n    return total\n```") in out.text
    assert ("```\nfor i, line in enumerate(f, start=1):\n    if line.strip():\n        print(i, line.rstrip())\n```"
            in out.text)
    assert "Both versions close the file" in out.text


def _table(html: list[str | None]) -> pa.Table:
    n = len(html)
    return pa.table({"id": [f"d{i}" for i in range(n)], "text": ["" if h else "text doc" for h in html],
                     "source": ["w"] * n, "url": [f"http://e.example/{i}" for i in range(n)],
                     "meta": ["{}"] * n, "html": pa.array(html, pa.string())})


def slow_page(paragraphs: int = 40_000) -> str:
    """A page big enough that extracting it takes far longer than a few hundredths of a second (200,000
    paragraphs: several seconds)."""
    body = "".join(f"<div><p>Paragraph {i} of a page that goes on, with text, <a href='/{i}'>a link</a>.</p></div>"
                   for i in range(paragraphs))
    return f"<html><body>{body}</body></html>"


def test_limits_remove_the_page_and_the_batch_goes_on() -> None:
    pipeline = PipelineConfig(output="out", inputs=[{"name": "w", "path": "x.warc.gz", "format": "warc"}])
    good = _page("katex.html")
    huge = "<html><body>" + "<p>x</p>" * 2_500_000 + "</body></html>"
    extract_page("blocks", good, None, {})  # imports and the model loaded before the clock matters
    # a 1 s limit: a small page stays far below it even on a loaded machine (0.2 s was hit under load 20),
    # and the slow page (600,000 tags) takes several seconds even on a fast idle one
    cfg = ExtractConfig(name="extract", max_tags=2_000_000, max_html_chars=40_000_000, timeout_s=1.0)
    out = Extract(cfg, pipeline).apply(_table([good, huge, "<p>" + "y" * 40_000_001 + "</p>",
                                               slow_page(200_000), None, good]))
    assert out.column("reason").to_pylist() == [None, "extract:too_large", "extract:too_large", "extract:timeout",
                                                None, None]
    errors = out.column("extract_error").to_pylist()
    assert "max_tags" in errors[1] and "max_html_chars" in errors[2] and "over 1 s" in errors[3]
    assert out.column("math_formulas").to_pylist() == [2, None, None, None, None, 2]
    assert out.column("text").to_pylist()[4] == "text doc"


def test_demo_crawl_math_and_code_pages(tmp_path: Path) -> None:
    """The demo crawl's math pages (four markup forms) and code pages come out with TeX and fenced code."""
    from pipeline.demo.web_pages import WARC_NAME, load_crawl_truth, write_crawl
    from pipeline.warc import read_warc

    write_crawl(tmp_path, 80, seed=4)
    truth = {t["id"]: t for t in load_crawl_truth(tmp_path) if t["kind"] == "page"}
    docs = {d["id"]: d for _, d in read_warc("crawl", str(tmp_path / "crawl" / WARC_NAME), WARC_NAME, "warc")
            if isinstance(d, dict)}
    math = [t for t in truth.values() if t["formulas"]]
    code = [t for t in truth.values() if t["code_blocks"]]
    assert len(math) >= 6 and len(code) >= 6
    exact = 0
    for t in math:
        out = extract_page("blocks", docs[t["id"]]["html"], None, {})
        display = next(line for line in t["article"] if line.startswith("$$"))
        assert display in out.text  # the display formula once, as TeX
        exact += out.formulas == t["formulas"]
    assert exact >= 0.9 * len(math)
    for t in code:
        out = extract_page("blocks", docs[t["id"]]["html"], None, {})
        start = t["article"].index(next(line for line in t["article"] if line.startswith("```")))
        fenced = "\n".join(t["article"][start:start + t["article"][start + 1:].index("```") + 2])
        assert fenced in out.text


def test_segmentation_columns_and_features() -> None:
    """The walk's blocks, link text, contexts and the features read from them, on a small page."""
    from filters.html_blocks import FEATURE_NAMES, features, segment

    body = ("A first paragraph of the article, long enough to count, with commas, and more words here. " * 2)
    page = (f"<html><body><nav role='navigation'><a href='/'>Home</a> <a href='/b'>Blog</a></nav>"
            f"<div class='post-content'><p>{body}</p><p>Second <b>bold</b> part, with "
            f"<a href='/x'>a link inside</a>.<br>Next line</p><pre>x = 1\n    y</pre></div>"
            f"<div hidden><p>Hidden text block</p></div><div style='DISPLAY: none'>also hidden</div></body></html>")
    blocks = segment(page)
    assert blocks.texts == ["Home Blog", body.strip(), "Second bold part, with a link inside.\nNext line",
                            "```\nx = 1\n    y\n```", "Hidden text block", "also hidden"]
    assert blocks.link_chars.tolist()[:3] == [8, 0, len("a link inside")]
    assert blocks.code.tolist() == [False, False, False, True, False, False]
    x = features(blocks)
    col = {name: x[:, i].tolist() for i, name in enumerate(FEATURE_NAMES)}
    assert col["in_nav"] == col["in_role_nav"] == [1, 0, 0, 0, 0, 0]
    assert col["in_hidden"] == [0, 0, 0, 0, 1, 1]
    assert col["kw_content"] == [0, 1, 1, 1, 0, 0] and col["kw_post"] == [0, 1, 1, 1, 0, 0]
    assert col["in_best"] == [0, 1, 1, 1, 0, 0]  # the div holding the paragraphs
    assert col["tag_p"] == [0, 1, 1, 0, 1, 0] and col["tag_pre"] == [0, 0, 0, 1, 0, 0]
    assert col["link_density"][0] == pytest.approx(8 / 9)
