"""Web ingest: WARC (gzip and plain), WET and HTML files written with FastWARC; non-documents counted per
reason, truncated records quarantined with file and offset, every record accounted for exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import InputConfig
from pipeline.ingest import InputFile, ingest_file, list_input_files
from tests.warc_util import Rec, write_warc

PAGE = b"<html><head><title>T</title></head><body><article><p>Hello web page %d.</p></article></body></html>"
CP1251 = "<html><head><meta charset='windows-1251'></head><body><p>Привет, мир! Это страница.</p></body></html>"
UNDECLARED = "<html><body><p>Это страница без объявленной кодировки, но с русским текстом внутри.</p></body></html>"


def crawl() -> list[Rec]:
    """Every kind of record a crawl file has, two of them truncated (one mid-file, one at the end)."""
    return [
        Rec("warcinfo", status=None, content_type="application/warc-fields", body=b"software: test\r\n"),
        Rec("request", status=None, content_type="application/http; msgtype=request",
            body=b"GET /1 HTTP/1.1\r\nHost: a.example\r\n\r\n"),
        Rec(url="http://a.example/1", body=PAGE % 1),
        Rec("metadata", status=None, content_type="application/warc-fields", body=b"fetchTimeMs: 12\r\n"),
        Rec(url="http://a.example/missing", status=404, body=b"<html>not found</html>"),
        Rec(url="http://a.example/moved", status=301, body=b""),
        Rec(url="http://a.example/logo.png", content_type="image/png", body=b"\x89PNG\r\n\x1a\n"),
        Rec(url="http://a.example/data.json", content_type="application/json", body=b"{}"),
        Rec("revisit", url="http://a.example/1", body=b""),
        Rec(url="http://a.example/ru", content_type="text/html", body=CP1251.encode("cp1251")),
        Rec(url="http://a.example/cut", body=PAGE % 99 + b"<p>" + b"more words " * 300 + b"</p>", truncate=True),
        Rec(url="http://a.example/undeclared", content_type="text/html", body=UNDECLARED.encode("cp1251")),
        Rec(url="http://a.example/xhtml", content_type="application/xhtml+xml", body=PAGE % 3),
        Rec(url="http://a.example/end", body=PAGE % 4, truncate=True),
    ]


def _ingest(tmp_path: Path, path: Path, fmt: str = "warc", **kw: str) -> tuple[dict, list[dict], list[dict]]:
    """Ingest every file of one input; (merged counts, documents, quarantine rows) in file order."""
    inp = InputConfig(name="crawl", path=str(path), format=fmt, **kw)
    stage = tmp_path / "out" / "ingest"
    merged: dict = {"records": 0, "quarantined": 0, "by_reason": {}, "skipped": {}}
    bad: list[dict] = []
    for f in list_input_files([inp]):
        result = ingest_file((f, stage, 1000, "h"))
        merged["records"] += result["records"]
        merged["quarantined"] += result["quarantined"]
        for key in ("by_reason", "skipped"):
            for k, v in result[key].items():
                merged[key][k] = merged[key].get(k, 0) + v
        qfile = stage.parent / "quarantine" / f"{f.prefix}.parquet"
        bad += pq.read_table(qfile).to_pylist() if qfile.exists() else []
    docs = [d for p in sorted((stage / "_raw").glob("*.parquet")) for d in pq.read_table(p).to_pylist()]
    return merged, docs, bad


@pytest.mark.parametrize("name", ["crawl.warc.gz", "crawl.warc"])
def test_warc_records_become_documents_skips_or_quarantine(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    written = write_warc(path, crawl())
    result, docs, bad = _ingest(tmp_path, path)
    by_url = {d["url"]: d for d in docs}
    assert sorted(by_url) == ["http://a.example/1", "http://a.example/ru", "http://a.example/undeclared",
                              "http://a.example/xhtml"]
    assert result["skipped"] == {"content_type:application/json": 1, "content_type:image/png": 1,
                                 "http_status:301": 1, "http_status:404": 1, "record_type:metadata": 1,
                                 "record_type:request": 1, "record_type:revisit": 1, "record_type:warcinfo": 1}
    assert result["records"] == 6 and result["quarantined"] == 2
    assert result["by_reason"] == {"quarantine:unreadable_record": 2}
    # quarantined with the file and the record's byte offset; the records after the cut one are read
    offsets = {rid: off for rid, off in written}
    assert [(q["file"], q["offset"], q["line"]) for q in bad] == [(name, written[10][1], 11),
                                                                   (name, written[13][1], 14)]
    assert all(q["error"].startswith(f"unreadable record at offset {q['offset']}") for q in bad)
    # id = WARC-Record-ID, meta keeps date, content type, charset, file and offset
    doc = by_url["http://a.example/1"]
    meta = json.loads(doc["meta"])
    assert doc["id"] == written[2][0] and doc["text"] == "" and "Hello web page 1." in doc["html"]
    assert meta["offset"] == offsets[doc["id"]] and meta["file"] == name and meta["line"] == 3
    assert meta["content_type"] == "text/html" and meta["charset"] == "utf-8" and meta["charset_from"] == "http"
    assert meta["warc_date"].startswith("20")
    ru = json.loads(by_url["http://a.example/ru"]["meta"])
    assert (ru["charset"], ru["charset_from"]) == ("cp1251", "meta") and "Привет, мир!" in by_url["http://a.example/ru"]["html"]
    und = by_url["http://a.example/undeclared"]
    assert json.loads(und["meta"])["charset_from"] == "detected" and "русским текстом" in und["html"]
    # every record exactly once: a document, a skip or a quarantine row
    ids = [d["id"] for d in docs] + [q["id"] for q in bad if q["id"]]
    assert len(ids) == len(set(ids))
    assert len(docs) + sum(result["skipped"].values()) + len(bad) == len(written)


def test_every_truncation_point_loses_only_that_record(tmp_path: Path) -> None:
    """Cut one gzip member at many points: that record is quarantined, every other one is read."""
    recs = [Rec(url=f"http://b.example/{i}", body=PAGE % i) for i in range(4)]
    path = tmp_path / "x.warc.gz"
    written = write_warc(path, recs)
    data = path.read_bytes()
    start, end = written[1][1], written[2][1]
    for cut in range(start + 5, end - 1, 17):
        broken = tmp_path / "cut" / f"c{cut}.warc.gz"
        broken.parent.mkdir(exist_ok=True)
        broken.write_bytes(data[:cut] + data[end:])
        result, docs, bad = _ingest(tmp_path / f"o{cut}", broken)
        assert [d["url"] for d in docs] == ["http://b.example/0", "http://b.example/2", "http://b.example/3"], cut
        assert [q["offset"] for q in bad] == [start], cut
        assert result["skipped"] == {}


def test_wet_conversion_records_are_text_documents(tmp_path: Path) -> None:
    path = tmp_path / "c.warc.wet.gz"
    text = "Line one of the page.\nLine two.\n\nA second paragraph."
    written = write_warc(path, [
        Rec("warcinfo", status=None, content_type="application/warc-fields", body=b"x: y\r\n"),
        Rec("conversion", url="http://w.example/", status=None, content_type="text/plain", body=text.encode()),
        Rec("conversion", url="http://w.example/l1", status=None, content_type="text/plain",
            body="Déjà vu, naïve café.".encode("latin-1")),
    ])
    result, docs, bad = _ingest(tmp_path, path, "wet")
    assert [d["text"] for d in docs] == [text, "Déjà vu, naïve café."] and not bad
    assert docs[0]["id"] == written[1][0] and "html" not in docs[0]  # WET is text: no html column
    assert result["skipped"] == {"record_type:warcinfo": 1}


def test_html_files_url_from_sidecar_or_file_name(tmp_path: Path) -> None:
    pages = tmp_path / "pages"
    (pages / "sub").mkdir(parents=True)
    (pages / "a.html").write_bytes(PAGE % 1)
    (pages / "a.html.json").write_text(json.dumps({"url": "https://site.example/a", "lang": "en"}))
    (pages / "sub" / "b.html").write_bytes(CP1251.encode("cp1251"))
    (pages / "c.html").write_bytes(PAGE % 3)
    (pages / "c.json").write_text("[1]")  # a sidecar that is not an object: quarantined, named
    result, docs, bad = _ingest(tmp_path, pages / "**" / "*.html", "html", url_field="url")
    assert [(d["url"], json.loads(d["meta"]).get("fields")) for d in docs] == [
        ("https://site.example/a", {"lang": "en"}), ("sub/b.html", None)]
    assert "Привет" in docs[1]["html"] and json.loads(docs[1]["meta"])["charset"] == "cp1251"
    assert [(q["file"], q["error"]) for q in bad] == [("c.html", "unreadable HTML file: ValueError: sidecar c.json "
                                                                 "is not a JSON object")]


def test_mixed_inputs_share_one_partition_schema(tmp_path: Path) -> None:
    """With a web input, every input's partitions carry `html` (null for text inputs), so Spark reads one schema."""
    (tmp_path / "t.jsonl").write_text(json.dumps({"text": "plain text doc"}) + "\n")
    write_warc(tmp_path / "w.warc.gz", [Rec(url="http://c.example/")])
    files = list_input_files([InputConfig(name="t", path=str(tmp_path / "t.jsonl")),
                              InputConfig(name="w", path=str(tmp_path / "w.warc.gz"), format="warc")])
    assert all(f.html_column for f in files)
    for f in files:
        ingest_file((f, tmp_path / "o" / "ingest", 100, "h"))
    schemas = {pq.read_schema(p).names.__repr__() for p in (tmp_path / "o" / "ingest" / "_raw").glob("*.parquet")}
    assert schemas == {"['id', 'text', 'source', 'url', 'meta', 'html']"}
    only_text = list_input_files([InputConfig(name="t", path=str(tmp_path / "t.jsonl"))])
    assert not only_text[0].html_column


