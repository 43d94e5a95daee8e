"""The document schema every stage reads and writes (DESIGN.md section 2)."""

from __future__ import annotations

import pyarrow as pa

DOC_FIELDS: list[pa.Field] = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("meta", pa.string()),  # JSON: provenance (file, line) and the record's other fields
]
DOC_SCHEMA = pa.schema(DOC_FIELDS)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("source", pa.string()),
        pa.field("file", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("field", pa.string()),
        pa.field("error", pa.string()),
        pa.field("raw", pa.large_binary()),
        pa.field("id", pa.string()),
        pa.field("offset", pa.int64()),  # byte offset of a WARC record that could not be read
    ]
)

REASON = "reason"


def reason_key(reason: str) -> str:
    """Group removal reasons for counting: `exact_dup:of=abc` counts as `exact_dup`."""
    cut = reason.find(":of=")
    return reason if cut < 0 else reason[:cut]
