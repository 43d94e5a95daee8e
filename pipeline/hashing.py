"""One keyed 64-bit hash of strings for every place that needs a stable one (dedup keys, shuffle
order, MinHash tokens): SipHash-2-4 through pandas, vectorized and the same on every run and host."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_KEY = "0123456789123456"  # pandas' own default SipHash key: hashes stay what they always were


def _is_text(t: pa.DataType) -> bool:
    return (pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t)
            or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t))


def siphash64(values: pa.Array | pa.ChunkedArray | list, key: str = DEFAULT_KEY) -> np.ndarray:
    """uint64 SipHash of each string/bytes value under a 16-character `key` (nulls hash like None).
    Arrow text and binary arrays (exact_dedup's digests, ids, urls: the hash buckets of `group_by_key`)
    reach pandas as objects without a Python list; integers hash as pandas hashes Python ints, by their
    decimal text, built by Arrow."""
    if isinstance(values, pa.Array | pa.ChunkedArray):
        if pa.types.is_integer(values.type):
            # pandas hashes an integer object by its str(); Arrow's cast gives the same decimal text
            values = pc.cast(values, pa.string())
        if _is_text(values.type):
            objs = values.to_numpy(zero_copy_only=False)  # str/bytes objects without a Python list
        else:
            objs = np.asarray(values.to_pylist(), dtype=object)
    else:
        objs = np.asarray(values, dtype=object)
    if len(objs) == 0:
        return np.zeros(0, dtype=np.uint64)
    import pandas as pd  # local: pandas costs ~0.6 s at import, and `curate validate` loads this module

    return pd.util.hash_array(objs, hash_key=key, categorize=False)


def u64_key(value: int) -> str:
    """A SipHash key from a 64-bit integer (a seed)."""
    return f"{value & 0xFFFFFFFFFFFFFFFF:016x}"
