"""What capping a mega-document's shingle set (`near_dedup.max_shingles`) does to recall, on real text.

Real text: the human-written article bodies of `../shared/data/article-extraction` (181 news and
blog articles, ~800k characters; `--text` for another JSON/JSONL file of texts). A mega-document is
all of them concatenated (~135k word 5-gram shingles). For each trial (its own seed: shingle hashes,
permutations and edits) a near-copy replaces a share of its words with words from elsewhere in the
corpus, and the pair is "found" when the stage's rule finds it: the 14 × 8 LSH bands make it a
candidate and the verified similarity (over the capped sets' common hash range) is >= 0.8.

Cases: both documents over the cap (uncapped, cap 100k = the default, cap 20k); a pair straddling
the cap (the copy is a prefix of the original, under the cap); and how many of the single articles
a mega-document "contains" (containment >= 0.8, what `similarity: containment` would remove).

Usage: python bench/near_dedup_mega.py [--trials 12] [--text PATH]
The last line is one JSON object with the detection rates.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

from filters.minhash import (  # noqa: E402
    MinHashParams,
    ShingleSets,
    band_keys,
    common_hash_range,
    intersection_sizes,
    jaccard_from_sizes,
    minhash_signatures,
    shingle_sets,
)

DEFAULT_TEXT = REPO.parent / "shared" / "data" / "article-extraction" / "ground-truth.json"


def load_texts(path: Path) -> list[str]:
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(raw)
        items = data.values() if isinstance(data, dict) else data
        return [d["articleBody"] if isinstance(d, dict) and "articleBody" in d else d.get("text", "")
                for d in items if d]
    return [json.loads(line).get("text", "") for line in raw.splitlines() if line.strip()]


def capped(sets: ShingleSets, cap: int | None) -> ShingleSets:
    """`shingle_sets(..., max_shingles=cap)` from the whole sets (each document's hashes ascend)."""
    if cap is None:
        return sets
    docs = [sets.doc(i)[:cap] for i in range(len(sets.offsets) - 1)]
    offsets = np.concatenate([[0], np.cumsum([len(d) for d in docs])]).astype(np.int64)
    return ShingleSets(np.concatenate(docs), offsets, sets.cjk)


def jaccard(sets: ShingleSets, cap: int | None) -> float:
    a, b = sets.doc(0), sets.doc(1)
    a_off, b_off = np.array([0, len(a)]), np.array([0, len(b)])
    if cap:
        a, a_off, b, b_off = common_hash_range(a, a_off, b, b_off, cap)
    inter = intersection_sizes(a, a_off, b, b_off)
    return float(jaccard_from_sizes(inter, np.diff(a_off), np.diff(b_off))[0])


def trial(texts: list[str], seed: int, edit: float, keep: float, prefix: float, caps: list[int | None]
          ) -> list[tuple[float, float, bool]]:
    """Per cap: (true Jaccard, verified Jaccard under the cap, found) for one near-copy pair. The
    original is the first `keep` of the shuffled concatenation, the copy its first `prefix` with a
    share `edit` of its words replaced."""
    rng = random.Random(seed)
    order = texts[:]
    rng.shuffle(order)
    words = "\n\n".join(order).split(" ")
    words = words[:int(keep * len(words))]
    copy = list(words)
    for pos in rng.sample(range(len(words)), int(edit * len(words))):
        copy[pos] = words[rng.randrange(len(words))]
    copy = copy[:int(prefix * len(copy))]
    full = shingle_sets(pa.array([" ".join(words), " ".join(copy)]), seed)
    true = jaccard(full, None)
    params = MinHashParams(112, 14, 8, seed)
    out = []
    for cap in caps:
        sets = capped(full, cap)
        keys = band_keys(minhash_signatures(sets, params), params)
        verified = jaccard(sets, cap)
        out.append((true, verified, bool((keys[0] == keys[1]).any()) and verified >= 0.8))
    return out


def contained_articles(texts: list[str], cap: int | None) -> int:
    """Single articles whose shingles are >= 80% inside the concatenation of all of them."""
    docs = pa.array(["\n\n".join(texts), *texts])
    sets = shingle_sets(docs, 0, max_shingles=cap)
    mega = sets.doc(0)
    return sum(len(np.intersect1d(sets.doc(i), mega)) >= 0.8 * max(len(sets.doc(i)), 1)
               for i in range(1, len(texts) + 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    args = ap.parse_args()
    if not args.text.exists():
        sys.exit(f"{args.text}: not found (the shared article-extraction set, or --text PATH)")
    texts = [t for t in load_texts(args.text) if t.strip()]
    chars = sum(len(t) for t in texts)
    n_shingles = len(shingle_sets(pa.array(["\n\n".join(texts)]), 0).doc(0))
    print(f"{len(texts)} real texts, {chars:,} characters; the mega-document has {n_shingles:,} shingles")
    results: dict[str, object] = {"texts": len(texts), "mega_shingles": n_shingles}
    t0 = time.perf_counter()
    caps: list[int | None] = [None, 100_000, 20_000]
    # both over every cap; and a straddling pair: an original of ~108k shingles, its copy a 90%
    # prefix (~97k, under the default cap of 100k)
    cases = [("both_over_cap", 1.0, 1.0, (0.01, 0.02, 0.03)), ("straddling", 0.8, 0.9, (0.003, 0.01))]
    for label, keep, prefix, edits in cases:
        for edit in edits:
            rows = [trial(texts, 1000 * s + int(edit * 1000), edit, keep, prefix, caps) for s in range(args.trials)]
            for c, cap in enumerate(caps):
                true = float(np.mean([r[c][0] for r in rows]))
                est = float(np.mean([r[c][1] for r in rows]))
                found = float(np.mean([r[c][2] for r in rows]))
                key = f"{label}_edit{edit}_cap{cap or 'none'}"
                results[key] = {"true_jaccard": round(true, 3), "verified_jaccard": round(est, 3),
                                "found": round(found, 3)}
                print(f"{label:14s} edit {edit:.3f} cap {cap or 'none':>6}: true J {true:.3f}, "
                      f"verified J {est:.3f}, found {found:.0%} of {args.trials}")
    for cap in (None, 100_000, 20_000):
        n = contained_articles(texts, cap)
        results[f"articles_contained_cap{cap or 'none'}"] = n
        print(f"articles >= 80% contained in the mega-document, cap {cap or 'none'}: {n} of {len(texts)}")
    results["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
