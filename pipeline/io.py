"""Atomic file writes and small file helpers.

Every file a run produces is written to a temporary name in the same directory, flushed, then
renamed into place, so a killed run never leaves a half-written file that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import faults, storage


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_current_umask()  # what open() would give; mkstemp alone gives 0600
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "row_group_size": 2048, "write_statistics": True}


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed over `path`.
    For a remote `path` the temporary file is local and is uploaded whole (see storage.upload)."""
    final = storage.location(path)
    if not storage.is_local(final):
        with tempfile.TemporaryDirectory(prefix="curate-") as tmp_dir:
            tmp = Path(tmp_dir) / final.name
            yield tmp
            faults.before_commit(final)
            storage.upload(tmp, final)
        return
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        faults.before_commit(final)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_open(path: str | Path, mode: str = "wb") -> Iterator[IO[Any]]:
    with atomic_path(path) as tmp, open(tmp, mode) as fh:
        yield fh


def write_parquet(table: pa.Table, path: str | Path, **options: Any) -> None:
    """Atomically write `table` with the project's Parquet options (`options` override them)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **{**PARQUET_OPTIONS, **options})


def write_json(obj: Any, path: str | Path) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    with atomic_open(path, "w") as fh:
        fh.write(text)


def read_json(path: str | Path) -> Any:
    with storage.location(path).open(encoding="utf-8") as fh:
        return json.load(fh)


def read_json_or_none(path: str | Path) -> Any:
    try:
        return read_json(path)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a whole file, local or remote (streamed: memory stays at one chunk)."""
    digest = hashlib.sha256()
    with storage.location(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def clean_temp_files(directory: str | Path) -> None:
    """Remove temporaries a killed run left behind (they are never trusted, only clutter)."""
    d = storage.location(directory)
    if d.is_dir():
        for tmp in d.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)
