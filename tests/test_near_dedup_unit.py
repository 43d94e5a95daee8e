"""MinHash-LSH building blocks: normalization and shingles, signatures and the S-curve, exact
Jaccard, candidate edges, union-find, parameter choice. Pure functions, no runner (fast)."""

from __future__ import annotations

import math
import random
import re
import unicodedata
from collections import defaultdict

import numpy as np
import pyarrow as pa
import pytest

from filters.lsh_graph import UnionFind, unique_edges, window_edges
from filters.minhash import (
    MinHashParams,
    ShingleSets,
    band_keys,
    dedup_params_report,
    detection_probability,
    estimated_jaccard,
    exact_jaccard,
    minhash_signatures,
    mix64,
    optimal_bands,
    shingle_sets,
)
from pipeline.config import ConfigError, validate
from stages.near_dedup import NearDedupConfig

PARAMS = MinHashParams(num_perm=112, bands=14, rows=8, seed=3)


def _sets(texts: list[str], **kw: object) -> ShingleSets:
    return shingle_sets(pa.array(texts, pa.string()), 3, **kw)  # type: ignore[arg-type]


def _reference_tokens(text: str) -> list[str]:
    """The documented normalization written plainly: lower-case, diacritics stripped, punctuation
    and symbols removed, digits folded to 0, whitespace split."""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(c for c in t if unicodedata.category(c) != "Mn").lower()
    t = "".join(c for c in t if unicodedata.category(c)[0] not in "PS")
    t = "".join("0" if unicodedata.category(c) == "Nd" else c for c in t)
    return t.split()


def _reference_jaccard(a: str, b: str, n: int = 5) -> float:
    def grams(text: str) -> set[tuple[str, ...]]:
        toks = _reference_tokens(text)
        return {tuple(toks)} if 0 < len(toks) < n else {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}

    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y) if x | y else 1.0


# ----------------------------------------------------------------------------------------------
# normalization and shingles


def test_normalization_ignores_case_punctuation_digits_and_diacritics() -> None:
    s = _sets(["Café au lait, crème brûlée — 2023 edition!", "cafe AU LAIT creme brulee 1999 edition",
               "Cafe au lait creme brulee 1999 editions"])
    assert np.array_equal(s.doc(0), s.doc(1))
    assert not np.array_equal(s.doc(0), s.doc(2))


def test_vectorized_shingles_match_the_plain_reference() -> None:
    rng = random.Random(5)
    words = "alpha beta gamma delta épsilon zeta eta theta iota kappa lambda mu 42 nu xi".split()
    texts = []
    for _ in range(60):
        base = [rng.choice(words) for _ in range(rng.randint(0, 40))]
        texts.append(" ".join(base))
        edited = list(base)
        for _ in range(rng.randint(0, 4)):
            if edited:
                edited[rng.randrange(len(edited))] = rng.choice(words) + rng.choice(["", ",", "!"])
        texts.append(" ".join(edited))
    s = _sets(texts, mode="word")
    got = exact_jaccard(*_csr([s.doc(i) for i in range(0, len(texts), 2)]),
                        *_csr([s.doc(i) for i in range(1, len(texts), 2)]))
    for i, j in enumerate(got):
        x, y = texts[2 * i], texts[2 * i + 1]
        if not _reference_tokens(x) and not _reference_tokens(y):
            continue  # both empty: no shingles, never compared
        assert j == pytest.approx(_reference_jaccard(x, y)), (x, y)


def _csr(arrays: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    values = np.concatenate(arrays) if arrays else np.zeros(0, np.uint32)
    return values.astype(np.uint32), np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int64)


def test_short_and_empty_documents() -> None:
    s = _sets(["hello world", "Hello, world!", "hello there world", "", "!!! ... ???", "one"], ngram=5)
    assert list(s.sizes) == [1, 1, 1, 0, 0, 1]  # shorter than n: one shingle; no tokens: none
    assert np.array_equal(s.doc(0), s.doc(1))
    assert not np.array_equal(s.doc(0), s.doc(2))
    sig = minhash_signatures(s, PARAMS)
    assert (sig[3] == np.uint32(0xFFFFFFFF)).all() and (sig[4] == np.uint32(0xFFFFFFFF)).all()
    assert np.array_equal(sig[0], sig[1])


