"""Embedding columns and exact integer arithmetic on them.

Embeddings travel as `fixed_size_list<float16>[dim]` columns. Decisions over them (k-means
assignments, cosine thresholds) must not depend on how documents are partitioned or how many
workers sum them, and float sums do. So vectors are put on a fixed-point grid (`SCALE` steps per
unit): integer-valued float64 products and sums stay below 2^53, where float64 arithmetic is exact
in any order, and centroid sums are int64 sums. Same inputs, same bits, whatever the partitioning.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

SCALE = float(1 << 14)  # float16 has 11 significant bits; components of unit vectors lie in [-1, 1]


def embedding_type(dim: int) -> pa.DataType:
    return pa.list_(pa.float16(), dim)


def to_column(vectors: np.ndarray) -> pa.Array:
    """(n, dim) floats -> fixed_size_list<float16>[dim] (one contiguous float16 buffer)."""
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float16).ravel(), pa.float16())
    return pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])


def from_column(col: pa.Array | pa.ChunkedArray, dtype: Any = np.float32) -> np.ndarray:
    """A fixed-size list column -> (n, dim) array (nulls become zero vectors)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    dim = col.type.list_size
    if len(col) == 0:
        return np.zeros((0, dim), dtype=dtype)
    values = col.flatten().to_numpy(zero_copy_only=False)  # flatten skips null entries' slots
    if col.null_count:
        out = np.zeros((len(col), dim), dtype=dtype)
        valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        out[valid] = values.reshape(-1, dim)
        return out
    return values.reshape(len(col), dim).astype(dtype, copy=False)


def fixed_point(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors on the integer grid, as integer-valued float64 (exact products in BLAS)."""
    return np.rint(np.asarray(vectors, dtype=np.float64) * SCALE)


def unit_fixed_point(sums: np.ndarray) -> np.ndarray:
    """Integer sums of grid vectors -> their directions on the grid (zero rows stay zero)."""
    s = np.asarray(sums, dtype=np.float64)
    norms = np.sqrt((s * s).sum(axis=1, keepdims=True))
    return np.rint(np.divide(s, norms, out=np.zeros_like(s), where=norms > 0) * SCALE)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine matrix of grid vectors (rows of `a` against rows of `b`), identical for any blocking:
    dot products and squared norms are exact integers; division and sqrt are per element."""
    dots = a @ b.T
    na = np.sqrt((a * a).sum(axis=1))
    nb = np.sqrt((b * b).sum(axis=1))
    denom = np.outer(na, nb)
    return np.divide(dots, denom, out=np.zeros_like(dots), where=denom > 0)
