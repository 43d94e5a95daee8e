"""DataFrame implementations of the global stages whose local version holds the corpus's keys or
scores on one machine: shard (global shuffle + size-capped shards), mix (token budget per domain)
and quality_classifier (corpus-wide thresholds and token-weighted percentile buckets); synth is in
`spark_synth.py` (generation requests fanned out to Spark tasks).

Each computes exactly what the local stage computes (same order, same cut points, same selection),
reusing the stage module's own pure functions and writers; only the global view is distributed:
sorts are range-partitioned, and positions in the global order are found from per-partition sums
first and the one partition that matters second, so the driver holds a few numbers per partition,
not a value per document.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import storage
from pipeline.executors.local import merge_counts, part_done, partition_name
from pipeline.executors.spark import FILE, ROW, grouped, spark_schema, uri_key
from pipeline.executors.spark_synth import run_synth

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from pipeline.executors.spark import SparkExecutor
    from stages.base import GlobalStage, StageContext

SIGN = 1 << 63  # uint64 keys travel as int64 (Spark has no unsigned type): k - 2^63 keeps the order


def signed(keys: np.ndarray) -> np.ndarray:
    return (keys.astype(np.uint64) ^ np.uint64(SIGN)).view(np.int64)


def unsigned(key: int) -> int:
    return int(key) + SIGN


def _pid() -> int:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return ctx.partitionId() if ctx is not None else 0


# ----------------------------------------------------------------------------------------------
# positions in a globally sorted DataFrame


def _pick(fn: Callable[[int, pa.Table], list[dict[str, Any]]], schema: pa.Schema,
          batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    tables = list(batches)
    rows = fn(_pid(), pa.Table.from_batches(tables) if tables else None)
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=schema)


def per_partition(df: DataFrame, fn: Callable[[int, pa.Table | None], list[dict[str, Any]]],
                  schema: pa.Schema) -> list[Any]:
    """Call `fn(partition id, whole partition)` on every partition; collect the rows it returns."""
    return df.mapInArrow(functools.partial(_pick, fn, schema), spark_schema(schema)).collect()


def sorted_partitions(df: DataFrame, columns: list[str], n: int) -> DataFrame:
    from pyspark import StorageLevel

    return df.repartitionByRange(n, *columns).sortWithinPartitions(*columns).persist(StorageLevel.MEMORY_AND_DISK)


# ----------------------------------------------------------------------------------------------
# shard


def shard_starts(lengths: np.ndarray, max_bytes: int, max_docs: int | None) -> np.ndarray:
    """Where each shard starts in the document stream: the greedy cut of `stages.shard._cut`
    (a shard takes documents while they fit in `max_bytes`, at least one, at most `max_docs`)."""
    n = len(lengths)
    cum = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, dtype=np.int64, out=cum[1:])
    starts = []
    s = 0
    while s < n:
        starts.append(s)
        end = max(int(np.searchsorted(cum, cum[s] + max_bytes, side="right")) - 1, s + 1)
        if max_docs is not None:
            end = min(end, s + max_docs)
        s = min(end, n)
    return np.asarray(starts, dtype=np.int64)


def order_keys(table: pa.Table, seed: int, shuffle: bool, part: int, rows: np.ndarray
               ) -> tuple[np.ndarray, pa.Array]:
    """(o1, o2): the local shard order as two sortable Spark columns. Shuffled: (hash(seed, copy
    id), copy id), the local (key, copy_id); else (input partition, row), the input order."""
    from stages.shard import copy_ids, shuffle_keys

    if shuffle:
        ids = copy_ids(table)
        return signed(shuffle_keys(ids, seed)), ids.cast(pa.string())
    return (np.int64(part) << np.int64(32)) + rows.astype(np.int64), pa.array([""] * table.num_rows, pa.string())


@dataclass(frozen=True)
class ShardJob:
    stage: Any  # the shard Stage (config and writers)
    seed: int
    shuffle: bool
    target: pa.Schema  # exactly the Arrow schema the local stage's tables have
    files: dict[str, Any]  # uri_key -> FileInfo
    shard_dir: Path
    starts1: np.ndarray | None = None  # first (o1, o2) of every shard, in order
    starts2: tuple[str, ...] = ()


_KEYS = pa.schema([("_o1", pa.int64()), ("_o2", pa.string()), ("_len", pa.int64())])


def _shard_keys_task(job: ShardJob, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for uri, table in grouped(batches, FILE):
        info = job.files[uri_key(str(uri))]
        order = table.select([c for c in ("id", "epoch") if c in job.target.names])
        order = order.cast(pa.schema([job.target.field(c) for c in order.column_names]))
        o1, o2 = order_keys(order, job.seed, job.shuffle, info.part, table.column(ROW).to_numpy())
        yield from pa.table({"_o1": o1, "_o2": o2, "_len": table.column("_len")}, schema=_KEYS).to_batches()


def _shard_of(job: ShardJob, o1: np.ndarray, o2: list[str]) -> np.ndarray:
    """Shard number of each (o1, o2): how many shard starts are <= it, minus one."""
    s1 = job.starts1 if job.starts1 is not None else np.zeros(0, np.int64)
    hi = np.searchsorted(s1, o1, side="right")
    lo = np.searchsorted(s1, o1, side="left")
    count = hi.copy()
    for i in np.flatnonzero(lo < hi):  # o1 ties (only on a 64-bit hash collision): compare o2 too
        count[i] = lo[i] + sum(1 for j in range(lo[i], hi[i]) if job.starts2[j] <= o2[i])
    return (count - 1).astype(np.int32)


def _tag_task(job: ShardJob, out: pa.Schema, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    for uri, table in grouped(batches, FILE):
        info = job.files[uri_key(str(uri))]
        docs = table.select(job.target.names).cast(job.target)
        o1, o2 = order_keys(docs, job.seed, job.shuffle, info.part, table.column(ROW).to_numpy())
        shard = _shard_of(job, o1, o2.to_pylist())
        tagged = table.select(job.target.names)
        for name, col in (("_shard", pa.array(shard)), ("_o1", pa.array(o1)), ("_o2", o2)):
            tagged = tagged.append_column(name, col)
        yield from tagged.cast(out).to_batches()


_WRITTEN = pa.schema([("shard", pa.int32()), ("docs", pa.int64()), ("info", pa.string())])
_TOKENIZERS: dict[str, Any] = {}


def _write_task(job: ShardJob, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Write every shard of this partition with the stage's own writer; report entries and tallies."""
    from stages.shard import _tally, _tally_domains

    stage = job.stage
    key = f"{stage.config.tokenizer}\0{stage.config.eod_token}"
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = stage.tokenizer()
    tok = _TOKENIZERS[key]
    for shard, table in grouped(batches, "_shard"):
        table = table.select(job.target.names).cast(job.target)
        entries = stage.write_shard(table, int(shard), job.shard_dir, tok)
        by_source: dict[str, int] = {}
        by_domain: dict[str, dict[str, int]] = {}
        _tally(table, "source", by_source)
        _tally_domains(table, by_domain)
        info = json.dumps({"entries": entries, "by_source": by_source, "by_domain": by_domain})
        yield pa.RecordBatch.from_pylist([{"shard": int(shard), "docs": table.num_rows, "info": info}],
                                         schema=_WRITTEN)


