"""A page as a sequence of text blocks with the DOM facts that tell main text from boilerplate.

The `blocks` method's first half: lxml parses the page (C speed; Resiliparse's Python-level DOM walk
measured ~40x slower per page), one recursive walk splits the visible text at block-level tags, and
every block keeps what a reader's eye uses: how much of it is link text, how long and how punctuated
it is, which tags and class/id names enclose it, where it sits, and whether it lies in the container
that holds most of the page's paragraph text (Readability's idea). `filters.block_classifier` turns
these into keep/drop decisions. Formulas and code blocks come out of the walk already rewritten
(`filters.html_math`, `<pre>` fenced), so they survive every later step as text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from lxml import etree

from filters import html_math

# visible text never comes from these
SKIP_TAGS = frozenset({
    "script", "style", "noscript", "template", "head", "title", "iframe", "select", "option", "button", "input",
    "textarea", "canvas", "object", "embed", "svg", "video", "audio", "map", "meta", "link", "dialog",
})
BLOCK_TAGS = frozenset({
    "html", "body", "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "h1", "h2", "h3",
    "h4", "h5", "h6", "li", "ul", "ol", "dl", "dt", "dd", "table", "tr", "td", "th", "thead", "tbody", "tfoot",
    "blockquote", "pre", "figure", "figcaption", "form", "fieldset", "address", "details", "summary", "center",
    "hr", "caption", "menu", "legend", "label",
})
# inline formatting: carries no boundary and no signal (links, `a`, are kept: link density needs them)
INLINE_TAGS = ("span", "em", "strong", "b", "i", "u", "s", "small", "big", "font", "sup", "sub", "abbr", "time",
               "cite", "q", "mark", "code", "kbd", "var", "samp", "tt", "strike", "del", "ins", "bdi", "bdo", "wbr",
               "nobr", "dfn", "data", "picture", "source", "img")
# the tag names the classifier sees as the block's own tag (others: "other")
BLOCK_KINDS = ("p", "div", "li", "h1", "h2", "h3", "h4", "td", "pre", "blockquote", "figcaption", "dd", "span")
# ancestors that say where a block sits
CONTEXT_TAGS = ("nav", "header", "footer", "aside", "form", "li", "article", "main", "table", "figure",
                "blockquote", "section", "label")
# substrings of class/id names: generic names sites use for their regions (the classifier learns their weights)
KEYWORDS = (
    "comment", "related", "share", "social", "footer", "header", "nav", "menu", "sidebar", "widget", "ad",
    "promo", "newsletter", "subscribe", "signup", "cookie", "consent", "banner", "author", "byline", "bio",
    "caption", "credit", "tag", "meta", "date", "breadcrumb", "recommend", "more", "popular", "trending",
    "teaser", "card", "list", "content", "article", "body", "post", "entry", "story", "text", "main", "lead",
    "summary", "intro", "paragraph", "rich", "copy", "hidden", "modal", "popup", "login", "form", "search",
    "print", "video", "image", "photo", "gallery", "quote", "title", "headline", "heading", "toolbar", "button",
    "sponsor", "outbrain", "taboola", "disclaimer", "legal", "copyright", "contact", "inline", "embed",
)
_TOKEN = re.compile(r"[a-z]+")
_WS = re.compile(r"\s+")
_SENT_END = re.compile(r"[.!?:;\"”’)]$")
_PUNCT = re.compile(r"[.,;:!?]")
_DIGIT = re.compile(r"\d")
# private-use marks around each formula the walk wrote, so counting never confuses it with TeX in the text
FORMULA_OPEN, FORMULA_CLOSE = "\ue000", "\ue001"
PARSER = etree.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, recover=True,
                          default_doctype=False)


@dataclass(slots=True)
class Context:
    """One block-level element on the path from <body> to a block."""

    tag: str
    depth: int
    parent: Context | None
    flags: frozenset[str]  # CONTEXT_TAGS among this element and its ancestors
    keywords: frozenset[str]  # KEYWORDS found in this element's and its ancestors' class/id names
    tokens: frozenset[str]  # class/id word tokens of this element and its ancestors
    score: float = 0.0  # paragraph text credited to this container


@dataclass(slots=True)
class Block:
    text: str
    chars: int
    link_chars: int
    ctx: Context
    kind: str  # "text" | "code" | "math"
    start: int = 0  # characters of page text before this block


_CLASS_CACHE: dict[str, tuple[frozenset[str], frozenset[str]]] = {}


_TOKEN_CACHE: dict[str, frozenset[str]] = {}


_LONG_KEYWORDS = sorted((k for k in KEYWORDS if len(k) >= 4), key=len, reverse=True)
_KEYWORD_EDGE = re.compile("^(" + "|".join(_LONG_KEYWORDS) + ")|(" + "|".join(_LONG_KEYWORDS) + ")$")
_KEYWORD_SET = frozenset(KEYWORDS)


def _keyword_hits(token: str) -> frozenset[str]:
    """KEYWORDS a class/id token names: the token itself, or a longer keyword it starts or ends with."""
    hits = _TOKEN_CACHE.get(token)
    if hits is None:
        found = {k for k in (_LONG_KEYWORDS if _KEYWORD_EDGE.search(token) else ())
                 if token.startswith(k) or token.endswith(k)}
        if token in _KEYWORD_SET:
            found.add(token)
        hits = frozenset(found)
        if len(_TOKEN_CACHE) < 200_000:
            _TOKEN_CACHE[token] = hits
    return hits


def class_facts(names: str) -> tuple[frozenset[str], frozenset[str]]:
    """(word tokens, KEYWORDS) of an element's class and id names; cached, sites repeat them."""
    facts = _CLASS_CACHE.get(names)
    if facts is None:
        toks = frozenset(_TOKEN.findall(names.lower()))
        kws: set[str] = set()
        for t in toks:
            kws |= _keyword_hits(t)
        facts = (toks, frozenset(kws))
        if len(_CLASS_CACHE) < 200_000:
            _CLASS_CACHE[names] = facts
    return facts


