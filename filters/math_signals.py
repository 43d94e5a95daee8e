"""Signals that a document is mathematical, measured on its text after extraction, and the rule score.

What survives extraction is the TeX (`extract` writes every MathJax/KaTeX/MathML formula as `$...$` /
`$$...$$`) and what the author typed: TeX commands and delimiters, math symbols from Unicode's
mathematical blocks, and plain-text equations on lines of their own. A page that only *loads* MathJax
has none of these, so the loader never counts. Code blocks (fenced by `extract`) are left out first:
a shell prompt's `$` or `x = 5` in a program are not math.

Every count is one Arrow compute call over the batch (RE2), except the `$...$` pairs, whose reading
needs look-arounds RE2 lacks (a price pair "$5 and $10" is not a formula): those run through Python's
`re` only on the documents that contain a delimiter at all. The lists and the score's weights live in
`math_detect.json` with their sources.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters import html_math
from filters.text import as_string_array

_DATA = Path(__file__).with_name("math_detect.json")
FENCED_CODE = r"(?s)```.*?(?:```|\z)"
# a token of a plain-text formula: a number (optionally with one letter: 2x), a name of 1-3 letters, an operator
_TOKEN = r"(?:[0-9]+(?:[.,][0-9]+)?[A-Za-z]?\b|\b[A-Za-z]{1,3}\b|[-+*/^_()\[\]{}|!,.'·×÷−√∑∫∂²³])"
_RELATION = r"(?:=|<|>|≤|≥|≠|≈|≡)"
EQUATION_LINE = rf"^[ \t]*(?:{_TOKEN}[ \t]*)+{_RELATION}[ \t]*(?:{_TOKEN}[ \t]*)+$"  # matched per line
DISPLAY = r"\$\$[^$]+?\$\$|\\\[[\s\S]+?\\\]"  # $$...$$ (extract writes display math so) or \[...\]
FEATURES = ("log_formulas", "formulas_per_kchar", "log_display", "log_tex_commands", "symbol_density",
            "equation_line_fraction")


@dataclass(frozen=True)
class MathTables:
    tex_command: str  # RE2 pattern of a known math command (`\frac`, `\alpha`, ...)
    symbol: str  # RE2 character class of the math symbol code points
    weights: dict[str, float]
    threshold: float


@cache
def tables(path: str = str(_DATA)) -> MathTables:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    commands = sorted(set(data["tex_commands"]), key=lambda c: (-len(c), c))
    ranges = "".join(f"\\x{{{lo}}}-\\x{{{hi}}}" for lo, hi in data["math_symbol_ranges"])
    # followed by a non-letter (`\int_0` is \int; `\interval` is not); RE2 has no look-ahead, so the
    # character is consumed, and `measure` spaces out backslashes so `\alpha\beta` counts twice
    return MathTables(r"\\(?:" + "|".join(commands) + r")(?:[^A-Za-z]|\z)", f"[{ranges}]", dict(data["weights"]),
                      float(data["threshold"]))


@dataclass
class MathSignals:
    """Per document, numpy arrays of the same length."""

    chars: np.ndarray  # characters of prose (code blocks left out)
    formulas: np.ndarray  # delimited TeX formulas in the text ($..$ with TeX inside, $$..$$, \(..\), \[..\], envs)
    display: np.ndarray  # of which displayed on their own ($$..$$, \[..\])
    tex_commands: np.ndarray  # known math commands anywhere in the prose
    symbols: np.ndarray  # code points of the math symbol blocks
    equation_lines: np.ndarray  # lines that are a plain-text equation or inequality
    lines: np.ndarray  # non-empty lines

    @property
    def symbol_density(self) -> np.ndarray:
        return self.symbols / np.maximum(self.chars, 1)

    @property
    def equation_line_fraction(self) -> np.ndarray:
        return self.equation_lines / np.maximum(self.lines, 1)


def prose(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The texts without fenced code blocks (null as empty)."""
    texts = as_string_array(texts)
    has_fence = pc.fill_null(pc.match_substring(texts, "```"), False)
    if not pc.any(has_fence).as_py():
        return texts
    return pc.replace_substring_regex(texts, FENCED_CODE, "\n")


def _count(texts: pa.Array, pattern: str) -> np.ndarray:
    return pc.count_substring_regex(texts, pattern).to_numpy(zero_copy_only=False).astype(np.int64)


def delimited_formulas(texts: pa.Array) -> np.ndarray:
    """Formulas in TeX delimiters per text, as `extract` counts them (filters.html_math.normalize_delimiters):
    only the texts holding a `$` or a backslash go through Python."""
    out = np.zeros(len(texts), np.int64)
    maybe = pc.or_(pc.match_substring(texts, "$"), pc.match_substring(texts, "\\"))
    idx = np.flatnonzero(pc.fill_null(maybe, False).to_numpy(zero_copy_only=False))
    if len(idx):
        for i, text in zip(idx, texts.take(pa.array(idx)).to_pylist(), strict=True):
            out[i] = html_math.normalize_delimiters(text)[1]
    return out


def line_counts(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(non-empty lines, equation-like lines) per text: the batch split into lines once, each pattern one
    Arrow call over all lines, summed per document."""
    lines = pc.split_pattern(texts, "\n")
    flat = pc.list_flatten(lines)
    parent = pc.list_parent_indices(lines).to_numpy()
    nonempty = pc.match_substring_regex(flat, r"\S").to_numpy(zero_copy_only=False)
    equation = pc.match_substring_regex(flat, EQUATION_LINE).to_numpy(zero_copy_only=False)
    n = len(texts)
    return (np.bincount(parent, weights=nonempty, minlength=n)[:n].astype(np.int64),
            np.bincount(parent, weights=equation, minlength=n)[:n].astype(np.int64))


def measure(texts: pa.Array | pa.ChunkedArray) -> MathSignals:
    t = tables()
    body = prose(texts)
    lines, equation_lines = line_counts(body)
    return MathSignals(
        chars=pc.utf8_length(body).to_numpy(zero_copy_only=False).astype(np.int64),
        formulas=delimited_formulas(body),
        display=_count(body, DISPLAY),
        tex_commands=_count(pc.replace_substring(body, "\\", " \\"), t.tex_command),
        symbols=_count(body, t.symbol),
        equation_lines=equation_lines,
        lines=lines,
    )


def features(signals: MathSignals, page_formulas: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The score's inputs. `page_formulas`: formulas `extract` converted from the page's markup (null -> 0);
    the larger of it and the text's own count is used (the same formulas seen twice are not added)."""
    formulas = signals.formulas.astype(np.float64)
    if page_formulas is not None:
        formulas = np.maximum(formulas, np.nan_to_num(page_formulas.astype(np.float64)))
    kchars = np.maximum(signals.chars, 1) / 1000.0
    return {
        "log_formulas": np.log1p(formulas),
        "formulas_per_kchar": np.minimum(formulas / kchars, 5.0),
        "log_display": np.log1p(signals.display.astype(np.float64)),
        "log_tex_commands": np.log1p(signals.tex_commands.astype(np.float64)),
        "symbol_density": np.minimum(signals.symbol_density, 0.05),
        "equation_line_fraction": signals.equation_line_fraction.astype(np.float64),
    }


def rule_score(feats: dict[str, np.ndarray], weights: dict[str, float] | None = None) -> np.ndarray:
    """P(math) from the signals: a logistic model whose weights are data (`math_detect.json`)."""
    w = weights if weights is not None else tables().weights
    z = np.full(len(next(iter(feats.values()))), float(w["bias"]))
    for name in FEATURES:
        z += float(w[name]) * feats[name]
    return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
