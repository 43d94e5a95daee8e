"""The Spark executor: the same stages, the same output layout, spread by Apache Spark.

Work runs on PySpark DataFrames and calls the very functions the local executor calls, so the two
executors agree row for row and shard byte for byte:

* row-wise stages: partitions are read by Spark (one input partition file = one Spark partition,
  see `SQL_DEFAULTS`), every file's rows are cast back to the file's own Arrow schema, passed to
  `stage.apply` through `mapInArrow`, and written by the local executor's `write_split` (same file
  names, counts and per-partition completion markers, so a run resumes with either executor);
* keyed dedup: key rows come from `stage.keys` in `mapInArrow`; the survivor of each key is chosen
  by a window over `(priority..., id)`, exactly the local `keep_first_per_key` rule;
* global stages: shard, mix and quality_classifier have DataFrame implementations
  (`spark_stages.py`), synth sends its generation requests from Spark tasks (`spark_synth.py`);
  any other `GlobalStage` runs through the generic primitives `map` and
  `group_by_key` below, which keep the local executor's contracts;
* near-dup graphs: `spark_graph.connected_components` (large-star/small-star on DataFrames).

Paths: the runner keeps manifests, locks and markers on a filesystem the driver sees, and workers
write partitions there too, so on a cluster OUT must be a shared mount (see docs/spark.md). Spark
itself only ever sees URIs from `to_uri`, the one place a Hadoop scheme would plug in.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import storage
from pipeline.config import PipelineConfig, SparkConfig, StageConfig
from pipeline.executors.local import (
    Progress,
    StageFailed,
    get_stage,
    hash_keys,
    index_files,
    merge_counts,
    part_done,
    partition_name,
    write_split,
)
from pipeline.io import read_json_or_none, write_json, write_parquet
from pipeline.schema import REASON

if TYPE_CHECKING:
    from pyspark import SparkContext
    from pyspark.sql import DataFrame, SparkSession

    from stages.base import GlobalStage, StageContext

log = logging.getLogger("curate")

FILE, ROW = "_file", "_row"  # source file URI and row number of every document row in a DataFrame

# Set when this executor creates the session (the user's `spark.conf` wins over these).
SESSION_DEFAULTS: dict[str, str] = {
    "spark.ui.showConsoleProgress": "false",
    "spark.python.worker.reuse": "true",  # stage models load once per Python worker, not per task
}
# Set on this executor's own SQL session (`newSession`), so a host application's session keeps its
# settings. One partition file per Spark partition: stages see whole partitions, like locally.
SQL_DEFAULTS: dict[str, str] = {
    "spark.sql.files.maxPartitionBytes": str(1 << 40),
    "spark.sql.files.openCostInBytes": str(1 << 40),
}


# ----------------------------------------------------------------------------------------------
# paths


def to_uri(path: str | Path) -> str:
    """The URI Spark reads a local (or shared-mount) path by; remote URIs pass through unchanged."""
    text = str(path)
    if storage.is_remote_uri(text):  # Hadoop's S3 connector is s3a://; other schemes are Hadoop's own
        scheme, rest = text.split("://", 1)
        return f"{'s3a' if storage.scheme_of(text) == 's3' else scheme}://{rest}"
    return Path(text.removeprefix("file://")).resolve().as_uri()


def uri_key(uri: str) -> str:
    """A comparable form of a file URI (Spark writes `file:/x`, Python `file:///x`)."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme in ("", "file") else uri


# ----------------------------------------------------------------------------------------------
# Arrow <-> Spark types


def sparkable(schema: pa.Schema) -> pa.Schema:
    """The nearest schema Spark can carry (no unsigned or fixed-size types); values cast back later."""

    def conv(t: pa.DataType) -> pa.DataType:
        if pa.types.is_unsigned_integer(t):
            return {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}.get(t.bit_width, pa.decimal128(20, 0))
        if pa.types.is_fixed_size_binary(t) or pa.types.is_large_binary(t):
            return pa.binary()
        if pa.types.is_large_string(t):
            return pa.string()
        if pa.types.is_dictionary(t):
            return conv(t.value_type)
        if pa.types.is_null(t):
            return pa.string()
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            return pa.list_(conv(t.value_type))
        if pa.types.is_struct(t):
            return pa.struct([pa.field(f.name, conv(f.type)) for f in t])
        return t

    return pa.schema([pa.field(f.name, conv(f.type)) for f in schema])


