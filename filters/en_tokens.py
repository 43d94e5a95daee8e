"""English word tokens and sentence counts as datatrove 0.10 sees them, without spaCy.

datatrove's English word tokenizer is spaCy's blank English tokenizer (plus its rule-based
sentencizer). Its decisions depend on that tokenization: punctuation marks are tokens, "don't" is
"do" + "n't", "e.g." and "U.S." stay whole, URLs stay whole. This module applies the same rules
(prefix/suffix/infix patterns, special cases, URL pattern, recorded in `datatrove_en.json` by
`tests/oracle.py`) with Python's `re`, as spaCy does, but once per distinct whitespace-free chunk:

* a text is cut at whitespace (Python's `str.isspace`, as spaCy) with Arrow; the chunks of a batch
  are dictionary-encoded, and only chunks never seen by this process are tokenized (in Python);
* every token gets an id in a process-wide vocabulary with the features the rules count (length,
  "not pure punctuation" by datatrove's set, has a letter, sentence-ending mark, pure punctuation);
* per-chunk results are gathered back onto the batch with numpy, so a batch costs a few Arrow and
  numpy passes plus one dictionary lookup per distinct chunk.

Sentences: spaCy's sentencizer starts a sentence at the first token that is neither punctuation nor
a sentence mark after a sentence mark. Each chunk is summarized by (has such a token, a mark before
its first one, boundaries after it, ends with a mark pending) so a line's count is a vectorized scan
over chunks.
Whitespace spaCy keeps as a token (any gap other than one plain space) counts as such a token.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

RULES_FILE = Path(__file__).with_name("datatrove_en.json")
MAX_CACHED_CHUNKS = 1_000_000  # the caches are emptied between batches beyond this (~100-200 MB)
OTHER, PUNCT, SENT_MARK = 0, 1, 2  # token kinds for the sentencizer


@lru_cache(maxsize=1)
def rules() -> dict[str, Any]:
    return json.loads(RULES_FILE.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def python_whitespace() -> str:
    """RE2 character class of the characters Python's `str.isspace` (and so spaCy, `str.split`) accepts."""
    # every character str.isspace() accepts lies below U+3001 (Zs/Zl/Zp and the B/S/WS bidi classes)
    chars = [c for c in range(0x3001) if chr(c).isspace()]
    return "[" + "".join(f"\\x{{{c:x}}}" for c in chars) + "]"


def ws_run() -> str:
    return python_whitespace() + "+"


def non_ws_run() -> str:
    return "[^" + python_whitespace()[1:] + "+"


# Python's str.splitlines() boundaries
LINE_BREAK = r"\r\n|[\n\r\x{0b}\x{0c}\x{1c}\x{1d}\x{1e}\x{85}\x{2028}\x{2029}]"


_SIMPLE = re.compile(r"[A-Za-z0-9]+").fullmatch


