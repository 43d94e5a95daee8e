"""MinHash signatures for near-duplicate detection: normalization, shingles, permutations, LSH bands.

Everything works on whole batches so the per-document cost is a handful of Arrow/numpy kernels,
not Python loops over shingles:

* text is normalized with Arrow compute (lower-case, diacritics stripped, punctuation removed,
  digits folded to 0) and split into words by Arrow;
* each distinct word of the batch is hashed once (keyed SipHash, seeded by the pipeline seed);
  CJK documents use code points as tokens instead of words;
* an n-gram's hash is a polynomial over its token hashes, computed for every window of the batch
  at once and finalized with splitmix64; the result is folded to 32 bits (collisions within a
  document are negligible and halve the memory of the permutation step);
* permutations are `a*x + b (mod 2^32)` with odd `a`: bijections of the 32-bit space, applied to
  already-random shingle hashes, evaluated as one `(perms, shingles)` uint32 array per chunk and
  reduced per document with `np.minimum.reduceat`;
* band keys are 64-bit hashes of each band's rows (band index mixed in, so bands never collide).

Pure functions, no I/O: the `near_dedup` stage does the reading, grouping and writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.hashing import derive_seed, seed_key, siphash64

ShingleMode = Literal["word", "char", "auto", "code"]
U32_MAX = np.uint32(0xFFFFFFFF)
_POLY = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier for polynomial combination of token hashes
_CJK = r"[\p{Han}\p{Hiragana}\p{Katakana}]"


# ----------------------------------------------------------------------------------------------
# 64-bit mixing


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer on a uint64 array (a bijection with full avalanche); returns a new array."""
    x = np.asarray(x, dtype=np.uint64).copy()
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


# ----------------------------------------------------------------------------------------------
# normalization and shingles


def normalize_texts(texts: pa.Array) -> pa.Array:
    """Lower-case, strip diacritics (NFKD then drop combining marks), remove punctuation and
    symbols, fold every digit to 0. Only non-ASCII documents pay for the Unicode decomposition."""
    texts = pc.fill_null(texts, "")
    non_ascii = pc.invert(pc.string_is_ascii(texts))
    if pc.any(non_ascii).as_py():
        subset = texts.filter(non_ascii)
        subset = pc.replace_substring_regex(pc.utf8_normalize(subset, "NFKD"), r"\p{Mn}+", "")
        texts = pc.replace_with_mask(texts, non_ascii, subset)
        texts = pc.utf8_lower(texts)
    else:
        texts = pc.ascii_lower(texts)
    texts = pc.replace_substring_regex(texts, r"[\p{P}\p{S}]+", "")
    return pc.replace_substring_regex(texts, r"\p{Nd}", "0")


def cjk_documents(normalized: pa.Array, min_ratio: float) -> np.ndarray:
    """True for documents whose letters are mostly Han/kana (no spaces between words: use chars)."""
    n = len(normalized)
    out = np.zeros(n, dtype=bool)
    non_ascii = np.asarray(pc.invert(pc.string_is_ascii(normalized)).to_numpy(zero_copy_only=False), dtype=bool)
    if not non_ascii.any():
        return out
    idx = np.flatnonzero(non_ascii)
    subset = normalized.take(pa.array(idx))
    cjk = pc.count_substring_regex(subset, _CJK).to_numpy(zero_copy_only=False)
    letters = pc.count_substring_regex(subset, r"\pL").to_numpy(zero_copy_only=False)
    out[idx] = (letters > 0) & (cjk >= min_ratio * np.maximum(letters, 1))
    return out


