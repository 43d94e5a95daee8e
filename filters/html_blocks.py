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

import re
from dataclasses import dataclass
from functools import cache

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
# what an element's attributes say about its region (WAI-ARIA 1.2 landmark and widget roles; the `hidden`
# attribute, aria-hidden, inline display:none / visibility:hidden): cheap stand-ins for the rules
# Resiliparse's main-content pass applies, as context flags like CONTEXT_TAGS
ATTRIBUTE_FLAGS = ("role_nav", "role_main", "hidden")
NAV_ROLES = frozenset({"navigation", "menu", "menubar", "banner", "contentinfo", "complementary", "search",
                       "dialog", "alertdialog", "toolbar", "tablist", "tooltip", "log", "marquee"})
MAIN_ROLES = frozenset({"main", "article"})
CONTEXT_FLAGS = CONTEXT_TAGS + ATTRIBUTE_FLAGS
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
class Blocks:
    """A page's text blocks in reading order, and the block-level elements (contexts) that enclose them.

    Columns, not objects: the walk appends to plain lists and every feature is then computed with
    numpy over the whole page. Contexts are numbered in document order (0: the page's top), so the
    contexts inside context `c` are exactly `c + 1 .. ctx_end[c] - 1`."""

    texts: list[str]
    chars: np.ndarray  # int64, characters of each block's text (a <pre>: of its raw text)
    link_chars: np.ndarray  # int64, characters inside links
    code: np.ndarray  # bool, a fenced code block
    ctx: np.ndarray  # int64, the block's innermost block-level element
    ctx_parent: np.ndarray  # int64 per context, -1 for the top
    ctx_depth: np.ndarray  # int64 per context
    ctx_tag: list[str]
    ctx_mask: list[int]  # CONTEXT_FLAGS (low bits) and KEYWORDS (above) of the context and its ancestors
    ctx_end: np.ndarray  # int64 per context: one past its last descendant

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def container(self) -> np.ndarray:
        """Each block's container: the parent of its innermost block-level element (the top: itself)."""
        parent = self.ctx_parent[self.ctx]
        return np.where(parent >= 0, parent, self.ctx)


_MASK_CACHE: dict[str, int] = {}
_TOKEN_CACHE: dict[str, int] = {}


_LONG_KEYWORDS = sorted((k for k in KEYWORDS if len(k) >= 4), key=len, reverse=True)
_KEYWORD_EDGE = re.compile("^(" + "|".join(_LONG_KEYWORDS) + ")|(" + "|".join(_LONG_KEYWORDS) + ")$")
_CONTEXT_BIT = {t: 1 << i for i, t in enumerate(CONTEXT_FLAGS)}
_KEYWORD_BIT = {k: 1 << (len(CONTEXT_FLAGS) + i) for i, k in enumerate(KEYWORDS)}
_MASK_BYTES = (len(CONTEXT_FLAGS) + len(KEYWORDS) + 7) // 8
_NAME_ATTRS = frozenset({"class", "id"})
_FLAG_ATTRS = frozenset({"role", "hidden", "aria-hidden", "style"})


def _keyword_bits(token: str) -> int:
    """KEYWORDS a class/id token names (the token itself, or a longer keyword it starts or ends with), as bits."""
    bits = _TOKEN_CACHE.get(token)
    if bits is None:
        bits = _KEYWORD_BIT.get(token, 0)
        if _KEYWORD_EDGE.search(token):
            for k in _LONG_KEYWORDS:
                if token.startswith(k) or token.endswith(k):
                    bits |= _KEYWORD_BIT[k]
        if len(_TOKEN_CACHE) < 200_000:
            _TOKEN_CACHE[token] = bits
    return bits


def class_mask(names: str) -> int:
    """KEYWORDS of an element's class and id names, as bits of a context mask; cached, sites repeat them."""
    bits = _MASK_CACHE.get(names)
    if bits is None:
        bits = 0
        for t in set(_TOKEN.findall(names.lower())):
            bits |= _keyword_bits(t)
        if len(_MASK_CACHE) < 200_000:
            _MASK_CACHE[names] = bits
    return bits


