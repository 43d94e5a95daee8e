"""WARC files for tests, written with FastWARC (the library ingest reads them with): one gzip member
per record as in Common Crawl, so a test can truncate exactly one record."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from fastwarc.stream_io import GzipWriter
from fastwarc.warc import WarcRecord, WarcRecordType


@dataclass
class Rec:
    """What to write: WARC type, target URI, HTTP status and content type (None = not HTTP), body."""

    type: str = "response"
    url: str = "http://example.com/"
    status: int | None = 200
    content_type: str | None = "text/html; charset=utf-8"
    body: bytes = b"<html><body><p>Hello</p></body></html>"
    truncate: bool = False  # cut this record's gzip member in half


def record_bytes(rec: Rec, gz: bool) -> tuple[bytes, str]:
    """One record serialized (a gzip member when `gz`) and its WARC-Record-ID."""
    record = WarcRecord()
    record.init_headers(getattr(WarcRecordType, rec.type))
    record.headers["WARC-Target-URI"] = rec.url
    if rec.status is not None:
        reason = {200: "OK", 404: "Not Found", 301: "Moved Permanently", 500: "Server Error"}.get(rec.status, "X")
        head = f"HTTP/1.1 {rec.status} {reason}\r\n"
        if rec.content_type:
            head += f"Content-Type: {rec.content_type}\r\n"
        payload = (head + f"Content-Length: {len(rec.body)}\r\n\r\n").encode() + rec.body
        record.set_bytes_content(payload)
        record.is_http = True
        record.headers["Content-Type"] = "application/http; msgtype=" + ("request" if rec.type == "request" else
                                                                         "response")
    else:
        record.set_bytes_content(rec.body)
        if rec.content_type:
            record.headers["Content-Type"] = rec.content_type
    buf = io.BytesIO()
    if gz:
        writer = GzipWriter(buf)
        record.write(writer, checksum_data=True)
        writer.close()
    else:
        record.write(buf, checksum_data=True)
    data = buf.getvalue()
    if rec.truncate:
        data = data[: len(data) // 2]
    return data, str(record.record_id)


def write_warc(path: Path, recs: list[Rec]) -> list[tuple[str, int]]:
    """Write `recs` to `path` (gzip when it ends in .gz); returns each record's (id, offset)."""
    out = []
    with open(path, "wb") as fh:
        for rec in recs:
            data, rid = record_bytes(rec, str(path).endswith(".gz"))
            out.append((rid, fh.tell()))
            fh.write(data)
    return out
