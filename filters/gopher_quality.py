"""Gopher quality rules (Rae et al. 2021, appendix A): the shape of natural prose.

Words are letter/digit runs (symbols are not words); lines are non-empty lines. Defaults are the
paper's. Every statistic is a `gopher_*` column; the first failing rule (in `RULES` order) is the
reason. All statistics are batch-wide RE2 calls and `bincount` reductions.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.base import FilterSettings, Measurement, above, below, ratio
from filters.text import TextBatch, per_doc

NAME = "gopher_quality"
STOP_WORDS = ["the", "be", "to", "of", "and", "that", "have", "with"]


class Settings(FilterSettings):
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
    bullets: list[str] = ["•", "-", "*"]


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
    n = batch.n
    words = batch.n_words
    mean_len = ratio(batch.doc_word_chars, words)
    hashes = batch.count("#", regex=False)
    ellipses = batch.count(r"\.\.\.|…")
    lines = batch.n_lines
    if len(batch.lines) and s.bullets:
        bullet = pc.starts_with(batch.lines, s.bullets[0]).to_numpy(zero_copy_only=False)
        for b in s.bullets[1:]:
            bullet |= pc.starts_with(batch.lines, b).to_numpy(zero_copy_only=False)
    else:
        bullet = np.zeros(len(batch.lines), bool)
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