def attribute_bits(key: str, value: str) -> int:
    """ATTRIBUTE_FLAGS one attribute of a block-level element sets, as bits of a context mask."""
    if key == "role":
        role = value.strip().lower().split(" ", 1)[0]
        return (_CONTEXT_BIT["role_nav"] if role in NAV_ROLES else 0) | (
            _CONTEXT_BIT["role_main"] if role in MAIN_ROLES else 0)
    if key == "hidden" or (key == "aria-hidden" and value.strip().lower() == "true"):
        return _CONTEXT_BIT["hidden"]
    if key == "style":
        style = value.lower().replace(" ", "")
        if "display:none" in style or "visibility:hidden" in style:
            return _CONTEXT_BIT["hidden"]
    return 0


def _normalized(raw: str) -> str:
    """Runs of spaces to one space; source line breaks kept, blank lines dropped; trimmed."""
    if "\n" in raw:
        return "\n".join(t for t in (" ".join(line.split()) for line in raw.split("\n")) if t)
    return " ".join(raw.split())


def walk(start: etree._Element) -> Blocks:
    """Split the visible text under `start` into blocks at block-level tags (one lxml iterwalk, no recursion).

    Text between two block boundaries is one block, attributed to the innermost open block-level
    element; text inside <a> counts as link text; a <pre> (already fenced by `rewrite`) is one block.
    The loop runs once per element of every page (most of the `blocks` method's Python time), so it is
    written flat: no helper calls, locals for globals, a <pre>'s raw length kept as a negative link count
    and a block's characters counted afterwards in numpy."""
    texts: list[str] = []
    links: list[int] = []
    code_at: list[int] = []
    fenced: list[bool] = []
    bctx: list[int] = []
    c_parent, c_depth, c_tag, c_mask, c_end = [-1], [0], ["body"], [0], [0]
    parts: list[str] = []
    link_chars = 0
    cur = 0
    n_ctx = 1
    link_depth = 0  # open <a> elements
    mask_cache = _MASK_CACHE
    context_bit = _CONTEXT_BIT
    block_tags = BLOCK_TAGS
    name_attrs, flag_attrs = _NAME_ATTRS, _FLAG_ATTRS
    append_part = parts.append
    walker = etree.iterwalk(start, events=("start", "end"))
    for event, el in walker:
        tag = el.tag
        if tag in block_tags:
            if parts:
                raw = "".join(parts) if len(parts) > 1 else parts[0]
                parts.clear()
                if not raw.isspace():
                    text = " ".join(raw.split()) if "\n" not in raw else _normalized(raw)
                    if text:
                        texts.append(text)
                        links.append(link_chars)
                        bctx.append(cur)
                link_chars = 0
            if event == "start":
                mask = c_mask[cur] | context_bit.get(tag, 0)
                for key, value in el.items():
                    if key in name_attrs:
                        bits = mask_cache.get(value)
                        mask |= class_mask(value) if bits is None else bits
                    elif key in flag_attrs:
                        mask |= attribute_bits(key, value)
                c_parent.append(cur)
                c_depth.append(c_depth[cur] + 1)
                c_tag.append(tag)
                c_mask.append(mask)
                c_end.append(0)
                cur = n_ctx
                n_ctx += 1
                if tag == "pre":
                    walker.skip_subtree()
                    text = el.text or ""
                    if text.strip():
                        code_at.append(len(texts))
                        fenced.append(text.startswith("```"))
                        texts.append(text.strip("\n"))
                        links.append(-len(text))  # marks the raw length (chars of a <pre>: its raw text)
                        bctx.append(cur)
                    continue
                text = el.text
                if text:
                    append_part(text)
                    if link_depth:
                        link_chars += len(text.strip())
            else:
                c_end[cur] = n_ctx
                cur = c_parent[cur]
                tail = el.tail
                if tail:
                    append_part(tail)
                    if link_depth:
                        link_chars += len(tail.strip())
        elif event == "start":
            if tag == "a":
                link_depth += 1
            elif tag == "br":
                append_part("\n")
            text = el.text
            if text:
                append_part(text)
                if link_depth:
                    link_chars += len(text.strip())
        else:
            if tag == "a":
                link_depth -= 1
            tail = el.tail
            if tail:
                append_part(tail)
                if link_depth:
                    link_chars += len(tail.strip())
    if parts:
        raw = "".join(parts)
        if not raw.isspace():
            text = _normalized(raw)
            if text:
                texts.append(text)
                links.append(link_chars)
                bctx.append(0)
    c_end[0] = n_ctx
    i64 = np.int64
    chars = np.fromiter(map(len, texts), dtype=i64, count=len(texts))
    link_arr = np.array(links, dtype=i64)
    code = np.zeros(len(texts), dtype=bool)
    if code_at:
        at = np.array(code_at, dtype=i64)
        chars[at] = -link_arr[at]
        link_arr[at] = 0
        code[at] = fenced
    np.minimum(link_arr, chars, out=link_arr)
    return Blocks(texts, chars, link_arr, code, np.array(bctx, dtype=i64), np.array(c_parent, dtype=i64),
                  np.array(c_depth, dtype=i64), c_tag, c_mask, np.array(c_end, dtype=i64))


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


