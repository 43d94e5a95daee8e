"""`extract` (every method, errors per page, html dropped or kept) and `url_filter` (domains with
subdomains, UT1 directories, substrings, FineWeb's banned words, the allow list winning)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.config import ConfigError, PipelineConfig, validate
from stages.extract import ExtractConfig
from stages.extract import Stage as Extract
from stages.url_filter import Stage as UrlFilter
from stages.url_filter import UrlFilterConfig

PAGE = """<html><head><title>Rivers</title></head><body>
<nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li>
<li><a href="/about">About us</a></li></ul></nav>
<main><article><h1>How rivers shape the stones they carry</h1>
<p>The first paragraph of the article explains how water moves sand and gravel along the bed of a river
over many years.</p>
<p>A second paragraph follows.<br>It has a line break inside it, which the extractor must keep as a new line.</p>
</article></main>
<footer><p>Copyright 2024 Example Corporation. All rights reserved.</p></footer></body></html>"""


def _pipeline() -> PipelineConfig:
    return PipelineConfig(output="out", inputs=[{"name": "w", "path": "x.warc.gz", "format": "warc"}])


def _table(html: list[str | None], urls: list[str | None] | None = None) -> pa.Table:
    n = len(html)
    return pa.table({"id": [f"d{i}" for i in range(n)], "text": ["" if h else "text doc" for h in html],
                     "source": ["w"] * n, "url": urls or [f"http://e.example/{i}" for i in range(n)],
                     "meta": ["{}"] * n, "html": pa.array(html, pa.string())})


@pytest.mark.parametrize("method", ["blocks", "trafilatura", "resiliparse", "plain"])
def test_extract_methods_keep_paragraphs_and_line_breaks(method: str) -> None:
    stage = Extract(ExtractConfig(name="extract", method=method), _pipeline())
    out = stage.apply(_table([PAGE, None, "<html><body><script>var x=1;</script></body></html>"]))
    text = out.column("text").to_pylist()
    assert "water moves sand and gravel" in text[0]
    assert "A second paragraph follows.\nIt has a line break inside it" in text[0]
    assert text[1] == "text doc"  # no HTML: passed through
    assert out.column("reason").to_pylist() == [None, None, "extract:empty"]
    assert "html" not in out.column_names and out.column("html_chars").to_pylist()[1] is None
    if method == "plain":
        assert "Copyright 2024" in text[0] and "About us" in text[0]
    if method == "trafilatura":
        assert "Copyright 2024" not in text[0] and "About us" not in text[0]


def test_extract_error_removes_that_page_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import filters.html_extract as hx

    real = hx.resiliparse_text

    def flaky(html: str, options: dict) -> str:
        if "BOOM" in html:
            raise RuntimeError("parser exploded")
        return real(html, options)

    monkeypatch.setattr(hx, "resiliparse_text", flaky)
    stage = Extract(ExtractConfig(name="extract", method="resiliparse", keep_html=True), _pipeline())
    out = stage.apply(_table([PAGE, "<p>BOOM</p>", PAGE]))
    assert out.column("reason").to_pylist() == [None, "extract:error", None]
    assert out.column("extract_error").to_pylist()[1] == "RuntimeError: parser exploded"
    assert out.column("html").to_pylist()[1] == "<p>BOOM</p>"  # keep_html


def test_extract_settings_are_validated() -> None:
    base = {"output": "out", "inputs": [{"name": "w", "path": "x", "format": "warc"}]}
    with pytest.raises(ConfigError) as err:
        validate({**base, "stages": [{"name": "extract", "method": "readability", "trafilatura": {"fastt": True}}]})
    assert any(p.startswith("stages.extract.method:") for p in err.value.problems)
    assert any(p.startswith("stages.extract.trafilatura.fastt: unknown key") for p in err.value.problems)


def _write(path: Path, lines: list[str]) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_url_filter_reasons_and_allow_list(tmp_path: Path) -> None:
    ut1 = tmp_path / "blacklists"
    _write(ut1 / "gambling" / "domains", ["casino-royal.example", "# a comment", ""])
    _write(ut1 / "gambling" / "urls", ["freebets.example/promo"])
    _write(ut1 / "adult" / "domains", ["xxx.example"])
    cfg = UrlFilterConfig(
        name="url_filter",
        block_domains=[_write(tmp_path / "domains.txt", ["spam.example", "www.junk.example"]), str(ut1)],
        categories=["gambling"], block_substrings=[_write(tmp_path / "subs.txt", ["/ads/", "utm_source=spam"])],
        allow_domains=[_write(tmp_path / "allow.txt", ["good.spam.example", "wiki.example"])],
        banned_words=[_write(tmp_path / "words.txt", ["Porn"])], soft_banned_words=[_write(tmp_path / "soft.txt",
                                                                                           ["hot", "girls", "live"])],
        banned_subwords=[_write(tmp_path / "subw.txt", ["xxx"])])
    urls = {
        "https://spam.example/page": "url_filter:domain",
        "https://a.b.spam.example/page": "url_filter:domain",  # subdomain of a listed domain
        "https://junk.example/": "url_filter:domain",  # www. stripped from the entry
        "https://good.spam.example/page": None,  # the allow list wins
        "https://casino-royal.example/": "url_filter:domain",  # UT1 category chosen
        "https://xxx.example/": "url_filter:word",  # adult category not chosen; but the subword rule fires
        "https://freebets.example/promo/today": "url_filter:substring",  # UT1 urls file
        "https://news.example/ads/banner": "url_filter:substring",
        "https://news.example/?UTM_SOURCE=spam": "url_filter:substring",  # case-insensitive
        "https://blog.example/best-porn-sites": "url_filter:word",
        "https://blog.example/pornography-history": None,  # not a whole word; subword list lacks it
        "https://hot.example/live": "url_filter:word",  # two soft words
        "https://hot.example/news": None,  # one soft word only
        "https://site.example/x-x-x/": "url_filter:word",  # normalized subword
        "https://wiki.example/porn": None,  # allowed domain
        "https://wiki.example.evil.example/ads/": "url_filter:substring",  # allow matches hosts, not prefixes
        "https://ok.example/fine": None,
    }
    stage = UrlFilter(cfg, _pipeline())
    stage.setup()
    table = _table([None] * (len(urls) + 1), list(urls) + [None])
    out = stage.apply(table)
    got = dict(zip(list(urls) + [None], out.column("reason").to_pylist(), strict=True))
    assert got == {**urls, None: None}
    match = dict(zip(list(urls), out.column("url_filter_match").to_pylist()[:-1], strict=True))
    assert match["https://a.b.spam.example/page"] == "spam.example"
    assert match["https://hot.example/live"] == "hot+live"
    assert match["https://good.spam.example/page"] == "allow:good.spam.example"


def test_url_filter_lists_must_exist_and_are_fingerprinted(tmp_path: Path) -> None:
    base = {"output": "out", "inputs": [{"name": "w", "path": "x", "format": "warc"}]}
    with pytest.raises(ConfigError) as err:
        validate({**base, "stages": [{"name": "url_filter", "block_domains": [str(tmp_path / "nope.txt")]}]})
    assert err.value.problems[0].startswith("stages.url_filter.block_domains[0]: file not found") \
        and "nope.txt" in err.value.problems[0]
    lst = tmp_path / "d.txt"
    lst.write_text("a.example\n")
    stage = UrlFilter(UrlFilterConfig(name="url_filter", block_domains=[str(lst)]), _pipeline())
    before = stage.fingerprint()
    lst.write_text("b.example\n")
    assert stage.fingerprint() != before