def test_cjk_documents_use_character_shingles() -> None:
    zh = "今天天气很好，我们去公园散步吧。公园里有很多花和树。"
    ja = "きょうはとてもいい天気ですね。こうえんにいきましょう。"
    mixed_en = "The word 北京 appears once in this otherwise English sentence about travel plans."
    s = _sets([zh, ja, mixed_en, "Ünïcödé but Latin text only here"])
    assert list(s.cjk) == [True, True, False, False]
    han = [c for c in zh if unicodedata.category(c).startswith("L")]
    assert s.sizes[0] == len(set(zip(*[han[i:] for i in range(5)], strict=False)))
    forced = _sets([mixed_en], mode="char", char_ngram=3)
    assert forced.cjk[0] and forced.sizes[0] > 40
    words = _sets([zh], mode="word")
    assert not words.cjk[0] and words.sizes[0] == 1  # no spaces: the whole text is short, one shingle
    # an edit changes only the char n-grams that cover it
    edited = zh.replace("很好", "不错")
    s2 = _sets([zh, edited])
    j = exact_jaccard(*_csr([s2.doc(0)]), *_csr([s2.doc(1)]))

    def grams(text: str) -> set[tuple[str, ...]]:
        chars = [c for c in text if unicodedata.category(c).startswith("L")]
        return set(zip(*[chars[i:] for i in range(5)], strict=False))

    assert j[0] == pytest.approx(len(grams(zh) & grams(edited)) / len(grams(zh) | grams(edited)))


def test_signatures_do_not_depend_on_the_batch() -> None:
    texts = [f"document number {i} " + " ".join(f"w{j % (i + 3)}x" for j in range(30)) for i in range(20)]
    together = minhash_signatures(_sets(texts), PARAMS)
    alone = np.vstack([minhash_signatures(_sets([t]), PARAMS) for t in texts[::-1]])[::-1]
    assert np.array_equal(together, alone)
    other_seed = minhash_signatures(shingle_sets(pa.array(texts), 4), MinHashParams(112, 14, 8, 4))
    assert not np.array_equal(together, other_seed)


# ----------------------------------------------------------------------------------------------
# MinHash statistics


