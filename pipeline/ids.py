"""Stable document ids.

A document keeps the id its source gives it. When the source has none, the id is derived from
where the record sits (source name, file path relative to the input's root, 1-based line or row
number), so re-ingesting the same files always yields the same ids, whatever the partitioning.
"""

from __future__ import annotations

import hashlib


def derived_doc_id(source: str, relpath: str, line: int) -> str:
    """Id for a record without its own id: `<source>-<16 hex digits>`."""
    key = f"{source}\x1f{relpath}\x1f{line}".encode()
    return f"{source}-{hashlib.blake2b(key, digest_size=8).hexdigest()}"
