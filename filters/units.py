"""Paragraphs and lines of documents as units for paragraph-level deduplication (CCNet, Dolma).

Two splitters that must agree unit for unit: `unit_keys` (vectorized, every document of a batch,
RE2 through pyarrow) and `split_units` (Python `re`, only for documents being rewritten). The
separators are written so both engines split identically: a paragraph break is a newline, then
one or more lines holding only spaces or tabs followed by a newline; a line break is a newline.
Units are compared after the decontamination normalization (NFKC, lowercase, punctuation removed,
whitespace collapsed), so "Share this page!" and "share this page" are one unit.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.ngrams import normalize
from filters.text import as_string_array
from pipeline.hashing import siphash64

SEPARATORS = {"paragraph": r"\n(?:[ \t]*\n)+", "line": r"\n"}
_PY = {unit: re.compile(f"({pattern})") for unit, pattern in SEPARATORS.items()}


def unit_keys(texts: pa.Array | pa.ChunkedArray, unit: str, min_unit_chars: int = 0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(document, unit index, normalized-text hash, unit characters) of every unit worth keying:
    whose normalized text is not empty and whose stripped text has at least `min_unit_chars`."""
    texts = as_string_array(texts)
    split = pc.split_pattern_regex(texts, SEPARATORS[unit])
    flat = pc.list_flatten(split)
    doc = pc.list_parent_indices(split).to_numpy().astype(np.int64, copy=False)
    lengths = pc.list_value_length(split).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
    index = np.arange(len(flat), dtype=np.int64) - starts
    chars = pc.utf8_length(pc.utf8_trim_whitespace(flat)).to_numpy(zero_copy_only=False).astype(np.int64)
    norm = normalize(flat)
    keep = pc.and_(pc.greater(pc.utf8_length(norm), 0), pc.greater_equal(pa.array(chars), min_unit_chars))
    mask = keep.to_numpy(zero_copy_only=False)
    return doc[mask], index[mask], siphash64(norm.filter(keep)), chars[mask]


def split_units(text: str, unit: str) -> list[str]:
    """`text` as [unit 0, separator 0, unit 1, ...]: units at even positions, `unit_keys`' numbering / 2."""
    return _PY[unit].split(text)


def drop_units(text: str, unit: str, drop: set[int]) -> tuple[str, int]:
    """`text` without the units numbered in `drop` (each takes the separator before it, or after it
    when it is the first unit kept). Returns (text, characters of the dropped units)."""
    parts = split_units(text, unit)
    out: list[str] = []
    removed = 0
    for i in range(0, len(parts), 2):
        piece = parts[i]
        if i // 2 in drop:
            removed += len(piece.strip())
            continue
        if out:
            out.append(parts[i - 1])
        out.append(piece)
    return "".join(out).strip(), removed
