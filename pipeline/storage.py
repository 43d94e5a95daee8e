"""Where a run reads and writes: the local disk or any filesystem fsspec and Arrow both reach.

Local paths (and `file://` URIs) stay `pathlib.Path`, so the common case runs exactly as plain Python
file code. Other URIs (`s3://`, `s3a://`, `gs://`, `hdfs://`, ...) become `universal_pathlib` paths
with the same interface (`/`, `glob`, `open`, `exists`, `unlink`, ...). The few operations pathlib has
no portable form of (rename into place, recursive delete, hard link, handing a path to Arrow) live
here, so callers never branch on the kind of path.

Credentials and endpoints come from each filesystem's standard environment (`AWS_*` including
`AWS_ENDPOINT_URL` for S3-compatible stores, `GOOGLE_APPLICATION_CREDENTIALS`, the Hadoop client
configuration for HDFS), which fsspec and Arrow both read, so both see the same store.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# Hadoop's names for S3 connectors: the same bucket seen through fsspec/Arrow is `s3://`.
SCHEME_ALIASES = {"s3a": "s3", "s3n": "s3"}
# Stores where an object appears whole or not at all when its upload finishes (no rename needed).
OBJECT_STORES = {"s3", "gs", "gcs", "az", "abfs", "abfss"}


def scheme_of(value: str | os.PathLike[str]) -> str:
    """'' for local paths, else the URI scheme with Hadoop aliases folded (s3a -> s3)."""
    if not isinstance(value, str):
        protocol: str = value.protocol  # type: ignore[attr-defined]  # a UPath
        return "" if is_local(value) else SCHEME_ALIASES.get(protocol, protocol)
    text = value
    if "://" not in text:
        return ""
    scheme = urlparse(text).scheme.lower()
    return "" if scheme in ("", "file", "local") else SCHEME_ALIASES.get(scheme, scheme)


def location(value: str | os.PathLike[str]) -> Path:
    """A path object for a local path, a `file://` URI or a remote URI (typed `Path`: same interface)."""
    if not isinstance(value, str) and not is_local(value):  # already a remote path object
        return value  # type: ignore[return-value]
    text = os.fspath(value)
    if "://" not in text:
        return Path(text)
    parsed = urlparse(text)
    if parsed.scheme.lower() in ("file", "local"):
        return Path(parsed.path)
    from upath import UPath

    scheme = SCHEME_ALIASES.get(parsed.scheme.lower(), parsed.scheme.lower())
    return UPath(f"{scheme}://{text.split('://', 1)[1]}")  # type: ignore[return-value]


def is_local(path: Any) -> bool:
    """True for a local path object (pathlib, or universal_pathlib's local kinds); False for remote
    path objects and for strings (use is_remote_uri on those)."""
    return isinstance(path, Path) and getattr(path, "protocol", "") in ("", "file", "local")


def is_remote_uri(text: str) -> bool:
    return scheme_of(text) != ""


def arrow(path: str | os.PathLike[str]) -> str:
    """The string Arrow resolves to the same file: a plain path locally, a URI (s3://...) elsewhere."""
    return os.fspath(path) if is_local(path) or isinstance(path, str) else str(path)


def uri(path: Any) -> str:
    """A URI for any path (file:// for local ones), e.g. for Spark or a manifest."""
    return Path(os.path.abspath(path)).as_uri() if is_local(path) else str(path)


def replace(src: Path, dst: Path) -> None:
    """Move a finished temporary file over its final name (atomic on POSIX and HDFS)."""
    if is_local(dst):
        os.replace(src, dst)
    else:
        dst.fs.mv(src.path, dst.path)  # type: ignore[attr-defined]


def rmtree(path: Path) -> None:
    """Delete a directory tree if present (an object-store prefix is a tree too)."""
    if is_local(path):
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.fs.rm(path.path, recursive=True)  # type: ignore[attr-defined]


def remove(path: Path) -> None:
    """Delete a file or a tree, whichever it is."""
    if path.is_dir():
        rmtree(path)
    else:
        path.unlink(missing_ok=True)


def link_or_copy(src: Path, dst: Path) -> None:
    """A second name for a finished file: a hard link locally, a server-side copy on a remote store."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if is_local(src) and is_local(dst):
        os.link(src, dst)
    else:
        dst.fs.copy(src.path, dst.path)  # type: ignore[attr-defined]


def upload(local_file: Path, dst: Path) -> None:
    """Publish a finished local file at `dst`: one PUT on object stores (the object appears whole or
    not at all); on other filesystems (HDFS) a temporary name then a rename."""
    fs = dst.fs  # type: ignore[attr-defined]
    if dst.protocol in OBJECT_STORES:  # type: ignore[attr-defined]
        fs.put_file(os.fspath(local_file), dst.path)  # type: ignore[attr-defined]
        return
    tmp = dst.parent / f".{dst.name}.upload.tmp"
    fs.put_file(os.fspath(local_file), tmp.path)  # type: ignore[attr-defined]
    fs.mv(tmp.path, dst.path)  # type: ignore[attr-defined]


def check_uri(value: str) -> None:
    """Raise ValueError (a config problem) when no installed filesystem handles this URI's scheme."""
    scheme = scheme_of(value)
    if not scheme:
        return
    try:
        import fsspec

        fsspec.get_filesystem_class(scheme)
    except (ImportError, ValueError) as exc:
        client = {"s3": ("s3fs", "'ling-curate[remote]'"), "gs": ("gcsfs", "gcsfs"), "gcs": ("gcsfs", "gcsfs")}
        if isinstance(exc, ImportError) and scheme in client:  # fsspec knows the scheme, its client is missing
            module, package = client[scheme]
            raise ValueError(f"{scheme}:// needs {module}, which is not installed: pip install {package}") from None
        raise ValueError(f"no filesystem for {scheme}:// here: {exc}") from None


def arrow_files(paths: list[Any]) -> tuple[Any, list[str]]:
    """(Arrow filesystem or None, paths on it) for `pyarrow.dataset.dataset(paths, filesystem=fs)`,
    which takes either plain local paths or paths on one explicit filesystem, not URIs."""
    if not paths or all(is_local(p) or (isinstance(p, str) and not is_remote_uri(p)) for p in paths):
        return None, [os.fspath(p) for p in paths]
    import pyarrow.fs as pafs

    fs, _ = pafs.FileSystem.from_uri(arrow(paths[0]))
    return fs, [pafs.FileSystem.from_uri(arrow(p))[1] for p in paths]
