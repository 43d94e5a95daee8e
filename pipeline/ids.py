"""Stable document ids.

A document keeps the id its source gives it. When the source has none, the id is derived from
where the record sits (source name, file path relative to the input's root, 1-based line or row
number), so re-ingesting the same files always yields the same ids, whatever the partitioning.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.storage import arrow

ID_CHECK_ROWS = 5_000_000  # ids `ids_distinct` holds in memory at most (with its hash table about 0.5 GB)


def derived_doc_id(source: str, relpath: str, line: int) -> str:
    """Id for a record without its own id: `<source>-<16 hex digits>`."""
    key = f"{source}\x1f{relpath}\x1f{line}".encode()
    return f"{source}-{hashlib.blake2b(key, digest_size=8).hexdigest()}"


def ids_distinct(partitions: Sequence[Path | str], limit: int = ID_CHECK_ROWS) -> bool:
    """True when no id occurs twice in the `id` columns of `partitions`, checked exactly by one Arrow
    hash pass in memory (0.1 s for 200,000 ids, where the disk-backed group-by that also says which
    rows repeat took a second of spilled buckets). False when an id repeats, or when the partitions
    hold more than `limit` rows: the caller then runs that group-by."""
    total = sum(pq.ParquetFile(arrow(p)).metadata.num_rows for p in partitions)
    if total > limit:
        return False
    if total == 0:
        return True
    ids = pa.chunked_array([c for p in partitions for c in pq.read_table(arrow(p), columns=["id"]).column("id").chunks],
                           pa.string())
    return pc.count_distinct(ids).as_py() == total
