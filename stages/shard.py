"""`shard`: the final training shards, globally shuffled by seed, size-capped, with a manifest.

The shuffle order is `hash(seed, id)`, so it depends only on the documents and the seed, never
on partitioning or workers. The plan:

1. sort: the executor's range `group_by_key` spills documents into key-range buckets, each sorted in
   memory (with each document's text size beside it);
2. cut: the driver walks the buckets in order reading only those sizes, one bucket at a time, and
   places the shard boundaries (memory: one bucket's sizes, whatever the corpus);
3. write: `map` over shards; each task reads its slices of the buckets and writes the shard in every
   format, so a shard's bytes depend only on its rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from filters import distinct
from pipeline import storage
from pipeline.config import ReadFile, StageConfig
from pipeline.hashing import shuffle_keys
from pipeline.io import PARQUET_OPTIONS, atomic_open, clean_temp_files, sha256_file, write_json, write_parquet
from pipeline.storage import arrow
from stages.base import Column, GlobalStage, StageContext

ShardFormat = Literal["parquet", "jsonl.zst", "megatron"]
TEXT_ONLY_DROP = ("token_ids",)  # token ids go to the Megatron shards, not the text shards


class ShardConfig(StageConfig):
    formats: list[ShardFormat] = Field(default_factory=lambda: list[ShardFormat](["parquet"]), min_length=1)
    shuffle: bool = True
    max_shard_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)  # UTF-8 bytes of text per shard
    max_shard_docs: int | None = Field(default=None, ge=1)
    columns: list[str] | None = None  # None = every column the documents have
    zstd_level: int = Field(default=3, ge=1, le=22)
    tokenizer: ReadFile | None = None  # needed for `megatron` (vocab size, and ids when no `token_ids` column)
    eod_token: str | None = None
    megatron_name: str = Field(default="text", pattern=r"^[A-Za-z0-9_.-]+$")

    @model_validator(mode="after")
    def _megatron_needs_tokenizer(self) -> ShardConfig:
        if "megatron" in self.formats and self.tokenizer is None:
            raise ValueError("the megatron format needs `tokenizer` (a tokenizer directory or tokenizer.json)")
        return self


def copy_ids(table: pa.Table) -> pa.Array:
    """The id, or `id#epoch` for repeated copies, so repeats of a document land apart in the shuffle."""
    ids = table.column("id").combine_chunks()
    if "epoch" not in table.column_names:
        return ids
    epochs = pc.cast(table.column("epoch"), pa.string())
    tagged = pc.binary_join_element_wise(ids, epochs, "#")
    return pc.if_else(pc.equal(table.column("epoch"), 0), ids, tagged)


def _sort_keys(task: tuple[int, list[str] | None], path: Path, part: int) -> pa.Table:
    seed, columns = task
    table = pq.read_table(arrow(path), columns=columns)
    keys = shuffle_keys(copy_ids(table), seed)
    return table.append_column("key", pa.array(keys, pa.uint64())).append_column("copy_id", copy_ids(table))


def _sort_bucket(table: pa.Table) -> pa.Table:
    if table.num_rows == 0:
        return table
    table = table.sort_by([("key", "ascending"), ("copy_id", "ascending")]).drop_columns(["key", "copy_id"])
    return table.append_column(SIZE, text_bytes(table))


SIZE = "_text_bytes"  # each sorted document's UTF-8 text size, for cutting; never written to a shard


def text_bytes(table: pa.Table) -> pa.Array:
    return pc.binary_length(table.column("text").cast(pa.binary())).combine_chunks().cast(pa.int64())


def shard_starts(sizes: np.ndarray, max_bytes: int, max_docs: int | None, state: list[int]) -> list[int]:
    """Positions in `sizes` (one source file, in order) where a new shard starts, continuing the
    running `state` = [bytes, docs] of the shard still open (updated in place). The rule of `_cut`:
    a shard closes before a document that would overflow `max_bytes` (unless it is empty) or when it
    holds `max_docs`."""
    starts = []
    size, docs = state
    for i, n in enumerate(sizes.tolist()):
        if (size + n > max_bytes and docs > 0) or (max_docs is not None and docs >= max_docs):
            starts.append(i)
            size, docs = 0, 0
        size += n
        docs += 1
    state[:] = [size, docs]
    return starts


@dataclass(frozen=True)
class ShardSlice:
    """Rows [start, stop) of one sorted source file that belong to a shard."""

    path: str
    start: int
    stop: int


@dataclass(frozen=True)
class ShardJob:
    stage: Any
    index: int
    slices: tuple[ShardSlice, ...]
    schema: pa.Schema
    shard_dir: Path
    columns: tuple[str, ...] | None


def _write_shard_task(job: ShardJob) -> dict[str, Any]:
    """Read one shard's rows from its slices and write it in every format (one task per shard)."""
    pieces = []
    for sl in job.slices:
        t = pq.read_table(arrow(storage.location(sl.path)), columns=list(job.columns) if job.columns else None)
        pieces.append(t.slice(sl.start, sl.stop - sl.start))
    table = pa.concat_tables(pieces)
    if SIZE in table.column_names:
        table = table.drop_columns([SIZE])
    table = table.cast(job.schema) if table.schema != job.schema else table
    by_source: dict[str, int] = {}
    by_domain: dict[str, dict[str, int]] = {}
    _tally(table, "source", by_source)
    _tally_domains(table, by_domain)
    entries = job.stage.write_shard(table, job.index, job.shard_dir, job.stage.tokenizer())
    sketches = {}
    if "url" in table.column_names:
        sketches = {"urls": distinct.sketch(table.column("url")),
                    "hosts": distinct.sketch(distinct.hosts(table.column("url")))}
    return {"entries": entries, "docs": table.num_rows, "by_source": by_source, "by_domain": by_domain,
            "sketches": sketches}


