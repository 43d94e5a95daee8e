"""The graph half of MinHash-LSH dedup: candidate edges from band buckets, and connected components.

Nodes are dense integers (a document's global row number), so components are a numpy parent array
of a few bytes per document, whatever the text size. Everything is vectorized over edge batches.
"""

from __future__ import annotations

import numpy as np


def window_edges(keys: np.ndarray, nodes: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate edges from rows sorted by band key: each member of a key group is linked to up to
    `window` members before it (all pairs for groups up to window + 1).

    Linking to a few predecessors instead of all pairs keeps every node's degree bounded (a
    boilerplate page shared by 100k documents gives ~window·100k edges, not 5·10⁹) while one false
    positive inside a group cannot cut it in two (the next member still links past it). Returned as
    (u, v) with u < v; duplicates across bands are left for the caller to drop.
    """
    n = len(keys)
    if n < 2:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    starts = np.ones(n, dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=starts[1:])
    idx = np.arange(n)
    group_start = np.maximum.accumulate(np.where(starts, idx, 0))
    pos = idx - group_start
    us, vs = [], []
    for d in range(1, window + 1):
        m = np.flatnonzero(pos >= d)
        if len(m) == 0:
            break
        a, b = nodes[m - d], nodes[m]
        us.append(np.minimum(a, b))
        vs.append(np.maximum(a, b))
    if not us:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    u, v = np.concatenate(us).astype(np.int64), np.concatenate(vs).astype(np.int64)
    keep = u != v
    return u[keep], v[keep]


def unique_edges(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated (u, v) pairs (the same pair found in several bands)."""
    if len(u) < 2:
        return u, v
    order = np.lexsort((v, u))
    u, v = u[order], v[order]
    keep = np.ones(len(u), dtype=bool)
    keep[1:] = (u[1:] != u[:-1]) | (v[1:] != v[:-1])
    return u[keep], v[keep]


class UnionFind:
    """Vectorized union-find over 0..n-1: parents always point to a smaller id, so the root of a
    component is its smallest member and no cycles can form.

    `union` hooks roots in rounds (each root takes the smallest root it is linked to) and
    compresses paths by pointer doubling, so chains and stars both finish in a few numpy passes.
    """

    def __init__(self, n: int):
        dtype = np.int32 if n < 2**31 else np.int64
        self.parent = np.arange(n, dtype=dtype)

    def _compress(self) -> None:
        p = self.parent
        while True:
            pp = p[p]
            if np.array_equal(pp, p):
                break
            p = pp
        self.parent = p

    def find(self, x: np.ndarray) -> np.ndarray:
        r = self.parent[np.asarray(x)]
        while True:
            rr = self.parent[r]
            if np.array_equal(rr, r):
                return r
            r = self.parent[rr]

    def union(self, u: np.ndarray, v: np.ndarray) -> None:
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        while len(u):
            ru, rv = self.find(u), self.find(v)
            diff = ru != rv
            if not diff.any():
                break
            u, v, ru, rv = u[diff], v[diff], ru[diff], rv[diff]
            lo, hi = np.minimum(ru, rv), np.maximum(ru, rv)
            np.minimum.at(self.parent, hi, lo.astype(self.parent.dtype))
            self._compress()

    def roots(self) -> np.ndarray:
        """Component label (smallest member) of every node."""
        self._compress()
        return self.parent

    def in_cluster(self) -> np.ndarray:
        """True for nodes whose component has at least two members."""
        roots = self.roots()
        sizes = np.bincount(roots, minlength=len(roots))
        return sizes[roots] > 1
