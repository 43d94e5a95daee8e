"""Ingest: read every configured input into document partitions, quarantining what cannot be read.

Each input file becomes one or more Parquet partitions of the document schema
(`part-<input>-<file>-<chunk>`), so partition names sort in input order and never depend on the
number of workers. A record that cannot become a document (bad JSON, invalid UTF-8, missing or
non-string or empty text, bad id) goes to the quarantine with its file, line, field and error: the
run goes on and nothing is silently lost.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import hashlib
import io
import itertools
import json
import mmap
import os
import posixpath
import zlib
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import repo_input, storage
from pipeline.config import ConfigError, InputConfig
from pipeline.ids import derived_doc_id
from pipeline.io import read_json_or_none, sha256_file, write_json, write_parquet
from pipeline.schema import QUARANTINE_SCHEMA
from pipeline.warc import HTML_FORMATS, WEB_FORMATS, Skipped

HF_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


@dataclass(frozen=True)
class InputFile:
    """One file (or HF dataset) of one input, with its position in the global order."""

    input_index: int
    file_index: int
    input: InputConfig
    path: str
    relpath: str
    html_column: bool = False  # some input is web HTML: every partition gets an `html` column (one schema)
    code_columns: bool = False  # some input is code: every partition gets `path`, `repo`, `language`

    @property
    def prefix(self) -> str:
        return f"part-{self.input_index:03d}-{self.file_index:05d}"


def _before_wildcard(parts: Sequence[str]) -> list[str]:
    """The leading path parts of a glob that hold no wildcard."""
    return list(itertools.takewhile(lambda part: not any(ch in part for ch in "*?["), parts))


def _glob_root(pattern: str) -> str:
    """The directory part of a glob before its first wildcard: ids are relative to it."""
    root = _before_wildcard(Path(pattern).parts)
    path = Path(*root) if root else Path(".")
    return str(path if path.is_dir() else path.parent)


def _remote_matches(pattern: str, hf: bool) -> tuple[list[str], str]:
    """Files matching a remote glob (as URIs, sorted) and the glob's root, via fsspec."""
    loc = storage.location(pattern)
    fs, scheme = loc.fs, loc.protocol  # type: ignore[attr-defined]
    path = loc.path  # type: ignore[attr-defined]
    if hf:
        return ([f"{scheme}://{path}"] if fs.exists(path) else []), posixpath.dirname(path)
    keys = sorted(k for k in fs.glob(path) if fs.isfile(k)) if any(c in path for c in "*?[") else (
        [path] if fs.isfile(path) else sorted(fs.find(path)))
    root = "/".join(_before_wildcard(path.split("/")))
    if keys == [root]:
        root = posixpath.dirname(root)
    return [f"{scheme}://{k}" for k in keys], root


def list_input_files(inputs: list[InputConfig], base_dir: Path | None = None) -> list[InputFile]:
    """Resolve every input's glob, sorted; raises ConfigError naming the input that matched nothing."""
    files: list[InputFile] = []
    problems: list[str] = []
    for i, inp in enumerate(inputs):
        if storage.is_remote_uri(inp.path) and inp.format == "repo":
            problems.append(f"inputs[{i}].path: format repo reads local directories only")
            continue
        if storage.is_remote_uri(inp.path):
            matches, root = _remote_matches(inp.path, inp.format == "hf")
            if not matches:
                problems.append(f"inputs[{i}].path: no files match '{inp.path}'")
            for j, uri in enumerate(matches):
                files.append(InputFile(i, j, inp, uri, posixpath.relpath(uri.split("://", 1)[1], root)))
            continue
        pattern = inp.path if base_dir is None or os.path.isabs(inp.path) else str(base_dir / inp.path)
        if inp.format == "repo":  # one InputFile per repository directory (pipeline/repo_input.py)
            dirs = repo_input.repo_dirs(pattern, _glob_root(pattern))
            if not dirs:
                problems.append(f"inputs[{i}].path: no directories match '{inp.path}'")
            files.extend(InputFile(i, j, inp, path, name) for j, (path, name) in enumerate(dirs))
            continue
        if inp.format == "hf":
            if not os.path.exists(pattern):
                problems.append(f"inputs[{i}].path: '{inp.path}' does not exist")
                continue
            files.append(InputFile(i, 0, inp, pattern, Path(pattern).name))
            continue
        matches = sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isfile(p))
        if not matches:
            problems.append(f"inputs[{i}].path: no files match '{inp.path}'")
            continue
        root = _glob_root(pattern)
        for j, path in enumerate(matches):
            files.append(InputFile(i, j, inp, path, os.path.relpath(path, root)))
    if problems:
        raise ConfigError(problems)
    if any(inp.format in HTML_FORMATS for inp in inputs):
        files = [dataclasses.replace(f, html_column=True) for f in files]
    if any(repo_input.is_code_input(inp) for inp in inputs):
        files = [dataclasses.replace(f, code_columns=True) for f in files]
    return files


