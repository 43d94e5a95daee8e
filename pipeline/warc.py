"""Raw web input: WARC, WET and HTML files to documents (read with FastWARC, decoded with Resiliparse).

Only `response` records with HTTP status 200 and an HTML content type become documents (WET:
`conversion` records); every other record is counted as `Skipped(reason)`: it is not a document,
so it is neither kept nor quarantined. A record that cannot be read (a truncated or corrupt gzip
member, broken headers) is quarantined with its file and byte offset, and reading resumes at the
next record boundary, so one bad record never costs the rest of a crawl file.

Documents from HTML carry the decoded page in an `html` column (as UTF-8 bytes where the page is
UTF-8 already, see `html_column_value`) and an empty `text` until the `extract` stage fills it; the
id is the record's `WARC-Record-ID`, the url its `WARC-Target-URI`.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from pipeline import storage
from pipeline.ids import derived_doc_id
from pipeline.schema import DOC_FIELDS

HTML_FORMATS = ("warc", "html")  # formats whose documents carry an `html` column for `extract`
WEB_FORMATS = ("warc", "wet", "html")
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
WEB_DOC_SCHEMA = pa.schema([*DOC_FIELDS, pa.field("html", pa.string())])
_GZIP_MAGIC = b"\x1f\x8b\x08"
_SCAN_CHUNK = 1 << 20
_META_CHARSET = re.compile(rb"<meta[^>]+charset\s*=", re.IGNORECASE)


@dataclass(frozen=True)
class Skipped:
    """A record that is not a document (request, non-200, non-HTML...); counted per reason."""

    reason: str


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be read, at `offset` in its file."""

    offset: int
    error: str
    record_id: str | None = None


# -- decoding ------------------------------------------------------------------------------------
def page_charset(body: bytes, declared: str | None) -> tuple[str, str]:
    """The page's charset and how it was found (http | meta | detected).

    A charset the server declared wins (unless Python knows no codec by that name: servers send
    typos, and the page is then read as if none was declared); otherwise the page's own
    `<meta charset>`, otherwise Resiliparse's detector (uchardet-style statistics over the first 128 KiB)."""
    if declared and _codec_name(declared) is not None:
        return declared, "http"
    from resiliparse.parse.encoding import detect_encoding

    how = "meta" if _META_CHARSET.search(body[:1024]) else "detected"
    return detect_encoding(body, from_html_meta=how == "meta") or "utf-8", how


def decode_html(body: bytes, declared: str | None) -> tuple[str, str, str]:
    """Bytes -> (text, charset, how the charset was found: http | meta | detected; see `page_charset`).

    Undecodable bytes fall back to UTF-8, then cp1252, then become U+FFFD (never an error)."""
    charset, how = page_charset(body, declared)
    return _decoded(body, charset), charset, how


def html_column_value(body: bytes, declared: str | None) -> tuple[str | bytes, str, str]:
    """`decode_html` for the `html` column: a page in a UTF-8 charset whose bytes are valid UTF-8 comes back
    as those bytes (the BOM dropped, as `decode_html` drops it), which Arrow stores as the same string.

    Most of the web is UTF-8, and a decoded page with any character beyond Latin-1 is a UCS-2/UCS-4 Python
    string that Arrow must encode back to UTF-8 one character at a time: on real crawls that round trip
    cost more CPU than reading, decompressing and digest-checking the WARC together. Other pages are
    decoded (their charset, or the fallbacks)."""
    charset, how = page_charset(body, declared)
    if _codec_name(charset) == "utf-8":
        data = body[3:] if body.startswith(_UTF8_BOM) else body
        if _valid_utf8(data):
            return data, charset, how
    return _decoded(body, charset), charset, how


def _decoded(body: bytes, charset: str) -> str:
    from resiliparse.parse.encoding import bytes_to_str

    return bytes_to_str(body, charset, errors="replace", fallback_encodings=("utf-8", "cp1252"))


_UTF8_BOM = b"\xef\xbb\xbf"


def _codec_name(charset: str) -> str | None:
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return None


def _valid_utf8(data: bytes) -> bool:
    """Arrow's UTF-8 validation (what its string column would do anyway), without making a Python str."""
    try:
        pa.array([data], pa.string())
    except pa.ArrowInvalid:
        return False
    return True