def rewrite(root: etree._Element) -> None:
    """Formulas to delimited TeX and code blocks to fenced text, in the tree, before the walk.

    Whether a page has any is asked of the tree with lxml's C-level tag iteration (a few microseconds;
    seven substring searches over the source cost more than the walk's whole start), so pages without
    math or code pay almost nothing. A page has formulas when it holds MathML, MathJax 3 elements or
    MathJax 2 `math/tex` scripts; renderers' visual copies exist only beside one of those."""
    scripts = [el for el in root.iter("script") if html_math.script_tex(el) is not None]
    if scripts or next(root.iter(*_MATH_TAGS), None) is not None:
        for el in _RENDERED(root):
            if html_math.is_rendered_copy(el):
                _drop_keep_tail(el)
        for el in scripts:
            f = html_math.script_tex(el)
            if f is not None and el.getparent() is not None:
                _replace_with_text(el, "span", _formula_text(f))
        for el in list(root.iter("math", _MATHML)):
            if el.getparent() is None:
                continue
            f = html_math.math_element_tex(el)
            if f is not None:
                _replace_with_text(el, "span", _formula_text(f))
            else:
                _drop_keep_tail(el)
    for el in list(root.iter("pre")):
        if el.getparent() is not None:
            _replace_with_text(el, "pre", fence(el))
    for el in list(root.iter("code")):
        if el.getparent() is not None and _is_code_block(el):
            _replace_with_text(el, "pre", fence(el))


_MATHML = "{http://www.w3.org/1998/Math/MathML}math"
_MATH_TAGS = ("math", _MATHML, "mjx-container", "mjx-math")
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


def parse(html: str | bytes) -> etree._Element | None:
    """The page's root element (lxml's forgiving HTML parser over UTF-8 bytes: a str is encoded, bytes
    must be UTF-8 already); None for an empty page."""
    data = html if isinstance(html, bytes) else html.encode("utf-8", "surrogatepass")
    if not data.strip():
        return None
    return etree.fromstring(data, PARSER)


def segment(html: str | bytes) -> Blocks:
    """The page's text blocks in reading order (formulas as delimited TeX, code blocks fenced)."""
    root = parse(html)
    if root is None:
        return walk(etree.Element("body"))
    rewrite(root)
    etree.strip_elements(root, *SKIP_TAGS, etree.Comment, with_tail=False)
    etree.strip_tags(root, *INLINE_TAGS)  # their text joins the parent's, in C, so the walk visits fewer nodes
    body = root.find("body")
    return walk(body if body is not None else root)


