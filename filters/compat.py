"""`compat: datatrove`: a batch seen the way datatrove 0.10's filters see each document.

datatrove cuts the same text in several ways, one per filter, and the decisions depend on them:
Gopher quality counts bullet/ellipsis lines over `str.splitlines()`; Gopher repetition splits
lines on `\\n+` and paragraphs on `\\n{2,}` without stripping; FineWeb keeps `split("\\n")` lines
that are not blank, unstripped; C4 strips `splitlines()` lines. Words are spaCy's English tokens
(`filters/en_tokens.py`), punctuation included. Each view is built once per batch, lazily, as
flat Arrow/numpy arrays with a document index per element.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters import en_tokens
from filters.en_tokens import LINE_BREAK, Lexicon, Tokens, python_whitespace
from filters.window_hashes import ngram_hashes

Compat = Literal["datatrove", "paper"]


def pieces(values: pa.Array, pattern: str) -> tuple[pa.Array, np.ndarray]:
    """`re.split(pattern, value)` for every value: all pieces (empty ones too) and their value index."""
    parts = pc.split_pattern_regex(values, pattern)
    return pc.list_flatten(parts), pc.list_parent_indices(parts).to_numpy().astype(np.int64, copy=False)


def py_strip(values: pa.Array) -> pa.Array:
    """Python's `str.strip()` (its whitespace, not Arrow's)."""
    ws = python_whitespace()
    return pc.replace_substring_regex(values, f"^{ws}+|{ws}+$", "")


def lengths(values: pa.Array) -> np.ndarray:
    return pc.utf8_length(values).to_numpy().astype(np.int64, copy=False)


def matches(values: pa.Array, pattern: str) -> np.ndarray:
    if len(values) == 0:
        return np.zeros(0, bool)
    return pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False)


def any_suffix(values: pa.Array, suffixes: list[str]) -> np.ndarray:
    """`value.endswith(tuple(suffixes))` per value."""
    out = np.zeros(len(values), bool)
    for s in suffixes if len(values) else []:
        out |= pc.ends_with(values, s).to_numpy(zero_copy_only=False)
    return out


def any_prefix(values: pa.Array, prefixes: list[str]) -> np.ndarray:
    out = np.zeros(len(values), bool)
    for s in prefixes if len(values) else []:
        out |= pc.starts_with(values, s).to_numpy(zero_copy_only=False)
    return out


def terminal_punctuation() -> list[str]:
    """datatrove's TERMINAL_PUNCTUATION (FineWeb's `stop_chars`)."""
    return list(en_tokens.rules()["terminal_punctuation"])


class DatatroveText:
    """The views of one batch of texts that datatrove's four filters use."""

    def __init__(self, texts: pa.Array):
        self.texts = texts
        self.n = len(texts)
        # per-document statistics already computed (one value per text), carried over by `take`, so a
        # filter's `measure` reuses what its prechecks measured (`signals: decisive`)
        self.memo: dict[str, np.ndarray] = {}

    def remember(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """`compute()` (one value per text), computed once for these texts."""
        if key not in self.memo:
            self.memo[key] = compute()
        return self.memo[key]

    @cached_property
    def lex(self) -> Lexicon:
        return en_tokens.fresh_lexicon()

    def take(self, idx: np.ndarray, texts: pa.Array) -> DatatroveText:
        """The views of the texts at `idx` (increasing), `texts` being those texts; tokens already cut
        are kept (with the lexicon they refer to), not cut again."""
        out = DatatroveText(texts)
        out.memo = {key: values[idx] for key, values in self.memo.items()}
        if "tokens" in self.__dict__:
            where = np.full(self.n, -1, np.int64)
            where[idx] = np.arange(len(idx))
            doc = where[self.tokens.doc]
            keep = doc >= 0
            out.__dict__["lex"] = self.lex
            out.__dict__["tokens"] = Tokens(self.tokens.ids[keep], doc[keep], self.lex)
        return out

    @cached_property
    def tokens(self) -> Tokens:
        return en_tokens.word_tokens(self.texts, self.lex)

    @cached_property
    def n_tokens(self) -> np.ndarray:
        return np.bincount(self.tokens.doc, minlength=self.n)[: self.n].astype(np.int64)

    @cached_property
    def doc_chars(self) -> np.ndarray:
        return lengths(self.texts)

    def count(self, literal: str) -> np.ndarray:
        """`text.count(literal)` (non-overlapping)."""
        return pc.count_substring(self.texts, literal).to_numpy().astype(np.int64, copy=False)

    @cached_property
    def splitlines(self) -> tuple[pa.Array, np.ndarray]:
        """`text.splitlines()`: no piece after a final line break, none at all for an empty text."""
        flat, doc = pieces(self.texts, LINE_BREAK)
        last = np.ones(len(doc), bool)
        last[:-1] = doc[1:] != doc[:-1]
        drop = last & (lengths(flat) == 0)
        keep = pa.array(~drop)
        return flat.filter(keep), doc[~drop]

    @cached_property
    def newline_lines(self) -> tuple[pa.Array, np.ndarray]:
        """`text.split("\\n")` without the blank pieces (FineWeb's lines)."""
        flat, doc = pieces(self.texts, "\n")
        keep = lengths(py_strip(flat)) > 0
        return flat.filter(pa.array(keep)), doc[keep]

    def ngram_keys(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(start, 64-bit key) of every token n-gram inside one document (see TextBatch.ngrams)."""
        return ngram_hashes(self.tokens.ids, self.tokens.doc, n, self._ngram_cache)

    @cached_property
    def _ngram_cache(self) -> dict:
        return {}

    @cached_property
    def token_cum_chars(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.tokens.length)])

    def window_chars(self, pos: np.ndarray, n: int) -> np.ndarray:
        """Characters of the n tokens starting at each position, joined without spaces."""
        cum = self.token_cum_chars
        return cum[pos + n] - cum[pos]


def per_line_first(index: np.ndarray, doc: np.ndarray, n: int) -> np.ndarray:
    """Per document: the smallest `index` among its elements (a large number where it has none)."""
    out = np.full(n, np.iinfo(np.int64).max, np.int64)
    if len(index):
        np.minimum.at(out, doc, index)
    return out
