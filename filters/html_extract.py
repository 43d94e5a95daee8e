"""Main-content extraction from HTML: Trafilatura, Resiliparse, or all visible text ("plain").

Each function takes one decoded page and returns its text with paragraph and line breaks kept (line
heuristics downstream count lines); `tidy` gives every method the same whitespace rules, so the
methods differ only in what they keep.
"""

from __future__ import annotations

import re
from typing import Any

_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_BLANKS = re.compile(r"\n{3,}")


def tidy(text: str | None) -> str:
    """Trim every line, collapse runs of spaces, and keep at most one blank line between paragraphs."""
    if not text:
        return ""
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


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


def extract(method: str, html: str, url: str | None, options: dict[str, Any]) -> str:
    if method == "trafilatura":
        return trafilatura_text(html, url, options)
    if method == "resiliparse":
        return resiliparse_text(html, options)
    if method == "plain":
        return plain_text(html, options)
    raise ValueError(f"unknown extraction method {method!r}")