def _pairs_at(j: float, trials: int, union: int, rng: np.random.Generator) -> ShingleSets:
    """`trials` pairs of random hash sets with Jaccard exactly round(j*union)/union."""
    inter = round(j * union)
    only = (union - inter) // 2
    values, sizes = [], []
    for _ in range(trials):
        pool = mix64(rng.integers(0, 2**63, size=inter + 2 * only, dtype=np.uint64))
        pool = (pool & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        common, a_only, b_only = pool[:inter], pool[inter:inter + only], pool[inter + only:]
        for s in (np.concatenate([common, a_only]), np.concatenate([common, b_only])):
            values.append(np.sort(s))
            sizes.append(len(s))
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return ShingleSets(np.concatenate(values), offsets, np.zeros(len(sizes), bool))


def test_detection_rate_follows_the_s_curve() -> None:
    """P(candidate) = 1 - (1 - s^r)^b within binomial error, and each permutation agrees with
    probability s (the permutations behave as independent min-wise hashes)."""
    params = MinHashParams(num_perm=50, bands=10, rows=5, seed=11)
    rng = np.random.default_rng(0)
    trials = 1500
    for s in (0.3, 0.5, 0.6, 0.7, 0.8, 0.9):
        sets = _pairs_at(s, trials, union=120, rng=rng)
        exact = (round(s * 120)) / (round(s * 120) + 2 * ((120 - round(s * 120)) // 2))
        sig = minhash_signatures(sets, params)
        keys = band_keys(sig, params)
        hit = (keys[0::2] == keys[1::2]).any(axis=1).mean()
        p = float(detection_probability(exact, params.bands, params.rows))
        tol = 4 * math.sqrt(p * (1 - p) / trials) + 0.005
        assert abs(hit - p) <= tol, (s, hit, p)
        agree = estimated_jaccard(sig[0::2], sig[1::2]).mean()
        tol_j = 4 * math.sqrt(exact * (1 - exact) / (trials * params.num_perm)) + 0.005
        assert abs(agree - exact) <= tol_j, (s, agree, exact)


def test_exact_jaccard_matches_python_sets() -> None:
    rng = random.Random(2)
    a_sets, b_sets = [], []
    for _ in range(50):
        base = set(rng.sample(range(1000), rng.randint(1, 60)))
        other = {x for x in base if rng.random() < 0.7} | set(rng.sample(range(1000, 2000), rng.randint(0, 20)))
        a_sets.append(sorted(base))
        b_sets.append(sorted(other))

    got = exact_jaccard(*_csr([np.array(a, np.uint32) for a in a_sets]),
                        *_csr([np.array(b, np.uint32) for b in b_sets]))
    for g, a, b in zip(got, a_sets, b_sets, strict=True):
        sa, sb = set(a), set(b)
        assert g == pytest.approx(len(sa & sb) / len(sa | sb) if sa | sb else 1.0)


# ----------------------------------------------------------------------------------------------
# graph


def _components(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Reference: smallest member of each node's component, by BFS."""
    adj: dict[int, list[int]] = defaultdict(list)
    for u, v in edges:
        adj[u].append(v)
        adj[v].append(u)
    label = [-1] * n
    for start in range(n):
        if label[start] >= 0:
            continue
        stack, seen = [start], [start]
        label[start] = start
        while stack:
            x = stack.pop()
            for y in adj[x]:
                if label[y] < 0:
                    label[y] = start
                    stack.append(y)
                    seen.append(y)
    return label


@pytest.mark.parametrize("shape", ["chain", "reversed_chain", "shuffled_chain", "star_low", "star_high",
                                   "stars_joined", "random"])
def test_union_find(shape: str) -> None:
    rng = random.Random(shape)
    n = 3000
    if shape == "chain":
        edges = [(i, i + 1) for i in range(n - 1)]
    elif shape == "reversed_chain":
        edges = [(i, i + 1) for i in reversed(range(n - 1))]
    elif shape == "shuffled_chain":
        perm = list(range(n))
        rng.shuffle(perm)
        edges = [(perm[i], perm[i + 1]) for i in range(n - 1)]
        rng.shuffle(edges)
    elif shape == "star_low":
        edges = [(0, i) for i in range(1, n)]
    elif shape == "star_high":
        edges = [(i, n - 1) for i in range(n - 1)]
    elif shape == "stars_joined":
        edges = [(c, c + k) for c in range(0, n - 100, 100) for k in range(1, 100)]
        edges += [(c + 50, c + 150) for c in range(0, n - 200, 200)]
    else:
        edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(2500)]
    uf = UnionFind(n)
    half = len(edges) // 2
    for chunk in (edges[:half], edges[half:]):  # edges arrive in batches (one per bucket file)
        arr = np.array(chunk, dtype=np.int64).reshape(-1, 2)
        uf.union(arr[:, 0], arr[:, 1])
    assert uf.roots().tolist() == _components(n, edges)
    sizes = defaultdict(int)
    for r in _components(n, edges):
        sizes[r] += 1
    expected = [sizes[r] > 1 for r in _components(n, edges)]
    assert uf.in_cluster().tolist() == expected


def test_window_edges_connect_groups_with_bounded_degree() -> None:
    rng = np.random.default_rng(1)
    keys = np.sort(rng.integers(0, 30, size=600).astype(np.uint64))
    nodes = rng.permutation(600).astype(np.int64)
    u, v = window_edges(keys, nodes, window=3)
    assert (u < v).all()
    key_of = dict(zip(nodes.tolist(), keys.tolist(), strict=True))
    assert all(key_of[a] == key_of[b] for a, b in zip(u.tolist(), v.tolist(), strict=True))
    degree = np.bincount(np.concatenate([u, v]), minlength=600)
    assert degree.max() <= 6
    uf = UnionFind(600)
    uf.union(u, v)
    roots = uf.roots()
    for k in np.unique(keys):
        assert len(set(roots[nodes[keys == k]].tolist())) == 1
    small = window_edges(np.array([5, 5, 5], np.uint64), np.array([7, 3, 9]), window=4)
    assert sorted(zip(*small, strict=True)) == [(3, 7), (3, 9), (7, 9)]  # small groups: all pairs
    uu, vv = unique_edges(np.array([1, 1, 2, 1]), np.array([2, 2, 3, 2]))
    assert list(zip(uu, vv, strict=True)) == [(1, 2), (2, 3)]


# ----------------------------------------------------------------------------------------------
# parameters and config


def test_parameter_choice_and_report() -> None:
    assert float(detection_probability(0.0, 14, 8)) == 0.0
    assert float(detection_probability(1.0, 14, 8)) == 1.0
    b_lo, r_lo = optimal_bands(0.5, 112)
    b_hi, r_hi = optimal_bands(0.9, 112)
    assert b_lo * r_lo <= 112 and b_hi * r_hi <= 112 and r_hi > r_lo  # stricter threshold: more rows
    report = dedup_params_report(0.8, 112)
    assert "bands" in report and "FP area" in report and "14" in report
    assert re.search(r"suggested stage settings: threshold: 0.8, num_perm: \d+, bands: \d+, rows: \d+", report)
    with pytest.raises(ValueError):
        dedup_params_report(1.5, 112)


def test_config_resolution_and_errors() -> None:
    assert NearDedupConfig(name="nd").lsh() == (112, 14, 8)
    assert NearDedupConfig(name="nd", bands=20, rows=5).lsh() == (100, 20, 5)
    perms, b, r = NearDedupConfig(name="nd", threshold=0.9, num_perm=128).lsh()
    assert perms == 128 and (b, r) == optimal_bands(0.9, 128)
    assert NearDedupConfig(name="nd", bands=10).lsh()[1] == 10
    base = {"output": "o", "inputs": [{"name": "a", "path": "x.jsonl"}]}
    with pytest.raises(ConfigError) as err:
        validate({**base, "stages": [{"name": "near_dedup", "bands": 20, "rows": 10, "num_perm": 100,
                                      "threshold": 1.2, "survivor": ["quality_score sideways"]}]})
    text = "\n".join(err.value.problems)
    assert "stages.near_dedup.threshold" in text and "stages.near_dedup.survivor" in text


# ----------------------------------------------------------------------------------------------
# mega-documents: capped (bottom-k) shingle sets


def _big_text(rng: random.Random, words: int) -> str:
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = [a + b + c + d for a in letters for b in letters for c in letters for d in "aeiou"]  # no digits: folded
    return " ".join(rng.choice(vocab) for _ in range(words))


def test_capped_sets_keep_the_smallest_hashes_and_compare_like_for_like() -> None:
    from filters.minhash import common_hash_range, intersection_sizes, jaccard_from_sizes

    rng = random.Random(5)
    big = _big_text(rng, 30_000)
    words = big.split()
    near = " ".join(words[:27_000])  # a 90% prefix: Jaccard ~0.9 with `big`, under the cap of 28,000
    small = " ".join(words[1000:1400])  # quoted inside `big`
    full = _sets([big, near, small])
    capped = _sets([big, near, small], max_shingles=28_000)
    assert list(np.diff(capped.offsets)) == [28_000, len(full.doc(1)), len(full.doc(2))]
    assert np.array_equal(capped.doc(0), full.doc(0)[:28_000]) and np.array_equal(capped.doc(1), full.doc(1))

    def jac(sets: ShingleSets, i: int, j: int, cap: int | None) -> float:
        a_off = np.array([0, len(sets.doc(i))])
        b_off = np.array([0, len(sets.doc(j))])
        a, b = sets.doc(i), sets.doc(j)
        if cap:
            a, a_off, b, b_off = common_hash_range(a, a_off, b, b_off, cap)
        inter = intersection_sizes(a, a_off, b, b_off)
        return float(jaccard_from_sizes(inter, np.diff(a_off), np.diff(b_off))[0])

    true = jac(full, 0, 1, None)
    assert 0.88 < true < 0.92
    assert abs(jac(capped, 0, 1, 28_000) - true) < 0.01  # the common hash range: like for like
    assert jac(capped, 0, 1, None) < true - 0.02  # the raw sketch against a whole set would be biased
    # containment of a quoted passage: whole in the full set, about cap/size of it in the sketch
    inside = len(np.intersect1d(capped.doc(2), capped.doc(0))) / len(capped.doc(2))
    assert len(np.intersect1d(full.doc(2), full.doc(0))) == len(full.doc(2)) and inside < 0.99
