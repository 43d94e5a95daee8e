"""Demo crawl: a gzipped WARC of generated news pages with known article text and known boilerplate.

`write_crawl(out_dir, n_pages, seed)` writes `crawl/crawl-00000.warc.gz` (one gzip member per record,
as Common Crawl does), `crawl/truth.jsonl` (one line per WARC record: its kind, id, offset, url,
charset, and for pages the article lines and the boilerplate lines), and `crawl/lists/` (the demo's
URL block lists: plain files and a UT1-style `blacklists/` directory).

Pages wrap the article (title, paragraphs, sometimes subheadings, a list, line breaks) in three
layouts (HTML5 semantic tags, class-named div soup, a blog with reader comments) with navigation,
breadcrumbs, cookie banners, ads, related links, newsletter and share blocks and footers. Charsets:
UTF-8 declared by the server, windows-1252 declared only in `<meta>`, windows-1252 undeclared, and
Russian pages in windows-1251. The crawl also holds request, metadata, non-200 and non-HTML records
and one truncated record. Every tenth English page carries formulas (MathJax 2 scripts, KaTeX with
its TeX annotation, MathML without TeX, or MathJax 3's assistive MathML, each with the rendered copy
real pages have), another a code block, and another loads MathJax without holding any formula (as site
templates do: `math_detect` must not call it math); their truth lines are the TeX and the code lines.
Words, boilerplate, formulas and code come from `data/web/*.json`.
"""

from __future__ import annotations

import html as html_lib
import io
import json
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

DATA = Path(__file__).parent / "data" / "web"
CRAWL_DIR = "crawl"
WARC_NAME = "crawl-00000.warc.gz"