def canonical_chunks(table: pa.Table) -> pa.Table:
    """One Arrow chunk per Parquet row group. The Parquet writer cuts pages at chunk boundaries, so
    without this a shard's bytes would depend on how the sort happened to slice its rows."""
    step = PARQUET_OPTIONS["row_group_size"]
    if table.num_rows <= step:
        return table.combine_chunks()
    return pa.concat_tables([table.slice(i, step).combine_chunks() for i in range(0, table.num_rows, step)])


def write_jsonl_zst(table: pa.Table, path: Path, level: int) -> None:
    """Streamed one row group (canonical chunk) at a time, so memory stays at one chunk of Python rows
    rather than the whole shard three times over (rows, JSON text, compressed bytes)."""
    import zstandard

    with atomic_open(path, "wb") as fh, zstandard.ZstdCompressor(level=level).stream_writer(fh, closefd=False) as out:
        for batch in canonical_chunks(table).to_batches():
            lines = [json.dumps(row, ensure_ascii=False, default=str) for row in batch.to_pylist()]
            out.write(("\n".join(lines) + "\n").encode("utf-8") if lines else b"")


class Stage(GlobalStage):
    Config = ShardConfig
    config: ShardConfig
    writes_partitions = False  # its output is OUT/shards; the documents pass through

    def reads(self) -> tuple[Column, ...]:
        return (Column("id", pa.string()), Column("text", pa.string()),
                *(Column(c, optional=True) for c in ("source", "url", "domain", "n_tokens", "token_ids")))

    def _sorted_files(self, ctx: StageContext) -> list[str]:
        """The documents in shard order, as a list of files read in turn."""
        cols = self.config.columns
        if cols is not None and "id" not in cols:
            cols = ["id", *cols]
        if not self.config.shuffle:
            return [str(p) for p in ctx.inputs]
        import functools

        total = sum(pq.ParquetFile(arrow(p)).metadata.serialized_size + p.stat().st_size for p in ctx.inputs)
        n_buckets = max(8, total // (64 * 1024 * 1024) + 1)
        return ctx.executor.group_by_key(
            ctx.inputs, functools.partial(_sort_keys, (ctx.pipeline.seed, cols)), _sort_bucket,
            ctx.stage_dir / "_work", n_buckets=int(n_buckets), partitioner="range",
            progress=ctx.phase("shuffle"))

    def _plan(self, files: list[str]) -> list[tuple[ShardSlice, ...]]:
        """Shard boundaries over the sorted files, reading only each file's text sizes, one file at a time."""
        shards: list[list[ShardSlice]] = []
        state = [0, 0]
        for path in files:
            pf = pq.ParquetFile(arrow(storage.location(path)))
            n = pf.metadata.num_rows
            if n == 0:
                continue
            if SIZE in pf.schema_arrow.names:
                sizes = pq.read_table(arrow(storage.location(path)), columns=[SIZE]).column(SIZE).to_numpy()
            else:
                sizes = text_bytes(pq.read_table(arrow(storage.location(path)), columns=["text"])).to_numpy()
            starts = shard_starts(sizes, self.config.max_shard_bytes, self.config.max_shard_docs, state)
            bounds = [0, *starts, n]
            for j, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
                if hi == lo:
                    continue
                if j == 0 and shards and lo == 0 and not (starts and starts[0] == 0):
                    shards[-1].append(ShardSlice(path, lo, hi))  # the open shard continues into this file
                else:
                    shards.append([ShardSlice(path, lo, hi)])
        return [tuple(s) for s in shards]

    def fingerprint(self) -> dict[str, Any]:
        if self.config.tokenizer is None:
            return {}
        from pipeline.tokenizer import load_tokenizer, tokenizer_fingerprint

        load_tokenizer(self.config.tokenizer, self.config.eod_token)
        return tokenizer_fingerprint(self.config.tokenizer)

    def _schema(self, plan: list[tuple[ShardSlice, ...]]) -> tuple[pa.Schema | None, tuple[str, ...] | None]:
        """The shards' schema (the `columns` chosen, `id` first among them) and the columns to read."""
        columns = None
        if self.config.columns is not None and not self.config.shuffle:
            columns = tuple(self.config.columns if "id" in self.config.columns else ["id", *self.config.columns])
        if not plan:
            return None, columns
        first = pq.read_schema(arrow(storage.location(plan[0][0].path)))
        names = [n for n in (columns or first.names) if n != SIZE]
        return pa.schema([first.field(n) for n in names]), columns

    def run(self, ctx: StageContext) -> dict[str, Any]:
        shard_dir = ctx.output_dir / "shards"
        for sub in ("text", "megatron"):
            storage.rmtree(shard_dir / sub)
        tok = self.tokenizer()
        plan = self._plan(self._sorted_files(ctx))
        schema, columns = self._schema(plan)
        jobs = [ShardJob(self, i, slices, schema, shard_dir, columns) for i, slices in enumerate(plan)]
        written = ctx.executor.map(_write_shard_task, jobs, ctx.phase("write", "shards"))
        shards, by_source, by_domain = _merge_written(written)
        distinct_counts = {f"distinct_{k}": distinct.merged_count([w["sketches"][k] for w in written if w["sketches"]])
                           for k in ("urls", "hosts") if any(w["sketches"] for w in written)}
        return self.finish(ctx, shards, by_source, by_domain, sum(w["docs"] for w in written), tok, distinct_counts)

    def tokenizer(self) -> Any:
        """The tokenizer the megatron format needs (None without it)."""
        if "megatron" not in self.config.formats:
            return None
        from pipeline.tokenizer import load_tokenizer

        return load_tokenizer(self.config.tokenizer or "", self.config.eod_token)

    def write_shard(self, table: pa.Table, i: int, shard_dir: Path, tok: Any) -> list[dict[str, Any]]:
        """Write shard `i` (its documents in shard order) in every format; return its manifest entries.
        Both executors call this, so a shard's bytes depend only on its rows."""
        text_table = canonical_chunks(table.drop_columns([c for c in TEXT_ONLY_DROP if c in table.column_names]))
        text_bytes = int(pc.sum(pc.binary_length(table.column("text").cast(pa.binary()))).as_py() or 0)
        entries = []
        for fmt in self.config.formats:
            if fmt == "megatron":
                assert tok is not None
                entry, _ = self._write_megatron(table, tok, shard_dir, i)
            else:
                path = shard_dir / "text" / (f"parquet/part-{i:05d}.parquet" if fmt == "parquet"
                                             else f"jsonl/part-{i:05d}.jsonl.zst")
                if fmt == "parquet":
                    write_parquet(text_table, path)
                else:
                    write_jsonl_zst(text_table, path, self.config.zstd_level)
                entry = {"file": str(path.relative_to(shard_dir)), "format": fmt, "docs": table.num_rows,
                         "text_bytes": text_bytes, "bytes": path.stat().st_size, "sha256": sha256_file(path)}
            entries.append(entry)
        return entries

    def finish(self, ctx: StageContext, shards: list[dict[str, Any]], by_source: dict[str, int],
               by_domain: dict[str, dict[str, int]], total_docs: int, tok: Any,
               distinct_counts: dict[str, int] | None = None) -> dict[str, Any]:
        """Write the shard manifest and card once every shard is written; return the stage's figures."""
        shard_dir = ctx.output_dir / "shards"
        total_tokens = sum(s["tokens"] for s in shards if s["format"] == "megatron")
        manifest = {"stage": ctx.stage.name, "config_hash": ctx.stage_hash, "seed": ctx.pipeline.seed,
                    "docs": total_docs, "formats": self.config.formats, "shuffle": self.config.shuffle,
                    "by_source": dict(sorted(by_source.items())), "shards": shards,
                    **(distinct_counts or {})}
        if tok is not None:
            manifest["tokens"] = total_tokens
            manifest["tokenizer"] = {"path": str(tok.path), "vocab_size": tok.vocab_size, "eod_id": tok.eod_id}
        manifest["domains"] = _domain_report(ctx, by_domain)
        clean_temp_files(shard_dir)  # a manifest or card a killed run was writing
        write_json(manifest, shard_dir / "manifest.json")
        write_card(shard_dir, manifest, ctx)  # the runner removes `_work` once the stage's manifest is written
        counts: dict[str, Any] = {**(distinct_counts or {}),
                                  "shards": len({s["file"].split("/")[-1].split(".")[0] for s in shards})}
        if tok is not None:
            counts["tokens_kept"] = total_tokens
        return counts

    def _write_megatron(self, table: pa.Table, tok: Any, shard_dir: Path, i: int) -> tuple[dict[str, Any], Any]:
        from pipeline.megatron import dtype_for_vocab, write_indexed_dataset

        if "token_ids" in table.column_names:
            ids = table.column("token_ids").combine_chunks()
            flat = ids.flatten().to_numpy()
            lengths = np.diff(ids.offsets.to_numpy()).astype(np.int64)
        else:
            flat, lengths = tok.encode(table.column("text").to_pylist(), append_eod=True)
        prefix = shard_dir / "megatron" / f"{self.config.megatron_name}_{i}"
        write_indexed_dataset(prefix, flat, lengths, dtype_for_vocab(tok.vocab_size))
        entry = {"file": f"megatron/{prefix.name}.bin", "index": f"megatron/{prefix.name}.idx", "format": "megatron",
                 "docs": table.num_rows, "tokens": int(lengths.sum()),
                 "sha256": sha256_file(f"{prefix}.bin"), "index_sha256": sha256_file(f"{prefix}.idx")}
        return entry, lengths


def _merge_written(written: list[dict[str, Any]]
                   ) -> tuple[list[dict[str, Any]], dict[str, int], dict[str, dict[str, int]]]:
    """Shard entries in shard order, documents per source, documents and tokens per domain."""
    shards: list[dict[str, Any]] = []
    by_source: dict[str, int] = {}
    by_domain: dict[str, dict[str, int]] = {}
    for w in written:
        shards += w["entries"]
        for k, v in w["by_source"].items():
            by_source[k] = by_source.get(k, 0) + v
        for d, slot in w["by_domain"].items():
            into = by_domain.setdefault(d, {"docs": 0, "tokens": 0})
            into["docs"] += slot["docs"]
            into["tokens"] += slot["tokens"]
    return shards, by_source, by_domain


def _tally(table: pa.Table, column: str, into: dict[str, int]) -> None:
    if column in table.column_names:
        for entry in pc.value_counts(table.column(column)).to_pylist():
            into[str(entry["values"])] = into.get(str(entry["values"]), 0) + entry["counts"]


def _tally_domains(table: pa.Table, into: dict[str, dict[str, int]]) -> None:
    if "domain" not in table.column_names:
        return
    domains = table.column("domain").to_pylist()
    tokens = table.column("n_tokens").to_pylist() if "n_tokens" in table.column_names else [0] * len(domains)
    for d, t in zip(domains, tokens, strict=True):
        slot = into.setdefault(str(d), {"docs": 0, "tokens": 0})
        slot["docs"] += 1
        slot["tokens"] += int(t or 0)


def _domain_report(ctx: StageContext, realized: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Per domain: what is in the shards, plus the mix stage's availability, target and epochs."""
    from pipeline.io import read_json_or_none

    mix: dict[str, Any] = {}
    for stage in ctx.pipeline.stages:
        if stage.kind == "mix":
            manifest = read_json_or_none(ctx.output_dir / stage.name / "_manifest.json") or {}
            mix = manifest.get("stats", {}).get("domains", {})
    out = {}
    for d in sorted(set(realized) | set(mix)):
        row = {"docs": realized.get(d, {}).get("docs", 0), "tokens": realized.get(d, {}).get("tokens", 0)}
        row.update({k: v for k, v in mix.get(d, {}).items()})
        out[d] = row
    return out


def write_card(shard_dir: Path, manifest: dict[str, Any], ctx: StageContext) -> None:
    """A short dataset card: counts, tokens per domain, the config hash, how to load."""
    from pipeline.io import atomic_open, read_json_or_none

    run = read_json_or_none(ctx.output_dir / "_run.json") or {}
    lines = [f"# {ctx.pipeline.name}: training shards", "",
             f"- documents: {manifest['docs']}",
             f"- config hash: {run.get('config_hash', '?')} (stage hash {manifest['config_hash']})",
             f"- seed: {manifest['seed']}; formats: {', '.join(manifest['formats'])}"]
    if "distinct_urls" in manifest:
        lines.append(f"- distinct URLs ≈ {manifest['distinct_urls']}, distinct hosts ≈ {manifest['distinct_hosts']} "
                     "(HyperLogLog estimates, ~1% error)")
    if "tokens" in manifest:
        tk = manifest["tokenizer"]
        lines.append(f"- tokens: {manifest['tokens']} (vocab {tk['vocab_size']}, end-of-document id {tk['eod_id']})")
    if manifest["domains"]:
        lines += ["", "| domain | docs | tokens | target | epochs |", "|---|---|---|---|---|"]
        for d, row in manifest["domains"].items():
            lines.append(f"| {d} | {row['docs']} | {row['tokens']} | {row.get('target_tokens', '')} | "
                         f"{row.get('epochs', '')} |")
    from pipeline.run_view import RunView
    from synth.fate import card_lines  # the synth model (test models said plainly) and documents per recipe

    lines += card_lines(RunView(ctx.output_dir))
    lines += ["", "## Loading", "", "```python", "import datasets, glob, pandas as pd  # run in the shards/ directory",
              'files = sorted(glob.glob("text/parquet/*.parquet"))',
              'ds = datasets.load_dataset("parquet", data_files=files, split="train")',
              'df = pd.read_parquet("text/parquet")',
              "# Megatron: --data-path megatron/<name>_<i> (each .bin/.idx pair is one indexed dataset)",
              "```", ""]
    with atomic_open(shard_dir / "README.md", "w") as fh:
        fh.write("\n".join(lines))
