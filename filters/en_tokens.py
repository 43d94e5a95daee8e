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


_SIMPLE = re.compile(r"[A-Za-z]+|[0-9]+").fullmatch  # "10km" is not simple: the unit suffix rule splits it
# A word of ASCII letters (hyphenated words too) or a number (with decimal or thousands separators) between
# at most one opening mark and at most two closing marks, or a run of dots: the affix rules cut the marks off
# one by one ("(well-known)," -> "(", "well", "-", "known", ")", ","; a run of dots is one token), the
# hyphen infix rule cuts hyphenated words, unless a special case forms among the pieces (checked, see
# ChunkTokenizer.__call__). tests/test_filters_en_tokens.py checks these shortcuts against the full rules
# on every chunk of real text they take; on 22,900 real documents (713,210 distinct chunks) they take
# 433,854 chunks and agree on all of them.
_WRAPPED = re.compile(r'([(\[{"“‘]?)([A-Za-z]+(?:-[A-Za-z]+)*|[0-9]+(?:[.,][0-9]+)*)'
                      r'([,;:!?)\]}"”’]{0,2}|\.[,;:!?)\]}"”’]?|\.\.+)').fullmatch
_DOT_SPLITS = re.compile(r"(?:[a-z]|[A-Z][A-Z]|[0-9])$").search  # a final "." is a suffix after these


def suffix_window(pattern: str) -> int:
    """1 + the longest match of any bounded alternative of spaCy's suffix pattern, or 0 (search the
    whole chunk) unless every alternative is anchored at the end (`$`). Lookbehinds see the text
    before the search start (Python's `re` with `pos`), so they need no room in the window."""
    try:
        from re import _parser as sre_parse  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python 3.10
        import sre_parse  # type: ignore[no-redef]

    parsed = sre_parse.parse(pattern)
    items = list(parsed)
    if len(items) != 1 or str(items[0][0]) != "BRANCH":
        return 0
    widest = 0
    for branch in items[0][1][1]:
        last = list(branch)[-1] if len(branch) else None
        if last is None or (str(last[0]), str(last[1])) != ("AT", "AT_END"):
            return 0
        width = branch.getwidth()[1]
        if width < sre_parse.MAXREPEAT:
            widest = max(widest, width)
    return widest + 1


