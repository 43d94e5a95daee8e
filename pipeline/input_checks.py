"""Loud failures instead of silent empty runs.

A wrong `format:` or `text_field:` does not crash ingest: every record is quarantined and the run
finishes with zero documents. Two checks catch that. `curate validate` reads the first records of
every input file (`sample_problems`), and `curate run` stops after ingest (`check_ingest`, exit 2)
when an input file yielded no documents and more than `max_quarantine_fraction` of its records
were quarantined, naming the input, the file and the field at fault.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from pipeline import storage
from pipeline.config import ConfigError, PipelineConfig
from pipeline.ingest import InputFile, Row, read_jsonl, read_table_rows, read_web
from pipeline.storage import arrow

log = logging.getLogger("curate")
SAMPLE_RECORDS = 20  # records read per input file by `curate validate`
MAGIC = ((b"\x1f\x8b", "gzip-compressed", "jsonl.gz"), (b"\x28\xb5\x2f\xfd", "zstd-compressed", "jsonl.zst"),
         (b"PAR1", "a Parquet file", "parquet"))


class InputError(ConfigError):
    """An input that yields nothing usable: a config problem (exit 2), found by reading the data."""


def _label(f: InputFile) -> str:
    return f"inputs[{f.input_index}] ({f.input.name}): {f.relpath}"


def _expected_bytes(f: InputFile) -> str | None:
    """What the declared format needs the file to start with: the `MAGIC` name of its container
    (`gzip-compressed`, `zstd-compressed`, `a Parquet file`), `text` for uncompressed data, or None
    when anything goes (HTML pages are read as they are). WARC and WET files are gzip-compressed
    exactly when their name ends in `.gz` (each record its own gzip member, as Common Crawl writes them)."""
    fmt = f.input.format
    if fmt in ("warc", "wet"):
        return MAGIC[0][1] if f.path.endswith((".gz", ".gzip")) else "text"
    return {"jsonl": "text", **{m_fmt: what for _, what, m_fmt in MAGIC}}.get(fmt or "")


def _sniff(f: InputFile) -> str | None:
    """Why a file's first bytes contradict its declared format (a `.gz` declared `jsonl`), or None."""
    if f.input.format == "hf" or storage.is_remote_uri(f.path) or not Path(f.path).is_file():
        return None
    expected = _expected_bytes(f)
    if expected is None:
        return None
    with open(f.path, "rb") as fh:
        head = fh.read(4)
    if not head:
        return None  # an empty file: reported as holding no records
    found = next(((what, fmt) for magic, what, fmt in MAGIC if head.startswith(magic)), ("text", None))
    if found[0] == expected:
        return None
    fmt = f.input.format
    if fmt in ("warc", "wet"):
        if found[0] == "text":
            return f"{_label(f)}: the name ends in .gz but the file is not gzip-compressed: rename it without .gz"
        if found[1] == "jsonl.gz":
            return f"{_label(f)}: the file is gzip-compressed but its name does not end in .gz: rename it to *.{fmt}.gz"
        return f"{_label(f)}: the file is {found[0]} but format is {fmt}: set format: {found[1]}"
    if found[1] is not None:
        return f"{_label(f)}: the file is {found[0]} but format is {fmt}: set format: {found[1]}"
    return f"{_label(f)}: format is {fmt} but the file is not {fmt} data"


def _first_records(f: InputFile, n: int) -> list[Row]:
    """The first `n` records of a file as (number, document, quarantine row); WARC records that are
    not documents (requests, non-HTML responses) are not records here."""
    fmt = f.input.format
    if fmt in ("warc", "wet", "html"):
        rows: Generator[Any, None, None] = read_web(f)
    elif fmt == "repo":  # a directory tree: its files (binaries and the like are skipped, not records)
        from pipeline.repo_input import read_repo

        rows = read_repo(f)  # type: ignore[assignment]
    else:
        rows = read_table_rows(f) if fmt in ("parquet", "hf") else read_jsonl(f)
    try:
        return list(itertools.islice((r for r in rows if isinstance(r, tuple)), n))
    finally:
        rows.close()


def _top_cause(rows: list[dict[str, Any]]) -> str:
    """`field 'text': missing text field` for the most common (field, error) among quarantine rows."""
    if not rows:
        return ""
    (field, error), _ = Counter((r.get("field"), _short(r.get("error") or "")) for r in rows).most_common(1)[0]
    return f"field '{field}': {error}" if field else error