class ChunkTokenizer:
    """spaCy's tokenizer algorithm for one whitespace-free chunk (affixes, special cases, URLs, infixes)."""

    def __init__(self, data: dict[str, Any]):
        self._prefix = re.compile(data["prefix"]).search
        self._suffix = re.compile(data["suffix"]).search
        self._infix = re.compile(data["infix"]).finditer
        self._url = re.compile(data["url"]).match
        self.specials: dict[str, list[str]] = data["specials"]
        # special cases the affix rules would cut apart are found again after cutting (spaCy's matcher)
        self.rejoin: dict[tuple[str, ...], str] = {}
        for text in self.specials:
            if self._prefix_len(text) or self._suffix_len(text) or any(True for _ in self._infix(text)):
                self.rejoin[tuple(self._affixes(text, specials=False))] = text
        self.rejoin_max = max((len(k) for k in self.rejoin), default=0)
        self.rejoin_first = frozenset(k[0] for k in self.rejoin)

    def _prefix_len(self, text: str) -> int:
        m = self._prefix(text)
        return m.end() - m.start() if m else 0

    def _suffix_len(self, text: str) -> int:
        m = self._suffix(text)
        return m.end() - m.start() if m else 0

    def __call__(self, chunk: str) -> list[str]:
        if chunk in self.specials:
            return list(self.specials[chunk])
        if _SIMPLE(chunk):  # letters and digits only: no affix or infix rule applies
            return [chunk]
        tokens = self._affixes(chunk, specials=True)
        if len(tokens) > 1 and not self.rejoin_first.isdisjoint(tokens):
            return self._rejoin(tokens)
        return tokens

    def _affixes(self, text: str, specials: bool) -> list[str]:
        prefixes: list[str] = []
        suffixes: list[str] = []
        last = -1
        core: list[str] | None = None
        while text and len(text) != last:
            if specials and text in self.specials:
                break
            last = len(text)
            pre = self._prefix_len(text)
            if pre:
                rest = text[pre:]
                if rest and specials and rest in self.specials:
                    prefixes.append(text[:pre])
                    text = rest
                    break
            suf = self._suffix_len(text[pre:])
            if suf:
                rest = text[:-suf]
                if rest and specials and rest in self.specials:
                    suffixes.append(text[-suf:])
                    text = rest
                    break
            if pre and suf and pre + suf <= len(text):
                prefixes.append(text[:pre])
                suffixes.append(text[-suf:])
                text = text[pre:-suf]
            elif pre:
                prefixes.append(text[:pre])
                text = text[pre:]
            elif suf:
                suffixes.append(text[-suf:])
                text = text[:-suf]
        if text:
            if specials and text in self.specials:
                core = list(self.specials[text])
            elif self._url(text):
                core = [text]
            else:
                core = self._infixes(text)
        return prefixes + (core or []) + suffixes[::-1]

    def _infixes(self, text: str) -> list[str]:
        out: list[str] = []
        start = 0
        for m in self._infix(text):
            a, b = m.start(), m.end()
            if a == 0:  # an infix at the very start is not a split point
                continue
            if a != start:
                out.append(text[start:a])
            if a != b:
                out.append(text[a:b])
            start = b
        if text[start:]:
            out.append(text[start:])
        return out

    def _rejoin(self, tokens: list[str]) -> list[str]:
        """Longest (then leftmost) runs of tokens that spell a special case become that special case."""
        n = len(tokens)
        found: list[tuple[int, int]] = []
        for i in range(n):
            for j in range(i + 1, min(n, i + self.rejoin_max) + 1):
                if tuple(tokens[i:j]) in self.rejoin:
                    found.append((i, j))
        if not found:
            return tokens
        found.sort(key=lambda s: (-(s[1] - s[0]), s[0]))
        seen: set[int] = set()
        kept: dict[int, int] = {}
        for i, j in found:
            if i not in seen and (j - 1) not in seen:
                kept[i] = j
            seen.update(range(i, j))
        out: list[str] = []
        i = 0
        while i < n:
            if i in kept:
                j = kept[i]
                out += self.specials["".join(tokens[i:j])]
                i = j
            else:
                out.append(tokens[i])
                i += 1
        return out


def _grow(arr: np.ndarray, size: int) -> np.ndarray:
    if size <= len(arr):
        return arr
    out = np.zeros(max(size, 2 * len(arr)), arr.dtype)
    out[: len(arr)] = arr
    return out


