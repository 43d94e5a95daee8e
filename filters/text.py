"""`TextBatch`: one batch of documents split into lines and words once, shared by every filter.

Everything is flat Arrow/numpy arrays with a document index per element, so per-document statistics
are `np.bincount` reductions and the splitting itself is RE2 over the whole batch. Words are runs of
letters, digits and marks (symbols and punctuation are not words, as Gopher defines them). Han and
kana characters count one word each, unless the batch uses the jieba segmenter (Chinese profile).
"""

from __future__ import annotations

import re
from functools import cached_property

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.window_hashes import ngram_hashes

WORD_SPLIT = r"[^\p{L}\p{N}\p{M}]+"
NUMBER_SEP = r"(\p{N})[.,](\p{N})"
CJK_CHAR = r"[\p{Han}\p{Hiragana}\p{Katakana}]"
SEGMENTERS = ("regex", "jieba")


def as_string_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    if pa.types.is_large_string(values.type) or pa.types.is_null(values.type):
        values = values.cast(pa.string())
    return pc.fill_null(values, "")


def scatter(base: pa.Array, idx: np.ndarray | list[int], values: pa.Array) -> pa.Array:
    """`base` with the elements at positions `idx` replaced by `values` (one Arrow take, no Python loop)."""
    take = np.arange(len(base))
    take[idx] = len(base) + np.arange(len(idx))
    return pa.concat_arrays([base, values.cast(base.type)]).take(pa.array(take))


def in_sources(sources: pa.Array | pa.ChunkedArray, include: list[str] | None, exclude: list[str]) -> np.ndarray:
    """Per row: its source is in `include` (every source when None) and not in `exclude`; a null source is
    in no list. The `sources` / `skip_sources` settings that several stages share."""
    keep = np.ones(len(sources), bool)
    if include is not None:
        keep &= pc.fill_null(pc.is_in(sources, pa.array(include, pa.string())), False).to_numpy(zero_copy_only=False)
    if exclude:
        keep &= ~pc.fill_null(pc.is_in(sources, pa.array(exclude, pa.string())), False).to_numpy(
            zero_copy_only=False)
    return keep


