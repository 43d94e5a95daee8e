"""FineWeb quality rules (Penedo et al. 2024), on non-empty lines: the rules FineWeb added on top of
Gopher and C4 after ablations (few punctuated lines, many short lines, duplicated lines, lists).

A line is punctuation-terminated when it ends with one of `terminal_punct` (an ellipsis ends in
`.` and counts, as in the published filter). Duplicate-line characters are later copies of a line,
over the document's characters without newlines.

`compat: datatrove` (datatrove 0.10's FineWebQualityFilter): lines are `text.split("\\n")` pieces that
are not blank, unstripped (a trailing space means "not punctuated", and counts in the length); the
terminal marks are datatrove's TERMINAL_PUNCTUATION (no quotes); the list ratio divides newlines
by spaCy English tokens, punctuation included. A text without a non-blank line fails (`empty`).
"""

from __future__ import annotations

import pyarrow as pa

from filters.base import FilterSettings, Measurement, above, below, ratio
from filters.cjk import LATIN_TERMINAL_PUNCT
from filters.compat import Compat, any_suffix, lengths, terminal_punctuation
from filters.text import TextBatch, dup_flags, per_doc

NAME = "fineweb"


class Settings(FilterSettings):
    compat: Compat | None = None  # None: the stage's `compat`
    min_line_punct_ratio: float | None = 0.12
    short_line_length: int = 30  # a line of at most this many characters is short
    max_short_line_ratio: float | None = 0.67
    max_char_dup_ratio: float | None = 0.01
    max_newline_ratio: float | None = 0.3  # newlines per word: list-like pages
    terminal_punct: list[str] | None = None  # None: . ! ? " ' (paper) or datatrove's TERMINAL_PUNCTUATION


SIGNALS: dict[str, pa.DataType] = {
    "fineweb_line_punct_ratio": pa.float64(),
    "fineweb_short_line_ratio": pa.float64(),
    "fineweb_char_dup_ratio": pa.float64(),
    "fineweb_newline_ratio": pa.float64(),
}
RULES = ("empty", "line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio")


def measure(batch: TextBatch, s: Settings) -> Measurement:
    if s.compat != "paper":
        return measure_datatrove(batch, s)
    n = batch.n
    lines = batch.n_lines
    punct = batch.line_ends_with(LATIN_TERMINAL_PUNCT if s.terminal_punct is None else s.terminal_punct)
    short = batch.line_chars <= s.short_line_length
    newlines = batch.count("\n", regex=False)
    signals = {
        "fineweb_line_punct_ratio": ratio(per_doc(batch.line_doc, n, punct), lines),
        "fineweb_short_line_ratio": ratio(per_doc(batch.line_doc, n, short), lines),
        "fineweb_char_dup_ratio": ratio(per_doc(batch.line_doc, n, batch.line_chars * batch.line_dup),
                                        batch.doc_chars - newlines),
        "fineweb_newline_ratio": ratio(newlines, batch.n_words),
    }
    fails = {
        "line_punct_ratio": below(signals["fineweb_line_punct_ratio"], s.min_line_punct_ratio),
        "short_line_ratio": above(signals["fineweb_short_line_ratio"], s.max_short_line_ratio),
        "char_dup_ratio": above(signals["fineweb_char_dup_ratio"], s.max_char_dup_ratio),
        "list_ratio": above(signals["fineweb_newline_ratio"], s.max_newline_ratio),
    }
    return Measurement(signals, fails)


def measure_datatrove(batch: TextBatch, s: Settings) -> Measurement:
    n = batch.n
    d = batch.datatrove
    lines, doc = d.newline_lines
    n_lines = per_doc(doc, n)
    punct = any_suffix(lines, terminal_punctuation() if s.terminal_punct is None else s.terminal_punct)
    short = lengths(lines) <= s.short_line_length
    dup_chars = per_doc(doc, n, lengths(lines) * dup_flags(lines, doc))
    newlines = d.count("\n")
    signals = {
        "fineweb_line_punct_ratio": ratio(per_doc(doc, n, punct), n_lines),
        "fineweb_short_line_ratio": ratio(per_doc(doc, n, short), n_lines),
        "fineweb_char_dup_ratio": ratio(dup_chars, d.doc_chars - newlines),
        "fineweb_newline_ratio": ratio(newlines, d.n_tokens),
    }
    fails = {
        "empty": n_lines == 0,
        "line_punct_ratio": below(signals["fineweb_line_punct_ratio"], s.min_line_punct_ratio),
        "short_line_ratio": above(signals["fineweb_short_line_ratio"], s.max_short_line_ratio),
        "char_dup_ratio": above(signals["fineweb_char_dup_ratio"], s.max_char_dup_ratio),
        "list_ratio": above(signals["fineweb_newline_ratio"], s.max_newline_ratio),
    }
    return Measurement(signals, fails)