class Lexicon:
    """Process-wide memo: chunk -> token ids, token -> features. Pure functions memoized, so
    clearing it (between batches, when large) never changes a result."""

    def __init__(self) -> None:
        data = rules()
        self.tokenize = ChunkTokenizer(data)
        self.punctuation = frozenset(data["punctuation"])
        self.sentence_punct = frozenset(data["sentence_punct"])
        self.clear()

    def clear(self) -> None:
        self.token_ids: dict[str, int] = {}
        self.token_len = np.zeros(1024, np.int64)
        self.token_word = np.zeros(1024, bool)  # not pure punctuation (datatrove's PUNCTUATION_SET)
        self.token_alpha = np.zeros(1024, bool)  # has a character with str.isalpha()
        self.token_kind = np.zeros(1024, np.int8)
        self.chunk_ids: dict[str, int] = {}
        self.chunk_tokens = np.zeros(4096, np.int64)  # flat token ids of every chunk
        self.n_chunk_tokens = 0
        self.chunk_start = np.zeros(1024, np.int64)
        self.chunk_count = np.zeros(1024, np.int64)
        self.chunk_other = np.zeros(1024, bool)  # has a token that can start a sentence
        self.chunk_head = np.zeros(1024, bool)  # a sentence mark comes before its first such token
        self.chunk_inner = np.zeros(1024, np.int64)  # sentence starts after its first such token
        self.chunk_tail = np.zeros(1024, bool)  # a sentence mark is pending at its end

    def token_id(self, token: str) -> int:
        tid = self.token_ids.get(token)
        if tid is None:
            tid = len(self.token_ids)
            self.token_ids[token] = tid
            for name in ("token_len", "token_word", "token_alpha", "token_kind"):
                setattr(self, name, _grow(getattr(self, name), tid + 1))
            self.token_len[tid] = len(token)
            self.token_word[tid] = any(ch not in self.punctuation for ch in token)
            self.token_alpha[tid] = any(ch.isalpha() for ch in token)
            self.token_kind[tid] = SENT_MARK if token in self.sentence_punct else (
                PUNCT if all(unicodedata.category(ch).startswith("P") for ch in token) else OTHER)
        return tid

    def chunk_id(self, chunk: str) -> int:
        cid = self.chunk_ids.get(chunk)
        if cid is not None:
            return cid
        cid = len(self.chunk_ids)
        self.chunk_ids[chunk] = cid
        ids = [self.token_id(t) for t in self.tokenize(chunk)]
        for name in ("chunk_start", "chunk_count", "chunk_other", "chunk_head", "chunk_inner", "chunk_tail"):
            setattr(self, name, _grow(getattr(self, name), cid + 1))
        start = self.n_chunk_tokens
        self.chunk_tokens = _grow(self.chunk_tokens, start + len(ids))
        self.chunk_tokens[start:start + len(ids)] = ids
        self.n_chunk_tokens = start + len(ids)
        self.chunk_start[cid] = start
        self.chunk_count[cid] = len(ids)
        kinds = [int(self.token_kind[t]) for t in ids]
        other = OTHER in kinds
        inner, seen, head = 0, False, False
        if other:
            first = kinds.index(OTHER)
            head = SENT_MARK in kinds[:first]
            for k in kinds[first + 1:]:
                if k == SENT_MARK:
                    seen = True
                elif k == OTHER and seen:
                    inner, seen = inner + 1, False
        else:
            seen = SENT_MARK in kinds
        self.chunk_other[cid], self.chunk_head[cid] = other, head
        self.chunk_inner[cid], self.chunk_tail[cid] = inner, seen
        return cid

    def encode(self, chunks: pa.Array) -> np.ndarray:
        """Chunk id per chunk string (new chunks are tokenized once)."""
        if len(chunks) == 0:
            return np.zeros(0, np.int64)
        enc = pc.dictionary_encode(chunks)
        lookup = np.array([self.chunk_id(s) for s in enc.dictionary.to_pylist()], np.int64)
        return lookup[enc.indices.to_numpy().astype(np.int64, copy=False)]


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    return Lexicon()


def fresh_lexicon() -> Lexicon:
    """The process's lexicon, emptied first when it has grown past MAX_CACHED_CHUNKS (call between batches)."""
    lex = lexicon()
    if len(lex.chunk_ids) > MAX_CACHED_CHUNKS:
        lex.clear()
    return lex