def _word_tokens(normalized: pa.Array, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token hashes (uint64, all documents concatenated) and per-document token counts."""
    # Arrow's split yields "" for leading/trailing whitespace and for an empty string: trim, then
    # drop the lone "" of empty documents
    if pc.all(pc.string_is_ascii(normalized)).as_py() is not False:
        trimmed = pc.ascii_trim_whitespace(normalized)
        words = pc.ascii_split_whitespace(trimmed)
    else:
        trimmed = pc.utf8_trim_whitespace(normalized)
        words = pc.utf8_split_whitespace(trimmed)
    empty = pc.equal(pc.binary_length(trimmed), 0).to_numpy(zero_copy_only=False)
    counts = pc.list_value_length(words).to_numpy(zero_copy_only=False).astype(np.int64)
    flat = pc.list_flatten(words)
    if empty.any():
        counts[empty] = 0
        flat = flat.filter(pc.greater(pc.binary_length(flat), 0))
    if len(flat) == 0:
        return np.zeros(0, dtype=np.uint64), counts
    encoded = pc.dictionary_encode(flat).combine_chunks() if isinstance(flat, pa.ChunkedArray) \
        else pc.dictionary_encode(flat)
    vocab_hash = siphash64(encoded.dictionary, seed_key(seed, "word"))
    return vocab_hash[encoded.indices.to_numpy(zero_copy_only=False)], counts


def _char_tokens(normalized: pa.Array, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Code points (whitespace removed) as tokens, hashed with the seed."""
    compact = pc.replace_substring_regex(normalized, r"\s+", "")
    counts = pc.utf8_length(compact).to_numpy(zero_copy_only=False).astype(np.int64)
    joined = "".join(compact.to_pylist()).encode("utf-32-le")
    points = np.frombuffer(joined, dtype="<u4").astype(np.uint64)
    return mix64(points ^ np.uint64(derive_seed(seed, "char"))), counts


def ngram_hashes(tokens: np.ndarray, counts: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every n-token window that lies inside one document, and the window's document.

    A document with fewer than n tokens (but at least one) yields one shingle over all its tokens;
    a document without tokens yields none.
    """
    docs = len(counts)
    ends = np.cumsum(counts)
    starts = ends - counts
    total = int(ends[-1]) if docs else 0
    parts_h: list[np.ndarray] = []
    parts_d: list[np.ndarray] = []
    if total >= n:
        width = total - n + 1
        h = tokens[:width].copy()
        for k in range(1, n):
            h *= _POLY
            h += tokens[k:width + k]
        # the window at i is valid iff it ends inside i's document: the last n-1 positions of each
        # document (all of a short one) are not
        valid = np.ones(width, dtype=bool)
        for k in range(1, n):
            pos = ends - k
            valid[pos[(counts >= k) & (pos < width)]] = False
        parts_h.append(h[valid])
        parts_d.append(np.repeat(np.arange(docs, dtype=np.int64), np.maximum(counts - n + 1, 0)))
    short = np.flatnonzero((counts > 0) & (counts < n))
    if len(short):
        s, c = starts[short], counts[short]
        h = tokens[s].copy()
        for k in range(1, n):
            m = c > k
            if not m.any():
                break
            h[m] = h[m] * _POLY + tokens[s[m] + k]
        parts_h.append(h)
        parts_d.append(short)
    if not parts_h:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    return np.concatenate(parts_h), np.concatenate(parts_d)


@dataclass(frozen=True)
class ShingleSets:
    """Sorted unique 32-bit shingle hashes of a batch, concatenated, with CSR offsets."""

    values: np.ndarray  # uint32
    offsets: np.ndarray  # int64, len = docs + 1
    cjk: np.ndarray  # bool per document: shingled by characters

    @property
    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def doc(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i]:self.offsets[i + 1]]


def shingle_sets(
    texts: pa.Array, seed: int, mode: ShingleMode = "auto", ngram: int = 5, char_ngram: int = 5,
    cjk_ratio: float = 0.3, max_shingles: int | None = None, code: np.ndarray | None = None,
) -> ShingleSets:
    """Normalize, tokenize and hash a batch of documents into per-document shingle-hash sets.

    `max_shingles` caps a mega-document's set at its `max_shingles` smallest hashes (a bottom-k
    sketch). The hashes are random, so this is a consistent sample: two large near-copies keep
    nearly the same shingles and their sketches' Jaccard estimates their own, while the set (and the
    MinHash and verification cost) of a document of millions of words stays bounded, and a small
    document is no longer "contained" in a huge one that merely quotes it.

    With `mode="auto"`, the documents `code` marks (source code: see filters/code_language.code_documents)
    get code shingles (`ngram` identifier/operator tokens of the raw text), the others CJK character or
    word shingles; `code` is ignored by the other modes.
    """
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    docs = len(texts)
    if mode == "code":
        code = np.ones(docs, dtype=bool)
    elif mode != "auto" or code is None:
        code = np.zeros(docs, dtype=bool)
    hashes: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    coded = np.flatnonzero(code)
    if len(coded):  # identifier/operator tokens of the raw text (filters/code_tokens.py)
        from filters.code_tokens import code_token_hashes

        tokens, counts = code_token_hashes(texts if len(coded) == docs else texts.take(pa.array(coded)), seed)
        h, d = ngram_hashes(tokens, counts, ngram)
        hashes.append(h)
        owners.append(coded[d])
    prose = np.flatnonzero(~code)
    cjk = np.zeros(docs, dtype=bool)
    if len(prose):
        normalized = normalize_texts(texts if len(prose) == docs else texts.take(pa.array(prose)))
        if mode == "auto":
            cjk[prose] = cjk_documents(normalized, cjk_ratio)
        elif mode == "char":
            cjk[prose] = True
        for use_chars, n in ((False, ngram), (True, char_ngram)):
            rows = np.flatnonzero(cjk[prose] == use_chars)  # positions in `normalized`
            if len(rows) == 0:
                continue
            subset = normalized if len(rows) == len(prose) else normalized.take(pa.array(rows))
            tokens, counts = _char_tokens(subset, seed) if use_chars else _word_tokens(subset, seed)
            h, d = ngram_hashes(tokens, counts, n)
            hashes.append(h)
            owners.append(prose[rows][d])
    h = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.uint64)
    d = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
    return _sets(h, d, docs, seed, cjk, max_shingles)


def _sets(h: np.ndarray, d: np.ndarray, docs: int, seed: int, cjk: np.ndarray, max_shingles: int | None
          ) -> ShingleSets:
    """Per-document sets of (seeded, 32-bit folded) shingle hashes from (hash, owner) pairs, capped at
    `max_shingles` smallest hashes each."""
    h = mix64(h ^ np.uint64(derive_seed(seed, "shingle")))
    folded = (h >> np.uint64(32)) ^ (h & np.uint64(0xFFFFFFFF))
    composite = (d.astype(np.uint64) << np.uint64(32)) | folded
    composite = np.sort(composite)  # by (document, hash); np.unique is much slower than sort + mask
    if len(composite) > 1:
        keep = np.empty(len(composite), dtype=bool)
        keep[0] = True
        np.not_equal(composite[1:], composite[:-1], out=keep[1:])
        composite = composite[keep]  # drop repeats within a document
    owner = (composite >> np.uint64(32)).astype(np.int64)
    values = (composite & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    offsets = np.zeros(docs + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=docs), out=offsets[1:])
    if max_shingles is not None and len(values) and int(np.diff(offsets).max()) > max_shingles:
        rank = np.arange(len(values), dtype=np.int64) - offsets[owner]  # hashes ascend within a document
        keep = rank < max_shingles
        values, owner = values[keep], owner[keep]
        np.cumsum(np.bincount(owner, minlength=docs), out=offsets[1:])
    return ShingleSets(values, offsets, cjk)


# ----------------------------------------------------------------------------------------------
# MinHash and LSH bands


@dataclass(frozen=True)
class MinHashParams:
    """Permutations and banding; everything derives from the seed, so runs are reproducible."""

    num_perm: int
    bands: int
    rows: int
    seed: int

    def __post_init__(self) -> None:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands × rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")

    @property
    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(derive_seed(self.seed, "minhash-permutations"))
        a = rng.integers(0, 1 << 32, size=self.num_perm, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
        b = rng.integers(0, 1 << 32, size=self.num_perm, dtype=np.uint64).astype(np.uint32)
        return a, b


def minhash_signatures(sets: ShingleSets, params: MinHashParams, chunk_elems: int = 1 << 21,
                       max_shingles: int = 1 << 20) -> np.ndarray:
    """(docs, num_perm) uint32 signatures; documents without shingles get all 0xFFFFFFFF (callers
    skip them: an empty set is no one's near-duplicate).

    Documents are taken in groups of about `max_shingles` shingles and permutations in chunks of
    `chunk_elems` values, written into one reused buffer (allocation, not arithmetic, was the cost).
    """
    a, b = params.coefficients
    docs = len(sets.offsets) - 1
    sig = np.full((docs, params.num_perm), U32_MAX, dtype=np.uint32)
    nonempty = np.flatnonzero(sets.sizes > 0)
    if len(nonempty) == 0:
        return sig
    ends = sets.offsets[nonempty + 1]
    buf = np.empty(chunk_elems, dtype=np.uint32)
    first = 0
    while first < len(nonempty):
        lo = sets.offsets[nonempty[first]]
        stop = max(int(np.searchsorted(ends, lo + max_shingles, side="right")), first + 1)
        group = nonempty[first:stop]
        values = sets.values[lo:sets.offsets[group[-1] + 1]]
        rel_starts = sets.offsets[group] - lo
        per = max(1, chunk_elems // len(values))
        if per * len(values) > len(buf):
            buf = np.empty(per * len(values), dtype=np.uint32)
        for p0 in range(0, params.num_perm, per):
            p1 = min(params.num_perm, p0 + per)
            y = buf[: (p1 - p0) * len(values)].reshape(p1 - p0, len(values))
            np.multiply(a[p0:p1, None], values[None, :], out=y)
            np.add(y, b[p0:p1, None], out=y)
            sig[group, p0:p1] = np.minimum.reduceat(y, rel_starts, axis=1).T
        first = stop
    return sig


def band_keys(sig: np.ndarray, params: MinHashParams) -> np.ndarray:
    """(docs, bands) uint64 keys; two documents share band j's key iff their rows in band j agree
    (up to 64-bit hash collisions)."""
    docs = sig.shape[0]
    b, r = params.bands, params.rows
    rows = sig[:, : b * r].reshape(docs, b, r).astype(np.uint64)
    band_seed = mix64(np.arange(b, dtype=np.uint64) + np.uint64(derive_seed(params.seed, "band")))
    h = np.broadcast_to(band_seed, (docs, b)).copy()
    for k in range(r):
        h *= _POLY
        h += rows[:, :, k]
    return mix64(h)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Fraction of agreeing permutations, row by row: an unbiased estimate of Jaccard similarity."""
    return (sig_a == sig_b).mean(axis=-1)


def intersection_sizes(a_values: np.ndarray, a_offsets: np.ndarray, b_values: np.ndarray,
                       b_offsets: np.ndarray) -> np.ndarray:
    """|A_i ∩ B_i| for pairs of sorted-unique uint32 sets (CSR form), all pairs in one sort."""
    pairs = len(a_offsets) - 1
    if pairs == 0:
        return np.zeros(0, dtype=np.int64)
    a_len, b_len = np.diff(a_offsets), np.diff(b_offsets)
    owner = np.concatenate([np.repeat(np.arange(pairs, dtype=np.uint64), a_len),
                            np.repeat(np.arange(pairs, dtype=np.uint64), b_len)])
    vals = np.concatenate([a_values[a_offsets[0]:a_offsets[-1]], b_values[b_offsets[0]:b_offsets[-1]]])
    keys = np.sort((owner << np.uint64(32)) | vals.astype(np.uint64))
    same = keys[1:] == keys[:-1]
    return np.bincount((keys[1:][same] >> np.uint64(32)).astype(np.int64), minlength=pairs)


def common_hash_range(a_values: np.ndarray, a_offsets: np.ndarray, b_values: np.ndarray, b_offsets: np.ndarray,
                      cap: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of sets where one was capped to its `cap` smallest hashes (`shingle_sets`): both cut to
    the hashes below the smaller of the capped sets' largest, the range both samples cover, so a
    capped document compares with an uncapped one (or one capped higher) like for like."""

    def cut(values: np.ndarray, offsets: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lengths = np.diff(offsets)
        vals = values[offsets[0]:offsets[-1]]
        keep = vals.astype(np.int64) <= np.repeat(limit, lengths)
        new_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(_segment_sums(keep, lengths), out=new_offsets[1:])
        return vals[keep], new_offsets

    def top(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        lengths = np.diff(offsets)
        full = lengths >= cap
        out = np.full(len(lengths), np.iinfo(np.int64).max, dtype=np.int64)
        out[full] = values[offsets[1:][full] - 1].astype(np.int64)  # sets ascend: the last is the largest
        return out

    limit = np.minimum(top(a_values, a_offsets), top(b_values, b_offsets))
    return (*cut(a_values, a_offsets, limit), *cut(b_values, b_offsets, limit))


def _segment_sums(flags: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    ends = np.cumsum(lengths)
    total = np.concatenate([[0], np.cumsum(flags, dtype=np.int64)])
    return total[ends] - total[ends - lengths]


def exact_jaccard(a_values: np.ndarray, a_offsets: np.ndarray, b_values: np.ndarray,
                  b_offsets: np.ndarray) -> np.ndarray:
    """Jaccard of pairs of sorted-unique uint32 sets (CSR form), all pairs in one sort."""
    inter = intersection_sizes(a_values, a_offsets, b_values, b_offsets)
    return jaccard_from_sizes(inter, np.diff(a_offsets), np.diff(b_offsets))


def jaccard_from_sizes(inter: np.ndarray, a_len: np.ndarray, b_len: np.ndarray) -> np.ndarray:
    union = a_len + b_len - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0)


def containment_from_sizes(inter: np.ndarray, a_len: np.ndarray) -> np.ndarray:
    """Share of A's shingles found in B (1.0 for an empty A, which is never a candidate anyway)."""
    return np.where(a_len > 0, inter / np.maximum(a_len, 1), 1.0)


def estimated_intersection(jaccard: np.ndarray, a_len: np.ndarray, b_len: np.ndarray) -> np.ndarray:
    """|A ∩ B| implied by a Jaccard estimate and the set sizes: J·(|A| + |B|) / (1 + J)."""
    return jaccard * (a_len + b_len) / (1.0 + jaccard)


# ----------------------------------------------------------------------------------------------
# choosing bands × rows


def detection_probability(s: np.ndarray | float, bands: int, rows: int) -> np.ndarray | float:
    """P(two documents with Jaccard s share at least one band) = 1 - (1 - s^r)^b."""
    return 1.0 - (1.0 - np.power(s, rows)) ** bands


def lsh_choices(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5,
                steps: int = 1000) -> list[tuple[float, int, int, float, float]]:
    """Every (bands, rows) with bands*rows <= num_perm as (weighted error, b, r, fp, fn), best first
    (ties: more permutations used, then fewer bands). All pairs are integrated in one numpy pass."""
    pairs = np.array([(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)])
    b, r = pairs[:, :1].astype(np.float64), pairs[:, 1:].astype(np.float64)
    lo = np.linspace(0.0, threshold, steps)[None, :]
    hi = np.linspace(threshold, 1.0, steps)[None, :]
    fp = np.trapezoid(1.0 - (1.0 - lo**r) ** b, lo, axis=1)
    fn = np.trapezoid((1.0 - hi**r) ** b, hi, axis=1)
    err = fp_weight * fp + fn_weight * fn
    out = [(float(e), int(x), int(y), float(f), float(g)) for e, (x, y), f, g in zip(err, pairs, fp, fn, strict=True)]
    out.sort(key=lambda t: (round(t[0], 12), -t[1] * t[2], t[1]))
    return out


def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5
                  ) -> tuple[int, int]:
    """(bands, rows) minimizing the weighted false-positive and false-negative areas."""
    _, b, r, _, _ = lsh_choices(threshold, num_perm, fp_weight, fn_weight)[0]
    return b, r


def dedup_params_report(threshold: float, num_perm: int, fp_weight: float = 0.5, fn_weight: float = 0.5,
                        top: int = 5) -> str:
    """Human-readable table of the best bands × rows for a threshold, plus common alternatives, so
    users see what recall and false-candidate load each choice buys (`curate dedup-params`)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError("threshold must be between 0 and 1")
    if num_perm < 1:
        raise ValueError("num_perm must be >= 1")
    choices = lsh_choices(threshold, num_perm, fp_weight, fn_weight)
    probes = [round(x, 2) for x in (threshold - 0.2, threshold - 0.1, threshold, threshold + 0.05,
                                    threshold + 0.1) if 0.0 < x <= 1.0]
    head = (f"{'bands':>5} {'rows':>4} {'perms':>5} {'FP area':>8} {'FN area':>8} {'error':>8}  "
            + "  ".join(f"P(s={p:.2f})" for p in probes))

    def line(err: float, b: int, r: int, fp: float, fn: float, note: str = "") -> str:
        probs = "  ".join(f"{float(detection_probability(p, b, r)):>10.3f}" for p in probes)
        return f"{b:>5} {r:>4} {b * r:>5} {fp:>8.4f} {fn:>8.4f} {err:>8.4f}  {probs}{note}"

    lines = [f"MinHash LSH for Jaccard threshold {threshold} with up to {num_perm} permutations",
             f"detection probability P(s) = 1 - (1 - s^rows)^bands; error = {fp_weight}·FP + {fn_weight}·FN "
             "(areas under/over the S-curve below/above the threshold)",
             "FP: candidate pairs below the threshold (cost: verification work, or wrong removals if "
             "verify is off); FN: pairs above it that are never compared (lost recall).", "",
             "best choices:", head]
    for c in choices[:top]:
        lines.append(line(*c))
    by_key = {(b, r): (err, b, r, fp, fn) for err, b, r, fp, fn in choices}
    alternatives = []
    for w_fp, note in ((0.2, "recall-weighted (FP 0.2, FN 0.8): good with verify: true"),
                       (0.8, "precision-weighted (FP 0.8, FN 0.2): for verify: false")):
        _, b, r, _, _ = lsh_choices(threshold, num_perm, w_fp, 1.0 - w_fp)[0]
        alternatives.append((by_key[(b, r)], f"  <- {note}"))
    for b, r in ((14, 8), (20, 5), (9, 13), (10, 10)):
        if (b, r) in by_key:
            alternatives.append((by_key[(b, r)], "  <- common preset"))
    lines += ["", "alternatives (error column still uses the weights above):", head]
    seen = set()
    for c, note in alternatives:
        if (c[1], c[2]) not in seen:
            seen.add((c[1], c[2]))
            lines.append(line(*c, note=note))
    b, r = choices[0][1], choices[0][2]
    lines += ["", f"suggested stage settings: threshold: {threshold}, num_perm: {b * r}, bands: {b}, rows: {r}",
              "(the near_dedup default without num_perm/bands/rows is 14 bands × 8 rows, S-curve midpoint "
              f"(1/b)^(1/r) ≈ {(1 / 14) ** (1 / 8):.2f}: high recall, false positives left to verification)"]
    return "\n".join(lines)
