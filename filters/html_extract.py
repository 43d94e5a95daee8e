"""Main-content extraction from HTML: the learned block classifier ("blocks"), Trafilatura, Resiliparse,
or all visible text ("plain").

Each function takes one decoded page and returns its text with paragraph and line breaks kept (line
heuristics downstream count lines); `tidy` gives every method the same whitespace rules, so the
methods differ only in what they keep. Every method sees formulas as TeX and code blocks fenced:
`blocks` rewrites them during its own parse; for the others, a page whose source mentions math or
`<pre>`/`<code>` is rewritten first (`filters.html_blocks.rewrite`) and serialized again, other pages
go to the extractor untouched. `extract_page` also counts the formulas that reached the text.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from filters import html_math
from filters.html_blocks import FORMULA_CLOSE, FORMULA_OPEN

_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANKS = re.compile(r"\n{3,}")


_FENCED = re.compile(r"^[ \t]*(```[^\n`]*\n.*?\n[ \t]*```)[ \t]*$", re.S | re.M)


def _tidy_prose(text: str) -> str:
    lines = [line.strip() for line in _SPACES.sub(" ", text).split("\n")]  # _SPACES never spans lines
    return _BLANKS.sub("\n\n", "\n".join(lines))


def tidy(text: str | None) -> str:
    """Trim every line, collapse runs of spaces, and keep at most one blank line between paragraphs;
    fenced code blocks keep their lines exactly (indentation is code)."""
    if not text:
        return ""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "```" not in text:
        return _tidy_prose(text).strip()
    out, pos = [], 0
    for m in _FENCED.finditer(text):
        out.append(_tidy_prose(text[pos:m.start()]))
        out.append(m.group(1))
        pos = m.end()
    out.append(_tidy_prose(text[pos:]))
    return "".join(out).strip()


def trafilatura_text(html: str, url: str | None, options: dict[str, Any]) -> str:
    """Trafilatura's main text (txt output: one paragraph or list item per line)."""
    import trafilatura

    return tidy(trafilatura.extract(html, url=url, output_format="txt", with_metadata=False, **options))


def resiliparse_text(html: str, options: dict[str, Any]) -> str:
    """Resiliparse's html2text with its main-content heuristics (block structure preserved)."""
    from resiliparse.extract.html2text import extract_plain_text

    return tidy(extract_plain_text(html, preserve_formatting=True, main_content=True, **options))


def plain_text(html: str, options: dict[str, Any]) -> str:
    """All visible text of the page (no boilerplate removal), block structure preserved."""
    from resiliparse.extract.html2text import extract_plain_text

    return tidy(extract_plain_text(html, preserve_formatting=True, main_content=False, **options))


def blocks_text(html: str | bytes) -> str:
    """The learned block classifier's main text (formula marks kept for counting)."""
    from filters.block_classifier import blocks_text as classify

    return classify(html)


class Extraction(NamedTuple):
    text: str
    formulas: int  # formulas in `text` as TeX ($...$ / $$...$$)


_MARKED = re.compile(re.escape(FORMULA_OPEN) + ".*?" + re.escape(FORMULA_CLOSE), re.S)


def needs_rewrite(html: str) -> bool:
    """Whether the page's source mentions formula or code-block markup (a cheap substring test)."""
    return ("<math" in html or "math/tex" in html or "katex" in html or "MathJax" in html or "mjx-" in html
            or "<pre" in html or "<code" in html)


def rewritten(html: str) -> str:
    """The page with formulas as marked TeX and code blocks fenced, serialized again for other extractors."""
    from lxml import etree

    from filters.html_blocks import parse, rewrite

    root = parse(html)
    if root is None:
        return html
    rewrite(root)
    return etree.tostring(root, encoding="unicode", method="html")


def finish(text: str) -> Extraction:
    """Count the formulas (marked by the rewrite, or TeX delimiters the author wrote), drop the marks,
    and write `\\(...\\)` / `\\[...\\]` as `$...$` / `$$...$$`."""
    marked = text.count(FORMULA_OPEN)
    _, delimited = html_math.normalize_delimiters(_MARKED.sub(" ", text) if marked else text)
    if "\\(" in text or "\\[" in text:
        text, _ = html_math.normalize_delimiters(text)
    if marked:
        text = text.replace(FORMULA_OPEN, "").replace(FORMULA_CLOSE, "")
    return Extraction(text, marked + delimited)


def extract_page(method: str, html: str | bytes, url: str | None, options: dict[str, Any]) -> Extraction:
    """The page's text and formula count by `method`; `html` is the decoded page, or its UTF-8 bytes
    (what the `extract` stage passes: lxml parses them as they are, the other methods get them decoded)."""
    if method == "blocks":
        return finish(tidy(blocks_text(html)))
    if method not in ("trafilatura", "resiliparse", "plain"):
        raise ValueError(f"unknown extraction method {method!r}")
    if isinstance(html, bytes):
        html = html.decode("utf-8", "surrogatepass")
    page = rewritten(html) if options.get("math_and_code", True) and needs_rewrite(html) else html
    opts = {k: v for k, v in options.items() if k != "math_and_code"}
    if method == "trafilatura":
        return finish(trafilatura_text(page, url, opts))
    if method == "resiliparse":
        return finish(resiliparse_text(page, opts))
    return finish(plain_text(page, opts))


def extract(method: str, html: str | bytes, url: str | None, options: dict[str, Any]) -> str:
    """The page's text by `method` (see `extract_page`, which also counts formulas)."""
    return extract_page(method, html, url, options).text