def fingerprint(files: list[InputFile]) -> list[list[Any]]:
    """What decides ingest's output besides settings: each file's path, size and mtime."""
    out = []
    for f in files:
        if storage.is_remote_uri(f.path):
            out.append([f.input.name, f.relpath, *_remote_identity(f.path)])
            continue
        if f.input.format == "repo":
            out.append([f.input.name, f.relpath, *repo_input.fingerprint(f.path)])
            continue
        st = os.stat(f.path)
        if os.path.isdir(f.path):  # HF dataset directory: fingerprint its files
            size = sum(os.path.getsize(p) for p in glob.glob(f"{f.path}/**", recursive=True) if os.path.isfile(p))
            mtime = max((os.path.getmtime(p) for p in glob.glob(f"{f.path}/**", recursive=True)), default=0)
            out.append([f.input.name, f.relpath, size, int(mtime * 1e9)])
        else:
            out.append([f.input.name, f.relpath, st.st_size, st.st_mtime_ns])
    return out


# ----------------------------------------------------------------------------------------------
class Quarantined(Exception):
    def __init__(self, field: str | None, error: str):
        super().__init__(error)
        self.field = field
        self.error = error


def _check_utf8(value: str, field: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise Quarantined(field, f"unpaired surrogate at character {exc.start}") from None
    return value


def record_to_doc(record: Any, inp: InputConfig, relpath: str, line: int) -> dict[str, Any]:
    """One parsed record -> a document row; raises Quarantined naming the field at fault."""
    if not isinstance(record, dict):
        raise Quarantined(None, f"record is a JSON {type(record).__name__}, not an object")
    if inp.text_field not in record:
        raise Quarantined(inp.text_field, "missing text field")
    text = record[inp.text_field]
    if not isinstance(text, str):
        raise Quarantined(inp.text_field, f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise Quarantined(inp.text_field, "empty text")
    _check_utf8(text, inp.text_field)
    if inp.id_field:
        if inp.id_field not in record or record[inp.id_field] is None:
            raise Quarantined(inp.id_field, "missing id field")
        raw_id = record[inp.id_field]
        if isinstance(raw_id, bool) or not isinstance(raw_id, str | int):
            raise Quarantined(inp.id_field, f"id must be a string or integer, got {type(raw_id).__name__}")
        doc_id = _check_utf8(str(raw_id), inp.id_field)
        if not doc_id.strip():
            raise Quarantined(inp.id_field, "empty id")
    else:
        doc_id = derived_doc_id(inp.name, relpath, line)
    url = record.get(inp.url_field) if inp.url_field else None
    if url is not None and not isinstance(url, str):
        raise Quarantined(inp.url_field, f"url must be a string, got {type(url).__name__}")
    if url is not None:
        _check_utf8(url, inp.url_field or "url")
    skip = {inp.text_field, inp.id_field, inp.url_field, inp.path_field, inp.repo_field}
    rest = {k: v for k, v in record.items() if k not in skip}
    meta = {"file": relpath, "line": line}
    if rest:
        meta["fields"] = rest
    try:
        meta_json = json.dumps(meta, ensure_ascii=False, default=str)
        meta_json.encode("utf-8")
    except UnicodeEncodeError:
        meta_json = json.dumps(meta, ensure_ascii=True, default=str)
    except (ValueError, RecursionError) as exc:
        raise Quarantined(None, f"metadata cannot be stored: {exc}") from None
    doc = {"id": doc_id, "text": text, "source": inp.name, "url": url, "meta": meta_json}
    if inp.path_field:
        path, repo = (_optional_string(record, key) for key in (inp.path_field, inp.repo_field))
        doc.update(repo_input.code_columns(path, repo))
    return doc


def _optional_string(record: dict[str, Any], key: str | None) -> str | None:
    value = record.get(key) if key else None
    if value is not None and not isinstance(value, str):
        raise Quarantined(key, f"{key} must be a string, got {type(value).__name__}")
    return _check_utf8(value, key) if value is not None and key else None


def _remote_identity(uri: str) -> list[Any]:
    """Total size and a change token (ETag / mtime) of a remote file or dataset directory."""
    loc = storage.location(uri)
    fs = loc.fs  # type: ignore[attr-defined]
    infos = [fs.info(loc.path)] if fs.isfile(loc.path) else list(fs.find(loc.path, detail=True).values())  # type: ignore[attr-defined]
    size = sum(int(i.get("size") or 0) for i in infos)
    tokens = sorted(str(i.get("ETag") or i.get("etag") or i.get("mtime") or i.get("LastModified") or "") for i in infos)
    return [size, hashlib.sha256("\0".join(tokens).encode()).hexdigest()[:16]]


def _open_lines(path: str, fmt: str) -> Iterator[bytes]:
    if storage.is_remote_uri(path):
        raw: Any = storage.location(path).open("rb")
        if fmt == "jsonl.gz":
            raw = gzip.GzipFile(fileobj=raw, mode="rb")
        elif fmt == "jsonl.zst":
            import zstandard

            raw = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
        with raw:
            yield from raw
        return
    if fmt not in ("jsonl.gz", "jsonl.zst"):
        yield from _range_lines(path, 0, None)
        return
    if fmt == "jsonl.gz":
        fh: Any = gzip.open(path, "rb")
    else:
        import zstandard

        fh = io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True))
    with fh:
        yield from fh


