"""Gopher quality rules (Rae et al. 2021, appendix A): the shape of natural prose.

`compat: paper`: words are letter/digit runs (symbols are not words); lines are non-empty lines.
`compat: datatrove` (datatrove 0.10's GopherQualityFilter): words are spaCy English tokens; the word
count and mean length use the tokens that are not pure punctuation, but the `#`/ellipsis ratios and
the alphabetic-words ratio divide by all tokens, punctuation included; bullet and ellipsis lines are
counted over `str.splitlines()` (blank lines too) after stripping, bullets are `•` and `-`; the stop-word
rule counts distinct stop words present, case-sensitively. Defaults are the paper's thresholds.
Every statistic is a `gopher_*` column; the first failing rule (in `RULES` order) is the reason.
All statistics are batch-wide RE2 calls and `bincount` reductions.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.base import FilterSettings, Measurement, above, below, ratio
from filters.compat import Compat, any_prefix, matches, py_strip
from filters.en_tokens import python_whitespace
from filters.text import TextBatch, per_doc

NAME = "gopher_quality"
STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]


class Settings(FilterSettings):
    compat: Compat | None = None  # None: the stage's `compat`
    min_words: int | None = 50
    max_words: int | None = 100_000
    min_mean_word_length: float | None = 3.0
    max_mean_word_length: float | None = 10.0
    max_hash_ratio: float | None = 0.1  # '#' per word
    max_ellipsis_ratio: float | None = 0.1  # '...' or '…' per word
    max_bullet_lines_ratio: float | None = 0.9
    max_ellipsis_lines_ratio: float | None = 0.3
    min_alpha_words_ratio: float | None = 0.8  # words with at least one letter
    min_stop_words: int | None = 2  # occurrences of any of `stop_words`
    stop_words: list[str] = STOP_WORDS
    bullets: list[str] | None = None  # None: "•", "-", "*" (paper) or "•", "-" (datatrove)


PAPER_BULLETS = ["•", "-", "*"]
DATATROVE_BULLETS = ["•", "-"]


SIGNALS: dict[str, pa.DataType] = {
    "gopher_word_count": pa.int64(),
    "gopher_mean_word_length": pa.float64(),
    "gopher_hash_ratio": pa.float64(),
    "gopher_ellipsis_ratio": pa.float64(),
    "gopher_bullet_lines_ratio": pa.float64(),
    "gopher_ellipsis_lines_ratio": pa.float64(),
    "gopher_alpha_words_ratio": pa.float64(),
    "gopher_stop_words": pa.int64(),
}
RULES = ("word_count", "mean_word_length", "hash_ratio", "ellipsis_ratio", "bullet_lines", "ellipsis_lines",
         "alpha_words", "stop_words")


def measure(batch: TextBatch, s: Settings) -> Measurement:
    if s.compat != "paper":
        return measure_datatrove(batch, s)
    n = batch.n
    words = batch.n_words
    mean_len = ratio(batch.doc_word_chars, words)
    hashes = batch.count("#", regex=False)
    ellipses = batch.count(r"\.\.\.|…")
    lines = batch.n_lines
    bullet = any_prefix(batch.lines, PAPER_BULLETS if s.bullets is None else s.bullets)
    ellipsis_line = batch.line_ends_with(["...", "…"])
    if len(batch.words):
        alpha = pc.match_substring_regex(batch.words, r"\p{L}").to_numpy(zero_copy_only=False)
        stop = pc.is_in(pc.utf8_lower(batch.words), pa.array(s.stop_words, pa.string())).to_numpy(
            zero_copy_only=False)
    else:
        alpha = stop = np.zeros(0, bool)
    signals = {
        "gopher_word_count": words,
        "gopher_mean_word_length": mean_len,
        "gopher_hash_ratio": ratio(hashes, words),
        "gopher_ellipsis_ratio": ratio(ellipses, words),
        "gopher_bullet_lines_ratio": ratio(per_doc(batch.line_doc, n, bullet), lines),
        "gopher_ellipsis_lines_ratio": ratio(per_doc(batch.line_doc, n, ellipsis_line), lines),
        "gopher_alpha_words_ratio": ratio(per_doc(batch.word_doc, n, alpha), words),
        "gopher_stop_words": per_doc(batch.word_doc, n, stop).astype(np.int64),
    }
    fails = {
        "word_count": below(words, s.min_words) | above(words, s.max_words),
        "mean_word_length": below(mean_len, s.min_mean_word_length) | above(mean_len, s.max_mean_word_length),
        "hash_ratio": above(signals["gopher_hash_ratio"], s.max_hash_ratio),
        "ellipsis_ratio": above(signals["gopher_ellipsis_ratio"], s.max_ellipsis_ratio),
        "bullet_lines": above(signals["gopher_bullet_lines_ratio"], s.max_bullet_lines_ratio),
        "ellipsis_lines": above(signals["gopher_ellipsis_lines_ratio"], s.max_ellipsis_lines_ratio),
        "alpha_words": below(signals["gopher_alpha_words_ratio"], s.min_alpha_words_ratio),
        "stop_words": below(signals["gopher_stop_words"], s.min_stop_words),
    }
    return Measurement(signals, fails)


def measure_datatrove(batch: TextBatch, s: Settings) -> Measurement:
    n = batch.n
    d = batch.datatrove
    tok = d.tokens
    tokens = d.n_tokens
    word = tok.word
    words = per_doc(tok.doc, n, word).astype(np.int64)
    mean_len = ratio(per_doc(tok.doc, n, tok.length * word), words)
    hashes = d.count("#")
    ellipses = d.count("...") + d.count("…")
    lines, line_doc = d.splitlines
    n_lines = per_doc(line_doc, n)
    bullet = any_prefix(py_strip(lines), DATATROVE_BULLETS if s.bullets is None else s.bullets) if len(lines) \
        else np.zeros(0, bool)
    ellipsis_line = matches(lines, f"(?:\\.\\.\\.|…){python_whitespace()}*$")
    stop_ids = np.array([d.lex.token_ids[w] for w in set(s.stop_words) if w in d.lex.token_ids], np.int64)
    is_stop = np.isin(tok.ids, stop_ids)
    pairs = np.unique(tok.doc[is_stop] * (int(stop_ids.max()) + 1 if len(stop_ids) else 1) + tok.ids[is_stop])
    stop_docs = pairs // (int(stop_ids.max()) + 1) if len(stop_ids) else pairs
    signals = {
        "gopher_word_count": words,
        "gopher_mean_word_length": mean_len,
        "gopher_hash_ratio": ratio(hashes, tokens),
        "gopher_ellipsis_ratio": ratio(ellipses, tokens),
        "gopher_bullet_lines_ratio": ratio(per_doc(line_doc, n, bullet), n_lines),
        "gopher_ellipsis_lines_ratio": ratio(per_doc(line_doc, n, ellipsis_line), n_lines),
        "gopher_alpha_words_ratio": ratio(per_doc(tok.doc, n, tok.alpha), tokens),
        "gopher_stop_words": per_doc(stop_docs.astype(np.int64), n).astype(np.int64),
    }
    has_words = words > 0  # datatrove's mean of no words is NaN, which fails no comparison
    fails = {
        "word_count": below(words, s.min_words or None) | above(words, s.max_words or None),
        "mean_word_length": has_words & (below(mean_len, s.min_mean_word_length or None)
                                         | above(mean_len, s.max_mean_word_length or None)),
        "hash_ratio": above(signals["gopher_hash_ratio"], s.max_hash_ratio or None),
        "ellipsis_ratio": above(signals["gopher_ellipsis_ratio"], s.max_ellipsis_ratio or None),
        "bullet_lines": above(signals["gopher_bullet_lines_ratio"], s.max_bullet_lines_ratio or None),
        "ellipsis_lines": above(signals["gopher_ellipsis_lines_ratio"], s.max_ellipsis_lines_ratio or None),
        "alpha_words": below(signals["gopher_alpha_words_ratio"], s.min_alpha_words_ratio or None),
        "stop_words": below(signals["gopher_stop_words"], s.min_stop_words or None),
    }
    return Measurement(signals, fails)