def split_chunks(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Whitespace-free chunks of each value, and the value index of every chunk."""
    parts = pc.split_pattern_regex(values, ws_run())
    flat = pc.list_flatten(parts)
    parent = pc.list_parent_indices(parts).to_numpy().astype(np.int64, copy=False)
    keep = pc.greater(pc.utf8_length(flat), 0)
    return flat.filter(keep), parent[keep.to_numpy(zero_copy_only=False)]


def expand(counts: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Concatenation of ranges [starts[i], starts[i] + counts[i]) (vectorized)."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    ends = np.cumsum(counts)
    offsets = np.repeat(starts - (ends - counts), counts)
    return np.arange(total, dtype=np.int64) + offsets


@dataclass
class Tokens:
    """Word tokens of a batch of texts: token id and text index per token, in order."""

    ids: np.ndarray
    doc: np.ndarray
    lex: Lexicon

    @property
    def length(self) -> np.ndarray:
        return self.lex.token_len[self.ids]

    @property
    def word(self) -> np.ndarray:
        return self.lex.token_word[self.ids]

    @property
    def alpha(self) -> np.ndarray:
        return self.lex.token_alpha[self.ids]


def word_tokens(texts: pa.Array, lex: Lexicon) -> Tokens:
    """datatrove's `word_tokenize` for every text of a batch (whitespace tokens dropped, as it strips them)."""
    chunks, parent = split_chunks(texts)
    cids = lex.encode(chunks)
    counts = lex.chunk_count[cids]
    ids = lex.chunk_tokens[expand(counts, lex.chunk_start[cids])]
    return Tokens(ids, np.repeat(parent, counts), lex)


def sentence_counts(lines: pa.Array, lex: Lexicon) -> np.ndarray:
    """How many sentences spaCy's sentencizer finds in each line (datatrove's `split_into_sentences`).

    An empty line counts one, as datatrove's span arithmetic gives.
    """
    n = len(lines)
    if n == 0:
        return np.zeros(0, np.int64)
    chunks, line = split_chunks(lines)
    cids = lex.encode(chunks)
    gaps = pc.split_pattern_regex(lines, non_ws_run())
    gap_flat = pc.list_flatten(gaps)
    offsets = gaps.offsets.to_numpy().astype(np.int64)
    spaced = pc.invert(pc.or_(pc.equal(gap_flat, " "), pc.equal(gap_flat, ""))).to_numpy(zero_copy_only=False)
    m = len(cids)
    # position of each chunk inside its line, and whether spaCy kept whitespace as a token before it
    first_of_line = np.ones(m, bool)
    first_of_line[1:] = line[1:] != line[:-1]
    line_first = np.flatnonzero(first_of_line)
    rank = np.arange(m) - np.repeat(line_first, np.diff(np.append(line_first, m)))
    ws_before = spaced[offsets[line] + rank] & ~first_of_line
    # elements: an optional whitespace token, then the chunk; a whitespace token is a sentence starter
    n_el = m + int(ws_before.sum())
    chunk_pos = np.arange(m) + np.cumsum(ws_before)
    other = np.ones(n_el, bool)
    head = np.zeros(n_el, bool)
    inner = np.zeros(n_el, np.int64)
    tail = np.zeros(n_el, bool)
    el_line = np.empty(n_el, np.int64)
    other[chunk_pos] = lex.chunk_other[cids]
    head[chunk_pos] = lex.chunk_head[cids]
    inner[chunk_pos] = lex.chunk_inner[cids]
    tail[chunk_pos] = lex.chunk_tail[cids]
    el_line[chunk_pos] = line
    ws_pos = chunk_pos[ws_before] - 1
    el_line[ws_pos] = line[ws_before]
    # state before element k: a mark pending since the last sentence starter (within the line)
    first_el = np.ones(n_el, bool)
    first_el[1:] = el_line[1:] != el_line[:-1]
    line_start = np.maximum.accumulate(np.where(first_el, np.arange(n_el), 0))
    prev_other = np.full(n_el, -1, np.int64)
    prev_other[1:] = np.maximum.accumulate(np.where(other, np.arange(n_el), -1))[:-1]
    since = np.maximum(prev_other, line_start)
    ctail = np.concatenate([[0], np.cumsum(tail)])
    pending = (ctail[np.arange(n_el)] - ctail[since] > 0) & ~first_el
    starts = other & (pending | head)
    counts = np.ones(n, np.int64)
    np.add.at(counts, el_line, starts.astype(np.int64) + inner)
    # whitespace after the last chunk is a token too (a trailing gap other than one space)
    n_chunks = np.bincount(line, minlength=n)[:n]
    trailing = spaced[offsets[:-1] + n_chunks] & (n_chunks > 0)
    if trailing.any():
        last_el = np.zeros(n, np.int64)
        last_el[el_line] = np.arange(n_el)  # last write wins: the line's last element
        last_other = np.maximum.accumulate(np.where(other, np.arange(n_el), -1))[last_el]
        start = np.maximum(last_other, line_start[last_el])
        pend_end = ctail[last_el + 1] - ctail[start] > 0
        counts += trailing & pend_end
    return counts