class _Walker:
    """Splits the DOM's visible text into blocks (one recursive pass, no Python per-character work)."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self.parts: list[str] = []
        self.link_chars = 0

    def flush(self, ctx: Context) -> None:
        if not self.parts:
            return
        raw = "".join(self.parts)
        self.parts = []
        links, self.link_chars = self.link_chars, 0
        if raw.isspace():
            return
        if "\n" in raw:
            text = "\n".join(t for t in (_WS.sub(" ", line).strip() for line in raw.split("\n")) if t)
        else:
            text = _WS.sub(" ", raw).strip()
        if text:
            self.blocks.append(Block(text, len(text), min(links, len(text)), ctx, "text"))

    def visit(self, el: etree._Element, ctx: Context, in_link: bool) -> None:
        tag = el.tag
        if tag in BLOCK_TAGS:
            if self.parts:
                self.flush(ctx)
            names = el.get("class")
            ident = el.get("id")
            if ident:
                names = f"{names} {ident}" if names else ident
            flags = ctx.flags | {tag} if tag in _CONTEXT_SET else ctx.flags
            if names:
                toks, kws = class_facts(names)
                inner = Context(tag, ctx.depth + 1, ctx, flags, ctx.keywords | kws, ctx.tokens | toks)
            else:
                inner = Context(tag, ctx.depth + 1, ctx, flags, ctx.keywords, ctx.tokens)
            if tag == "pre":
                text = el.text or ""
                if text.strip():
                    self.blocks.append(Block(text.strip("\n"), len(text), 0, inner,
                                             "code" if text.startswith("```") else "text"))
            else:
                if el.text:
                    self.parts.append(el.text)
                    if in_link:
                        self.link_chars += len(el.text.strip())
                for child in el:
                    self.visit(child, inner, in_link)
                if self.parts:
                    self.flush(inner)
        else:
            if tag == "br":
                self.parts.append("\n")
            link = in_link or tag == "a"
            if el.text:
                self.parts.append(el.text)
                if link:
                    self.link_chars += len(el.text.strip())
            for child in el:
                self.visit(child, ctx, link)
        if el.tail:
            self.parts.append(el.tail)
            if in_link:
                self.link_chars += len(el.tail.strip())


_CONTEXT_SET = frozenset(CONTEXT_TAGS)


def _is_code_block(el: etree._Element) -> bool:
    """A bare <code> holding several lines is a code block (one-liners stay inline text)."""
    return "\n" in "".join(el.itertext()).strip()


def fence(el: etree._Element) -> str:
    """A <pre>/<code> block as fenced code with its line breaks and indentation as written."""
    body = "".join(_code_text(el)).strip("\n")
    if not body.strip():
        return ""
    lang = ""
    for node in (el, *el.iter("code")):
        for tok in (node.get("class") or "").split():
            if tok.startswith(("language-", "lang-")):
                lang = tok.split("-", 1)[1]
                break
        if lang:
            break
    return f"```{lang}\n{body.rstrip()}\n```"


def _code_text(el: etree._Element) -> list[str]:
    out: list[str] = []

    def walk(node: etree._Element) -> None:
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag in ("script", "style"):
            if node is not el and node.tail:
                out.append(node.tail)
            return
        if tag == "br":
            out.append("\n")
        if node.text:
            out.append(node.text)
        for child in node:
            walk(child)
        if node is not el and node.tail:
            out.append(node.tail)

    walk(el)
    return out


def _replace_with_text(el: etree._Element, tag: str, text: str) -> None:
    """Swap `el` for a fresh element holding only `text` (its tail kept)."""
    new = etree.Element(tag)
    new.text = text
    new.tail = el.tail
    parent = el.getparent()
    if parent is not None:
        parent.replace(el, new)


def rewrite(root: etree._Element, html: str) -> None:
    """Formulas to delimited TeX and code blocks to fenced text, in the tree, before the walk.

    Done with lxml's C-level tag iteration and only where the page's source mentions the markup, so
    pages without math or code pay one substring test each."""
    if "<math" in html or "katex" in html or "MathJax" in html or "mjx-" in html or "math/tex" in html:
        for el in _RENDERED(root):
            if html_math.is_rendered_copy(el):
                _drop_keep_tail(el)
        for el in list(root.iter("script")):
            f = html_math.script_tex(el)
            if f is not None:
                _replace_with_text(el, "span", _formula_text(f))
        for el in list(root.iter("math", "{http://www.w3.org/1998/Math/MathML}math")):
            if el.getparent() is None:
                continue
            f = html_math.math_element_tex(el)
            if f is not None:
                _replace_with_text(el, "span", _formula_text(f))
            else:
                _drop_keep_tail(el)
    if "<pre" in html or "<code" in html:
        for el in list(root.iter("pre")):
            if el.getparent() is not None:
                _replace_with_text(el, "pre", fence(el))
        if "<code" in html:
            for el in list(root.iter("code")):
                if el.getparent() is not None and _is_code_block(el):
                    _replace_with_text(el, "pre", fence(el))


_RENDERED = etree.XPath("//*[contains(@class, 'katex-html') or contains(@class, 'MathJax') or "
                        "contains(@class, 'MJX_Assistive')] | //mjx-math")


def _drop_keep_tail(el: etree._Element) -> None:
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    prev = el.getprevious()
    parent.remove(el)
    if tail:
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail


def _formula_text(f: html_math.Formula) -> str:
    if f.display:
        return f"\n{FORMULA_OPEN}$${f.tex}$${FORMULA_CLOSE}\n"
    return f"{FORMULA_OPEN}${f.tex}${FORMULA_CLOSE}"


def parse(html: str) -> etree._Element | None:
    """The page's root element (lxml's forgiving HTML parser over UTF-8 bytes); None for an empty page."""
    data = html.encode("utf-8", "surrogatepass")
    if not data.strip():
        return None
    return etree.fromstring(data, PARSER)


def segment(html: str) -> list[Block]:
    """The page's text blocks in reading order (formulas as delimited TeX, code blocks fenced)."""
    root = parse(html)
    if root is None:
        return []
    rewrite(root, html)
    etree.strip_elements(root, *SKIP_TAGS, etree.Comment, with_tail=False)
    etree.strip_tags(root, *INLINE_TAGS)  # their text joins the parent's, in C, so the walk visits fewer nodes
    body = root.find("body")
    top = Context("body", 0, None, frozenset(), frozenset(), frozenset())
    walker = _Walker()
    walker.visit(body if body is not None else root, top, False)
    walker.flush(top)
    return walker.blocks


