"""Keys of the token n-grams inside each document of a batch, for the repetition filters (Gopher's
duplicated and top n-gram fractions) over either view of the text: this project's words
(`filters.text.TextBatch`) or datatrove's tokens (`filters.compat.DatatroveText`)."""

from __future__ import annotations

import numpy as np


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads small integer ids over 64 bits before polynomial hashing."""
    x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def ngram_hashes(ids: np.ndarray, doc: np.ndarray, n: int, cache: dict) -> tuple[np.ndarray, np.ndarray]:
    """(start positions, 64-bit keys) of every n-gram of `ids` that lies inside one document.

    Keys are polynomial hashes seeded with the document index, so equal keys mean the same
    n-gram in the same document (up to 2^-64 collisions). Asking for n = 2, 3, ... in turn
    extends the previous hashes (kept in `cache`) by one token each time.
    """
    w = len(ids)
    m = w - n + 1
    if m <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    if "mixed" not in cache:
        cache["mixed"] = _mix64(ids)
        cache["seed"] = _mix64(doc.astype(np.uint64) + np.uint64(1 << 40))
    mixed = cache["mixed"]
    prime = np.uint64(0x100000001B3)
    last_n, h = cache.get("state", (0, None))
    if last_n == 0 or last_n >= n:
        last_n, h = 0, cache["seed"]
    with np.errstate(over="ignore"):
        for j in range(last_n, n):
            h = h[: w - j] * prime + mixed[j:]
    cache["state"] = (n, h)
    pos = np.flatnonzero(doc[:m] == doc[n - 1:])
    return pos, h[pos]
