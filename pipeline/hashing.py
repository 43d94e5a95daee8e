"""The one keyed 64-bit hash of strings for every place that needs a stable one: SipHash-2-4 through
pandas, vectorized and the same on every run and host.

Users: `group_by_key`'s hash buckets, exact and paragraph dedup keys, decontamination n-grams, MinHash
word tokens and the near-dup survivor order (keys derived from the seed and a purpose), and the
seeded shuffle order of shard, mix and synth (`shuffle_keys`). Changing anything here changes output
bytes; `tests/test_hashing.py` pins the values.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DEFAULT_KEY = "0123456789123456"  # pandas' own default SipHash key: hashes stay what they always were
U64 = 0xFFFFFFFFFFFFFFFF


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


def derive_seed(seed: int, purpose: str) -> int:
    """A 64-bit constant from the pipeline seed and a purpose string (stable across runs), so the
    hashes and permutations drawn for different purposes from one seed are independent."""
    digest = hashlib.blake2b(f"{purpose}:{seed}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def seed_key(seed: int, purpose: str | None = None) -> str:
    """The SipHash key for a seed: its own low 64 bits (the shuffle order), or with `purpose` the
    derived constant `derive_seed(seed, purpose)` (MinHash tokens, the near-dup order)."""
    value = derive_seed(seed, purpose) if purpose is not None else seed & U64
    return f"{value:016x}"


def shuffle_keys(ids: pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """uint64 sort key per id for seed `seed`: the global shuffle of shard, the epoch cut of mix and the
    sample of synth (stable across runs, independent of partitioning)."""
    return siphash64(ids, seed_key(seed))