# -- features ------------------------------------------------------------------------------------
NUMERIC = ("log_chars", "log_words", "link_density", "punct_per_word", "sentence_end", "rel_position",
           "in_best", "best_share", "container_link_density", "container_log_chars", "prev_link_density",
           "next_link_density", "prev_log_chars", "next_log_chars", "depth", "words_per_line", "all_link",
           "is_code", "has_formula", "starts_upper", "digits_share", "resiliparse_main", "bias")
FEATURE_NAMES = (list(NUMERIC) + [f"in_{t}" for t in CONTEXT_TAGS] + [f"tag_{k}" for k in BLOCK_KINDS]
                 + [f"kw_{k}" for k in KEYWORDS])
_FLAG_COL = {t: len(NUMERIC) + i for i, t in enumerate(CONTEXT_TAGS)}
_KIND_COL = {k: len(NUMERIC) + len(CONTEXT_TAGS) + i for i, k in enumerate(BLOCK_KINDS)}
_KW_COL = {k: len(NUMERIC) + len(CONTEXT_TAGS) + len(BLOCK_KINDS) + i for i, k in enumerate(KEYWORDS)}
_KIND_ALIAS = {"h5": "h2", "h6": "h2", "th": "td", "dt": "dd"}


def _share_in(text: str, lines: frozenset[str]) -> float:
    if not lines:
        return 0.0
    if "\n" not in text:
        return 1.0 if text in lines else 0.0
    parts = text.split("\n")
    return sum(1 for t in parts if t in lines) / len(parts)