def decode_text(body: bytes) -> tuple[str, str]:
    """Plain text (WET) -> (text, charset): UTF-8 when valid, else detected."""
    try:
        return body.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding

        charset = detect_encoding(body) or "utf-8"
        return bytes_to_str(body, charset, errors="replace"), charset


# -- record boundaries (recovery after a bad record) ---------------------------------------------
def _open(path: str) -> Any:
    return storage.location(path).open("rb") if storage.is_remote_uri(path) else open(path, "rb")


def _member_end(path: str, start: int) -> int | None:
    """End offset of the gzip member starting at `start` (None if it does not end cleanly)."""
    with _open(path) as fh:
        fh.seek(start)
        dec = zlib.decompressobj(31)
        pos = start
        while chunk := fh.read(_SCAN_CHUNK):
            try:
                dec.decompress(chunk)
            except zlib.error:
                return None
            if dec.eof:
                return pos + len(chunk) - len(dec.unused_data)
            pos += len(chunk)
    return None


def _plain_record_end(path: str, start: int) -> int | None:
    """End offset of the uncompressed WARC record starting at `start`, from its Content-Length."""
    with _open(path) as fh:
        fh.seek(start)
        head = fh.read(65536)
    cut = head.find(b"\r\n\r\n")
    if cut < 0:
        return None
    for line in head[:cut].split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length" and value.strip().isdigit():
            return start + cut + 4 + int(value) + 4
    return None


def _is_record_start(path: str, offset: int, gz: bool) -> bool:
    with _open(path) as fh:
        fh.seek(offset)
        head = fh.read(4096 if gz else 16)
    if not gz:
        return head.startswith((b"WARC/1.0\r\n", b"WARC/1.1\r\n"))
    try:
        return zlib.decompressobj(31).decompress(head, 16).startswith(b"WARC/")
    except zlib.error:
        return False


def next_record_start(path: str, after: int, gz: bool) -> int | None:
    """The first offset > `after` where a readable record begins (gzip member or `WARC/1.x` line)."""
    needle = _GZIP_MAGIC if gz else b"WARC/1."
    with _open(path) as fh:
        pos = after + 1
        fh.seek(pos)
        carry = b""
        while chunk := fh.read(_SCAN_CHUNK):
            data = carry + chunk
            base = pos - len(carry)
            i = data.find(needle)
            while i >= 0:
                if _is_record_start(path, base + i, gz):
                    return base + i
                i = data.find(needle, i + 1)
            carry = data[-(len(needle) - 1):]
            pos += len(chunk)
    return None


# -- reading --------------------------------------------------------------------------------------
def iter_records(path: str, gz: bool) -> Generator[Any, str | None, None]:
    """Yield each FastWARC record, or a BadRecord where one cannot be read; then go on after it.

    The consumer must finish with a record before asking for the next one; an error it raises
    while reading the record's payload is the iterator's to report (see `read_warc`)."""
    from fastwarc.warc import ArchiveIterator

    start = 0
    while True:
        last: int | None = None
        bad: BadRecord | None = None
        with _open(path) as fh:
            fh.seek(start)
            records = ArchiveIterator(fh, parse_http=False, stream_detect=gz)
            try:
                for record in records:
                    last = record.stream_pos
                    failure = yield record
                    if failure is not None:  # the consumer could not read this record's payload
                        bad = BadRecord(last, failure, record.record_id)
                        break
            except OSError as exc:
                offset = start if last is None else (_member_end(path, last) if gz else _plain_record_end(path, last))
                bad = BadRecord(start if offset is None else offset, f"{type(exc).__name__}: {exc}")
        if bad is None:
            return
        yield bad
        nxt = next_record_start(path, bad.offset, gz)
        if nxt is None:
            return
        start = nxt


def _meta_json(meta: dict[str, Any]) -> str:
    return json.dumps(meta, ensure_ascii=False, default=str)


