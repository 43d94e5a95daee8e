"""Writer for Megatron's indexed dataset (`.bin` + `.idx`, the MMIDIDX layout, version 1).

`.bin` holds every sequence's tokens back to back; `.idx` holds a header, the sequence lengths
(int32), their byte offsets into `.bin` (int64) and the document index (int64, 0..N for one
sequence per document). Layout facts from REFERENCE.md; checked in tests with megatron-core's reader.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from pipeline import storage
from pipeline.io import atomic_open

MAGIC = b"MMIDIDX\x00\x00"
VERSION = 1
DTYPE_CODES: dict[type, int] = {np.uint8: 1, np.int8: 2, np.int16: 3, np.int32: 4, np.int64: 5,
                                np.float64: 6, np.float32: 7, np.uint16: 8}


def dtype_for_vocab(vocab_size: int) -> type:
    """Megatron's rule: uint16 below 65,500 tokens, else int32."""
    return np.uint16 if vocab_size < 65500 else np.int32


def write_indexed_dataset(prefix: str | Path, tokens: np.ndarray, lengths: np.ndarray, dtype: type) -> None:
    """Write `prefix.bin` then `prefix.idx` (the index last: its presence marks a complete pair)."""
    prefix = storage.location(prefix)
    data: np.ndarray = np.asarray(tokens).astype(dtype, copy=False)
    lengths = np.asarray(lengths, dtype=np.int64)
    if int(lengths.sum()) != len(data):
        raise ValueError("lengths do not add up to the number of tokens")
    itemsize = np.dtype(dtype).itemsize
    pointers = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        pointers[1:] = np.cumsum(lengths[:-1]) * itemsize
    n = len(lengths)
    with atomic_open(storage.location(f"{prefix}.bin"), "wb") as fh:
        fh.write(data.tobytes(order="C"))
    with atomic_open(storage.location(f"{prefix}.idx"), "wb") as fh:
        fh.write(MAGIC)
        fh.write(struct.pack("<Q", VERSION))
        fh.write(struct.pack("<B", DTYPE_CODES[dtype]))
        fh.write(struct.pack("<Q", n))
        fh.write(struct.pack("<Q", n + 1))
        fh.write(lengths.astype("<i4").tobytes())
        fh.write(pointers.astype("<i8").tobytes())
        fh.write(np.arange(n + 1, dtype="<i8").tobytes())
