"""Programming language from a file's name: The Stack v1's extension table plus linguist-style file names.

The Stack v1 assigned a file its language by extension alone (370 languages, 870 extensions, two
of them whole names: `Dockerfile`, `Makefile`); `code_data/stack_v1_extensions.json` is that table.
Names that say nothing by extension (`CMakeLists.txt`, `Gemfile`, `Dockerfile.dev`, `go.sum`) come
first from `code_data/filenames.json`, after GitHub linguist's `filenames:` lists. The longest
matching suffix wins (`.cmake.in` before `.in`), matched case-sensitively first (`.C` is C++) and
then lower-cased (`.PY` is Python). Vectorized over Arrow arrays via a per-call dictionary: a
corpus has few distinct file names' endings compared with its rows.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

DATA = Path(__file__).with_name("code_data")


@lru_cache(maxsize=1)
def extension_table() -> dict[str, str]:
    """`.py` -> `Python` (and `Dockerfile` -> `Dockerfile`): The Stack v1's table, first language wins."""
    languages = json.loads((DATA / "stack_v1_extensions.json").read_text())["languages"]
    table: dict[str, str] = {}
    for language, extensions in languages.items():
        for ext in extensions:
            table.setdefault(ext, language)
    return table


@lru_cache(maxsize=1)
def filename_tables() -> tuple[dict[str, str], dict[str, str]]:
    data = json.loads((DATA / "filenames.json").read_text())
    return data["filenames"], data["prefixes"]


@lru_cache(maxsize=1)
def _suffix_lengths() -> tuple[int, ...]:
    """Distinct numbers of dots in the table's extensions, most first (`.cmake.in` has 2)."""
    return tuple(sorted({ext.count(".") for ext in extension_table() if ext.startswith(".")}, reverse=True))


def file_extension(path: str) -> str:
    """The extension as The Stack's `ext` column holds it: after the last dot of the base name, no dot."""
    base = posixpath.basename(path.replace("\\", "/"))
    dot = base.rfind(".")
    return base[dot + 1:] if dot > 0 else ""


def file_extensions(paths: list[str | None]) -> list[str]:
    """`file_extension` of many paths at once (RE2 over an Arrow array); "" for a null path."""
    if not paths:
        return []
    found = pc.extract_regex(pa.array(paths, pa.string()), r"(?:^|[/\\])[^/\\]+\.(?P<ext>[^./\\]*)$")
    return [row["ext"] if row else "" for row in found.to_pylist()]


@lru_cache(maxsize=65536)
def detect_language(path: str) -> str | None:
    """The language of a file by its path, or None when neither its name nor its extension is known."""
    base = posixpath.basename(path.replace("\\", "/"))
    names, prefixes = filename_tables()
    if base in names:
        return names[base]
    head = base.split(".", 1)[0]
    if "." in base and head in prefixes:
        return prefixes[head]
    table = extension_table()
    if base in table:  # `Dockerfile`, `Makefile`
        return table[base]
    parts = base.split(".")
    for dots in _suffix_lengths():
        if dots == 0 or dots > len(parts) - 1:
            continue
        suffix = "." + ".".join(parts[-dots:])
        language = table.get(suffix) or table.get(suffix.lower())
        if language:
            return language
    return None


@lru_cache(maxsize=1)
def code_languages() -> frozenset[str]:
    """Every language of the extension and file-name tables but the prose ones (code_data/prose_languages.json)."""
    names, prefixes = filename_tables()
    prose = json.loads((DATA / "prose_languages.json").read_text())["prose"]
    return frozenset({*extension_table().values(), *names.values(), *prefixes.values()} - set(prose))


def code_documents(languages: Sequence[str | None], paths: Sequence[str | None], sources: Sequence[str | None],
                   code_sources: Sequence[str]) -> np.ndarray:
    """Per document: is it source code? Its `language` is a programming (or markup, data) language of the
    tables, or without a language its `path` names one, or its source is one of `code_sources`."""
    known = code_languages()
    wanted = set(code_sources)
    return np.array([(lang if lang is not None else detect_language(path) if path is not None else None) in known
                     or source in wanted for lang, path, source in zip(languages, paths, sources, strict=True)], bool)


def detect_languages(paths: pa.Array) -> pa.Array:
    """`detect_language` over an Arrow string array (null path -> null language)."""
    return pa.array([None if p is None else detect_language(p) for p in paths.to_pylist()], pa.string())
