"""`shard`: the final training shards, globally shuffled by seed, size-capped, with a manifest.

The shuffle order is `hash(seed, id)`, so it depends only on the documents and the seed, never
on partitioning or workers. The sort is external: documents are spilled into key-range buckets
(the executor's range group-by), each bucket is sorted in memory, and shards are cut in that order.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from pipeline.config import StageConfig
from pipeline.io import atomic_open, sha256_file, write_json, write_parquet
from stages.base import GlobalStage, StageContext

TextFormat = Literal["parquet", "jsonl.zst"]


class ShardConfig(StageConfig):
    formats: list[TextFormat] = Field(default_factory=lambda: ["parquet"], min_length=1)
    shuffle: bool = True
    max_shard_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)  # UTF-8 bytes of text per shard
    max_shard_docs: int | None = Field(default=None, ge=1)
    columns: list[str] | None = None  # None = every column the documents have
    zstd_level: int = Field(default=3, ge=1, le=22)


def shuffle_keys(ids: pa.Array, seed: int) -> np.ndarray:
    """uint64 sort key per id for seed `seed` (SipHash keyed by the seed: stable across runs)."""
    hash_key = f"{seed & 0xFFFFFFFFFFFFFFFF:016x}"
    objs = np.asarray(ids.to_pylist(), dtype=object)
    return pd.util.hash_array(objs, hash_key=hash_key, categorize=False) if len(objs) else np.zeros(0, np.uint64)


def _sort_keys(task: tuple[int, list[str] | None], path: Path, part: int) -> pa.Table:
    seed, columns = task
    table = pq.read_table(path, columns=columns)
    keys = shuffle_keys(table.column("id"), seed)
    return table.append_column("key", pa.array(keys, pa.uint64()))


def _sort_bucket(table: pa.Table) -> pa.Table:
    if table.num_rows == 0:
        return table
    return table.sort_by([("key", "ascending"), ("id", "ascending")]).drop_columns(["key"])


def _cut(tables: Iterator[pa.Table], max_bytes: int, max_docs: int | None) -> Iterator[pa.Table]:
    """Re-slice a stream of tables into shards of at most max_bytes text / max_docs documents."""
    pending: list[pa.Table] = []
    size = docs = 0
    for table in tables:
        lengths = pc.binary_length(table.column("text").cast(pa.binary())).to_numpy(zero_copy_only=False)
        start = 0
        for i, n in enumerate(lengths):
            if (size + n > max_bytes and docs > 0) or (max_docs is not None and docs >= max_docs):
                pending.append(table.slice(start, i - start))
                yield pa.concat_tables(pending)
                pending, size, docs, start = [], 0, 0, i
            size += int(n)
            docs += 1
        pending.append(table.slice(start))
    if docs:
        yield pa.concat_tables(pending)


def write_jsonl_zst(table: pa.Table, path: Path, level: int) -> None:
    import zstandard

    buf = io.StringIO()
    for row in table.to_pylist():
        buf.write(json.dumps(row, ensure_ascii=False, default=str))
        buf.write("\n")
    data = zstandard.ZstdCompressor(level=level).compress(buf.getvalue().encode("utf-8"))
    with atomic_open(path, "wb") as fh:
        fh.write(data)


class Stage(GlobalStage):
    Config = ShardConfig
    config: ShardConfig

    def _ordered(self, ctx: StageContext) -> Iterator[pa.Table]:
        cols = self.config.columns
        if cols is not None and "id" not in cols:
            cols = ["id", *cols]
        if not self.config.shuffle:
            for path in ctx.inputs:
                yield pq.read_table(path, columns=cols)
            return
        import functools

        total = sum(pq.ParquetFile(p).metadata.serialized_size + p.stat().st_size for p in ctx.inputs)
        n_buckets = max(8, total // (64 * 1024 * 1024) + 1)
        results = ctx.executor.group_by_key(
            ctx.inputs, functools.partial(_sort_keys, (ctx.pipeline.seed, cols)), _sort_bucket,
            ctx.stage_dir / "_work", n_buckets=int(n_buckets), partitioner="range",
            progress=ctx.stats.get("progress"))
        for path in results:
            table = pq.read_table(path)
            if table.num_rows:
                yield table

    def run(self, ctx: StageContext) -> dict[str, Any]:
        shard_dir = ctx.output_dir / "shards"
        text_dir = shard_dir / "text"
        shutil.rmtree(text_dir, ignore_errors=True)
        shards: list[dict[str, Any]] = []
        by_source: dict[str, int] = {}
        total_docs = 0
        schema: pa.Schema | None = None
        for i, table in enumerate(_cut(self._ordered(ctx), self.config.max_shard_bytes, self.config.max_shard_docs)):
            if schema is None:
                schema = table.schema
            table = table.cast(schema) if table.schema != schema else table
            total_docs += table.num_rows
            if "source" in table.column_names:
                for entry in pc.value_counts(table.column("source")).to_pylist():
                    by_source[entry["values"]] = by_source.get(entry["values"], 0) + entry["counts"]
            text_bytes = int(pc.sum(pc.binary_length(table.column("text").cast(pa.binary()))).as_py() or 0)
            for fmt in self.config.formats:
                path = text_dir / (f"part-{i:05d}.parquet" if fmt == "parquet" else f"part-{i:05d}.jsonl.zst")
                if fmt == "parquet":
                    write_parquet(table, path)
                else:
                    write_jsonl_zst(table, path, self.config.zstd_level)
                shards.append({"file": str(path.relative_to(shard_dir)), "format": fmt, "docs": table.num_rows,
                               "text_bytes": text_bytes, "bytes": path.stat().st_size, "sha256": sha256_file(path)})
        manifest = {"stage": ctx.stage.name, "config_hash": ctx.stats.get("stage_hash"), "seed": ctx.pipeline.seed,
                    "docs": total_docs, "formats": self.config.formats, "shuffle": self.config.shuffle,
                    "by_source": dict(sorted(by_source.items())), "shards": shards}
        write_json(manifest, shard_dir / "manifest.json")
        shutil.rmtree(ctx.stage_dir / "_work", ignore_errors=True)
        return {"in": total_docs, "kept": total_docs, "removed": 0, "added": 0, "by_reason": {},
                "shards": len({s["file"].rsplit(".", 2)[0] for s in shards})}