def spark_schema(schema: pa.Schema) -> Any:
    """Spark StructType for an Arrow schema (every field nullable: Spark checks nothing else)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(sparkable(schema))


def _to_spark_batch(table: pa.Table, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    yield from table.select(schema.names).cast(schema).to_batches()


# ----------------------------------------------------------------------------------------------
# worker side: regrouping a partition's batches by source file


@dataclass(frozen=True)
class FileInfo:
    """What a worker needs to rebuild one input file's table exactly as `pq.read_table` returns it."""

    path: str
    part: int  # position in the stage's inputs
    rows: int
    schema: pa.Schema


def file_infos(paths: Sequence[Path]) -> dict[str, FileInfo]:
    """Footer facts per input file, keyed by `uri_key` (read on the driver: metadata only)."""
    out: dict[str, FileInfo] = {}
    for i, p in enumerate(paths):
        pf = pq.ParquetFile(storage.arrow(p))
        out[uri_key(to_uri(p))] = FileInfo(str(p), i, pf.metadata.num_rows, pf.schema_arrow)
    return out


def runs(batch: pa.RecordBatch, column: str) -> Iterator[tuple[Any, pa.RecordBatch]]:
    """Split a batch into runs of equal `column` values (rows of one file or one shard)."""
    values = batch.column(column).to_numpy(zero_copy_only=False)
    if len(values) == 0:
        return
    cuts = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(values)]])
    for s, e in zip(starts, ends, strict=True):
        yield values[s], batch.slice(int(s), int(e - s))


def grouped(batches: Iterator[pa.RecordBatch], column: str) -> Iterator[tuple[Any, pa.Table]]:
    """Whole groups of consecutive rows sharing `column` (a partition holds each group contiguously)."""
    current: Any = None
    pending: list[pa.RecordBatch] = []
    for batch in batches:
        for value, piece in runs(batch, column):
            if pending and value != current:
                yield current, pa.Table.from_batches(pending)
                pending = []
            current = value
            pending.append(piece)
    if pending:
        yield current, pa.Table.from_batches(pending)


def files_in(batches: Iterator[pa.RecordBatch], files: dict[str, FileInfo],
             extra: Sequence[str] = ()) -> Iterator[tuple[FileInfo, pa.Table, pa.Table]]:
    """(file, its rows cast to the file's own schema, the `extra` columns) for every whole file in a
    partition. Raises if a file's rows are incomplete or out of order (the file was split)."""
    for uri, table in grouped(batches, FILE):
        info = files[uri_key(str(uri))]
        rows = table.column(ROW).to_numpy()
        if table.num_rows != info.rows or not np.array_equal(rows, np.arange(info.rows)):
            raise RuntimeError(f"{info.path}: got {table.num_rows} of {info.rows} rows in one task; input "
                               "files must not be split (spark.sql.files.maxPartitionBytes too small?)")
        docs = table.select(info.schema.names).cast(info.schema)
        yield info, docs, table.select(list(extra))