# -- features ------------------------------------------------------------------------------------
NUMERIC = ("log_chars", "log_words", "link_density", "punct_per_word", "sentence_end", "rel_position",
           "in_best", "best_share", "container_link_density", "container_log_chars", "prev_link_density",
           "next_link_density", "prev_log_chars", "next_log_chars", "depth", "words_per_line", "all_link",
           "is_code", "has_formula", "starts_upper", "digits_share", "bias")
FEATURE_NAMES = (list(NUMERIC) + [f"in_{t}" for t in CONTEXT_FLAGS] + [f"tag_{k}" for k in BLOCK_KINDS]
                 + [f"kw_{k}" for k in KEYWORDS])
_MASK_COLS = slice(len(NUMERIC), len(NUMERIC) + len(CONTEXT_FLAGS))  # CONTEXT_FLAGS bits
_KW_COLS = slice(len(NUMERIC) + len(CONTEXT_FLAGS) + len(BLOCK_KINDS), len(FEATURE_NAMES))
_KIND_ALIAS = {"h5": "h2", "h6": "h2", "th": "td", "dt": "dd"}
_KIND_COL = {k: len(NUMERIC) + len(CONTEXT_FLAGS) + i for i, k in enumerate(BLOCK_KINDS)}
_KIND_COL.update({a: _KIND_COL[k] for a, k in _KIND_ALIAS.items()})
_SPAN_COL = _KIND_COL["span"]
_SENT_END_CHARS = frozenset(".!?:;\"”’)")
# character classes counted per block (_char_counts): other, space, line break, punctuation, a digit in the
# block's first 200 characters, a formula mark
_SPACE, _NEWLINE, _PUNCT_CLASS, _DIGIT_CLASS, _FORMULA_CLASS, _N_CLASSES = 1, 2, 3, 4, 5, 6
_HEAD = 200


@cache
def _char_class() -> np.ndarray:
    """Class of every code point (Unicode decimal digits, as the regex `\\d` sees them, are digits)."""
    table = np.zeros(0x110000, dtype=np.uint8)
    every = np.arange(0x110000, dtype=np.uint32).tobytes().decode("utf-32-le", "surrogatepass")
    table[[m.start() for m in _DIGIT.finditer(every)]] = _DIGIT_CLASS
    table[ord(" ")], table[ord("\n")], table[ord(FORMULA_OPEN)] = _SPACE, _NEWLINE, _FORMULA_CLASS
    table[[ord(c) for c in ".,;:!?"]] = _PUNCT_CLASS
    return table


def _char_counts(texts: list[str]) -> np.ndarray:
    """Per block, how many characters of each class it holds (digits: only in its first _HEAD characters);
    one pass over the page's text as code points."""
    lens = np.array([len(t) for t in texts], dtype=np.int64)
    codes = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    cls = _char_class()[codes].astype(np.int64)
    block = np.repeat(np.arange(len(texts), dtype=np.int64), lens)
    offset = np.arange(len(codes), dtype=np.int64) - np.repeat(np.cumsum(lens) - lens, lens)
    cls[(cls == _DIGIT_CLASS) & (offset >= _HEAD)] = 0
    return np.bincount(block * _N_CLASSES + cls, minlength=len(texts) * _N_CLASSES).reshape(-1, _N_CLASSES)
_CONTAINER_SKIP = frozenset({"p", "h1", "h2", "h3", "h4", "li", "blockquote"})


def best_container(blocks: Blocks) -> int:
    """Readability's container score: a paragraph-like block credits its parent and half its grandparent;
    the context with the highest score (the first to reach it), or -1."""
    best = -1
    score: dict[int, float] = {}
    parent, tags = blocks.ctx_parent, blocks.ctx_tag
    chars, links = blocks.chars, blocks.link_chars
    for i in np.flatnonzero((chars >= 25) & (links <= 0.3 * chars)).tolist():
        c = int(chars[i])
        points = 1.0 + min(c / 100.0, 3.0) + blocks.texts[i].count(",")
        ctx = int(blocks.ctx[i])
        if tags[ctx] in _CONTAINER_SKIP and parent[ctx] >= 0:
            ctx = int(parent[ctx])
        s = score[ctx] = score.get(ctx, 0.0) + points
        if best < 0 or s > score[best]:
            best = ctx
        up = int(parent[ctx])
        if up >= 0:
            s = score[up] = score.get(up, 0.0) + points / 2
            if s > score[best]:
                best = up
    return best


