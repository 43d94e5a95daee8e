"""`math_detect`: each signal on its own, then the stage on pages written the way real sites write them
(MathJax 2 scripts, MathJax 3 / KaTeX auto-render delimiters, KaTeX's MathML copy, bare MathML), against
pages that are not math although they look close: a blog that loads MathJax and has no formula, a shell
tutorial full of `$`, a shop with prices "$5 and $10", a Python page with `x = 5`. Both executors and
resume are covered in test_spark / test_faults_every_stage; the real-page figures in bench/math_detect.py.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from filters import math_signals
from pipeline.errors import ConfigError
from stages.domain_classifier import DomainClassifierConfig
from stages.domain_classifier import Stage as Domain
from stages.extract import ExtractConfig
from stages.extract import Stage as Extract
from stages.heuristics import HeuristicsConfig
from stages.heuristics import Stage as Heuristics
from stages.math_detect import MathDetectConfig
from stages.math_detect import Stage as MathDetect


def signals(*texts: str) -> math_signals.MathSignals:
    return math_signals.measure(pa.array(list(texts), pa.string()))


# -- signals ----------------------------------------------------------------------------------------


def test_delimited_formulas_count_tex_not_prices_or_shell() -> None:
    s = signals(r"Let $x^2 + y^2 = r^2$ and $$\int_0^1 f(x)\,dx = 1$$ hold, with \(a_n\) and \[b = c\].",
                "It costs $5 and $10, or $15 for both.",
                "Set $HOME and $PATH: export PATH=$HOME/bin:$PATH",
                r"\begin{align} a &= b \\ c &= d \end{align}")
    assert s.formulas.tolist() == [4, 0, 0, 1]


def test_tex_commands_are_known_math_commands_only() -> None:
    s = signals(r"$\alpha\beta + \frac{1}{2} \int_0^1$", r"C:\Users\name\tools\bin and \n and \interval",
                r"\sum\limits_{i=1}^n")
    assert s.tex_commands.tolist() == [4, 0, 2]


def test_math_symbols_and_their_density_leave_greek_letters_out() -> None:
    s = signals("∀ε > 0 ∃δ: |x − a| < δ ⇒ |f(x) − f(a)| < ε, x ∈ ℝ", "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
                "3 × 4 = 12")
    assert s.symbols[0] >= 5 and s.symbols[1] == 0 and s.symbols[2] == 1
    assert s.symbol_density[0] > 0.1 and s.symbol_density[1] == 0


def test_equation_lines_are_whole_plain_text_equations() -> None:
    s = signals("Solve for x:\n3x + 4 = 10\n3x = 6\nx = 2\nso the answer is two.",
                "The price = what you pay, said the shopkeeper.\nTotal: 10 items")
    assert s.equation_lines.tolist() == [3, 0] and s.lines.tolist() == [5, 2]
    assert s.equation_line_fraction[0] == pytest.approx(0.6)


def test_fenced_code_is_not_measured() -> None:
    s = signals("Install it:\n```\n$ pip install numpy\nx = 5\ny = x + 1\n$ echo $HOME\n```\nDone.")
    assert (s.formulas[0], s.equation_lines[0], s.lines[0]) == (0, 0, 2)


def test_score_rises_with_formulas_and_stays_low_without() -> None:
    feats = math_signals.features(signals("A plain paragraph about gardening. " * 20,
                                          r"We prove $\sum_{k=1}^n k = \frac{n(n+1)}{2}$ by induction: "
                                          r"for $n = 1$, $1 = 1$; assume it for $n$, then $$\sum_{k=1}^{n+1} k = "
                                          r"\frac{n(n+1)}{2} + n + 1 = \frac{(n+1)(n+2)}{2}.$$"))
    low, high = math_signals.rule_score(feats)
    assert low < 0.1 < 0.9 < high


def test_page_formulas_from_extract_count_once() -> None:
    s = signals("$a+b$ and $c=d$")
    same = math_signals.features(s, np.array([2]))
    assert same["log_formulas"][0] == pytest.approx(np.log1p(2))
    more = math_signals.features(s, np.array([5]))
    assert more["log_formulas"][0] == pytest.approx(np.log1p(5))


# -- the stage on pages --------------------------------------------------------------------------------

MATHJAX_LOADER = ('<script src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.3/MathJax.js?config='
                  'TeX-MML-AM_CHTML"></script>')
PROSE = ("<p>Every week we publish a summary of what our readers asked, with the answers our team could give "
         "and links to the longer discussions in the forum, so newcomers can catch up quickly.</p>")


def page(body: str, head: str = "") -> str:
    return f"<html><head><title>t</title>{head}</head><body><article><h1>Notes</h1>{body}</article></body></html>"


PAGES = {
    "mathjax2_scripts": (True, page(
        "<p>The geometric series converges when <script type=\"math/tex\">|r| < 1</script>, and then</p>"
        "<script type=\"math/tex; mode=display\">\\sum_{n=0}^{\\infty} a r^n = \\frac{a}{1-r}.</script>"
        "<p>Differentiating term by term gives <script type=\"math/tex\">\\sum_{n\\ge 1} n r^{n-1} = "
        "\\frac{1}{(1-r)^2}</script>, which we use to compute the mean of a geometric distribution, "
        "<script type=\"math/tex\">E[X] = \\frac{1-p}{p}</script>.</p>" + PROSE, MATHJAX_LOADER)),
    "mathjax3_delimiters": (True, page(
        "<p>For a matrix \\(A \\in \\mathbb{R}^{n \\times n}\\) the eigenvalues \\(\\lambda\\) solve</p>"
        "<p>\\[\\det(A - \\lambda I) = 0.\\]</p><p>If \\(A\\) is symmetric, then \\(A = Q \\Lambda Q^T\\) with "
        "\\(Q\\) orthogonal, so \\(A^k = Q \\Lambda^k Q^T\\) for every \\(k \\ge 1\\).</p>" + PROSE,
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>')),
    "katex": (True, page(
        "<p>By Bayes' rule <span class=\"katex\"><span class=\"katex-mathml\"><math><semantics><mrow><mi>P</mi>"
        "</mrow><annotation encoding=\"application/x-tex\">P(A \\mid B) = \\frac{P(B \\mid A) P(A)}{P(B)}"
        "</annotation></semantics></math></span><span class=\"katex-html\" aria-hidden=\"true\">P(A|B)=</span>"
        "</span>, and with a uniform prior <span class=\"katex\"><span class=\"katex-mathml\"><math><semantics>"
        "<mrow><mi>p</mi></mrow><annotation encoding=\"application/x-tex\">p(\\theta) \\propto 1</annotation>"
        "</semantics></math></span><span class=\"katex-html\" aria-hidden=\"true\">p</span></span> the "
        "posterior is proportional to the likelihood <span class=\"katex\"><span class=\"katex-mathml\"><math>"
        "<semantics><mrow><mi>L</mi></mrow><annotation encoding=\"application/x-tex\">L(\\theta) = "
        "\\prod_{i=1}^n p(x_i \\mid \\theta)</annotation></semantics></math></span></span>.</p>" + PROSE,
        '<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/katex@0.16.9/dist/katex.min.css">')),
    "mathml": (True, page(
        "<p>The roots of <math><mi>a</mi><msup><mi>x</mi><mn>2</mn></msup><mo>+</mo><mi>b</mi><mi>x</mi>"
        "<mo>+</mo><mi>c</mi><mo>=</mo><mn>0</mn></math> are</p><math display=\"block\"><mi>x</mi><mo>=</mo>"
        "<mfrac><mrow><mo>−</mo><mi>b</mi><mo>±</mo><msqrt><msup><mi>b</mi><mn>2</mn></msup><mo>−</mo><mn>4"
        "</mn><mi>a</mi><mi>c</mi></msqrt></mrow><mrow><mn>2</mn><mi>a</mi></mrow></mfrac></math>"
        "<p>and they are real when <math><msup><mi>b</mi><mn>2</mn></msup><mo>≥</mo><mn>4</mn><mi>a</mi>"
        "<mi>c</mi></math>.</p>" + PROSE)),
    "mathjax_loaded_no_formula": (False, page(
        "<p>Our annual report is out. We thank every donor who supported the programme this year, and we "
        "explain where the money went: schools, clinics and the water project in the northern district.</p>"
        + PROSE * 3, MATHJAX_LOADER)),
    "shell_tutorial": (False, page(
        "<p>Open a terminal and check your environment first.</p><pre><code>$ echo $HOME\n$ export PATH=$HOME/bin:"
        "$PATH\n$ ls -la $HOME/.config</code></pre><p>If $PATH does not list the folder, add it to your shell "
        "profile and open a new terminal; the variable $SHELL names the shell you use.</p>" + PROSE)),
    "prices": (False, page(
        "<p>The basic plan costs $5 and the premium plan $10 a month; a family bundle is $15 and the yearly "
        "plan saves you $20. Prices include tax: $5.99 becomes $6.50 in some states.</p>" + PROSE)),
    "python_code": (False, page(
        "<p>Variables hold values:</p><pre><code>x = 5\ny = x + 1\ntotal = x * y\nprint(total)</code></pre>"
        "<p>Run the file and it prints thirty, the product of the two values defined above.</p>" + PROSE)),
}


def run_pages(pages: dict[str, tuple[bool, str]], **settings: object) -> pa.Table:
    table = pa.table({"id": list(pages), "text": [""] * len(pages), "source": ["web"] * len(pages),
                      "url": [None] * len(pages), "html": [h for _, h in pages.values()]})
    extracted = Extract(ExtractConfig(name="extract"), None).apply(table).drop_columns(["reason"])
    stage = MathDetect(MathDetectConfig(name="math_detect", **settings), None)  # type: ignore[arg-type]
    stage.setup()
    return stage.apply(extracted)


def test_math_pages_of_every_form_are_math_and_look_alikes_are_not() -> None:
    out = run_pages(PAGES)
    got = dict(zip(out.column("id").to_pylist(), out.column("is_math").to_pylist(), strict=True))
    assert got == {name: want for name, (want, _) in PAGES.items()}
    rows = {r["id"]: r for r in out.to_pylist()}
    assert rows["mathjax2_scripts"]["math_formulas"] == 4 and rows["mathjax2_scripts"]["math_tex_commands"] >= 4
    assert rows["mathjax_loaded_no_formula"]["math_formulas"] == 0
    assert rows["mathjax_loaded_no_formula"]["math_score"] < 0.1
    assert rows["prices"]["math_delimited"] == 0 and rows["shell_tutorial"]["math_delimited"] == 0
    assert out.column("reason").null_count == out.num_rows  # tag only by default


def test_keep_and_drop_actions_remove_with_reasons_and_scope_leaves_rows_alone() -> None:
    keep = run_pages(PAGES, action="keep")
    reasons = dict(zip(keep.column("id").to_pylist(), keep.column("reason").to_pylist(), strict=True))
    assert reasons["katex"] is None and reasons["prices"] == "math_detect:not_math"
    drop = run_pages(PAGES, action="drop")
    reasons = dict(zip(drop.column("id").to_pylist(), drop.column("reason").to_pylist(), strict=True))
    assert reasons["katex"] == "math_detect:math" and reasons["prices"] is None
    skipped = run_pages(PAGES, skip_sources=["web"], action="keep")
    assert skipped.column("math_score").null_count == skipped.num_rows
    assert not any(skipped.column("is_math").to_pylist()) and skipped.column("reason").null_count == skipped.num_rows


def test_threshold_setting_moves_the_decision() -> None:
    strict = run_pages(PAGES, threshold=1.0)
    assert not any(strict.column("is_math").to_pylist())


def test_a_real_fasttext_model_is_combined_with_the_rule_score(tmp_path) -> None:
    from filters.fasttext_classifier import TrainParams, train_classifier

    maths = "theorem proof lemma equation integral derivative matrix eigenvalue series converges".split()
    other = "recipe garden holiday football weather concert recipe shop travel music".split()
    rng = np.random.default_rng(0)
    examples = [(" ".join(rng.choice(maths if i % 2 else other, 30)), "hq" if i % 2 else "lq") for i in range(200)]
    train_classifier(examples, tmp_path / "math.bin", TrainParams(dim=8, epoch=5, word_ngrams=1), "hq")
    out = run_pages(PAGES, model=str(tmp_path / "math.bin"), model_weight=0.5)
    rule = run_pages(PAGES)
    model = np.array(out.column("math_model_score").to_pylist())
    combined = np.array(out.column("math_score").to_pylist())
    assert np.allclose(combined, 0.5 * np.array(rule.column("math_score").to_pylist()) + 0.5 * model, atol=1e-6)


def test_a_wrong_model_label_is_a_clear_error(tmp_path) -> None:
    from filters.fasttext_classifier import ModelError, TrainParams, train_classifier

    train_classifier([("a b c", "x"), ("d e f", "y")] * 20, tmp_path / "m.bin", TrainParams(dim=4, epoch=1), "x")
    stage = MathDetect(MathDetectConfig(name="math_detect", model=str(tmp_path / "m.bin")), None)
    with pytest.raises(ModelError, match="positive label 'hq'"):
        stage.fingerprint()


# -- routing by is_math: heuristics `where`, domain rules `where` ------------------------------------


def test_heuristics_where_selects_rows_and_domain_rules_route_math() -> None:
    out = run_pages(PAGES)
    h = Heuristics(HeuristicsConfig(name="h", where="is_math", tag_only=True, filters=["gopher_quality"]), None)
    measured = h.apply(out.drop_columns(["reason"]))
    profiles = dict(zip(measured.column("id").to_pylist(), measured.column("heuristics_profile").to_pylist(),
                        strict=True))
    assert {k for k, v in profiles.items() if v is not None} == {k for k, (m, _) in PAGES.items() if m}
    d = Domain(DomainClassifierConfig(name="d", rules=[{"where": "is_math", "domain": "math"},
                                                       {"source": "web", "domain": "web"}]), None)
    domains = d.apply(out.drop_columns(["reason"])).column("domain").to_pylist()
    assert domains == ["math" if m else "web" for m, _ in PAGES.values()]


def test_where_naming_a_missing_column_is_a_config_error(tmp_path) -> None:
    from pipeline.config import validate

    cfg = {"name": "t", "output": str(tmp_path / "out"),
           "inputs": [{"name": "web", "path": str(tmp_path / "*.jsonl"), "format": "jsonl"}],
           "stages": [{"name": "heuristics", "where": "is_math"}]}
    (tmp_path / "a.jsonl").write_text('{"id": "1", "text": "x"}\n')
    with pytest.raises(ConfigError, match=r"heuristics\.where: needs column is_math.*add a math_detect stage"):
        validate(cfg)
    cfg["stages"] = [{"name": "math_detect"}, {"name": "heuristics", "where": "is_math == 'yes'"}]
    with pytest.raises(ConfigError, match="does not fit the column types"):
        validate(cfg)


# -- the demo: pipeline.yaml's own stage settings on the demo crawl ------------------------------------


@pytest.mark.slow
def test_the_demo_routes_crawl_math_pages(tmp_path) -> None:
    """The demo crawl's math pages (every form) are math, its pages that only load MathJax are not; math
    pages get heuristics_math (not the prose heuristics) and the math domain, with pipeline.yaml's settings."""
    import json

    import pyarrow.parquet as pq
    import yaml

    from pipeline.demo.web_pages import write_crawl
    from tests.conftest import REPO, curate, write_config

    write_crawl(tmp_path / "demo", 200, 0)
    demo = {s["name"]: s for s in yaml.safe_load((REPO / "pipeline.yaml").read_text())["stages"]}
    domain = {**demo["domain"], "model": None}
    stages = [demo[n] for n in ("extract", "normalize", "math_detect", "heuristics", "heuristics_math")] + [domain]
    write_config(tmp_path / "pipeline.yaml", {
        "name": "m", "output": "out", "workers": 2, "partition_rows": 50,
        "inputs": [{"name": "crawl", "path": "demo/crawl/*.warc.gz", "format": "warc"}], "stages": stages})
    curate("run", cwd=tmp_path, check=True)
    truth = {t["id"]: t for t in map(json.loads, (tmp_path / "demo" / "crawl" / "truth.jsonl").open())
             if t["kind"] == "page"}
    rows = pq.read_table(tmp_path / "out" / "domain" / "data").to_pylist()
    math = {r["id"] for r in rows if truth[r["id"]].get("formulas")}
    loader_only = {r["id"] for r in rows if truth[r["id"]].get("mathjax_loaded") and not truth[r["id"]]["formulas"]}
    assert len(math) >= 10 and len(loader_only) >= 10
    assert {truth[i]["math_form"] for i in math} == {"mathjax2", "katex", "mathml", "mathjax3"}
    assert {r["id"] for r in rows if r["is_math"]} == math
    assert {r["id"] for r in rows if r["domain"] == "math"} == math
    assert all(r["heuristics_profile"] is not None for r in rows)  # every page measured by one of the two
    def measured(stage: str) -> set[str]:
        parts = [tmp_path / "out" / stage / sub for sub in ("data", "removed")]
        return {r["id"] for p in parts if p.exists() for r in pq.read_table(p).to_pylist()
                if r["heuristics_profile"] is not None}

    assert measured("heuristics").isdisjoint(math) and math <= measured("heuristics_math")
    assert not (tmp_path / "out" / "heuristics_math" / "removed").exists()  # TeX braces are not code (c4 setting)
    curate("report", "out", cwd=tmp_path, check=True)  # the report's math funnel
    page = (tmp_path / "out" / "report.html").read_text()
    assert f'data-math-stage="math_detect" data-reason="found">{len(math)}<' in page
    assert f'data-math-stage="domain" data-reason="kept">{len(math)}<' in page


# -- real pages (../shared/data) -----------------------------------------------------------------------


@pytest.mark.slow
def test_real_news_and_blog_pages_are_not_math_even_when_they_load_mathjax() -> None:
    """The article-extraction set's 181 real news and blog pages hold no mathematics; several load MathJax
    for nothing (GiveWell's blog template): none may be called math."""
    import gzip

    from tests.test_extract_blocks import ARTICLES, require

    require(ARTICLES)
    files = sorted((ARTICLES / "html").glob("*.html.gz"))
    html = [gzip.decompress(f.read_bytes()).decode("utf-8", "replace") for f in files]
    loaders = [i for i, h in enumerate(html) if "mathjax" in h.lower()]
    pages = {f.name: (False, h) for f, h in zip(files, html, strict=True)}
    out = run_pages(pages)
    assert len(files) == 181 and len(loaders) >= 2
    called = [n for n, m in zip(out.column("id").to_pylist(), out.column("is_math").to_pylist(), strict=True) if m]
    assert called == []
    assert max(out.column("math_score").to_pylist()) < 0.1