def record_to_doc(record: Any, fmt: str, source: str, relpath: str, number: int, offset: int
                  ) -> dict[str, Any] | Skipped:
    """One FastWARC record -> a document row, or Skipped(reason). OSError/ValueError = a bad record."""
    if "Content-Length" not in record.headers:  # a gzip member cut inside the WARC headers
        raise ValueError("incomplete WARC headers (no Content-Length): the record is truncated")
    rtype = str(record.record_type)
    want = "conversion" if fmt == "wet" else "response"
    if rtype != want:
        return Skipped(f"record_type:{rtype}")
    headers = record.headers
    if "WARC-Block-Digest" in headers and not record.verify_block_digest():
        raise ValueError("WARC-Block-Digest does not match: the record is truncated or corrupt")
    meta: dict[str, Any] = {"file": relpath, "line": number, "offset": offset, "warc_date": headers.get("WARC-Date")}
    if fmt == "wet":
        body = record.reader.read()
        text, charset = decode_text(body)
        meta.update(content_type=headers.get("Content-Type"), charset=charset)
        html = None
    else:
        record.parse_http(auto_decode="all")
        status = record.http_headers.status_code if record.http_headers is not None else None
        if status is None:
            raise ValueError("response record without an HTTP status line (truncated or not HTTP)")
        if status != 200:
            return Skipped(f"http_status:{status}")
        ctype = (record.http_content_type or "").lower() or None
        if ctype not in HTML_TYPES:
            return Skipped(f"content_type:{ctype}")
        body = record.reader.read()
        html, charset, how = html_column_value(body, record.http_charset)
        text = ""
        meta.update(content_type=ctype, charset=charset, charset_from=how)
    if record.record_id is None:
        raise ValueError("record has no WARC-Record-ID")
    return {"id": record.record_id, "text": text, "source": source, "url": headers.get("WARC-Target-URI"),
            "meta": _meta_json(meta), "html": html}


def read_warc(source: str, path: str, relpath: str, fmt: str) -> Iterator[tuple[int, Any]]:
    """Yield (record number, document | Skipped | BadRecord) for every record of a WARC/WET file."""
    gz = path.endswith((".gz", ".gzip"))
    records = iter_records(path, gz)
    number = 0
    item = next(records, None)
    while item is not None:
        number += 1
        if isinstance(item, BadRecord):
            yield number, item
            item = next(records, None)
            continue
        try:
            out = record_to_doc(item, fmt, source, relpath, number, item.stream_pos)
        except (OSError, ValueError, UnicodeError) as exc:
            bad = records.send(f"{type(exc).__name__}: {exc}")  # the iterator answers with this record's BadRecord
            yield number, bad
            item = next(records, None)
            continue
        yield number, out
        item = next(records, None)


def _sidecar(path: str) -> dict[str, Any] | None:
    """`page.html.json` or `page.json` beside an HTML file: its url (and other fields)."""
    stem, _ = os.path.splitext(path)
    for candidate in (f"{path}.json", f"{stem}.json"):
        if os.path.isfile(candidate):
            with open(candidate, encoding="utf-8") as fh:
                data = json.load(fh)
            if not isinstance(data, dict):
                raise ValueError(f"sidecar {os.path.basename(candidate)} is not a JSON object")
            return data
    return None


def html_file_to_doc(source: str, path: str, relpath: str, url_field: str | None, id_field: str | None
                     ) -> dict[str, Any]:
    """One HTML file -> a document; url from the sidecar's `url_field`, else the file's relative path."""
    with _open(path) as fh:
        body = fh.read()
    html, charset, how = html_column_value(body, None)
    side = (_sidecar(path) if not storage.is_remote_uri(path) else None) or {}
    url = side.get(url_field) if url_field else None
    if url is not None and not isinstance(url, str):
        raise ValueError(f"sidecar {url_field} must be a string, got {type(url).__name__}")
    doc_id = side.get(id_field) if id_field else None
    if doc_id is None:
        doc_id = derived_doc_id(source, relpath, 1)
    meta: dict[str, Any] = {"file": relpath, "line": 1, "charset": charset, "charset_from": how}
    rest = {k: v for k, v in side.items() if k not in (url_field, id_field)}
    if rest:
        meta["fields"] = rest
    return {"id": str(doc_id), "text": "", "source": source, "url": url or relpath, "meta": _meta_json(meta),
            "html": html}