def _credit_containers(blocks: list[Block]) -> Context | None:
    """Readability's container score: a paragraph-like block credits its parent and half its grandparent."""
    best: Context | None = None
    for b in blocks:
        if b.chars < 25 or b.link_chars > 0.3 * b.chars:
            continue
        points = 1.0 + min(b.chars / 100.0, 3.0) + b.text.count(",")
        ctx = b.ctx if b.ctx.tag not in ("p", "h1", "h2", "h3", "h4", "li", "blockquote") else b.ctx.parent or b.ctx
        ctx.score += points
        if best is None or ctx.score > best.score:
            best = ctx
        if ctx.parent is not None:
            ctx.parent.score += points / 2
            if ctx.parent.score > best.score:
                best = ctx.parent
    return best


def resiliparse_lines(html: str) -> frozenset[str]:
    """The lines Resiliparse's own main-content heuristics keep (a feature: a second opinion at C++ speed)."""
    from resiliparse.extract.html2text import extract_plain_text

    text = extract_plain_text(html, preserve_formatting=True, main_content=True, list_bullets=False,
                              alt_texts=False, comments=False, noscript=False)
    return frozenset(t for t in (_WS.sub(" ", line).strip() for line in text.split("\n")) if t)


def features(blocks: list[Block], main_lines: frozenset[str] = frozenset()) -> np.ndarray:
    """One row of FEATURE_NAMES per block; `main_lines` from `resiliparse_lines` of the same page."""
    n = len(blocks)
    x = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    if not n:
        return x
    total = sum(b.chars for b in blocks) or 1
    best = _credit_containers(blocks)
    inside: dict[int, bool] = {}

    def within(ctx: Context) -> bool:
        key = id(ctx)
        hit = inside.get(key)
        if hit is None:
            hit = ctx is best or (ctx.parent is not None and within(ctx.parent))
            inside[key] = hit
        return hit

    container_chars: dict[int, int] = {}
    container_links: dict[int, int] = {}
    for b in blocks:
        key = id(b.ctx.parent or b.ctx)
        container_chars[key] = container_chars.get(key, 0) + b.chars
        container_links[key] = container_links.get(key, 0) + b.link_chars
    in_best = [best is not None and within(b.ctx) for b in blocks]
    best_share = sum(b.chars for b, hit in zip(blocks, in_best, strict=True) if hit) / total
    lds = [b.link_chars / b.chars for b in blocks]
    logc = [math.log1p(b.chars) for b in blocks]
    pos = 0
    for i, b in enumerate(blocks):
        b.start = pos
        text = b.text
        words = text.count(" ") + text.count("\n") + 1
        key = id(b.ctx.parent or b.ctx)
        cc = container_chars[key]
        head = text[:200]
        x[i, :len(NUMERIC)] = (
            logc[i], math.log1p(words), lds[i], min(len(_PUNCT.findall(text)) / words, 1.0),
            1.0 if _SENT_END.search(text) else 0.0, pos / total, 1.0 if in_best[i] else 0.0, best_share,
            container_links[key] / cc if cc else 0.0, math.log1p(cc),
            lds[i - 1] if i else 1.0, lds[i + 1] if i + 1 < n else 1.0,
            logc[i - 1] if i else 0.0, logc[i + 1] if i + 1 < n else 0.0,
            min(b.ctx.depth / 20.0, 2.0), min(words / (text.count("\n") + 1) / 50.0, 2.0),
            1.0 if b.link_chars >= 0.95 * b.chars else 0.0, 1.0 if b.kind == "code" else 0.0,
            1.0 if FORMULA_OPEN in text else 0.0, 1.0 if text[:1].isupper() else 0.0,
            len(_DIGIT.findall(head)) / len(head), _share_in(text, main_lines), 1.0,
        )
        for t in b.ctx.flags:
            x[i, _FLAG_COL[t]] = 1.0
        tag = _KIND_ALIAS.get(b.ctx.tag, b.ctx.tag)
        x[i, _KIND_COL.get(tag, _KIND_COL["span"])] = 1.0
        for k in b.ctx.keywords:
            x[i, _KW_COL[k]] = 1.0
        pos += b.chars
    return x