def target_schema(inputs: list[Path], columns: list[str] | None) -> pa.Schema:
    """The schema of the tables the local shard stage cuts (what `pq.read_table(path, columns=...)` gives)."""
    return pq.read_table(storage.arrow(inputs[0]), columns=columns).schema


def run_shard(ex: SparkExecutor, stage: GlobalStage, ctx: StageContext) -> dict[str, Any]:
    """Global shuffle and shard cutting: order keys are range-partitioned and sorted; shard starts
    come from text lengths in that order; documents go to their shard's task, sorted, and are
    written by the stage's own `write_shard`, so the bytes are the local executor's."""
    from pyspark.sql import functions as F

    from pipeline.executors.spark import file_infos

    cfg = stage.config  # type: ignore[attr-defined]
    shard_dir = ctx.output_dir / "shards"
    for sub in ("text", "megatron"):
        storage.rmtree(shard_dir / sub)
    tok = stage.tokenizer()  # type: ignore[attr-defined]
    inputs = list(ctx.inputs)
    files = file_infos(inputs)
    n_docs = sum(info.rows for info in files.values())
    shards: list[dict[str, Any]] = []
    by_source: dict[str, int] = {}
    by_domain: dict[str, dict[str, int]] = {}
    if n_docs == 0:
        return stage.finish(ctx, shards, by_source, by_domain, 0, tok)  # type: ignore[attr-defined]
    cols = cfg.columns
    if cols is not None and "id" not in cols:
        cols = ["id", *cols]
    busy = [storage.location(info.path) for info in files.values() if info.rows]
    target = target_schema(busy, cols)
    job = ShardJob(stage, ctx.pipeline.seed, cfg.shuffle, target, files, shard_dir)
    docs = ex.read_documents(busy)
    with ex.job(f"{ctx.stage.name}: order", ctx.stats.get("progress")):
        light = docs.select("id", *(["epoch"] if "epoch" in target.names else []), FILE, ROW,
                            F.octet_length("text").cast("long").alias("_len"))
        keys = light.mapInArrow(functools.partial(_shard_keys_task, job), spark_schema(_KEYS))
        n_parts = int(max(1, min(4 * ex.workers, n_docs // 200_000 + 1)))
        ordered = sorted_partitions(keys, ["_o1", "_o2"], n_parts)

        def lengths(pid: int, table: pa.Table | None) -> list[dict[str, Any]]:
            lens = table.column("_len").to_numpy() if table is not None else np.zeros(0, np.int64)
            return [{"pid": pid, "lens": lens.astype(np.int32).tobytes()}]

        per_part = per_partition(ordered.select("_len"), lengths,
                                 pa.schema([("pid", pa.int32()), ("lens", pa.binary())]))
        lens_by_pid = {r["pid"]: np.frombuffer(r["lens"], dtype=np.int32) for r in per_part}
        all_lens = [lens_by_pid.get(p, np.zeros(0, np.int64)) for p in range(ordered.rdd.getNumPartitions())]
        offsets = np.concatenate([[0], np.cumsum([len(x) for x in all_lens])]).astype(np.int64)
        if offsets[-1] != n_docs:
            raise RuntimeError(f"shard: ordered {offsets[-1]} of {n_docs} documents")
        starts = shard_starts(np.concatenate(all_lens), cfg.max_shard_bytes, cfg.max_shard_docs)
        wanted: dict[int, list[int]] = {}
        for s in starts:
            pid = int(np.searchsorted(offsets, s, side="right") - 1)
            wanted.setdefault(pid, []).append(int(s - offsets[pid]))

        def first_keys(pid: int, table: pa.Table | None) -> list[dict[str, Any]]:
            if table is None or pid not in wanted:
                return []
            o1, o2 = table.column("_o1"), table.column("_o2")
            return [{"pos": int(offsets[pid]) + i, "o1": o1[i].as_py(), "o2": o2[i].as_py()} for i in wanted[pid]]

        picked = per_partition(ordered.select("_o1", "_o2"), first_keys,
                               pa.schema([("pos", pa.int64()), ("o1", pa.int64()), ("o2", pa.string())]))
        ordered.unpersist()
    picked = sorted(picked, key=lambda r: r["pos"])
    if [r["pos"] for r in picked] != starts.tolist():
        raise RuntimeError("shard: the sorted keys changed between two passes")
    job = ShardJob(stage, job.seed, job.shuffle, target, files, shard_dir,
                   np.array([r["o1"] for r in picked], np.int64), tuple(r["o2"] for r in picked))
    tag_schema = target.append(pa.field("_shard", pa.int32())).append(pa.field("_o1", pa.int64())).append(
        pa.field("_o2", pa.string()))
    from pipeline.executors.spark import sparkable

    tag_schema = sparkable(tag_schema)
    tagged = docs.mapInArrow(functools.partial(_tag_task, job, tag_schema), spark_schema(tag_schema))
    out = tagged.repartition(ex.shuffle_partitions(len(starts)), "_shard").sortWithinPartitions("_shard", "_o1", "_o2")
    with ex.job(f"{ctx.stage.name}: write", ctx.stats.get("progress")):
        written = out.mapInArrow(functools.partial(_write_task, job), spark_schema(_WRITTEN)).collect()
    written = sorted(written, key=lambda r: r["shard"])
    expected = np.diff(np.concatenate([starts, [n_docs]]))
    if [r["shard"] for r in written] != list(range(len(starts))) or [r["docs"] for r in written] != expected.tolist():
        raise RuntimeError("shard: written shards do not match the planned cut")
    for r in written:
        info = json.loads(r["info"])
        shards += info["entries"]
        for k, v in info["by_source"].items():
            by_source[k] = by_source.get(k, 0) + v
        for d, slot in info["by_domain"].items():
            into = by_domain.setdefault(d, {"docs": 0, "tokens": 0})
            into["docs"] += slot["docs"]
            into["tokens"] += slot["tokens"]
    return stage.finish(ctx, shards, by_source, by_domain, n_docs, tok)  # type: ignore[attr-defined]


# ----------------------------------------------------------------------------------------------
# mix


_MIX_KEYS = pa.schema([("domain", pa.string()), ("k", pa.int64()), ("n_tokens", pa.int64())])


def _mix_keys_task(by: str, seed: int, types: pa.Schema, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The local `_domain_keys`: domain as text (null -> "None", as numpy's astype(str) makes it)."""
    from stages.shard import shuffle_keys

    for b in batches:
        t = pa.Table.from_batches([b]).select(["id", by, "n_tokens"]).cast(types)
        domain = pc.fill_null(pc.cast(t.column(by), pa.string()), "None")
        yield from pa.table({"domain": domain, "k": signed(shuffle_keys(t.column("id"), seed)),
                             "n_tokens": pc.cast(t.column("n_tokens"), pa.int64())}, schema=_MIX_KEYS).to_batches()


def _take_until(rows: list[tuple[int, int]], before: int, rest: float) -> tuple[int, int | None, int]:
    """Within one key bucket: documents (key, tokens) in key order are taken while the tokens taken
    before each is < rest. Returns (taken, last key taken, tokens taken)."""
    rows = sorted(rows, key=lambda r: r[0])
    taken = tokens = 0
    last = None
    for key, n in rows:
        if before + tokens >= rest:
            break
        taken += 1
        tokens += n
        last = key
    return taken, last, tokens


def run_mix(ex: SparkExecutor, stage: GlobalStage, ctx: StageContext) -> dict[str, Any]:
    """Tokens per domain by aggregate; each domain's partial-epoch cut (take documents in hash
    order until the target) from a histogram of key prefixes, then the one bucket where the target
    falls; selection per partition with the stage's own function."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from pipeline.config import ConfigError
    from stages.mix import plan_mix, select_and_count

    cfg = stage.config  # type: ignore[attr-defined]
    seed = ctx.pipeline.seed
    inputs = list(ctx.inputs)
    missing = [c for c in (cfg.by, "n_tokens") if inputs and c not in pq.read_schema(storage.arrow(inputs[0])).names]
    if missing:
        raise ConfigError([f"stages.{ctx.stage.name}: input documents have no column {missing[0]!r} "
                           f"(add a {'tokenize' if missing[0] == 'n_tokens' else 'classifier'} stage before)"])
    busy = [p for p in inputs if pq.ParquetFile(storage.arrow(p)).metadata.num_rows]
    available: dict[str, int] = {}
    docs: dict[str, int] = {}
    keyed = None
    if busy:
        schema = pq.read_schema(storage.arrow(busy[0]))
        types = pa.schema([schema.field(c) for c in ("id", cfg.by, "n_tokens")])
        keyed = ex.read_documents(busy, ["id", cfg.by, "n_tokens"]).mapInArrow(
            functools.partial(_mix_keys_task, cfg.by, seed, types), spark_schema(_MIX_KEYS))
        keyed = keyed.persist(StorageLevel.MEMORY_AND_DISK)
        with ex.job(f"{ctx.stage.name}: tokens per domain"):
            for r in keyed.groupBy("domain").agg(F.sum("n_tokens").alias("t"), F.count("*").alias("n")).collect():
                available[r["domain"]] = int(r["t"] or 0)
                docs[r["domain"]] = int(r["n"])
    available = dict(sorted(available.items()))
    plan = plan_mix(cfg, available)
    cuts = _partial_epochs(ex, keyed, {d: r for d, r in plan.rests.items() if r > 0}, ctx.stage.name)
    if keyed is not None:
        keyed.unpersist()
    return select_and_count(ctx, cfg, available, docs, plan.weights, plan.targets, plan.budget,
                            plan.full_epochs, cuts)


def _partial_epochs(ex: SparkExecutor, keyed: DataFrame | None, rests: dict[str, float],
                    label: str) -> dict[str, tuple[int, int | None, int]]:
    """Per domain: (documents taken, last key taken as uint64, tokens taken) of the partial epoch.
    Pass 1 sums tokens per 16-bit key prefix; pass 2 reads the one prefix where `rest` is reached."""
    from pyspark.sql import functions as F

    if keyed is None or not rests:
        return {}
    with ex.job(f"{label}: partial epochs"):
        wanted = keyed.filter(F.col("domain").isin(list(rests)))
        hist = wanted.groupBy("domain", F.shiftright("k", 48).alias("b")).agg(
            F.sum("n_tokens").alias("t"), F.count("*").alias("n")).collect()
        per: dict[str, list[tuple[int, int, int]]] = {}
        for r in hist:
            per.setdefault(r["domain"], []).append((int(r["b"]), int(r["t"] or 0), int(r["n"])))
        found: dict[str, tuple[int, int, int]] = {}  # domain -> (bucket, tokens before, docs before)
        whole: dict[str, tuple[int, int]] = {}
        for d, rows in per.items():
            before = count = 0
            for b, t, n in sorted(rows):
                if before + t >= rests[d]:
                    found[d] = (b, before, count)
                    break
                before += t
                count += n
            else:
                whole[d] = (count, before)
        cond = None
        for d, (b, _, _) in found.items():
            c = (F.col("domain") == d) & (F.shiftright("k", 48) == b)
            cond = c if cond is None else cond | c
        rows_in: dict[str, list[tuple[int, int]]] = {}
        if cond is not None:
            for r in wanted.filter(cond).select("domain", "k", "n_tokens").collect():
                rows_in.setdefault(r["domain"], []).append((int(r["k"]), int(r["n_tokens"] or 0)))
    out: dict[str, tuple[int, int | None, int]] = {}
    for d, (_, before, count) in found.items():
        taken, last, tokens = _take_until(rows_in.get(d, []), before, rests[d])
        out[d] = (count + taken, unsigned(last) if last is not None else None, before + tokens)
    for d, (count, before) in whole.items():  # rest beyond the domain's tokens: every document
        if count:
            last_key = wanted.filter(F.col("domain") == d).agg(F.max("k")).first()[0]
            out[d] = (count, unsigned(last_key), before)
    return out


# ----------------------------------------------------------------------------------------------
# quality_classifier


_SUMS_S = pa.schema([("pid", pa.int32()), ("n", pa.int64()), ("w", pa.int64()), ("s", pa.float64())])


def _score_sums(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    n = w = 0
    total = 0.0
    for b in batches:
        n += b.num_rows
        w += int(pc.sum(b.column("w")).as_py() or 0)
        total += float(pc.sum(b.column("s").cast(pa.float64())).as_py() or 0.0)
    yield pa.RecordBatch.from_pylist([{"pid": _pid(), "n": n, "w": w, "s": total}], schema=_SUMS_S)


def score_thresholds(ex: SparkExecutor, df: DataFrame, keep_top: float | None, buckets: int | None
                     ) -> tuple[float | None, list[float] | None, float | None]:
    """(keep_top threshold, bucket cuts, mean score) of a DataFrame of scores `s` and weights `w`,
    as `keep_top_threshold` and `bucket_boundaries` compute them on all scores in memory.

    Rows are range-sorted by (s, w); per-partition counts and weight sums locate every wanted
    position (the k-th best score; the first row whose cumulative weight share exceeds i/n) in one
    partition, and a second pass reads just those rows. Weights are integers, so the cumulative sums
    are exact and the shares are the very float64 values the local code divides out."""
    parts = int(max(1, min(4 * ex.workers, 64)))
    ordered = sorted_partitions(df, ["s", "w"], parts)
    try:
        out = ordered.mapInArrow(_score_sums, spark_schema(_SUMS_S)).collect()
        n_parts = ordered.rdd.getNumPartitions()
        counts, sums = np.zeros(n_parts, np.int64), np.zeros(n_parts, np.int64)
        score_total = 0.0
        for r in out:
            counts[r["pid"]] += r["n"]
            sums[r["pid"]] += r["w"]
            score_total += r["s"]
        n = int(counts.sum())
        if n == 0:
            return (math.inf if keep_top is not None else None), ([] if buckets else None), None
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        total = int(sums.sum())
        ends = np.cumsum(sums)
        last_pid = int(max(p for p in range(n_parts) if counts[p]))
        positions: dict[int, list[tuple[str, int]]] = {}  # pid -> [(what, global position or bucket i)]
        if keep_top is not None:
            pos = n - max(1, math.ceil(keep_top * n))
            positions.setdefault(int(np.searchsorted(offsets, pos, side="right") - 1), []).append(("pos", pos))
        for i in range(1, buckets or 0):
            pid = next((p for p in range(n_parts)  # (no share exceeds i/n if all weights are 0: the last row)
                        if counts[p] and total > 0 and float(ends[p]) / float(total) > i / buckets), last_pid)
            positions.setdefault(pid, []).append(("cut", i))

        def pick(pid: int, table: pa.Table | None) -> list[dict[str, Any]]:
            if table is None or pid not in positions:
                return []
            s_col = table.column("s").to_numpy(zero_copy_only=False)
            w_col = table.column("w").to_numpy().astype(np.float64)
            cum = float(ends[pid] - sums[pid]) + np.cumsum(w_col)
            rows = []
            for what, x in positions[pid]:
                if what == "pos":
                    rows.append({"what": what, "i": x, "value": float(s_col[x - int(offsets[pid])])})
                else:
                    share = cum / float(total) if total > 0 else np.zeros_like(cum)
                    at = int(np.searchsorted(share, x / buckets, side="right"))  # type: ignore[operator]
                    rows.append({"what": what, "i": x, "value": float(s_col[min(at, len(s_col) - 1)])})
            return rows

        picked = per_partition(ordered, pick, pa.schema([("what", pa.string()), ("i", pa.int64()),
                                                         ("value", pa.float64())]))
    finally:
        ordered.unpersist()
    threshold = next((r["value"] for r in picked if r["what"] == "pos"), None)
    cuts = {r["i"]: r["value"] for r in picked if r["what"] == "cut"}
    return threshold, ([cuts[i] for i in range(1, buckets)] if buckets else None), score_total / n


def run_quality(ex: SparkExecutor, stage: GlobalStage, ctx: StageContext) -> dict[str, Any]:
    """Scores per partition with the stage's function; keep_top's threshold and the token-weighted
    bucket cuts from one sorted DataFrame (`score_thresholds`); decisions per partition."""
    from pyspark.sql import functions as F

    from stages.quality_classifier import _decide_partition, _score_partition

    cfg = stage.config  # type: ignore[attr-defined]
    stage_hash = ctx.stats["stage_hash"]
    scored_dir = ctx.stage_dir / "_scored"
    scored = [scored_dir / p.name for p in ctx.inputs]
    progress = ctx.stats.get("progress")
    ex.map(_score_partition, [(cfg, ctx.pipeline, stage_hash, p, s) for p, s in zip(ctx.inputs, scored, strict=True)],
           progress)
    threshold, cuts, score_mean = cfg.threshold, None, None
    busy = [p for p in scored if pq.ParquetFile(storage.arrow(p)).metadata.num_rows]
    if busy:
        names = pq.read_schema(storage.arrow(busy[0])).names
        weight = (F.coalesce(F.col("n_tokens").cast("long"), F.lit(0)) if "n_tokens" in names
                  else F.length("text").cast("long"))
        df = ex.read_parquet(busy).select(F.col("quality_score").alias("s"), weight.alias("w"))
        with ex.job(f"{ctx.stage.name}: thresholds", progress):
            top, cuts, score_mean = score_thresholds(ex, df, cfg.keep_top, cfg.buckets)
        threshold = top if cfg.keep_top is not None else threshold
    elif cfg.keep_top is not None:
        threshold = math.inf
    if cfg.buckets and cuts is None:
        cuts = []
    todo = [s for s in scored if part_done(ctx.stage_dir, partition_name(s), stage_hash) is None]
    ex.map(_decide_partition, [(cfg, stage_hash, s, ctx.stage_dir, threshold, cuts) for s in todo], progress)
    counts = merge_counts(part_done(ctx.stage_dir, partition_name(s), stage_hash) or {} for s in scored)
    counts["threshold"] = threshold
    counts["score_mean"] = score_mean
    if cuts is not None:
        counts["bucket_boundaries"] = cuts
    return counts  # the runner removes `_scored` once the stage's manifest is written (a kill before keeps it)


IMPLEMENTATIONS: dict[str, Callable[[SparkExecutor, Any, Any], dict[str, Any]]] = {
    "shard": run_shard,
    "mix": run_mix,
    "quality_classifier": run_quality,
    "synth": run_synth,  # generation requests from Spark tasks (engine http), the rest as locally
}
