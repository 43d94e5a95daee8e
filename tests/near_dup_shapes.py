"""Planted near-duplicate shapes (a chain, a star, an append-style copy) and a plain-Python reference
of the clustering `near_dedup` documents: components over pairs at or above the threshold, the best
document of each by the survivor rule, members removed only when their own similarity with it
passes, the rest clustered again among themselves. Shared by the local and the Spark tests."""

from __future__ import annotations

import json
import random
import string
import unicodedata
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq


def fresh_words(rng: random.Random, n: int, length: int = 6) -> list[str]:
    """n distinct random lower-case words of one length (edits keep every text's length)."""
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(string.ascii_lowercase) for _ in range(length)))
    return sorted(out)


class Words:
    """A stream of words never used before, so every edit changes exactly the shingles it touches."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.pool = fresh_words(self.rng, 40_000)
        self.rng.shuffle(self.pool)

    def take(self, n: int) -> list[str]:
        out, self.pool = self.pool[:n], self.pool[n:]
        return out


def chain(words: Words, prefix: str, n: int, length: int, per_step: int, spaced: bool = True) -> dict[str, str]:
    """n documents, each `per_step` words away from the previous one (positions never edited twice;
    `spaced`: at least 5 words apart, so each edit changes exactly 5 shingles)."""
    rng = words.rng
    base = words.take(length)
    slots = list(range(6, length - 6, 6)) if spaced else list(range(length))
    rng.shuffle(slots)
    docs = {f"{prefix}{0:02d}": " ".join(base)}
    current = list(base)
    for i in range(1, n):
        for pos, word in zip(slots[:per_step], words.take(per_step), strict=True):
            current[pos] = word
        slots = slots[per_step:]
        docs[f"{prefix}{i:02d}"] = " ".join(current)
    return docs


def star(words: Words, prefix: str, n: int, length: int, per_copy: int) -> dict[str, str]:
    """An original and n - 1 copies, each `per_copy` words away from it (true duplicates of one)."""
    base = words.take(length)
    docs = {f"{prefix}0": " ".join(base)}
    for i in range(1, n):
        copy = list(base)
        for pos in words.rng.sample(range(6, length - 6, 6), per_copy):
            copy[pos] = words.take(1)[0]
        docs[f"{prefix}{i}"] = " ".join(copy)
    return docs


def planted_shapes(seed: int = 4) -> dict[str, str]:
    """A chain of 10 (4 words in 400 per step), a star of 7 (2 words from the original), an
    append-style pair (300 words, then the same 300 plus 150 more) and 10 unrelated documents."""
    words = Words(seed)
    docs = chain(words, "c", 10, 400, 4)
    docs.update(star(words, "s", 7, 400, 2))
    a0 = words.take(300)
    docs["a0"] = " ".join(a0)
    docs["a1"] = " ".join(a0 + words.take(150))
    for i in range(10):
        docs[f"u{i}"] = " ".join(words.take(300))
    return docs


# ----------------------------------------------------------------------------------------------
# the reference


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    t = unicodedata.normalize("NFKD", text)
    t = "".join("0" if unicodedata.category(c) == "Nd" else c for c in t
                if unicodedata.category(c) != "Mn" and unicodedata.category(c)[0] not in "PS").lower()
    toks = t.split()
    return {tuple(toks)} if 0 < len(toks) < n else {tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)}


def similarity(a: set[Any], b: set[Any], measure: str, directed: bool) -> float:
    inter = len(a & b)
    if measure == "jaccard":
        return inter / len(a | b) if a | b else 1.0
    return inter / (len(a) if directed else min(len(a), len(b)))


def reference_clusters(texts: dict[str, str], threshold: float, measure: str = "jaccard") -> dict[str, str]:
    """removed id -> survivor id, with the survivor rule `length desc, id asc`."""
    sets = {k: shingles(v) for k, v in texts.items()}
    ids = sorted(texts)
    edges = {(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]
             if similarity(sets[a], sets[b], measure, directed=False) >= threshold}
    removed: dict[str, str] = {}
    open_ = set(ids)
    while True:
        parent = {k: k for k in open_}

        def find(x: str, parent: dict[str, str] = parent) -> str:
            while parent[x] != x:
                x = parent[x]
            return x

        for a, b in edges:
            if a in open_ and b in open_:
                parent[find(a)] = find(b)
        comps: dict[str, list[str]] = {}
        for k in open_:
            comps.setdefault(find(k), []).append(k)
        comps = {r: m for r, m in comps.items() if len(m) > 1}
        if not comps:
            return removed
        open_ = set()
        for members in comps.values():
            survivor = min(members, key=lambda k: (-len(texts[k]), k))
            for m in members:
                if m == survivor:
                    continue
                if similarity(sets[m], sets[survivor], measure, directed=True) >= threshold:
                    removed[m] = survivor
                else:
                    open_.add(m)


# ----------------------------------------------------------------------------------------------
# running the stage


def write_inputs(root: Path, texts: dict[str, str]) -> list[dict[str, Any]]:
    root.mkdir(parents=True, exist_ok=True)
    rows = sorted(texts.items(), key=lambda kv: kv[0][::-1])  # ids not in input order
    (root / "docs.jsonl").write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in rows))
    return [{"name": "d", "path": str(root / "docs.jsonl"), "format": "jsonl", "id_field": "id"}]


def outcome(out: Path) -> dict[str, dict[str, Any]]:
    """id -> {dup_of, dup_cluster, dup_count, reason} over kept and removed documents."""
    rows: dict[str, dict[str, Any]] = {}
    for sub in ("data", "removed"):
        for f in sorted((out / "near_dedup" / sub).glob("*.parquet")):
            t = pq.read_table(f)
            cols = [c for c in ("dup_of", "dup_cluster", "dup_count", "reason") if c in t.column_names]
            for r in t.select(["id", *cols]).to_pylist():
                key = r.pop("id")
                rows[key] = {"reason": None, **r}
    return rows