class ChunkTokenizer:
    """spaCy's tokenizer algorithm for one whitespace-free chunk (affixes, special cases, URLs, infixes)."""

    def __init__(self, data: dict[str, Any]):
        self._prefix = re.compile(data["prefix"]).search
        self._suffix = re.compile(data["suffix"]).search
        self._suffix_window = suffix_window(data["suffix"])
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
        """The leftmost suffix match, as spaCy's `suffix_search`, searched from near the end only.

        Every alternative ends at `$`, and all but the unbounded ones are at most `window - 1` long: a
        match starting after `len - window` is the leftmost. One starting right at it may be an
        unbounded alternative (`\\.\\.+$`) reaching further left: search the whole text then.
        """
        start = len(text) - self._suffix_window
        if start <= 0 or self._suffix_window == 0:
            m = self._suffix(text)
        else:
            m = self._suffix(text, start)
            if m is not None and m.start() == start:
                m = self._suffix(text)
        return m.end() - m.start() if m else 0

    def __call__(self, chunk: str) -> list[str]:
        if chunk in self.specials:
            return list(self.specials[chunk])
        if _SIMPLE(chunk):  # letters only, or digits only: no affix or infix rule applies
            return [chunk]
        wrapped = _WRAPPED(chunk)
        if wrapped:
            tokens = self._wrapped(*wrapped.groups())
            if tokens is not None:
                return tokens
        return self.full(chunk)

    def _wrapped(self, pre: str, core: str, post: str) -> list[str] | None:
        """The tokens of `pre + core + post` (see `_WRAPPED`), or None where the shortcut does not hold:
        a special case among the pieces the rules pass through, or a "." that stays on its word."""
        if post[:1] == "." and post[:2] != ".." and not _DOT_SPLITS(core):
            return None  # "A." stays whole
        pieces = [head + core + post[:k] for head in {pre, ""} for k in range(len(post) + 1)]
        words = core.split("-") if "-" in core else [core]
        if len(words) > 1:  # a special case can form again after the hyphens are cut ("ex-Gov.")
            pieces += [*words, pre + words[0], *(words[-1] + post[:k] for k in range(1, len(post) + 1))]
        if post in self.specials or any(piece in self.specials for piece in pieces):
            return None
        mid = [t for w in words for t in ("-", w)][1:]
        return ([pre] if pre else []) + mid + ([post] if post[:2] == ".." else list(post))

    def full(self, chunk: str) -> list[str]:
        """spaCy's algorithm without shortcuts."""
        if chunk in self.specials:
            return list(self.specials[chunk])
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
    clearing it (between batches, when large) never changes a result.

    New chunks and tokens are added a batch at a time: the rules run once per new chunk, the token
    features and the chunks' sentence summaries are computed with Arrow and numpy over all of them.
    """

    def __init__(self) -> None:
        data = rules()
        self.tokenize = ChunkTokenizer(data)
        self.punctuation = frozenset(data["punctuation"])
        self.sentence_punct = frozenset(data["sentence_punct"])
        self._punct_only = "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in sorted(self.punctuation)) + "]+$"
        self._ascii_p = "^[" + "".join(f"\\x{{{c:x}}}" for c in range(128)
                                        if unicodedata.category(chr(c)).startswith("P")) + "]+$"
        self.clear()

    def clear(self) -> None:
        self.token_ids: dict[str, int] = {}
        self.token_len = np.zeros(0, np.int64)
        self.token_word = np.zeros(0, bool)  # not pure punctuation (datatrove's PUNCTUATION_SET)
        self.token_alpha = np.zeros(0, bool)  # has a character with str.isalpha()
        self.token_kind = np.zeros(0, np.int8)
        self.token_hash = np.zeros(0, np.uint64)  # polynomial hash of the UTF-8 bytes (see `string_hashes`)
        self.token_mult = np.zeros(0, np.uint64)  # HASH_BASE ** (UTF-8 bytes)
        self.chunk_ids: dict[str, int] = {}
        self.chunk_tokens = np.zeros(0, np.int64)  # flat token ids of every chunk
        self.n_chunk_tokens = 0
        self.chunk_start = np.zeros(0, np.int64)
        self.chunk_count = np.zeros(0, np.int64)
        self.chunk_other = np.zeros(0, bool)  # has a token that can start a sentence
        self.chunk_head = np.zeros(0, bool)  # a sentence mark comes before its first such token
        self.chunk_inner = np.zeros(0, np.int64)  # sentence starts after its first such token
        self.chunk_tail = np.zeros(0, bool)  # a sentence mark is pending at its end

    def _token_features(self, tokens: list[str]) -> tuple[np.ndarray, ...]:
        """(length, word, alpha, kind) of new tokens: Arrow over ASCII ones, Python for the rest."""
        arr = pa.array(tokens, pa.string())
        length = pc.utf8_length(arr).to_numpy().astype(np.int64)
        word = ~_matches(arr, self._punct_only)
        ascii_ = pc.string_is_ascii(arr).to_numpy(zero_copy_only=False)
        alpha = _matches(arr, "[A-Za-z]")
        punct = _matches(arr, self._ascii_p)
        for i in np.flatnonzero(~ascii_):
            token = tokens[i]
            alpha[i] = any(ch.isalpha() for ch in token)
            punct[i] = all(unicodedata.category(ch).startswith("P") for ch in token)
        mark = pc.is_in(arr, pa.array(sorted(self.sentence_punct), pa.string())).to_numpy(zero_copy_only=False)
        kind = np.where(mark, SENT_MARK, np.where(punct, PUNCT, OTHER)).astype(np.int8)
        return (length, word, alpha, kind, *string_hashes(arr))

    def token_ids_of(self, tokens: list[str]) -> np.ndarray:
        """Ids of `tokens`, new ones added: one dictionary look-up per distinct token (Arrow's
        dictionary encoding groups the repeats: new chunks' ~2M tokens are ~360k distinct here)."""
        if not tokens:
            return np.zeros(0, np.int64)
        enc = pc.dictionary_encode(pa.array(tokens, pa.string()))
        distinct = enc.dictionary.to_pylist()
        get = self.token_ids.get
        lookup = np.fromiter((get(t, -1) for t in distinct), np.int64, len(distinct))
        missing = np.flatnonzero(lookup < 0)
        if len(missing):
            new = [distinct[i] for i in missing]  # distinct already, in order of first appearance
            first = len(self.token_ids)
            self.token_ids.update(zip(new, range(first, first + len(new)), strict=True))
            feats = self._token_features(new)
            names = ("token_len", "token_word", "token_alpha", "token_kind", "token_hash", "token_mult")
            for name, values in zip(names, feats, strict=True):
                setattr(self, name, np.concatenate([getattr(self, name)[:first], values]))
            lookup[missing] = np.arange(first, first + len(new), dtype=np.int64)
        return lookup[enc.indices.to_numpy().astype(np.int64, copy=False)]

    def add_chunks(self, chunks: list[str]) -> np.ndarray:
        """Tokenize new chunks and record them; their ids."""
        lists = [self.tokenize(c) for c in chunks]
        counts = np.fromiter(map(len, lists), np.int64, len(lists))
        tids = self.token_ids_of([t for ts in lists for t in ts])
        first = len(self.chunk_ids)
        ids = np.arange(first, first + len(chunks), dtype=np.int64)
        self.chunk_ids.update(zip(chunks, ids.tolist(), strict=True))
        start = self.n_chunk_tokens
        self.chunk_tokens = _grow(self.chunk_tokens, start + len(tids))
        self.chunk_tokens[start:start + len(tids)] = tids
        self.n_chunk_tokens = start + len(tids)
        starts = start + np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        other, head, inner, tail = chunk_summaries(self.token_kind[tids], counts)
        for name, values in (("chunk_start", starts), ("chunk_count", counts), ("chunk_other", other),
                             ("chunk_head", head), ("chunk_inner", inner), ("chunk_tail", tail)):
            setattr(self, name, np.concatenate([getattr(self, name)[:first], values]))
        return ids

    def encode(self, chunks: pa.Array) -> np.ndarray:
        """Chunk id per chunk string (new chunks are tokenized once)."""
        if len(chunks) == 0:
            return np.zeros(0, np.int64)
        enc = pc.dictionary_encode(chunks)
        values = enc.dictionary.to_pylist()
        get = self.chunk_ids.get
        lookup = np.fromiter((get(v, -1) for v in values), np.int64, len(values))
        new = np.flatnonzero(lookup < 0)
        if len(new):
            lookup[new] = self.add_chunks([values[i] for i in new])
        return lookup[enc.indices.to_numpy().astype(np.int64, copy=False)]


HASH_BASE = 0x100000001B3  # odd, so invertible modulo 2**64


def string_hashes(values: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Per string: (sum of byte_j * B**(len-1-j), B**len) over its UTF-8 bytes, modulo 2**64, B = HASH_BASE.

    Concatenation composes: hash(a + b) = hash(a) * B**len(b) + hash(b), so the hash of n tokens joined
    without a separator (datatrove's duplicated n-grams) follows from the tokens' (hash, B**len) alone.
    Computed with prefix sums over all bytes at once: sum_j b_j * B**-j, then scaled by B**(end-1).
    """
    values = values.cast(pa.binary())
    n = len(values)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    offsets = np.frombuffer(values.buffers()[1], np.int32)[values.offset:values.offset + n + 1].astype(np.int64)
    data = np.frombuffer(values.buffers()[2], np.uint8)[offsets[0]:offsets[-1]] if offsets[-1] > offsets[0] \
        else np.zeros(0, np.uint8)
    offsets = offsets - offsets[0]
    total = len(data)
    base, inverse = np.uint64(HASH_BASE), np.uint64(pow(HASH_BASE, -1, 2**64))
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.concatenate([[np.uint64(1)], np.full(total, base, np.uint64)]), dtype=np.uint64)
        inverses = np.cumprod(np.concatenate([[np.uint64(1)], np.full(max(total - 1, 0), inverse, np.uint64)]),
                              dtype=np.uint64)[:total]
        prefix = np.concatenate([[np.uint64(0)], np.cumsum(data.astype(np.uint64) * inverses, dtype=np.uint64)])
        start, end = offsets[:-1], offsets[1:]
        hashes = powers[np.maximum(end - 1, 0)] * (prefix[end] - prefix[start])
    return np.where(end > start, hashes, np.uint64(0)), powers[end - start]


def _matches(values: pa.Array, pattern: str) -> np.ndarray:
    return pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False).copy()


def chunk_summaries(kinds: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per chunk, from its tokens' kinds (flat, chunk after chunk): (has a sentence starter, a mark
    before its first starter, sentence starts after the first starter, a mark pending at its end).

    A starter after the first starts a sentence when a mark came since the previous starter.
    """
    m = len(counts)
    ends = np.cumsum(counts)
    starts = ends - counts
    chunk = np.repeat(np.arange(m), counts)
    pos = np.arange(len(kinds))
    is_other = kinds == OTHER
    marks = np.concatenate([[0], np.cumsum(kinds == SENT_MARK)])  # marks before position i
    last_other = np.maximum.accumulate(np.where(is_other, pos, -1)) if len(kinds) else pos
    other_pos = np.flatnonzero(is_other)
    prev = np.concatenate([[-1], last_other])[other_pos]  # the previous starter (any chunk)
    follows = prev >= starts[chunk[other_pos]]
    starts_sentence = follows & (marks[other_pos] - marks[np.maximum(prev, 0) + 1] > 0)
    inner = np.bincount(chunk[other_pos], weights=starts_sentence, minlength=m).astype(np.int64)
    n_other = np.bincount(chunk[other_pos], minlength=m)
    other = n_other > 0
    first_other = np.full(m, 0, np.int64)
    is_first = ~follows
    first_other[chunk[other_pos[is_first]]] = other_pos[is_first]
    head = other & (marks[first_other] - marks[starts] > 0)
    last = np.where(other, last_other[np.maximum(ends - 1, 0)] if len(kinds) else 0, starts - 1)
    tail = marks[ends] - marks[last + 1] > 0
    return other, head, inner, tail


@lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    return Lexicon()


def fresh_lexicon() -> Lexicon:
    """The process's lexicon, emptied first when it has grown past MAX_CACHED_CHUNKS (call between batches)."""
    lex = lexicon()
    if len(lex.chunk_ids) > MAX_CACHED_CHUNKS:
        lex.clear()
    return lex


@lru_cache(maxsize=1)
def arrow_whitespace_is_python() -> bool:
    """Whether Arrow's `utf8_split_whitespace` cuts at exactly the characters `str.isspace` accepts
    (checked once per process on every character below U+3001 and a sample above; Arrow's Unicode
    tables come with its version). It is ~4x faster than splitting with the equivalent RE2 class."""
    chars = [chr(c) for c in [*range(0x3001), *range(0x3001, 0x110000, 97)] if not 0xD800 <= c <= 0xDFFF]
    parts = pc.list_value_length(pc.utf8_split_whitespace(pa.array([f"a{c}b" for c in chars]))).to_numpy()
    return bool(np.array_equal(parts == 2, np.array([c.isspace() for c in chars])))


def split_chunks(values: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Whitespace-free chunks of each value, and the value index of every chunk."""
    parts = pc.utf8_split_whitespace(values) if arrow_whitespace_is_python() else \
        pc.split_pattern_regex(values, ws_run())
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

    def joined_ngram_keys(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(start, 64-bit key) of every n tokens inside one document, keyed by the tokens joined without a
        separator (datatrove's duplicated n-grams: ["a", "bc"] and ["ab", "c"] are the same "abc")."""
        w = len(self.ids)
        m = w - n + 1
        if m <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.uint64)
        hashes, mults = self.lex.token_hash[self.ids], self.lex.token_mult[self.ids]
        h = (self.doc.astype(np.uint64) + np.uint64(1)) * np.uint64(0x9E3779B97F4A7C15)  # the document as a seed
        with np.errstate(over="ignore"):
            for j in range(n):
                h = h[: w - j] * mults[j:] + hashes[j:]
        pos = np.flatnonzero(self.doc[:m] == self.doc[n - 1:])
        return pos, h[pos]


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