def _mask_bits(masks: list[int]) -> np.ndarray:
    """Context masks as a 0/1 matrix, one column per bit (CONTEXT_FLAGS, then KEYWORDS)."""
    raw = b"".join(m.to_bytes(_MASK_BYTES, "little") for m in masks)
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8).reshape(len(masks), _MASK_BYTES), axis=1,
                         bitorder="little")
    return bits[:, :len(CONTEXT_FLAGS) + len(KEYWORDS)]


def features(blocks: Blocks) -> np.ndarray:
    """One row of FEATURE_NAMES per block (numpy over the page's columns)."""
    n = len(blocks)
    x = np.zeros((n, len(FEATURE_NAMES)), dtype=np.float32)
    if not n:
        return x
    texts = blocks.texts
    chars = blocks.chars
    fchars = chars.astype(np.float64)
    total = int(chars.sum()) or 1
    best = best_container(blocks)
    ctx = blocks.ctx
    if best >= 0:
        in_best = (ctx >= best) & (ctx < blocks.ctx_end[best])
    else:
        in_best = np.zeros(n, dtype=bool)
    cont = blocks.container
    cc = np.bincount(cont, weights=fchars)[cont]
    cl = np.bincount(cont, weights=blocks.link_chars)[cont]
    lds = blocks.link_chars / fchars
    logc = np.log1p(fchars)
    counts = _char_counts(texts)
    spaces, newlines, punct, head_digits = (counts[:, k].astype(np.float64) for k in range(1, 5))
    lines = newlines + 1.0
    words = spaces + lines
    heads = np.minimum([len(t) for t in texts], _HEAD)
    x[:, 0] = logc
    x[:, 1] = np.log1p(words)
    x[:, 2] = lds
    x[:, 3] = np.minimum(punct / words, 1.0)
    x[:, 4] = [t[-1] in _SENT_END_CHARS for t in texts]
    x[:, 5] = (np.cumsum(chars) - chars) / total
    x[:, 6] = in_best
    x[:, 7] = int(chars[in_best].sum()) / total
    x[:, 8] = np.divide(cl, cc, out=np.zeros(n), where=cc > 0)
    x[:, 9] = np.log1p(cc)
    x[0, 10], x[1:, 10] = 1.0, lds[:-1]
    x[:-1, 11], x[-1, 11] = lds[1:], 1.0
    x[1:, 12] = logc[:-1]
    x[:-1, 13] = logc[1:]
    x[:, 14] = np.minimum(blocks.ctx_depth[ctx] / 20.0, 2.0)
    x[:, 15] = np.minimum(words / lines / 50.0, 2.0)
    x[:, 16] = blocks.link_chars >= 0.95 * fchars
    x[:, 17] = blocks.code
    x[:, 18] = counts[:, 5] > 0
    x[:, 19] = [t[:1].isupper() for t in texts]
    x[:, 20] = head_digits / heads
    x[:, 21] = 1.0
    used, inverse = np.unique(ctx, return_inverse=True)
    bits = _mask_bits([blocks.ctx_mask[c] for c in used.tolist()])[inverse]
    x[:, _MASK_COLS] = bits[:, :len(CONTEXT_FLAGS)]
    x[:, _KW_COLS] = bits[:, len(CONTEXT_FLAGS):]
    tags = blocks.ctx_tag
    x[np.arange(n), [_KIND_COL.get(tags[c], _SPAN_COL) for c in ctx.tolist()]] = 1.0
    return x
