"""Source code in: a checked-out repository's directory tree as documents, one per text file.

`format: repo` names a directory (or a glob of directories, each one repository). Every regular
file under it becomes a document with `path` (inside the repository, `/`-separated), `repo` (the
directory's name relative to the glob's root) and `language` (from the file name: see
`filters/code_language.py`). What is not text is not a document, and is counted per reason in
ingest's manifest (`skipped`), not quarantined, because nothing is wrong with it:

* `binary`: a NUL byte in the first 8000 bytes (git's own test for binary content);
* `non_utf8`: bytes that do not decode as UTF-8;
* `too_large`: over `max_file_bytes` (default 1 MB, The Stack's limit), not even read;
* `empty`: nothing but whitespace; `symlink`: a link (it may point outside the tree).

Version-control metadata (`.git`, `.hg`, `.svn` directories) is not part of the tree and is not
walked. Files are visited in sorted order and ids derive from (input, repo, path), so a re-run
gives the same documents, ids and partitions. Inputs that already hold code as records (The
Stack-style JSONL/Parquet with `content`, `path`, `repo`) name `path_field:`/`repo_field:`
instead and get the same three columns.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from filters.code_language import detect_language
from pipeline.ids import derived_doc_id
from pipeline.schema import DOC_FIELDS
from pipeline.warc import Skipped

if TYPE_CHECKING:
    from pipeline.config import InputConfig
    from pipeline.ingest import InputFile

CODE_FIELDS: list[pa.Field] = [
    pa.field("path", pa.string()),  # the file's path inside its repository
    pa.field("repo", pa.string()),
    pa.field("language", pa.string()),  # The Stack v1 spelling (`Python`, `C++`); null = unknown
]
VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr"})
BINARY_SNIFF_BYTES = 8000


def is_code_input(inp: InputConfig) -> bool:
    return inp.format == "repo" or inp.path_field is not None


def doc_schema(html_column: bool, code_columns: bool) -> pa.Schema:
    """The ingest schema: documents, plus `html` when some input is web HTML, plus the code columns
    when some input is code (every partition of a run has the same columns)."""
    fields = list(DOC_FIELDS)
    if html_column:
        fields.append(pa.field("html", pa.string()))
    if code_columns:
        fields.extend(CODE_FIELDS)
    return pa.schema(fields)


def code_columns(path: str | None, repo: str | None) -> dict[str, Any]:
    return {"path": path, "repo": repo, "language": detect_language(path) if path else None}


def repo_dirs(pattern: str, root: str) -> list[tuple[str, str]]:
    """(directory, repository name) for each directory the pattern matches, sorted. The name is the
    directory relative to the glob's root, or its base name when the pattern is one directory."""
    out = []
    for path in sorted(p for p in glob.glob(pattern, recursive=True) if os.path.isdir(p)):
        name = os.path.relpath(path, root)
        if name == ".":
            name = os.path.basename(os.path.abspath(path))
        out.append((path, name.replace(os.sep, "/")))
    return out


def walk_files(top: str) -> Iterator[str]:
    """Paths (relative, `/`-separated) of every entry that is not a directory, in sorted order."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in VCS_DIRS and not os.path.islink(os.path.join(dirpath, d)))
        links = [d for d in os.listdir(dirpath) if os.path.islink(os.path.join(dirpath, d))
                 and os.path.isdir(os.path.join(dirpath, d))]
        for name in sorted([*filenames, *links]):
            yield os.path.relpath(os.path.join(dirpath, name), top).replace(os.sep, "/")


def fingerprint(top: str) -> list[Any]:
    """Number of files, total size and a hash of (path, size, mtime) of the whole tree."""
    digest = hashlib.sha256()
    size = count = 0
    for rel in walk_files(top):
        st = os.lstat(os.path.join(top, rel))
        digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        size += st.st_size
        count += 1
    return [count, size, digest.hexdigest()[:16]]


def read_file_text(full: str, max_bytes: int) -> str | Skipped:
    """The file's text, or Skipped(reason) when it is not a text document."""
    if os.path.islink(full):
        return Skipped("symlink")
    if not os.path.isfile(full):
        return Skipped("not_a_file")
    if os.path.getsize(full) > max_bytes:
        return Skipped("too_large")
    with open(full, "rb") as fh:
        raw = fh.read(max_bytes + 1)
    if len(raw) > max_bytes:
        return Skipped("too_large")
    if b"\0" in raw[:BINARY_SNIFF_BYTES]:
        return Skipped("binary")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Skipped("non_utf8")
    if not text.strip():
        return Skipped("empty")
    return text


def read_repo(f: InputFile) -> Iterator[tuple[int, dict[str, Any] | None, dict[str, Any] | None] | Skipped]:
    """Yield (file number, document, None) or Skipped for every file of one repository tree."""
    inp = f.input
    repo = f.relpath
    for number, rel in enumerate(walk_files(f.path), start=1):
        text = read_file_text(os.path.join(f.path, rel), inp.max_file_bytes)
        if isinstance(text, Skipped):
            yield text
            continue
        where = f"{repo}/{rel}"
        meta = json.dumps({"file": where, "line": 1}, ensure_ascii=False)
        yield number, {"id": derived_doc_id(inp.name, where, 1), "text": text, "source": inp.name, "url": None,
                       "meta": meta, **code_columns(rel, repo)}, None
