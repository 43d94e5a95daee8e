"""Normalized word n-gram hashes, shared by decontamination (eval items vs documents) and its masks.

Normalization is the one GPT-3 / Llama / OLMo overlap checks use: Unicode NFKC, lowercase,
punctuation and symbols removed, whitespace collapsed. Words are runs of letters, digits and marks;
Han, Hiragana and Katakana characters are one token each, so Chinese and Japanese get character
n-grams from the same code. Each token is hashed once with `pipeline.hashing.siphash64`; an n-gram's
key is a polynomial over its token hashes seeded with `n` (so lengths never collide), finalized by
splitmix64. Everything is vectorized over a whole batch: flat token arrays with a text index each.

`token_spans` is the slow, exact twin for the few documents that get masked: the same tokens with
their character offsets in the original (unnormalized) text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.minhash import mix64
from filters.text import as_string_array
from pipeline.hashing import siphash64

CJK_CHAR = r"[\p{Han}\p{Hiragana}\p{Katakana}]"
NON_WORD = r"[^\p{L}\p{N}\p{M}]+"
_PRIME = np.uint64(0x100000001B3)
_LENGTH_SALT = mix64(np.arange(1, 17, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))


@dataclass(frozen=True)
class Tokens:
    """Tokens of a batch of texts: one 64-bit hash each, the text it belongs to, whether it is CJK."""

    hashes: np.ndarray  # uint64
    text: np.ndarray  # int64 index of the text
    cjk: np.ndarray  # bool
    n_texts: int

    def per_text(self) -> np.ndarray:
        return np.bincount(self.text, minlength=self.n_texts)[: self.n_texts].astype(np.int64)


def normalize(texts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """NFKC, lowercase, CJK characters spaced apart, every non-word run one space."""
    t = as_string_array(texts)
    t = pc.utf8_lower(pc.utf8_normalize(t, "NFKC"))
    if len(t) and pc.any(pc.match_substring_regex(t, CJK_CHAR)).as_py():
        t = pc.replace_substring_regex(t, CJK_CHAR, r" \0 ")
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(t, NON_WORD, " "))


def tokenize(texts: pa.Array | pa.ChunkedArray) -> Tokens:
    """Normalized tokens of every text, hashed (one siphash64 call over the batch's distinct words)."""
    norm = normalize(texts)
    split = pc.utf8_split_whitespace(norm)
    flat = pc.list_flatten(split)
    parent = pc.list_parent_indices(split).to_numpy().astype(np.int64, copy=False)
    keep = pc.greater(pc.utf8_length(flat), 0)
    flat = flat.filter(keep)
    parent = parent[keep.to_numpy(zero_copy_only=False)]
    if not len(flat):
        return Tokens(np.zeros(0, np.uint64), parent, np.zeros(0, bool), len(norm))
    words = pc.dictionary_encode(flat)  # hash each distinct word once: a batch has few of them
    codes = words.indices.to_numpy().astype(np.int64, copy=False)
    cjk = pc.match_substring_regex(words.dictionary, f"^{CJK_CHAR}$").to_numpy(zero_copy_only=False)
    return Tokens(siphash64(words.dictionary)[codes], parent, np.asarray(cjk, bool)[codes], len(norm))


def ngram_keys(hashes: np.ndarray, text: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(start positions, keys) of every n-token window that lies inside one text."""
    return ngram_keys_by_length(hashes, text, (n,))[n]


def ngram_keys_by_length(hashes: np.ndarray, text: np.ndarray, lengths: tuple[int, ...] | list[int]
                         ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """`ngram_keys` for several lengths at once: the polynomial grows one token per step, so all
    lengths cost max(lengths) passes; the finalizer mixes in the length, so lengths never collide."""
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    wanted = sorted({int(n) for n in lengths if n > 0})
    h = np.zeros(len(hashes), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for n in range(1, (wanted[-1] if wanted else 0) + 1):
            m = len(hashes) - n + 1
            if m <= 0:
                break
            h = h[:m] * _PRIME + hashes[n - 1:n - 1 + m]
            if n in wanted:
                pos = np.flatnonzero(text[:m] == text[n - 1:])
                out[n] = (pos, mix64(h[pos] ^ _LENGTH_SALT[n % len(_LENGTH_SALT)] ^ np.uint64(n)))
    for n in wanted:
        out.setdefault(n, (np.zeros(0, np.int64), np.zeros(0, np.uint64)))
    return out


class Membership:
    """Which of many 64-bit keys are in a sorted key set: a bitmap of the keys' top bits (16 bits per
    set key, ~6% false positives) rejects most misses with one byte lookup; a binary search on the
    sorted keys settles the rest."""

    def __init__(self, sorted_keys: np.ndarray):
        self.keys = sorted_keys
        self.shift = np.uint64(64 - int(min(32, max(16, np.ceil(np.log2(max(1, len(sorted_keys)) * 16))))))
        self.bits = np.zeros(1 << (64 - int(self.shift) - 3), dtype=np.uint8)
        idx = sorted_keys >> self.shift
        byte, bit = (idx >> np.uint64(3)).astype(np.int64), (idx & np.uint64(7)).astype(np.uint8)
        for b in range(8):
            self.bits[byte[bit == b]] |= np.uint8(1 << b)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(indices into `keys` that are in the set, first and end position of each in the sorted keys)."""
        if not len(self.keys) or not len(keys):
            z = np.zeros(0, np.int64)
            return z, z, z
        idx = keys >> self.shift
        maybe = np.flatnonzero((self.bits[(idx >> np.uint64(3)).astype(np.int64)] >> (idx & np.uint64(7)).astype(
            np.uint8)) & np.uint8(1))
        lo = np.searchsorted(self.keys, keys[maybe], "left")
        found = lo < len(self.keys)
        found[found] = self.keys[lo[found]] == keys[maybe][found]
        hit, lo = maybe[found], lo[found]
        hi = np.searchsorted(self.keys, keys[hit], "right")
        return hit, lo, hi


def _token_class(ch: str) -> int:
    """0: separator, 1: word character, 2: a CJK character (a token of its own)."""
    cat = unicodedata.category(ch)
    if cat[0] not in "LNM":
        return 0
    name_start = ord(ch)
    if (0x3040 <= name_start <= 0x30FF or 0x31F0 <= name_start <= 0x31FF or 0xFF66 <= name_start <= 0xFF9D
            or _is_han(name_start)):
        return 2
    return 1


def _is_han(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x323AF or 0xF900 <= cp <= 0xFAFF
            or 0x2E80 <= cp <= 0x2FDF or cp in (0x3005, 0x3007) or 0x3021 <= cp <= 0x3029 or 0x3038 <= cp <= 0x303B)


def token_spans(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """The tokens of `text` as `tokenize` sees them, with (start, end) offsets into `text` itself.
    Each character is normalized on its own (NFKC, lowercase), so offsets stay exact."""
    tokens: list[str] = []
    spans: list[tuple[int, int]] = []
    current: list[str] = []
    start = -1
    for i, ch in enumerate(text):
        for sub in unicodedata.normalize("NFKC", ch).lower():
            kind = _token_class(sub)
            if kind == 1:
                if not current:
                    start = i
                current.append(sub)
                continue
            if current:
                tokens.append("".join(current))
                spans.append((start, i))
                current = []
            if kind == 2:
                tokens.append(sub)
                spans.append((i, i + 1))
    if current:
        tokens.append("".join(current))
        spans.append((start, len(text)))
    # a character whose normalization spans a token boundary may close a token at its own start
    return tokens, [(s, max(e, s + 1)) for s, e in spans]