Row = tuple[int, dict[str, Any] | None, dict[str, Any] | None]  # (line or row, document, quarantine row)


def read_jsonl(f: InputFile, byte_range: tuple[int, int] | None = None, first_line: int = 1
               ) -> Generator[Row, None, None]:
    """Yield (line, document, quarantine_row) for every non-blank line of a JSONL file, or of the
    lines in `byte_range` of a plain one (which starts on a line boundary and holds line `first_line`)."""
    line = 0
    inp = f.input
    assert inp.format is not None  # inferred when the config loads
    lines = _range_lines(f.path, *byte_range) if byte_range else _open_lines(f.path, inp.format)
    try:
        for line, raw in enumerate(lines, start=first_line):
            if not raw.strip():
                continue
            try:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise Quarantined(None, f"invalid UTF-8 at byte {exc.start}") from None
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise Quarantined(None, f"invalid JSON at column {exc.colno}: {exc.msg}") from None
                except RecursionError:
                    raise Quarantined(None, "invalid JSON: nested too deeply") from None
                yield line, record_to_doc(record, inp, f.relpath, line), None
            except Quarantined as q:
                yield line, None, _qrow(f, line, q, raw)
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        # A truncated or corrupt compressed file: what was read is kept, the rest is reported.
        cut = Quarantined(None, f"unreadable after line {line}: {type(exc).__name__}: {exc}")
        yield line + 1, None, _qrow(f, line + 1, cut, b"")


