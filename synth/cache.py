"""Response cache: reruns generate nothing already done, and a crash keeps finished work.

Why SQLite: one file, atomic transactions (a chunk is committed whole or not at all), concurrent readers,
indexed lookups for millions of rows; WAL mode lets a notebook read while a run writes.

The key is sha256 of (model identity, recipe name, prompt, sampling params incl. seed), in canonical JSON.
It deliberately excludes anything that changes for no reason (paths, request ids, timestamps, batch
composition), so moving the checkpoint or re-partitioning the input keeps every hit. The model identity of
a local checkpoint is a fingerprint of its config, tokenizer and weight files, so rebuilding a different
model at the same path invalidates the entries.

Only successful results are stored: failed rows are retried on the next run.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synth.engines import Engine, GenRequest, GenResult, Sampling

_SMALL_FILE = 64 << 20  # weight files up to this size are hashed whole
_SAMPLE = 1 << 20  # larger ones: header, size, first and last MiB
_MAX_SQL_VARS = 900


def model_identity(model: str | Path) -> str:
    """Stable name of a model for cache keys: ``<dir name>@<fingerprint>`` for a local checkpoint.

    A non-directory (a served model name, a hub id) is used as is.
    """
    p = Path(model)
    if not p.is_dir():
        return str(model)
    h = hashlib.sha256()
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json", "model.safetensors.index.json"):  # fmt: skip
        f = p / name
        if f.is_file():
            h.update(name.encode() + b"\0" + f.read_bytes() + b"\0")
    for f in sorted([*p.glob("*.safetensors"), *p.glob("*.bin"), *p.glob("*.pt")]):
        size = f.stat().st_size
        h.update(f"{f.name}\0{size}\0".encode())
        with f.open("rb") as fh:
            if size <= _SMALL_FILE:
                h.update(fh.read())
            else:
                h.update(fh.read(_SAMPLE))
                fh.seek(size - _SAMPLE)
                h.update(fh.read(_SAMPLE))
    return f"{p.name}@{h.hexdigest()[:16]}"


def cache_key(model: str, recipe: str, prompt: str, params: Sampling) -> str:
    """sha256 over the canonical JSON of everything that determines the response."""
    blob = json.dumps(
        {"model": model, "recipe": recipe, "prompt": prompt, "params": params.to_dict()},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """SQLite table ``responses(key PRIMARY KEY, model, recipe, result JSON, created)``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=60.0, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS responses ("
            " key TEXT PRIMARY KEY, model TEXT NOT NULL, recipe TEXT NOT NULL,"
            " result TEXT NOT NULL, created REAL NOT NULL)"
        )

    def get_many(self, keys: Sequence[str]) -> dict[str, GenResult]:
        found: dict[str, GenResult] = {}
        uniq = list(dict.fromkeys(keys))
        for i in range(0, len(uniq), _MAX_SQL_VARS):
            part = uniq[i : i + _MAX_SQL_VARS]
            q = f"SELECT key, result FROM responses WHERE key IN ({','.join('?' * len(part))})"
            for k, blob in self._db.execute(q, part):
                found[k] = GenResult.from_dict(json.loads(blob))
        return found

    def put_many(self, rows: Iterable[tuple[str, str, str, GenResult]]) -> int:
        """Insert (key, model, recipe, result) rows in one transaction; failed results are skipped."""
        now = time.time()
        data = [(k, m, r, json.dumps(res.to_dict(), ensure_ascii=False), now)
                for k, m, r, res in rows if res.ok]  # fmt: skip
        if not data:
            return 0
        with _transaction(self._db):
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?)", data)
        return len(data)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ResponseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: Any, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


@dataclass
class CachedRun:
    """Results in the caller's order plus what it cost."""

    results: list[GenResult]
    fresh: list[bool] = field(default_factory=list)  # generated by this call (first request of its key)
    hits: int = 0
    generated: int = 0
    failed: int = 0
    chunks: int = 0
    stats: list[dict[str, Any]] = field(default_factory=list)


def generate_cached(
    engine: Engine,
    requests: Sequence[GenRequest],
    cache: ResponseCache | None,
    recipe: str | Sequence[str],
    *,
    chunk_size: int = 2048,
    model: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CachedRun:
    """Serve hits from ``cache``, generate the misses chunk by chunk, commit each chunk as it completes.

    ``recipe`` is one name for all requests or one per request (so several recipes share one engine
    stream and its batches stay full). ``model`` overrides the cache identity (default:
    ``model_identity(engine.model_id)``); with it given, the engine is not touched when everything is
    cached. A chunk is the unit of loss on a crash; make it large enough to keep the engine's batches full
    (vLLM: thousands). ``progress(done, total)`` counts requests served (hits count at once).
    """
    ident = model or model_identity(engine.model_id)
    recipes = [recipe] * len(requests) if isinstance(recipe, str) else list(recipe)
    if len(recipes) != len(requests):
        raise ValueError(f"{len(recipes)} recipe names for {len(requests)} requests")
    keys = [cache_key(ident, rc, r.prompt, r.params) for rc, r in zip(recipes, requests, strict=True)]
    cached = cache.get_many(keys) if cache is not None else {}
    out: list[GenResult | None] = [None] * len(requests)
    todo: dict[str, int] = {}  # key -> index of the first request needing it
    for i, (r, k) in enumerate(zip(requests, keys, strict=True)):
        if k in cached:
            out[i] = cached[k].with_id(r.id)
        elif k not in todo:
            todo[k] = i
    run = CachedRun(results=[], hits=sum(o is not None for o in out))
    pending = list(todo.items())
    fresh: dict[str, GenResult] = {}
    waiting: dict[str, int] = {}
    for i, k in enumerate(keys):
        if out[i] is None:
            waiting[k] = waiting.get(k, 0) + 1
    served = len(requests) - sum(waiting.values())
    if progress:
        progress(served, len(requests))
    step = max(1, chunk_size)
    for c in range(0, len(pending), step):
        part = pending[c : c + step]
        results = engine.generate([requests[i] for _, i in part])
        run.chunks += 1
        run.stats.append(dict(getattr(engine, "last_stats", None) or {}))  # a bare test double may have none
        if cache is not None:
            cache.put_many((k, ident, recipes[i], res) for (k, i), res in zip(part, results, strict=True))
        for (k, _), res in zip(part, results, strict=True):
            fresh[k] = res
            run.generated += res.ok
            run.failed += not res.ok
        if progress:
            served += sum(waiting[k] for k, _ in part)
            progress(min(served, len(requests)), len(requests))
    for i, (r, k) in enumerate(zip(requests, keys, strict=True)):
        if out[i] is None:
            out[i] = fresh[k].with_id(r.id)
    run.results = [o for o in out if o is not None]
    run.fresh = [False] * len(requests)
    for i in todo.values():
        run.fresh[i] = True
    return run