def _read_files_task(out: pa.Schema, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Worker side of `SparkExecutor._read_with_arrow`: each file's rows in order, cast to `out`."""
    docs = pa.schema([f for f in out if f.name not in (FILE, ROW)])
    for batch in batches:
        for uri in batch.column("uri").to_pylist():
            row = 0
            for rb in pq.ParquetFile(storage.arrow(storage.location(uri))).iter_batches(batch_size=8192):
                n = rb.num_rows
                table = pa.Table.from_batches([rb]).select(docs.names).cast(docs)
                table = table.append_column(FILE, pa.array([uri] * n, pa.string()))
                table = table.append_column(ROW, pa.array(np.arange(row, row + n, dtype=np.int64)))
                row += n
                yield from table.to_batches()


def _empty_partition(info: FileInfo) -> pa.Table:
    return info.schema.empty_table()


# ----------------------------------------------------------------------------------------------
# worker side: stage tasks


@dataclass(frozen=True)
class StageJob:
    config: StageConfig
    pipeline: PipelineConfig
    stage_hash: str
    stage_dir: Path
    files: dict[str, FileInfo]


_DONE_SCHEMA = pa.schema([("file", pa.string()), ("rows", pa.int64())])


def _done(info: FileInfo) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist([{"file": info.path, "rows": info.rows}], schema=_DONE_SCHEMA)


def _map_task(job: StageJob, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Row-wise stage on whole files: the local `_map_partition`, fed by Spark instead of a path."""
    stage = get_stage(job.config, job.pipeline, job.stage_hash)
    for info, table, _ in files_in(batches, job.files):
        result = stage.apply(table)
        write_split(result, job.stage_dir, partition_name(info.path), job.stage_hash, stage.counters(result))
        yield _done(info)


def _apply_task(job: StageJob, out_schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    stage = get_stage(job.config, job.pipeline, job.stage_hash)
    for _info, table, extra in files_in(batches, job.files, (FILE, ROW)):
        result = stage.apply(table)
        for name in (FILE, ROW):
            result = result.append_column(name, extra.column(name))
        yield from _to_spark_batch(result, out_schema)


def _dedup_key_task(job: StageJob, prio: pa.Schema, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Key rows of whole files for every key at once: (k, key, file, row, id, prio_0, prio_1...)."""
    stage = get_stage(job.config, job.pipeline, job.stage_hash)
    schema = _key_schema(prio)
    for _info, table, extra in files_in(batches, job.files, (FILE,)):
        priority = stage.priority(table)
        for k, key in enumerate(stage.keys(table)):
            values = key.values.cast(pa.binary()) if not pa.types.is_binary(key.values.type) else key.values
            cols: dict[str, Any] = {"k": pa.array(np.full(table.num_rows, k, np.int32)), "key": values,
                                    FILE: extra.column(FILE), ROW: pa.array(np.arange(table.num_rows, dtype=np.int64)),
                                    "id": table.column("id"), "prio_0": pa.array(np.ones(table.num_rows, np.int8))}
            for i, name in enumerate(priority.column_names, start=1):
                cols[f"prio_{i}"] = priority.column(name)
            rows = pa.table(cols)
            rows = rows.filter(pc.is_valid(rows.column("key")))
            yield from _to_spark_batch(rows, schema)


def _key_schema(prio: pa.Schema) -> pa.Schema:
    fields = [pa.field("k", pa.int32()), pa.field("key", pa.binary()), pa.field(FILE, pa.string()),
              pa.field(ROW, pa.int64()), pa.field("id", pa.string()), pa.field("prio_0", pa.int8())]
    fields += [pa.field(f"prio_{i}", f.type) for i, f in enumerate(prio, start=1)]
    return sparkable(pa.schema(fields))


def _dedup_write_task(job: StageJob, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The local `_dedup_apply`: each file's rows in order, with the removal reasons the group-by chose."""
    for info, table, extra in files_in(batches, job.files, (REASON,)):
        table = table.append_column(REASON, extra.column(REASON).cast(pa.string()))
        write_split(table, job.stage_dir, partition_name(info.path), job.stage_hash, {})
        yield _done(info)


def _call_indexed(fn: Callable[[Any], Any], pair: tuple[int, Any]) -> tuple[int, Any]:
    index, item = pair
    try:
        return index, fn(item)
    except StageFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the item that failed
        raise StageFailed(str(item), exc) from exc


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


_CHUNK_SCHEMA = pa.schema([("bucket", pa.int32()), ("part", pa.int32()), ("payload", pa.binary())])


def _group_map_task(key_fn: Callable[[Path, int], pa.Table], n_buckets: int, partitioner: str,
                    batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The local `_group_map`, emitting each bucket's slice as one Arrow IPC chunk instead of a file."""
    for batch in batches:
        for part, path in zip(batch.column("part").to_pylist(), batch.column("path").to_pylist(), strict=True):
            table = key_fn(storage.location(path), part)
            if table.num_rows == 0:
                continue
            if partitioner == "range":
                keys = table.column("key").to_numpy().astype(np.uint64)
                bucket = ((keys >> np.uint64(32)) * np.uint64(n_buckets)) >> np.uint64(32)
            else:
                bucket = hash_keys(table.column("key")) % np.uint64(n_buckets)
            order = np.argsort(bucket, kind="stable")
            sorted_buckets = bucket[order]
            table = table.take(pa.array(order))
            bounds = np.flatnonzero(np.diff(sorted_buckets)) + 1
            starts = np.concatenate([[0], bounds])
            ends = np.concatenate([bounds, [len(order)]])
            rows = [{"bucket": int(sorted_buckets[s]), "part": part, "payload": _ipc(table.slice(int(s), int(e - s)))}
                    for s, e in zip(starts, ends, strict=True)]
            yield pa.RecordBatch.from_pylist(rows, schema=_CHUNK_SCHEMA)


def _group_reduce_task(reduce_fn: Callable[[pa.Table], pa.Table], workdir: Path,
                       batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The local `_group_reduce`: a bucket's chunks in partition order, reduced, written."""
    chunks: dict[int, list[tuple[int, bytes]]] = {}
    for batch in batches:
        for b, part, payload in zip(batch.column("bucket").to_pylist(), batch.column("part").to_pylist(),
                                    batch.column("payload").to_pylist(), strict=True):
            chunks.setdefault(b, []).append((part, payload))
    for b, items in sorted(chunks.items()):
        items.sort(key=lambda x: x[0])
        table = pa.concat_tables([_from_ipc(p) for _, p in items], promote_options="default")
        out = workdir / "reduce" / f"r{b:05d}.parquet"
        write_parquet(reduce_fn(table), out)
        yield pa.RecordBatch.from_pylist([{"bucket": b}], schema=pa.schema([("bucket", pa.int32())]))


# ----------------------------------------------------------------------------------------------
# driver side


_ERROR_LINE = re.compile(r"^(?!org\.apache\.|py4j\.)[A-Za-z_][\w.]*(Error|Exception|Failed)(: .*)?$")


def python_error(exc: BaseException) -> str:
    """The last `SomeError: message` line of a worker's Python traceback (what failed), else the
    exception's first line: Spark reports worker errors as the traceback's text."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return next((line for line in reversed(lines) if _ERROR_LINE.match(line)), lines[0] if lines else repr(exc))


def get_session(cfg: SparkConfig) -> tuple[SparkSession, bool]:
    """The active session (spark-submit, a notebook, tests), else a new one from `cfg`.
    Returns (session, owned): an owned session is stopped by `close`."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    conf = {**SESSION_DEFAULTS, **cfg.conf}
    if "spark.pyspark.python" in conf:
        os.environ["PYSPARK_PYTHON"] = conf["spark.pyspark.python"]
    elif cfg.master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers use this interpreter and venv
    builder = SparkSession.builder.appName("ling-curate")
    if "PYSPARK_GATEWAY_PORT" not in os.environ or "master" in cfg.model_fields_set:
        builder = builder.master(cfg.master)  # under spark-submit its --master wins unless set here
    for key, value in conf.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel(conf.get("spark.log.level", "WARN"))
    return session, True


class SparkExecutor:
    """Executor on a Spark session; the session starts on first use, so a fully cached run needs none."""

    name = "spark"

    def __init__(self, cfg: PipelineConfig, spark: SparkSession | None = None):
        self.cfg = cfg
        self._given = spark
        self._base: SparkSession | None = None
        self._spark: SparkSession | None = None
        self._owned = False

    # -- session --------------------------------------------------------------------------------
    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            started = time.monotonic()
            if self._given is not None:
                self._base, self._owned = self._given, False
            else:
                self._base, self._owned = get_session(self.cfg.spark)
            log.info("spark: session ready in %.1fs (master %s, %d task slots)", time.monotonic() - started,
                     self._base.sparkContext.master, self._base.sparkContext.defaultParallelism)
            session = self._base.newSession()
            for key, value in SQL_DEFAULTS.items():
                if key not in self.cfg.spark.conf:
                    session.conf.set(key, value)
            for key, value in self.cfg.spark.conf.items():
                if key.startswith("spark.sql."):
                    session.conf.set(key, value)
            self._spark = session
        return self._spark

    @property
    def sc(self) -> SparkContext:
        return self.spark.sparkContext

    @property
    def workers(self) -> int:
        """Task slots (stages size their bucket counts by it)."""
        return max(1, int(self.sc.defaultParallelism))

    def shuffle_partitions(self, groups: int) -> int:
        """Spark partitions for a shuffle into `groups` groups (files, buckets, shards): a task takes
        several groups when there are more than `spark.sql.shuffle.partitions`."""
        cap = int(self.spark.conf.get("spark.sql.shuffle.partitions") or 200)
        return max(1, min(groups, cap))

    def __enter__(self) -> SparkExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned and self._base is not None:
            self._base.stop()
        self._base = self._spark = None
        self._owned = False

    # -- jobs -----------------------------------------------------------------------------------
    @contextmanager
    def job(self, label: str, progress: Progress | None = None) -> Iterator[None]:
        """Run Spark actions under one job group: progress from the status tracker (tasks done over
        tasks known), and worker errors turned into one-line `StageFailed`s for the CLI."""
        group = f"curate-{uuid.uuid4().hex[:8]}"
        self.sc.setJobGroup(group, label, interruptOnCancel=True)
        stop = threading.Event()
        poller = None
        if progress is not None:
            tracker = self.sc.statusTracker()

            def poll() -> None:
                while not stop.wait(1.0):
                    done = total = 0
                    for job_id in tracker.getJobIdsForGroup(group):
                        info = tracker.getJobInfo(job_id)
                        for stage_id in (info.stageIds if info else []):
                            stage = tracker.getStageInfo(stage_id)
                            if stage:
                                done += stage.numCompletedTasks
                                total += stage.numTasks
                    if total:
                        progress(done, total)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
        try:
            yield
        except StageFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - Py4J/PySpark errors carry the worker traceback as text
            raise StageFailed(label, RuntimeError(python_error(exc))) from exc
        finally:
            stop.set()
            if poller is not None:
                poller.join(timeout=5)
            self.sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]

    # -- reading --------------------------------------------------------------------------------
    def read_parquet(self, paths: Sequence[Path]) -> DataFrame:
        """Parquet files with the first file's schema given to Spark (no schema-inference job)."""
        schema = pq.read_schema(storage.arrow(paths[0]))
        if not all(storage.is_local(storage.location(p)) for p in paths):
            return self._read_with_arrow(paths, schema).drop(FILE, ROW)
        return self.spark.read.schema(spark_schema(schema)).parquet(*[to_uri(p) for p in paths])

    def read_documents(self, paths: Sequence[Path], columns: Sequence[str] | None = None) -> DataFrame:
        """Documents of Parquet partitions as a DataFrame, with each row's source file and row number."""
        from pyspark.sql import functions as F

        schema = pq.read_schema(storage.arrow(paths[0]))
        if not all(storage.is_local(storage.location(p)) for p in paths):
            return self._read_with_arrow(paths, schema).select(*(columns or schema.names), FILE, ROW)
        df = self.read_parquet(paths)
        return df.select(*(columns or df.columns), F.col("_metadata.file_path").alias(FILE),
                         F.col("_metadata.row_index").alias(ROW))

    def _read_with_arrow(self, paths: Sequence[Path], schema: pa.Schema) -> DataFrame:
        """Files on a remote store, read by Arrow inside the tasks (one task per file) rather than by
        Spark's Hadoop layer: the store then needs no Hadoop connector, only what `pipeline.storage`
        uses on the driver. Rows carry their file URI and row number like Spark's `_metadata`."""
        uris = [to_uri(p) for p in paths]
        files = self.spark.createDataFrame(self.sc.parallelize([(u,) for u in uris], len(uris)), "uri string")
        out = sparkable(schema).append(pa.field(FILE, pa.string())).append(pa.field(ROW, pa.int64()))
        return files.mapInArrow(functools.partial(_read_files_task, out), spark_schema(out))

    # -- generic primitives ---------------------------------------------------------------------
    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], progress: Progress | None = None) -> list[Any]:
        """Apply `fn` to every item, one Spark task per item; results in item order. Raises StageFailed."""
        items = list(items)
        if progress:
            progress(0, len(items))
        if not items:
            return []
        rdd = self.sc.parallelize(list(enumerate(items)), len(items))
        with self.job(getattr(fn, "__name__", "map"), progress):
            pairs = rdd.map(functools.partial(_call_indexed, fn)).collect()
        results: list[Any] = [None] * len(items)
        for i, result in pairs:
            results[i] = result
        if progress:
            progress(len(items), len(items))
        return results

    def group_by_key(
        self,
        partitions: Sequence[Path],
        key_fn: Callable[[Path, int], pa.Table],
        reduce_fn: Callable[[pa.Table], pa.Table],
        workdir: Path,
        n_buckets: int | None = None,
        partitioner: str = "hash",
        progress: Progress | None = None,
    ) -> list[str]:
        """The local contract on a DataFrame shuffle: `key_fn` rows go to the same buckets as locally
        (hash of `key`, or key ranges for `partitioner="range"`), each bucket's rows arrive in
        partition order, `reduce_fn` sees whole buckets; returns reduce outputs in bucket order.
        Resumable per call: finished outputs are reused when the parameters match."""
        n_buckets = n_buckets or max(4 * self.workers, 8)
        params = {"executor": "spark", "n_buckets": n_buckets, "partitioner": partitioner, "parts": len(partitions)}
        outputs = [workdir / "reduce" / f"r{b:05d}.parquet" for b in range(n_buckets)]
        if read_json_or_none(workdir / "_params.json") == params and all(o.exists() for o in outputs):
            return [str(o) for o in outputs]
        storage.rmtree(workdir)
        write_json(params, workdir / "_params.json")
        if partitions:
            rows = [(i, str(p)) for i, p in enumerate(partitions)]
            tasks = self.spark.createDataFrame(self.sc.parallelize(rows, len(rows)), "part int, path string")
            chunks = tasks.mapInArrow(functools.partial(_group_map_task, key_fn, n_buckets, partitioner),
                                      spark_schema(_CHUNK_SCHEMA))
            reduced = chunks.repartition(self.shuffle_partitions(n_buckets), "bucket").mapInArrow(
                functools.partial(_group_reduce_task, reduce_fn, workdir), "bucket int")
            with self.job("group_by_key", progress):
                reduced.collect()
        for out in outputs:
            if not out.exists():  # no rows fell in this bucket
                write_parquet(reduce_fn(pa.table({})), out)
        return [str(o) for o in outputs]

    # -- stage shapes ---------------------------------------------------------------------------
    def map_stage_dataframe(self, docs: DataFrame, config: StageConfig, pipeline: PipelineConfig,
                            stage_hash: str, inputs: Sequence[Path]) -> DataFrame:
        """A row-wise stage as a DataFrame transformation (for composing in notebooks or jobs):
        `docs` from `read_documents(inputs)`; returns the rows with the stage's signal columns and
        `reason`, typed by applying the stage to an empty table of the inputs' schema."""
        files = file_infos(inputs)
        stage = get_stage(config, pipeline, stage_hash)
        sample = next(iter(files.values())).schema.empty_table() if files else None
        if sample is None:
            raise ValueError("map_stage_dataframe needs at least one input partition")
        out = stage.apply(sample).schema.append(pa.field(FILE, pa.string())).append(pa.field(ROW, pa.int64()))
        out = sparkable(out)
        job = StageJob(config, pipeline, stage_hash, Path("."), files)
        return docs.mapInArrow(functools.partial(_apply_task, job, out), spark_schema(out))

    def run_map_stage(
        self, config: StageConfig, pipeline: PipelineConfig, stage_hash: str,
        inputs: Sequence[Path], stage_dir: Path, progress: Progress | None = None,
    ) -> dict[str, Any]:
        todo = [p for p in inputs if part_done(stage_dir, partition_name(p), stage_hash) is None]
        files = file_infos(todo)
        job = StageJob(config, pipeline, stage_hash, stage_dir, files)
        empty = [info for info in files.values() if info.rows == 0]
        if empty:  # Spark reads no rows from an empty file, so it would never reach a task
            stage = get_stage(config, pipeline, stage_hash)
            for info in empty:
                result = stage.apply(_empty_partition(info))
                write_split(result, stage_dir, partition_name(info.path), stage_hash, stage.counters(result))
        busy = [storage.location(info.path) for info in files.values() if info.rows]
        if busy:
            docs = self.read_documents(busy)
            with self.job(config.name, progress):
                docs.mapInArrow(functools.partial(_map_task, job), spark_schema(_DONE_SCHEMA)).collect()
        return merge_counts(part_done(stage_dir, partition_name(p), stage_hash) or {} for p in inputs)

    def run_dedup_stage(
        self, config: StageConfig, pipeline: PipelineConfig, stage_hash: str,
        inputs: Sequence[Path], stage_dir: Path, progress: Progress | None = None,
    ) -> dict[str, Any]:
        from pyspark import StorageLevel
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        from stages.registry import make_stage

        stage = make_stage(config, pipeline)
        todo = [p for p in inputs if part_done(stage_dir, partition_name(p), stage_hash) is None]
        if todo:
            files = file_infos(inputs)
            job = StageJob(config, pipeline, stage_hash, stage_dir, files)
            sample = next(iter(files.values())).schema.empty_table()
            names = [k.name for k in stage.keys(sample)]
            prio = stage.priority(sample).schema
            key_schema = _key_schema(prio)
            busy = [storage.location(info.path) for info in files.values() if info.rows]
            keys = (self.read_documents(busy).mapInArrow(functools.partial(_dedup_key_task, job, prio),
                                                          spark_schema(key_schema))
                    if busy else self.spark.createDataFrame([], spark_schema(key_schema)))
            keys = keys.persist(StorageLevel.MEMORY_AND_DISK)
            prio_cols = [f.name for f in key_schema if f.name.startswith("prio_")]
            order = [F.col(c).asc_nulls_last() for c in prio_cols] + [F.col("id").asc()]
            removed = None
            for k, name in enumerate(names):
                rows = keys.filter(F.col("k") == k)
                extra = index_files(stage.index_dir(), k, stage_hash)
                if extra:  # keys of earlier runs' kept documents: they always win (prio_0 = 0)
                    index = self.read_parquet(extra).select(
                        F.lit(k).cast("int").alias("k"), F.col("key").cast("binary").alias("key"),
                        F.lit(None).cast("string").alias(FILE), F.lit(-1).cast("long").alias(ROW), "id",
                        F.lit(0).cast("byte").alias("prio_0"),
                        *[F.lit(None).cast(rows.schema[c].dataType).alias(c) for c in prio_cols[1:]])
                    rows = rows.unionByName(index)
                if removed is not None:  # rows an earlier key removed do not take part
                    rows = rows.join(removed.select(FILE, ROW), [FILE, ROW], "left_anti")
                window = Window.partitionBy("key").orderBy(*order)
                ranked = rows.select(FILE, ROW, F.row_number().over(window).alias("_rank"),
                                     F.first("id").over(window).alias("_of"))
                gone = ranked.filter((F.col("_rank") > 1) & (F.col(ROW) >= 0)).select(
                    FILE, ROW, F.concat(F.lit(f"{name}:of="), F.col("_of")).alias(REASON))
                gone = gone.persist(StorageLevel.MEMORY_AND_DISK)
                removed = gone if removed is None else removed.unionByName(gone)
            todo_files = {uri_key(to_uri(p)) for p in todo}
            job = StageJob(config, pipeline, stage_hash, stage_dir, {k: v for k, v in files.items() if k in todo_files})
            for info in job.files.values():
                if info.rows == 0:
                    write_split(_empty_partition(info).append_column(REASON, pa.array([], pa.string())),
                                stage_dir, partition_name(info.path), stage_hash, {})
            busy_todo = [storage.location(info.path) for info in job.files.values() if info.rows]
            if busy_todo:
                docs = self.read_documents(busy_todo)
                if removed is not None:
                    docs = docs.join(removed, [FILE, ROW], "left")
                else:
                    docs = docs.withColumn(REASON, F.lit(None).cast("string"))
                docs = docs.repartition(self.shuffle_partitions(len(busy_todo)), FILE).sortWithinPartitions(FILE, ROW)
                with self.job(config.name, progress):
                    docs.mapInArrow(functools.partial(_dedup_write_task, job), spark_schema(_DONE_SCHEMA)).collect()
            keys.unpersist()
        counts = merge_counts(part_done(stage_dir, partition_name(p), stage_hash) or {} for p in inputs)
        index_dir = stage.index_dir()
        if index_dir is not None:
            from pipeline.executors.local import LocalExecutor

            # the same index generation as locally; LocalExecutor's method only uses `self.map`
            LocalExecutor._append_index(self, config, pipeline, stage_hash, stage, index_dir,  # type: ignore[arg-type]
                                        stage_dir)
        return counts

    def components(self, edge_files: Sequence[str], n_nodes: int, verify: bool
                   ) -> tuple[np.ndarray, np.ndarray, int, int]:
        """near_dedup's `union_find_components` on DataFrames: large-star/small-star over the (verified)
        candidate edges. Returns the same arrays: root = smallest node of the component, and
        whether the node is in a component of two or more; plus candidate and verified pair counts."""
        from pyspark.sql import functions as F

        from pipeline.executors.spark_graph import connected_components

        roots = np.arange(n_nodes, dtype=np.int32 if n_nodes < 2**31 else np.int64)
        in_cluster = np.zeros(n_nodes, dtype=bool)
        busy = [storage.location(f) for f in edge_files if pq.ParquetFile(storage.arrow(f)).metadata.num_rows]
        if not busy:
            return roots, in_cluster, 0, 0
        with self.job("near_dedup: components"):
            edges = self.read_parquet(busy)
            pairs = edges.count()
            if verify:
                edges = edges.filter(F.col("keep"))
            verified = edges.count()
            local = self.sc.master.startswith("local")
            checkpoints = None if local else to_uri(storage.location(edge_files[0]).parent.parent / "_checkpoints")
            labels = connected_components(edges.select("u", "v"), checkpoint_dir=checkpoints).toArrow()
        nodes = labels.column("node").to_numpy()
        roots[nodes] = labels.column("comp").to_numpy()
        in_cluster[nodes] = True
        return roots, in_cluster, int(pairs), int(verified)

    def run_global_stage(self, stage: GlobalStage, ctx: StageContext) -> dict[str, Any]:
        """Stages with a DataFrame implementation use it; any other runs on the generic primitives."""
        from pipeline.executors import spark_stages

        impl = spark_stages.IMPLEMENTATIONS.get(ctx.stage.kind)
        if impl is None:
            return stage.run(ctx)
        return impl(self, stage, ctx)