def _short(error: str) -> str:
    return error if len(error) <= 120 else error[:117] + "..."


def _hint(f: InputFile, field: str | None) -> str:
    if field is not None and field == f.input.text_field:
        return f" (is the text in another column? set text_field:, now '{f.input.text_field}')"
    if field is not None and field == f.input.id_field:
        return f" (set id_field:, now '{f.input.id_field}', or remove it to derive ids)"
    return f" (is format: {f.input.format} right?)"


def sample_problems(cfg: PipelineConfig, files: list[InputFile], n: int = SAMPLE_RECORDS
                    ) -> tuple[list[str], list[str]]:
    """Read the first `n` records of every input file: (errors, warnings), one line each."""
    errors: list[str] = []
    warnings: list[str] = []
    for f in files:
        sniffed = _sniff(f)
        if sniffed:
            errors.append(sniffed)
            continue
        sample = _first_records(f, n)
        bad = [q for _, doc, q in sample if doc is None and q is not None]
        docs = [doc for _, doc, _ in sample if doc is not None]
        if not sample:
            warnings.append(f"{_label(f)}: the file holds no records")
        elif len(bad) > cfg.max_quarantine_fraction * len(sample):
            field = Counter(q.get("field") for q in bad).most_common(1)[0][0]
            errors.append(f"{_label(f)}: {len(bad)} of the first {len(sample)} records cannot be read, "
                          f"mostly {_top_cause(bad)}{_hint(f, field)}")
        elif bad:
            warnings.append(f"{_label(f)}: {len(bad)} of the first {len(sample)} records would be quarantined, "
                            f"mostly {_top_cause(bad)}")
        if docs and f.input.url_field and all(d["url"] is None for d in docs):
            warnings.append(f"{_label(f)}: url_field '{f.input.url_field}' is absent from the first {len(docs)} "
                            "documents")
    return errors, warnings


def _quarantine_rows(out: Any, prefix: str) -> list[dict[str, Any]]:
    path = out / "quarantine" / f"{prefix}.parquet"
    if not path.exists():
        return []
    return pq.read_table(arrow(path), columns=["field", "error"]).to_pylist()


def check_ingest(cfg: PipelineConfig, out: Any, files: list[InputFile]) -> None:
    """After ingest: InputError when a file yielded no documents and more than `max_quarantine_fraction`
    of its records were quarantined, or when the inputs yielded no documents at all."""
    markers = {p.name.removesuffix(".json"): p for p in (out / "ingest" / "_files").glob("*.json")}
    problems: list[str] = []
    total_docs = 0
    total_records = 0
    for f in files:
        marker = markers.get(f.prefix)
        if marker is None:
            continue
        done = json.loads(marker.read_text(encoding="utf-8"))
        records, quarantined = int(done["records"]), int(done["quarantined"])
        total_records += records
        total_docs += records - quarantined
        if records == 0:
            log.warning("%s: the file holds no records", _label(f))
        elif records == quarantined and quarantined > cfg.max_quarantine_fraction * records:
            sniffed = _sniff(f)
            if sniffed:
                problems.append(f"{sniffed} (no documents: {quarantined} of {records} records quarantined)")
                continue
            rows = _quarantine_rows(out, f.prefix)
            field = Counter(r.get("field") for r in rows).most_common(1)[0][0] if rows else None
            problems.append(f"{_label(f)}: no documents: {quarantined} of {records} records quarantined, "
                            f"mostly {_top_cause(rows)}{_hint(f, field)}; see {out / 'quarantine'}")
    if not problems and total_docs == 0 and markers:
        problems.append(f"the inputs yielded no documents ({len(files)} file(s), {total_records} record(s))")
    if problems:
        raise InputError(problems)


def quarantine_line(out: Any) -> str | None:
    """`quarantined 4 records (invalid_json 3, missing_text 1): OUT/quarantine`, or None when nothing was."""
    manifest_path = out / "ingest" / "_manifest.json"
    if not manifest_path.exists():
        return None
    counts = json.loads(manifest_path.read_text(encoding="utf-8")).get("counts", {})
    by_kind = {k.removeprefix("quarantine:"): v for k, v in (counts.get("by_reason") or {}).items()
               if k.startswith("quarantine:")}
    total = sum(by_kind.values())
    if not total:
        return None
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"quarantined {total} record{'s' if total != 1 else ''} ({kinds}): {out / 'quarantine'}"