def per_doc(index: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Sum of `weights` (or count) per document index."""
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
    return np.bincount(index, weights=weights, minlength=n)[:n]


def first_seen(keys: np.ndarray) -> np.ndarray:
    """True where an equal key appeared earlier (hash table, O(n): faster than sorting)."""
    import pandas as pd  # local here and below: stage modules load at `curate validate`, pandas costs ~0.6 s

    return pd.Series(keys, copy=False).duplicated(keep="first").to_numpy()


def key_counts(keys: np.ndarray) -> np.ndarray:
    """For each element, how many elements share its key."""
    import pandas as pd

    codes, _ = pd.factorize(keys)
    return np.bincount(codes)[codes]


def repeated_keys(keys: np.ndarray, bits: int = 22) -> np.ndarray:
    """For each element, whether another element has its key (`key_counts(keys) > 1`), cheaper where
    most keys are unique (a document's longer n-grams): a key alone in its bucket of the top `bits`
    bits is unique for sure; only the keys sharing a bucket go through the hash table."""
    if len(keys) < (1 << bits) // 64:
        return key_counts(keys) > 1 if len(keys) else np.zeros(0, bool)
    bucket = (keys >> np.uint64(64 - bits)).astype(np.intp)
    maybe = np.flatnonzero(np.bincount(bucket, minlength=1 << bits)[bucket] > 1)
    out = np.zeros(len(keys), bool)
    if len(maybe):
        out[maybe] = key_counts(keys[maybe]) > 1
    return out


def dup_flags(values: pa.Array, groups: np.ndarray) -> np.ndarray:
    """True where an equal value appeared earlier in the same group (document)."""
    if len(values) == 0:
        return np.zeros(0, bool)
    ids = pc.dictionary_encode(values).indices.to_numpy().astype(np.int64, copy=False)
    return first_seen(groups.astype(np.int64) * (int(ids.max()) + 1) + ids)


class TextBatch:
    """Documents of one batch with lazily computed lines, paragraphs and words (all flat arrays)."""

    def __init__(self, texts: pa.Array | pa.ChunkedArray, segmenter: str = "regex"):
        if segmenter not in SEGMENTERS:
            raise ValueError(f"unknown segmenter {segmenter!r}; expected one of {SEGMENTERS}")
        self.texts = as_string_array(texts)
        self.n = len(self.texts)
        self.segmenter = segmenter

    def take(self, idx: np.ndarray) -> TextBatch:
        """The documents at `idx` (increasing) as a batch of their own, keeping the word tokens already
        computed (the next filter of `signals: decisive` sees the documents still in)."""
        out = TextBatch(self.texts.take(pa.array(idx, pa.int64())), self.segmenter)
        if "datatrove" in self.__dict__:
            out.__dict__["datatrove"] = self.datatrove.take(idx, out.texts)
        return out

    @cached_property
    def datatrove(self):  # -> filters.compat.DatatroveText
        """The same texts cut the way datatrove 0.10's filters cut them (`compat: datatrove`)."""
        from filters.compat import DatatroveText

        return DatatroveText(self.texts)

    # -- documents ------------------------------------------------------------------------------
    @cached_property
    def doc_chars(self) -> np.ndarray:
        return pc.utf8_length(self.texts).to_numpy().astype(np.int64, copy=False)

    def count(self, pattern: str, regex: bool = True) -> np.ndarray:
        """Occurrences of a pattern per document (non-overlapping)."""
        fn = pc.count_substring_regex if regex else pc.count_substring
        return fn(self.texts, pattern).to_numpy().astype(np.int64, copy=False)

    def contains(self, pattern: str) -> np.ndarray:
        return pc.match_substring_regex(self.texts, pattern).to_numpy(zero_copy_only=False)

    # -- lines: split on "\n", stripped, empty ones dropped ---------------------------------------
    @cached_property
    def _line_parts(self) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        raw = pc.split_pattern(self.texts, "\n")
        flat = pc.list_flatten(raw)
        parent = pc.list_parent_indices(raw).to_numpy().astype(np.int64, copy=False)
        stripped = pc.utf8_trim_whitespace(flat)
        nonempty = pc.greater(pc.utf8_length(stripped), 0).to_numpy(zero_copy_only=False)
        # paragraph number: blank raw lines seen so far (only differences within a document matter)
        para = np.cumsum(~nonempty)
        return stripped.filter(pa.array(nonempty)), parent[nonempty], para[nonempty]

    @property
    def lines(self) -> pa.Array:
        return self._line_parts[0]

    @property
    def line_doc(self) -> np.ndarray:
        return self._line_parts[1]

    @property
    def line_para(self) -> np.ndarray:
        return self._line_parts[2]

    @cached_property
    def line_chars(self) -> np.ndarray:
        return pc.utf8_length(self.lines).to_numpy().astype(np.int64, copy=False)

    @cached_property
    def n_lines(self) -> np.ndarray:
        return per_doc(self.line_doc, self.n).astype(np.int64)

    @cached_property
    def line_dup(self) -> np.ndarray:
        return dup_flags(self.lines, self.line_doc)

    def line_ends_with(self, endings: list[str], exclude_ellipsis: bool = False) -> np.ndarray:
        """Per line: ends with one of `endings` (and, optionally, not with an ellipsis)."""
        if not endings or len(self.lines) == 0:
            return np.zeros(len(self.lines), bool)
        alternatives = "|".join(_re2_escape(e) for e in endings)
        ends = pc.match_substring_regex(self.lines, f"(?:{alternatives})$").to_numpy(zero_copy_only=False)
        if exclude_ellipsis:
            ends &= ~pc.match_substring_regex(self.lines, r"(?:\.\.\.|…)$").to_numpy(zero_copy_only=False)
        return ends

    # -- paragraphs: split on two or more newlines ----------------------------------------------
    @cached_property
    def _paragraph_parts(self) -> tuple[pa.Array, np.ndarray]:
        raw = pc.split_pattern_regex(self.texts, r"\n\s*\n")
        flat = pc.utf8_trim_whitespace(pc.list_flatten(raw))
        parent = pc.list_parent_indices(raw).to_numpy().astype(np.int64, copy=False)
        nonempty = pc.greater(pc.utf8_length(flat), 0)
        return flat.filter(nonempty), parent[nonempty.to_numpy(zero_copy_only=False)]

    @property
    def paragraphs(self) -> pa.Array:
        return self._paragraph_parts[0]

    @property
    def paragraph_doc(self) -> np.ndarray:
        return self._paragraph_parts[1]

    # -- words ----------------------------------------------------------------------------------
    @cached_property
    def _word_parts(self) -> tuple[pa.Array, np.ndarray]:
        lines = self.lines
        if len(lines) and self.segmenter == "jieba":
            has_han = pc.match_substring_regex(lines, r"\p{Han}").to_numpy(zero_copy_only=False)
            if has_han.any():
                from filters.cjk import segment_lines

                values = lines.to_pylist()
                idx = np.flatnonzero(has_han)
                for i, seg in zip(idx, segment_lines([values[i] for i in idx]), strict=True):
                    values[i] = seg
                lines = pa.array(values, pa.string())
        elif len(lines) and pc.any(pc.match_substring_regex(lines, CJK_CHAR)).as_py():
            lines = pc.replace_substring_regex(lines, CJK_CHAR, r" \0 ")
        # a number with decimal or thousands separators is one word ("75.25", "1,000"), as tokenizers see it
        lines = pc.replace_substring_regex(lines, NUMBER_SEP, r"\1\2")
        split = pc.split_pattern_regex(lines, WORD_SPLIT)
        flat = pc.list_flatten(split)
        parent = pc.list_parent_indices(split).to_numpy().astype(np.int64, copy=False)
        keep = pc.greater(pc.utf8_length(flat), 0)
        return flat.filter(keep), parent[keep.to_numpy(zero_copy_only=False)]

    @property
    def words(self) -> pa.Array:
        return self._word_parts[0]

    @property
    def word_line(self) -> np.ndarray:
        return self._word_parts[1]

    @cached_property
    def word_doc(self) -> np.ndarray:
        return self.line_doc[self.word_line]

    @cached_property
    def word_chars(self) -> np.ndarray:
        return pc.utf8_length(self.words).to_numpy().astype(np.int64, copy=False)

    @cached_property
    def n_words(self) -> np.ndarray:
        return per_doc(self.word_doc, self.n).astype(np.int64)

    @cached_property
    def doc_word_chars(self) -> np.ndarray:
        return per_doc(self.word_doc, self.n, self.word_chars)

    @cached_property
    def line_words(self) -> np.ndarray:
        return per_doc(self.word_line, len(self.lines)).astype(np.int64)

    @cached_property
    def word_ids(self) -> np.ndarray:
        if len(self.words) == 0:
            return np.zeros(0, np.int64)
        return pc.dictionary_encode(self.words).indices.to_numpy().astype(np.int64, copy=False)

    def ngrams(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(start positions, 64-bit keys) of every word n-gram that lies inside one document."""
        return ngram_hashes(self.word_ids, self.word_doc, n, self._ngram_cache)

    @cached_property
    def _ngram_cache(self) -> dict:
        return {}


def _re2_escape(text: str) -> str:
    """Escape a literal for RE2 (same metacharacters as Python's `re`)."""
    return re.escape(text)
