"""URL block lists: domains (a listed domain blocks its subdomains), URL substrings, and FineWeb's
banned words in the URL (whole words, a soft list needing several hits, and subwords of the
normalized URL). Lists are user files, one entry per line (`#` comments), or UT1-style blacklist
directories (`<dir>/<category>/domains` and `<dir>/<category>/urls`).

Substring and subword matching runs as RE2 alternations over whole Arrow arrays (Aho-Corasick-like
DFA, linear in the URL length); domain matching is set look-ups of the host's suffixes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_CHUNK = 2000  # alternatives per RE2 pattern: large lists stay within RE2's memory budget


def normalize_word(word: str) -> str:
    """FineWeb's normalization: lowercase, non-alphanumerics removed (`"sex-shop"` -> `"sexshop"`)."""
    return _NON_ALNUM.sub("", word.lower())


def read_entries(path: str | Path) -> list[str]:
    """Entries of one list file: stripped lines, blank lines and `#` comments skipped."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        return [s for s in (line.strip() for line in fh) if s and not s.startswith("#")]


def list_files(paths: Sequence[str], kind: str, categories: Sequence[str] = ()) -> list[Path]:
    """Files behind the configured paths: a file itself, or a UT1 directory's `<category>/<kind>` files."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for sub in sorted(p for p in path.iterdir() if p.is_dir()):
                if (not categories or sub.name in categories) and (sub / kind).is_file():
                    out.append(sub / kind)
        else:
            out.append(path)
    return out


def load_domains(files: Iterable[Path]) -> set[str]:
    return {e.lower().lstrip(".").removeprefix("www.") for f in files for e in read_entries(f)}


def load_lower(files: Iterable[Path]) -> list[str]:
    return sorted({e.lower() for f in files for e in read_entries(f)})


def load_words(files: Iterable[Path]) -> list[str]:
    return sorted({w for f in files for w in (normalize_word(e) for e in read_entries(f)) if w})


def files_digest(files: Iterable[Path]) -> str:
    """Hash of the lists' contents: editing a list reruns the stage."""
    h = hashlib.sha256()
    for f in files:
        h.update(str(f).encode() + b"\0")
        h.update(f.read_bytes() if f.is_file() else b"<missing>")
    return h.hexdigest()[:16]


def host(url: str | None) -> str | None:
    if not url:
        return None
    try:
        name = urlsplit(url if "//" in url else f"//{url}").hostname
    except ValueError:
        return None
    return name.rstrip(".").lower() if name else None


def domain_match(name: str | None, domains: set[str]) -> str | None:
    """The listed domain that `name` is or lies under (`a.b.example.com` -> `example.com`)."""
    if not name or not domains:
        return None
    labels = name.split(".")
    for i in range(len(labels)):
        candidate = ".".join(labels[i:])
        if candidate in domains:
            return candidate
    return None


def first_match(values: pa.Array, entries: Sequence[str]) -> list[str | None]:
    """Per value, the first listed substring found in it (None when none); RE2 over the whole array."""
    found: list[str | None] = [None] * len(values)
    for start in range(0, len(entries), _CHUNK):
        pattern = "(?P<m>" + "|".join(re.escape(e) for e in entries[start:start + _CHUNK]) + ")"
        hits = pc.extract_regex(values, pattern)
        valid = hits.is_valid().to_pylist()
        matched = pc.struct_field(hits, [0]).to_pylist()
        for i, ok in enumerate(valid):
            if ok and found[i] is None:
                found[i] = matched[i]
    return found


def url_words(url: str) -> set[str]:
    return set(_NON_ALNUM.split(url.lower())) - {""}


def normalized_urls(urls: pa.Array) -> pa.Array:
    """Lowercased, alphanumerics only: `porn` is found in `p-o-r-n.example` (FineWeb's subword rule)."""
    return pc.replace_substring_regex(pc.utf8_lower(urls), r"[^a-z0-9]+", "")


def fingerprint_paths(paths: Sequence[str]) -> list[Path]:
    """Every file a list setting may read (UT1 directories expanded, all categories)."""
    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        out.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return out
