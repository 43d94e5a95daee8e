"""Formulas in web pages back to TeX: MathJax scripts, MathML TeX annotations, MathML converted, KaTeX de-duplicated.

A formula reaches the HTML in one of four shapes, and the text a model should see is its TeX:
- `<script type="math/tex">` (MathJax 2 keeps the source there; `; mode=display` for display math);
- `<math>` with `<annotation encoding="application/x-tex">` (KaTeX, Wikipedia, pandoc): the annotation;
- `<math>` without TeX (e-books, textbooks, MathJax 3's assistive copy): converted here, structure
  kept (fractions, scripts, roots, big operators, matrices), symbols mapped by `math_symbols.json`;
  `alttext` is used only when it is real TeX, never a placeholder like "Alternative text not available";
- renderers' visual copies (KaTeX's `katex-html`, MathJax's `MathJax*`/`mjx-math` spans) are dropped,
  so every formula appears once.
TeX left in the text by the author (`\\(...\\)`, `\\[...\\]`) is rewritten to `$...$` / `$$...$$` by
`normalize_delimiters`.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import NamedTuple

from lxml import etree

_TABLE = Path(__file__).with_name("math_symbols.json")
TEX_ENCODINGS = ("application/x-tex", "tex", "latex", "application/x-latex", "text/x-tex")
# class names of rendered copies whose source is kept elsewhere on the page (script, annotation or MathML)
RENDERED_CLASSES = frozenset({"katex-html", "MathJax", "MathJax_Display", "MathJax_SVG", "MathJax_SVG_Display",
                              "MathJax_CHTML", "MathJax_Preview", "MathJax_MathML", "MJX_Assistive_MathML"})
RENDERED_TAGS = frozenset({"mjx-math"})
_PLACEHOLDER = re.compile(r"(alternative|alt)[ -]?text|not available|image|equation\s*\d*$|^formula$|^math$", re.I)
_TEXY = re.compile(r"\\[A-Za-z]+|[\^_{}]|^[\w\s+\-*/=<>().,|'!]{1,40}$")


class Formula(NamedTuple):
    tex: str
    display: bool


@cache
def _tables() -> tuple[dict[str, str], frozenset[str], dict[str, str]]:
    data = json.loads(_TABLE.read_text(encoding="utf-8"))
    return data["symbols"], frozenset(data["functions"]), data["accents"]


def local(tag: object) -> str:
    return tag.rpartition("}")[2].lower() if isinstance(tag, str) else ""


def is_rendered_copy(el: etree._Element) -> bool:
    tag = local(el.tag)
    if tag in RENDERED_TAGS:
        return True
    if tag == "mjx-container":  # MathJax 3's container (class "MathJax") holds the assistive MathML: kept
        return False
    cls = el.get("class")
    return bool(cls) and any(c in RENDERED_CLASSES for c in cls.split())


def script_tex(el: etree._Element) -> Formula | None:
    """MathJax 2's `<script type="math/tex[; mode=display]">` source; None for any other script."""
    kind = (el.get("type") or "").lower()
    if not kind.startswith("math/tex"):
        return None
    tex = (el.text or "").strip()
    return Formula(tex, "mode=display" in kind.replace(" ", "")) if tex else None


def is_real_tex(alt: str) -> bool:
    """alttext that is TeX (or a short plain formula), not a placeholder sentence."""
    alt = alt.strip()
    if not alt or _PLACEHOLDER.search(alt):
        return False
    words = re.findall(r"[A-Za-z]{4,}", re.sub(r"\\[A-Za-z]+", " ", alt))
    return bool(_TEXY.search(alt)) and len(words) <= 2


def math_element_tex(el: etree._Element) -> Formula | None:
    """One `<math>` element as TeX: its TeX annotation, else real-TeX alttext, else converted MathML."""
    display = (el.get("display") or "").lower() == "block" or (el.get("mode") or "").lower() == "display"
    for node in el.iter():
        if local(node.tag) == "annotation" and (node.get("encoding") or "").lower() in TEX_ENCODINGS:
            tex = (node.text or "").strip()
            if tex:
                tex = tex.removeprefix("\\displaystyle").strip() if display else tex
                return Formula(tex, display)
    alt = el.get("alttext") or ""
    if is_real_tex(alt):
        return Formula(alt.strip(), display)
    tex = convert(el).strip()
    return Formula(tex, display) if tex else None


# -- MathML (presentation) to TeX ------------------------------------------------------------------
def _children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str) and local(c.tag) not in ("annotation", "annotation-xml")]


def _join(parts: list[str]) -> str:
    """Concatenate TeX pieces, with a space where a command would swallow the next letter."""
    out = ""
    for p in parts:
        if not p:
            continue
        if out and re.search(r"\\[A-Za-z]+$", out) and p[0].isalpha():
            out += " "
        out += p
    return out


def _group(tex: str) -> str:
    tex = tex.strip()
    return tex if len(tex) == 1 or (re.fullmatch(r"\\[A-Za-z]+", tex) is not None) else "{" + tex + "}"


def _symbols(text: str) -> str:
    symbols, _, _ = _tables()
    return _join([symbols.get(ch, ch) for ch in text])