def test_input_file_default_has_no_html_column() -> None:
    inp = InputConfig(name="s", path="x.jsonl")
    assert InputFile(0, 0, inp, "x.jsonl", "x.jsonl").html_column is False


def test_corrupt_member_and_http_encodings(tmp_path: Path) -> None:
    """A flipped byte inside a gzip member, and a body whose HTTP Content-Encoding does not decode, are
    quarantined (with offset); a gzip-encoded HTTP body is decoded; the records around them are read."""
    import gzip

    good = gzip.compress(b"<html><body><p>Compressed page body.</p></body></html>")
    recs = [Rec(url="http://g/0"), Rec(url="http://g/1", body=PAGE % 1),
            Rec(url="http://g/2", content_type="text/html; charset=utf-8\r\nContent-Encoding: gzip", body=good),
            Rec(url="http://g/3", content_type="text/html\r\nContent-Encoding: gzip", body=b"not gzip at all"),
            Rec(url="http://g/4")]
    path = tmp_path / "e.warc.gz"
    written = write_warc(path, recs)
    data = bytearray(path.read_bytes())
    data[(written[1][1] + written[2][1]) // 2] ^= 0xFF  # inside record 1's member
    path.write_bytes(bytes(data))
    result, docs, bad = _ingest(tmp_path, path)
    assert [d["url"] for d in docs] == ["http://g/0", "http://g/2", "http://g/4"]
    assert "Compressed page body." in docs[1]["html"]
    assert [q["offset"] for q in bad] == [written[1][1], written[3][1]]
    assert bad[1]["id"] == written[3][0]


@pytest.mark.parametrize(("declared", "body", "bytes_path"), [
    ("UTF-8", "<p>café €</p>".encode(), True),
    (None, b"\xef\xbb\xbf<meta charset='utf-8'><p>caf\xc3\xa9</p>", True),  # BOM dropped, as the decoder does
    ("utf-8", b"<p>caf\xe9 \xed\xa0\x80</p>", False),  # not UTF-8 after all: the decoder's fallbacks decide
    ("windows-1252", b"<p>caf\xe9</p>", False),
    ("utf8-typo", "<p>café, déjà vu, naïve</p>".encode(), True),  # an unknown declared charset is ignored
])
def test_html_column_value_is_the_decoded_page(declared: str | None, body: bytes, bytes_path: bool) -> None:
    """UTF-8 pages reach the html column as their own bytes, and those are exactly the decoded page."""
    from pipeline.warc import decode_html, html_column_value

    value, charset, how = html_column_value(body, declared)
    assert isinstance(value, bytes) == bytes_path
    text = value.decode("utf-8") if isinstance(value, bytes) else value
    assert (text, charset, how) == decode_html(body, declared)
    assert "caf" in text and "\ufeff" not in text
    if declared == "utf8-typo":
        assert how != "http"