def _load(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


@dataclass
class Page:
    """One generated page: its HTML (str) and the lines a perfect extractor keeps or drops."""

    html: str
    article: list[str] = field(default_factory=list)
    boilerplate: list[str] = field(default_factory=list)
    formulas: int = 0
    math_form: str | None = None
    code_blocks: int = 0


class _Builder:
    def __init__(self, rng: Random, lang: str):
        self.rng = rng
        self.lang = lang
        self.words = _load("words.json")[lang]
        self.bp = _load("boilerplate.json")[lang]
        self.decks: dict[str, list[str]] = {}

    def draw(self, key: str) -> str:
        """The next phrase of a per-page shuffled deck: no phrase repeats until the deck is used up
        (repeated phrases would make the page a duplicate-n-gram case for the quality filters)."""
        deck = self.decks.get(key)
        if not deck:
            deck = self.decks[key] = self.rng.sample(self.words[key], len(self.words[key]))
        return deck.pop()

    def sentence(self) -> str:
        s = f"{self.draw('subjects')} {self.draw('verbs')} {self.draw('objects')} {self.draw('adverbials')}"
        if self.rng.random() < 0.6:
            s += f", {self.draw('tails')}"
        return s + "."

    def paragraph(self) -> str:
        return " ".join(self.sentence() for _ in range(self.rng.randint(2, 3)))

    def pick(self, key: str, k: int) -> list[str]:
        items = self.bp[key]
        return self.rng.sample(items, min(k, len(items)))


def _e(text: str) -> str:
    return html_lib.escape(text, quote=False)


def _links(items: list[str], cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    lis = "".join(f'<li><a href="/{i}">{_e(t)}</a></li>' for i, t in enumerate(items))
    return f"<ul{attr}>{lis}</ul>"


def _article(b: _Builder, page: Page, extra: str | None = None) -> str:
    """The article body; every line it holds goes to `page.article`. `extra` "math" or "code" adds a
    passage with formulas or a code block after the second paragraph."""
    r = b.rng
    title = b.sentence().rstrip(".")
    page.article.append(title)
    parts = [f"<h1>{_e(title)}</h1>"]
    n_par = r.randint(3, 6)
    heading_at = r.randint(2, n_par - 1) if r.random() < 0.5 else -1
    list_at = r.randint(1, n_par - 1) if r.random() < 0.3 else -1
    for i in range(n_par):
        if i == heading_at:
            h = r.choice(b.words["headings"])
            page.article.append(h)
            parts.append(f"<h2>{_e(h)}</h2>")
        if r.random() < 0.2:  # a paragraph with a line break inside
            a, c = b.paragraph(), b.sentence()
            page.article += [a, c]
            parts.append(f"<p>{_e(a)}<br>{_e(c)}</p>")
        else:
            p = b.paragraph()
            page.article.append(p)
            parts.append(f"<p>{_e(p)}</p>")
        if i == list_at:
            items = [b.sentence() for _ in range(r.randint(3, 4))]
            page.article += items
            parts.append("<ul>" + "".join(f"<li>{_e(t)}</li>" for t in items) + "</ul>")
        if i == 1 and extra == "math":
            parts.append(_math_passage(b, page))
        if i == 1 and extra == "code":
            parts.append(_code_passage(b, page))
    return "\n".join(parts)


MATH_FORMS = ("mathjax2", "katex", "mathml", "mathjax3")


def _formula_html(f: dict[str, str], form: str, display: bool) -> str:
    """One formula as `form` writes it into a page (each with the rendered copy real pages carry)."""
    tex = _e(f["tex"])
    block = ' display="block"' if display else ""
    mml = f'<math xmlns="http://www.w3.org/1998/Math/MathML"{block}>'
    if form == "mathjax2":
        kind = "math/tex; mode=display" if display else "math/tex"
        return (f'<span class="MathJax_Preview">{tex}</span><span class="MathJax"><nobr>{_e(f["katex_html"])}</nobr>'
                f'</span><script type="{kind}">{tex}</script>')
    if form == "katex":
        inner = (f'<span class="katex"><span class="katex-mathml">{mml}<semantics><mrow>{f["mathml"]}</mrow>'
                 f'<annotation encoding="application/x-tex">{tex}</annotation></semantics></math></span>'
                 f'<span class="katex-html" aria-hidden="true">{_e(f["katex_html"])}</span></span>')
        return f'<span class="katex-display">{inner}</span>' if display else inner
    if form == "mathml":
        return f'{mml}{f["mathml"]}</math>'
    shown = ' display="true"' if display else ""
    return (f'<mjx-container class="MathJax" jax="CHTML"{shown}><mjx-math>'
            f'{_e(f["katex_html"])}</mjx-math><mjx-assistive-mml>{mml}{f["mathml"]}</math></mjx-assistive-mml>'
            "</mjx-container>")


def _math_passage(b: _Builder, page: Page) -> str:
    """A paragraph with two inline formulas and one display formula, in one of MATH_FORMS; the article
    lines hold the TeX a perfect extractor writes."""
    r = b.rng
    form = r.choice(MATH_FORMS)
    data = _load("math_code.json")
    inline1, inline2, shown = r.sample(data["formulas"], 3)
    opening, lead = b.paragraph(), b.sentence().rstrip(".")
    text = f"{opening} {lead} with ${inline1['tex']}$ and ${inline2['tex']}$, as follows."
    # a worked step with the two remaining formulas (no draw from the generator: the rest of the crawl is unchanged)
    rest = [f for f in data["formulas"] if f not in (inline1, inline2, shown)]
    step = data["steps"][data["formulas"].index(shown) % len(data["steps"])]
    page.article += [text, f"$${shown['tex']}$$", step, *(f"$${f['tex']}$$" for f in rest)]
    page.formulas += 3 + len(rest)
    page.math_form = form
    html = (f"<p>{_e(opening)} {_e(lead)} with {_formula_html(inline1, form, False)} and "
            f"{_formula_html(inline2, form, False)}, as follows.</p>{_formula_html(shown, form, True)}"
            f"<p>{_e(step)}</p>" + "".join(_formula_html(f, form, True) for f in rest))
    if form == "mathjax2":
        html = ('<script type="text/x-mathjax-config">MathJax.Hub.Config({tex2jax: {inlineMath: [["$","$"]]}});'
                "</script>" + html)
    return html


def _code_passage(b: _Builder, page: Page) -> str:
    """A fenced-to-be code block (`<pre><code class="language-...">`) whose lines keep their indentation."""
    snippet = b.rng.choice(_load("math_code.json")["code"])
    page.article += [f"```{snippet['lang']}", *snippet["lines"], "```"]
    page.code_blocks += 1
    body = _e("\n".join(snippet["lines"]))
    return f'<pre><code class="language-{snippet["lang"]}">{body}\n</code></pre>'


def _blocks(b: _Builder, page: Page) -> dict[str, str]:
    """Every boilerplate block of a page, its visible lines recorded in `page.boilerplate`."""
    r = b.rng

    def note(lines: list[str]) -> list[str]:
        page.boilerplate.extend(lines)
        return lines

    nav = note(b.pick("nav", r.randint(6, 10)))
    crumbs = note(b.pick("breadcrumb", 3))
    cookie = note([r.choice(b.bp["cookie"])] + b.pick("cookie_buttons", 2))
    ads = note(b.pick("ads", r.randint(2, 3)))
    rel_head = note([r.choice(b.bp["related_heading"])])
    related = note(b.pick("related", r.randint(4, 6)))
    news = note(b.pick("newsletter", 2))
    share = note(b.pick("share", 3))
    byline = note(b.pick("byline", 1))
    year = 2020 + r.randint(0, 5)
    foot = note(b.pick("footer", r.randint(4, 6)) + [f"© {year} {r.choice(b.bp['nav'])} Media Group"])
    return {
        "nav": _links(nav, "menu"),
        "crumbs": '<ol class="breadcrumb">' + "".join(f"<li><a href='/'>{_e(c)}</a></li>" for c in crumbs) + "</ol>",
        "cookie": f'<div id="cookie-banner" class="cookie-consent"><p>{_e(cookie[0])}</p>'
                  + "".join(f"<button>{_e(x)}</button>" for x in cookie[1:]) + "</div>",
        "ads": "".join(f'<div class="ad-slot advertisement"><a href="https://ads.example/c">{_e(a)}</a></div>'
                       for a in ads),
        "related": f'<h3>{_e(rel_head[0])}</h3>{_links(related)}',
        "newsletter": f'<form class="newsletter-signup"><p>{_e(news[0])}</p><button>{_e(news[1])}</button></form>',
        "share": '<div class="share-buttons">' + "".join(f'<a href="#">{_e(s)}</a>' for s in share) + "</div>",
        "byline": f'<p class="byline">{_e(byline[0])}</p>',
        "footer": _links(foot[:-1], "footer-links") + f"<p>{_e(foot[-1])}</p>",
    }


def _comments(b: _Builder, page: Page) -> str:
    head = b.rng.choice(b.bp["comments_heading"])
    items = b.pick("comments", 2)
    page.boilerplate += [head, *items]
    return (f'<section id="comments" class="comments"><h3>{_e(head)}</h3>'
            + "".join(f'<div class="comment"><p>{_e(c)}</p></div>' for c in items) + "</section>")


MATHJAX_LOADER = ('<script type="text/javascript" async src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.9/'
                  'MathJax.js?config=TeX-AMS-MML_HTMLorMML"></script>')


def make_page(rng: Random, lang: str, charset_meta: str | None, layout: int, extra: str | None = None) -> Page:
    """One page in `layout` 0 (HTML5), 1 (div soup) or 2 (blog with comments); `extra`: "math", "code" or
    "mathjax_only" (the site's template loads MathJax on every page, this one has no formula)."""
    b = _Builder(rng, lang)
    page = Page("")
    blocks = _blocks(b, page)
    body = _article(b, page, extra)
    meta = f'<meta charset="{charset_meta}">' if charset_meta else ""
    title = f"<title>{_e(page.article[0])}</title>"
    head = (f"<!DOCTYPE html><html lang=\"{lang}\"><head>{meta}{title}"
            "<script>window.dataLayer=[];function track(){}</script><style>.ad-slot{margin:4px}</style>"
            f"{MATHJAX_LOADER if extra in ('math', 'mathjax_only') else ''}</head>")
    if layout == 0:
        html = (f"{head}<body>{blocks['cookie']}<header><nav>{blocks['nav']}</nav></header>"
                f"<main>{blocks['crumbs']}<article>{blocks['byline']}{body}{blocks['share']}</article>"
                f"<aside class=\"sidebar\">{blocks['ads']}{blocks['related']}</aside></main>"
                f"<footer>{blocks['newsletter']}{blocks['footer']}</footer></body></html>")
    elif layout == 1:
        html = (f"{head}<body><div id=\"header\" class=\"site-header\"><div class=\"menu-wrapper\">{blocks['nav']}"
                f"</div></div><div id=\"wrapper\"><div class=\"breadcrumbs\">{blocks['crumbs']}</div>"
                f"<div class=\"col-left\"><div class=\"post-content entry-content\">{blocks['byline']}{body}</div>"
                f"{blocks['share']}<div class=\"related-posts\">{blocks['related']}</div></div>"
                f"<div class=\"col-right widget-area\">{blocks['ads']}{blocks['newsletter']}</div></div>"
                f"<div id=\"footer\" class=\"site-footer\">{blocks['footer']}</div>{blocks['cookie']}</body></html>")
    else:
        comments = _comments(b, page)
        html = (f"{head}<body>{blocks['cookie']}<header class=\"blog-header\">{blocks['nav']}</header>"
                f"<div class=\"container\"><main id=\"main\"><article class=\"post\">{blocks['byline']}{body}"
                f"</article>{blocks['share']}{comments}<nav class=\"related\">{blocks['related']}</nav></main>"
                f"<aside id=\"sidebar\">{blocks['ads']}{blocks['newsletter']}</aside></div>"
                f"<footer id=\"colophon\">{blocks['footer']}</footer></body></html>")
    page.html = html
    return page


# -- the WARC --------------------------------------------------------------------------------------
def _record(rtype: str, url: str, date: datetime, http: bytes | None, body: bytes, content_type: str | None,
            record_uuid: uuid.UUID, truncate: bool = False) -> tuple[bytes, str]:
    from fastwarc.stream_io import GzipWriter
    from fastwarc.warc import WarcRecord, WarcRecordType

    rec = WarcRecord()
    rec.init_headers(getattr(WarcRecordType, rtype), f"uuid:{record_uuid}".encode())
    rec.headers["WARC-Target-URI"] = url
    rec.headers["WARC-Date"] = date.strftime("%Y-%m-%dT%H:%M:%SZ")
    if http is not None:
        rec.set_bytes_content(http + body)
        rec.is_http = True
        rec.headers["Content-Type"] = f"application/http; msgtype={'request' if rtype == 'request' else 'response'}"
        if rtype == "response" and content_type:  # as Common Crawl: the payload's sniffed type
            rec.headers["WARC-Identified-Payload-Type"] = content_type
    else:
        rec.set_bytes_content(body)
        if content_type:
            rec.headers["Content-Type"] = content_type
    buf = io.BytesIO()
    writer = GzipWriter(buf)
    rec.write(writer, checksum_data=True)
    writer.close()
    data = buf.getvalue()
    return (data[: len(data) * 2 // 3] if truncate else data), str(rec.record_id)


def _http(status: int, content_type: str | None, body: bytes, extra: str = "") -> bytes:
    reason = {200: "OK", 301: "Moved Permanently", 404: "Not Found", 500: "Internal Server Error"}[status]
    head = f"HTTP/1.1 {status} {reason}\r\nServer: demo\r\n"
    if content_type:
        head += f"Content-Type: {content_type}\r\n"
    return (head + extra + f"Content-Length: {len(body)}\r\n\r\n").encode()


# charset: (python codec, HTTP header charset or None, <meta> charset or None)
CHARSETS = {"utf-8-http": ("utf-8", "utf-8", None), "cp1252-meta": ("cp1252", None, "windows-1252"),
            "cp1252-none": ("cp1252", None, None), "cp1251-http": ("cp1251", "windows-1251", "windows-1251")}


def _site_url(rng: Random, sites: dict[str, Any], i: int, lang: str) -> tuple[str, str | None]:
    """A page URL and the url_filter reason the demo lists give it (None = kept)."""
    slot = i % 40  # each planted kind once every 40 pages
    slug = f"/{2020 + i % 5}/story-{i}"
    if slot == 3:
        return f"https://{rng.choice(sites['blocked_sites'])}{slug}", "url_filter:domain"
    if slot == 11:
        return f"https://{sites['allowed'][0]}{slug}", None
    if slot == 19:
        cat = rng.choice(sorted(sites["ut1_sites"]))
        return f"https://{sites['ut1_sites'][cat][0]}{slug}", "url_filter:domain"
    if slot == 27:
        return f"https://{rng.choice(sites['sites'])}{rng.choice(sites['substring_paths'])}{i}", "url_filter:substring"
    if slot == 35:
        return f"https://{rng.choice(sites['sites'])}{rng.choice(sites['banned_word_paths'])}{i}", "url_filter:word"
    if lang == "ru":
        return f"https://{rng.choice(sites['ru_sites'])}/novosti/{i}", None
    return f"https://{rng.choice(sites['sites'])}{slug}", None


def crawl_input(root: str | Path | None = None) -> dict[str, Any]:
    """The crawl's `inputs:` entry (as pipeline.yaml reads it), path under `root` if given."""
    path = f"{CRAWL_DIR}/*.warc.gz"
    return {"name": "crawl", "path": str(Path(root) / path) if root is not None else path, "format": "warc"}


def write_crawl(out_dir: str | Path, n_pages: int = 300, seed: int = 0, truncated: bool = True) -> dict[str, Any]:
    """Write the demo crawl (WARC, truth.jsonl, lists) under `out_dir/crawl`; same inputs, same bytes.
    `truncated=False` leaves out the truncated record (bench/extract.py: warcio's reader stops there)."""
    out = Path(out_dir) / CRAWL_DIR
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    shutil.copytree(DATA / "lists", out / "lists")
    rng = Random(f"crawl-{seed}")
    sites = _load("sites.json")
    date = datetime(2024, 5, 1, tzinfo=UTC)
    truncated_at = max(1, n_pages * 2 // 3) if truncated else -1
    kinds: dict[str, int] = {}
    with open(out / WARC_NAME, "wb") as warc, open(out / "truth.jsonl", "w", encoding="utf-8") as truth:

        def emit(kind: str, rtype: str, url: str, http: bytes | None, body: bytes, ctype: str | None = None,
                 truncate: bool = False, **extra: Any) -> None:
            offset = warc.tell()
            record_uuid = uuid.UUID(int=rng.getrandbits(128), version=4)  # seeded: same crawl, same bytes
            data, rid = _record(rtype, url, date, http, body, ctype, record_uuid, truncate)
            warc.write(data)
            row = {"kind": kind, "record_type": rtype, "id": rid, "offset": offset, "url": url, **extra}
            truth.write(json.dumps(row, ensure_ascii=False) + "\n")
            kinds[kind] = kinds.get(kind, 0) + 1

        emit("warcinfo", "warcinfo", "", None, b"software: ling-curate demo\r\nformat: WARC File Format 1.1\r\n",
             "application/warc-fields")
        for i in range(n_pages):
            date += timedelta(seconds=rng.randint(1, 90))
            lang = "ru" if rng.random() < 0.08 else "en"
            charset = "cp1251-http" if lang == "ru" else rng.choices(
                ["utf-8-http", "cp1252-meta", "cp1252-none"], [0.7, 0.2, 0.1])[0]
            codec, http_cs, meta_cs = CHARSETS[charset]
            url, blocked = _site_url(rng, sites, i, lang)
            host = url.split("/")[2]
            if rng.random() < 0.3:
                req = f"GET /{i} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: demo-crawler\r\n\r\n".encode()
                emit("request", "request", url, b"", req)
            # every tenth page each: formulas, a code block, MathJax loaded without any formula
            extra = {4: "math", 8: "code", 6: "mathjax_only"}.get(i % 10) if lang == "en" else None
            page = make_page(rng, lang, meta_cs, rng.randrange(3), extra)
            body = page.html.encode(codec, errors="xmlcharrefreplace")
            ctype = "text/html" + (f"; charset={http_cs}" if http_cs else "")
            emit("page", "response", url, _http(200, ctype, body), body, "text/html", truncate=i == truncated_at,
                 **({"kind_detail": "truncated"} if i == truncated_at else {}),
                 charset=codec, charset_declared="http" if http_cs else "meta" if meta_cs else "none",
                 lang=lang, url_filter=blocked, article=page.article, boilerplate=page.boilerplate,
                 formulas=page.formulas, math_form=page.math_form, code_blocks=page.code_blocks,
                 mathjax_loaded=extra in ("math", "mathjax_only"))
            if rng.random() < 0.15:
                meta = f"fetchTimeMs: {rng.randint(20, 900)}\r\n".encode()
                emit("metadata", "metadata", url, None, meta, "application/warc-fields")
            if i % 25 == 7:
                missing = f"https://{host}/missing-{i}"
                emit("non_200", "response", missing, _http(404, "text/html", b"<h1>Not found</h1>"),
                     b"<h1>Not found</h1>", "text/html", status=404)
                emit("non_200", "response", f"https://{host}/old-{i}",
                     _http(301, "text/html", b"", f"Location: {url}\r\n"), b"", status=301)
            if i % 25 == 13:
                png = b"\x89PNG\r\n\x1a\n" + bytes(rng.randrange(256) for _ in range(64))
                emit("non_html", "response", f"https://{host}/img/{i}.png", _http(200, "image/png", png), png,
                     "image/png", content_type="image/png")
                js = b'{"ok": true}'
                emit("non_html", "response", f"https://{host}/api/{i}.json", _http(200, "application/json", js), js,
                     "application/json", content_type="application/json")
                emit("revisit", "revisit", url, _http(200, ctype, b""), b"")
    # the truncated page is quarantined by ingest, not a page: mark it in truth
    rows = [json.loads(x) for x in (out / "truth.jsonl").read_text(encoding="utf-8").splitlines()]
    for row in rows:
        if row.get("kind_detail") == "truncated":
            row["kind"] = "truncated"
            kinds["page"] -= 1
            kinds["truncated"] = 1
    (out / "truth.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return {"warc": str(out / WARC_NAME), "records": len(rows), "by_kind": dict(sorted(kinds.items()))}


def load_crawl_truth(out_dir: str | Path) -> list[dict[str, Any]]:
    with open(Path(out_dir) / CRAWL_DIR / "truth.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


# -- scoring ---------------------------------------------------------------------------------------
def _squash(text: str) -> str:
    return " ".join(text.split())


def score_extraction(texts: dict[str, str], truth: list[dict[str, Any]]) -> dict[str, float]:
    """Planted article sentences found in the extracted text, and boilerplate lines kept.

    `texts` maps document id -> extracted text (a page missing from it extracted nothing). A sentence
    is recovered when it occurs in the page's text; a boilerplate line ("Accept all", a related link's
    title, a footer link) is kept when it occurs in the text as whole words."""
    import re

    found = total = kept = bp_total = pages = 0
    for row in truth:
        if row["kind"] != "page":
            continue
        pages += 1
        text = _squash(texts.get(row["id"], ""))
        for line in row["article"]:
            for sentence in re.split(r"(?<=[.!?])\s+", line):
                total += 1
                found += _squash(sentence) in text
        for line in row["boilerplate"]:
            bp_total += 1
            kept += re.search(rf"(?<!\w){re.escape(_squash(line))}(?!\w)", text) is not None
    return {"pages": pages, "sentences": total, "sentence_recall": found / total if total else 0.0,
            "boilerplate_lines": bp_total, "boilerplate_kept": kept / bp_total if bp_total else 0.0}