def convert(el: etree._Element) -> str:
    """Presentation MathML to TeX (content MathML and unknown tags: their converted children in order)."""
    tag = local(el.tag)
    kids = _children(el)
    symbols, functions, accents = _tables()
    text = (el.text or "").strip()
    if tag == "mi":
        if len(text) > 1:
            return "\\" + text if text in functions else "\\mathrm{" + text + "}"
        variant = el.get("mathvariant") or ""
        sym = _symbols(text)
        if variant == "double-struck" and text.isalpha():
            return "\\mathbb{" + text + "}"
        if variant == "bold":
            return "\\mathbf{" + sym + "}"
        return sym
    if tag == "mn":
        return text
    if tag == "mo":
        if text in functions:
            return "\\" + text
        return _symbols(text)
    if tag == "mtext":
        return "\\text{" + text + "}" if text else ""
    if tag == "ms":
        return "\\text{\"" + text + "\"}"
    if tag == "mspace":
        return "\\ "
    if tag in ("mphantom", "none", "mprescripts", "maligngroup", "malignmark"):
        return ""
    conv = [convert(c) for c in kids]
    if tag == "mfrac" and len(conv) == 2:
        if el.get("linethickness") in ("0", "0px", "0pt"):
            return "\\binom{" + conv[0] + "}{" + conv[1] + "}"
        return "\\frac{" + conv[0] + "}{" + conv[1] + "}"
    if tag == "msqrt":
        return "\\sqrt{" + _join(conv) + "}"
    if tag == "mroot" and len(conv) == 2:
        return "\\sqrt[" + conv[1] + "]{" + conv[0] + "}"
    if tag == "msup" and len(conv) == 2:
        return _base(conv[0]) + "^" + _group(conv[1])
    if tag == "msub" and len(conv) == 2:
        return _base(conv[0]) + "_" + _group(conv[1])
    if tag == "msubsup" and len(conv) == 3:
        return _base(conv[0]) + "_" + _group(conv[1]) + "^" + _group(conv[2])
    if tag in ("munder", "mover", "munderover") and len(conv) >= 2:
        mark = "".join(kids[1].itertext()).strip()
        if tag == "mover" and mark in accents and el.get("accent", "true") != "false":
            return accents[mark] + "{" + conv[0] + "}"
        if tag == "munder" and mark in ("_", "‾", "⏟"):
            return accents.get(mark, "\\underline") + "{" + conv[0] + "}"
        if tag == "munder":
            return _base(conv[0]) + "_" + _group(conv[1])
        if tag == "mover":
            return _base(conv[0]) + "^" + _group(conv[1])
        return _base(conv[0]) + "_" + _group(conv[1]) + "^" + _group(conv[2] if len(conv) > 2 else "")
    if tag == "mfenced":
        open_, close = el.get("open", "("), el.get("close", ")")
        seps = (el.get("separators", ",") or "").strip() or ","
        body = (seps[0] if seps else ",").join(conv)
        return _symbols(open_) + body + _symbols(close)
    if tag == "mtable":
        rows = [" & ".join(convert(cell) for cell in _children(row)) for row in kids]
        return "\\begin{matrix}" + " \\\\ ".join(rows) + "\\end{matrix}"
    if tag in ("mtr", "mlabeledtr"):
        return " & ".join(conv)
    if tag == "menclose":
        return ("\\sqrt{" + _join(conv) + "}") if el.get("notation") == "radical" else _join(conv)
    if tag == "mmultiscripts" and conv:
        base, rest = conv[0], conv[1:]
        out = _base(base)
        for i in range(0, len(rest) - 1, 2):
            if rest[i]:
                out += "_" + _group(rest[i])
            if rest[i + 1]:
                out += "^" + _group(rest[i + 1])
        return out
    if tag == "semantics":
        return conv[0] if conv else ""
    return _join(conv)  # math, mrow, mstyle, mpadded, merror, mtd, unknown


def _base(tex: str) -> str:
    """A sub/superscript base: grouped when it is more than one symbol and not already a group."""
    if len(tex) <= 1 or re.fullmatch(r"\\[A-Za-z]+|\{.*\}|\\mathrm\{[^{}]*\}|\([^()]*\)", tex):
        return tex
    return "{" + tex + "}"


# -- TeX written in the text ---------------------------------------------------------------------
_INLINE_PAREN = re.compile(r"\\\((.+?)\\\)", re.S)
_DISPLAY_BRACKET = re.compile(r"\\\[(.+?)\\\]", re.S)
_DISPLAY_DOLLARS = re.compile(r"\$\$(.+?)\$\$", re.S)
_ENVIRONMENT = re.compile(r"\\begin\{(equation|align|gather|multline|eqnarray)\*?\}.+?\\end\{\1\*?\}", re.S)
_INLINE_DOLLAR = re.compile(r"(?<![\\$\w])\$(?=\S)([^$\n]{1,300}?)(?<=\S)\$(?![$\w])")
_TEX_INSIDE = re.compile(r"\\[A-Za-z]+|[\^_=]|[a-zA-Z]\s*[+\-*/<>]\s*\w")


def normalize_delimiters(text: str) -> tuple[str, int]:
    """`\\(x\\)` -> `$x$`, `\\[x\\]` -> `$$x$$`; returns the text and how many formulas its TeX delimiters hold.

    Single `$...$` pairs are counted only where their content looks like TeX (a command, a script, an
    operator between symbols), so prices ("$5 and $10") are not formulas."""
    if "$" not in text and "\\" not in text:  # every delimiter has one of them: most pages skip the regexes
        return text, 0
    text = _DISPLAY_BRACKET.sub(lambda m: "$$" + m.group(1).strip() + "$$", text)
    text = _INLINE_PAREN.sub(lambda m: "$" + m.group(1).strip() + "$", text)
    n = len(_DISPLAY_DOLLARS.findall(text))
    rest = _DISPLAY_DOLLARS.sub(" ", text)
    n += len(_ENVIRONMENT.findall(rest))
    n += sum(1 for m in _INLINE_DOLLAR.finditer(rest) if _TEX_INSIDE.search(m.group(1)))
    return text, n