def _range_lines(path: str, start: int, stop: int | None) -> Iterator[bytes]:
    """The lines of bytes [start, stop) of a plain local file (to its end for None), each with its
    newline, as iterating the file yields them (the range starts after a newline and ends after one,
    or at the end). Read through a memory map: each line is copied once, from the page cache, where
    a buffered read copies it twice (half the CPU of `for line in file` on 4 KB lines)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        stop = size if stop is None else min(stop, size)
        if stop <= start:
            return
        try:
            mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):  # a file system without memory maps: read the range instead
            fh.seek(start)
            yield from _split_lines(fh.read(stop - start), 0, stop - start)
            return
        with mm:
            yield from _split_lines(mm, start, stop)


def _split_lines(data: bytes | mmap.mmap, start: int, stop: int) -> Iterator[bytes]:
    pos = start
    while pos < stop:
        end = data.find(b"\n", pos, stop)
        end = stop if end < 0 else end + 1
        yield data[pos:end]
        pos = end


def _qrow(f: InputFile, line: int, q: Quarantined, raw: bytes) -> dict[str, Any]:
    return {"source": f.input.name, "file": f.relpath, "line": line, "field": q.field,
            "error": q.error, "raw": raw[:65536], "id": None}


def _table_batches(f: InputFile, row_groups: Sequence[int] | None = None) -> Iterator[pa.RecordBatch]:
    if f.input.format == "parquet":
        yield from pq.ParquetFile(f.path).iter_batches(batch_size=4096, row_groups=row_groups)
        return
    import datasets

    ds: Any
    if storage.is_remote_uri(f.path):
        ds = datasets.load_from_disk(f.path)  # a saved dataset on the store (fsspec)
    elif any(os.path.exists(os.path.join(f.path, m)) for m in HF_MARKERS):
        ds = datasets.load_from_disk(f.path)
    else:
        ds = datasets.load_dataset(f.path, split=f.input.split or "train")
    if isinstance(ds, datasets.DatasetDict):
        split = f.input.split or ("train" if "train" in ds else sorted(ds)[0])
        ds = ds[split]
    yield from ds.with_format("arrow").data.table.to_batches(max_chunksize=4096)


def read_table_rows(f: InputFile, row_groups: Sequence[int] | None = None, first_row: int = 1
                    ) -> Generator[Row, None, None]:
    """Yield (row, document, quarantine_row) for a Parquet file or HF dataset (rows 1-based), or for
    the Parquet `row_groups` given (whose first row is row `first_row` of the file)."""
    row = first_row - 1
    try:
        for batch in _table_batches(f, row_groups):
            for record in batch.to_pylist():
                row += 1
                try:
                    yield row, record_to_doc(record, f.input, f.relpath, row), None
                except Quarantined as q:
                    raw = json.dumps(record, default=str, ensure_ascii=True).encode()
                    yield row, None, _qrow(f, row, q, raw)
    except Exception as exc:  # any reader failure is reported, not fatal
        cut = Quarantined(None, f"unreadable after row {row}: {type(exc).__name__}: {exc}")
        yield row + 1, None, _qrow(f, row + 1, cut, b"")


def read_web(f: InputFile) -> Generator[Row | Skipped, None, None]:
    """Yield (record, document, quarantine_row) or Skipped for a WARC/WET file or one HTML file."""
    from pipeline import warc

    inp = f.input
    if inp.format == "html":
        try:
            yield 1, warc.html_file_to_doc(inp.name, f.path, f.relpath, inp.url_field, inp.id_field), None
        except (OSError, ValueError, UnicodeError) as exc:
            yield 1, None, _qrow(f, 1, Quarantined(None, f"unreadable HTML file: {type(exc).__name__}: {exc}"), b"")
        return
    number = 0
    try:
        assert inp.format is not None  # inferred when the config loads
        for number, item in warc.read_warc(inp.name, f.path, f.relpath, inp.format):
            if isinstance(item, Skipped):
                yield item
            elif isinstance(item, warc.BadRecord):
                q = Quarantined(None, f"unreadable record at offset {item.offset}: {item.error}")
                yield number, None, {**_qrow(f, number, q, b""), "offset": item.offset, "id": item.record_id}
            else:
                yield number, item, None
    except OSError as exc:  # the file itself cannot be opened or read
        q = Quarantined(None, f"unreadable after record {number}: {type(exc).__name__}: {exc}")
        yield number + 1, None, _qrow(f, number + 1, q, b"")


def ingest_file(task: tuple[InputFile, Path, int, str]) -> dict[str, Any]:
    """Ingest one input file into `ingest/_raw/` partitions; returns its counts. Resumable per file."""
    f, stage_dir, partition_rows, stage_hash = task
    marker = stage_dir / "_files" / f"{f.prefix}.json"
    done = read_json_or_none(marker)
    if done and done.get("config_hash") == stage_hash:
        return done
    fmt = f.input.format
    reader = (read_web if fmt in WEB_FORMATS else repo_input.read_repo if fmt == "repo"
              else read_table_rows if fmt in ("parquet", "hf") else read_jsonl)
    schema = repo_input.doc_schema(f.html_column, f.code_columns)
    skipped: dict[str, int] = {}
    docs: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    parts: list[str] = []
    digests: dict[str, str] = {}  # the manifest's checksums, taken here in the task, not on the driver
    by_reason: dict[str, int] = {}
    records = 0

    def flush() -> None:
        name = f"{f.prefix}-{len(parts):04d}"
        path = stage_dir / "_raw" / f"{name}.parquet"
        write_parquet(pa.Table.from_pylist(docs, schema=schema), path)
        digests[name] = sha256_file(path)
        parts.append(name)
        docs.clear()

    for item in reader(f):
        if isinstance(item, Skipped):  # not a document (e.g. a WARC request record): counted, not kept
            skipped[item.reason] = skipped.get(item.reason, 0) + 1
            continue
        _line, doc, qrow = item
        records += 1
        if doc is not None:
            docs.append(doc)
            if len(docs) >= partition_rows:
                flush()
        else:
            assert qrow is not None
            bad.append(qrow)
            key = f"quarantine:{_error_kind(qrow['error'])}"
            by_reason[key] = by_reason.get(key, 0) + 1
    if docs or not parts:
        flush()
    qpath = stage_dir.parent / "quarantine" / f"{f.prefix}.parquet"
    if bad:
        write_parquet(pa.Table.from_pylist(bad, schema=QUARANTINE_SCHEMA), qpath)
    else:
        qpath.unlink(missing_ok=True)
    result = {"config_hash": stage_hash, "file": f.path, "records": records, "quarantined": len(bad),
              "parts": parts, "by_reason": by_reason,
              "skipped": dict(sorted(skipped.items())), "digests": digests}
    write_json(result, marker)
    return result


def _error_kind(error: str) -> str:
    for prefix, kind in (("invalid UTF-8", "invalid_utf8"), ("invalid JSON", "invalid_json"),
                         ("missing text", "missing_text"), ("text must be", "non_string_text"),
                         ("empty text", "empty_text"), ("unreadable record", "unreadable_record"),
                         ("unreadable", "unreadable_file"),
                         ("duplicate id", "duplicate_id"), ("unpaired surrogate", "invalid_utf8")):
        if error.startswith(prefix):
            return kind
    return "invalid_record"
