"""The Spark executor: the primitives of `pipeline.primitives` on Apache Spark, DataFrame API only.

Only DataFrame operations are used (`range`, `mapInArrow`, `repartition`, `sortWithinPartitions`,
joins and aggregates, `toArrow`), never the RDD API or context-level calls, so the same code runs on a
classic session (`local[N]`, a standalone cluster, YARN, Kubernetes) and through **Spark Connect**
(`spark.remote: sc://host:port`).

* `map(fn, items)`: a DataFrame of item positions, a few contiguous runs of items per task slot; each
  task runs `fn` on its items (the items travel pickled with the function) and returns the pickled
  results. A Python error is returned as a value, so the driver raises it with the item that failed;
  a lost executor is Spark's business: the task is rescheduled, and every task is idempotent (atomic
  writes, markers).
* `group_by_key`: map tasks emit each bucket's slice as one Arrow IPC chunk, the chunks are shuffled
  by bucket and sorted by (bucket, partition), and reduce tasks stream whole buckets into the same
  files the local executor writes, so the two agree byte for byte.
* `components`: large-star / small-star rounds on DataFrames (`spark_graph`), labels written by tasks.
* `generation_engine("http")`: generation requests sent from Spark tasks (`spark_synth`).

Tasks read and write the run's files themselves through `pipeline.storage` (Arrow), so on a cluster
OUT must be on storage every host reaches (a shared mount, or an object store); see docs/spark.md.
"""

from __future__ import annotations

import functools
import io
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import storage
from pipeline.config import PipelineConfig, SparkConfig
from pipeline.errors import StageFailed, task_label
from pipeline.executors.local import LABEL_ROWS, bucket_slices
from pipeline.executors.spark_progress import tracked
from pipeline.executors.spark_types import spark_schema
from pipeline.io import read_json_or_none, write_json, write_parquet
from pipeline.primitives import Progress
from pipeline.storage import arrow

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger("curate")

# Tasks per task slot for a map over items (see `SparkExecutor.positions`).
TASKS_PER_SLOT = 4

# Set when this executor creates the session (the user's `spark.conf` wins over these).
SESSION_DEFAULTS: dict[str, str] = {
    "spark.ui.showConsoleProgress": "false",
    "spark.python.worker.reuse": "true",  # stage models load once per Python worker, not per task
    "spark.log.level": "WARN",
}


# ----------------------------------------------------------------------------------------------
# paths and types


def to_uri(path: str | Path) -> str:
    """The URI Spark reads a local (or shared-mount) path by; remote URIs pass through unchanged."""
    text = str(path)
    if storage.is_remote_uri(text):  # Hadoop's S3 connector is s3a://; other schemes are Hadoop's own
        scheme, rest = text.split("://", 1)
        return f"{'s3a' if storage.scheme_of(text) == 's3' else scheme}://{rest}"
    return Path(text.removeprefix("file://")).resolve().as_uri()


def runs(batch: pa.RecordBatch, column: str) -> Iterator[tuple[Any, pa.RecordBatch]]:
    """Split a batch into runs of equal `column` values."""
    values = batch.column(column).to_numpy(zero_copy_only=False)
    if len(values) == 0:
        return
    cuts = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(values)]])
    for s, e in zip(starts, ends, strict=True):
        yield values[s], batch.slice(int(s), int(e - s))


def grouped(batches: Iterator[pa.RecordBatch], column: str) -> Iterator[tuple[Any, pa.Table]]:
    """Whole groups of consecutive rows sharing `column` (a sorted partition holds each group contiguously)."""
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


def _ipc(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(data).read_all()


def _task_id() -> int:
    from pyspark import TaskContext

    ctx = TaskContext.get()
    return ctx.partitionId() if ctx is not None else 0


# ----------------------------------------------------------------------------------------------
# worker side: tasks

_RESULT = pa.schema([("i", pa.int64()), ("ok", pa.bool_()), ("payload", pa.binary())])


def _item_task(fn: Callable[[Any], Any], items: Sequence[Any], batches: Iterator[pa.RecordBatch]
               ) -> Iterator[pa.RecordBatch]:
    """`fn` on the items whose positions this task holds; a Python error comes back as a value."""
    from pyspark import cloudpickle

    for batch in batches:
        for i in batch.column("id").to_pylist():
            try:
                ok, value = True, fn(items[i])
            except Exception as exc:  # raised on the driver, with the item
                ok, value = False, exc
            try:
                payload = cloudpickle.dumps(value)
            except Exception as exc:  # an unpicklable exception: keep its text
                ok, payload = False, cloudpickle.dumps(RuntimeError(f"{type(value).__name__}: {value} ({exc})"))
            yield pa.RecordBatch.from_pylist([{"i": i, "ok": ok, "payload": payload}], schema=_RESULT)


_CHUNK = pa.schema([("bucket", pa.int32()), ("part", pa.int32()), ("payload", pa.binary())])
_BUCKET = pa.schema([("bucket", pa.int32())])


def _group_map_task(key_fn: Callable[[Path, int], pa.Table], partitions: Sequence[str], n_buckets: int,
                    partitioner: str, step: str, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The local `_group_map`, emitting each bucket's slice as one Arrow IPC chunk instead of a file."""
    for batch in batches:
        for part in batch.column("id").to_pylist():
            try:
                table = key_fn(storage.location(partitions[part]), part)
            except Exception as exc:  # named as the local executor names it (`bands map p-00002`)
                raise StageFailed(f"{step} map {task_label(storage.location(partitions[part]))}", exc) from exc
            if table.num_rows == 0:
                continue
            rows = [{"bucket": b, "part": part, "payload": _ipc(piece)}
                    for b, piece in bucket_slices(table, n_buckets, partitioner)]
            yield pa.RecordBatch.from_pylist(rows, schema=_CHUNK)


def _group_reduce_task(reduce_fn: Callable[[pa.Table], pa.Table], workdir: Path,
                       batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """The local `_group_reduce`: each bucket's chunks (sorted by partition) concatenated, reduced, written."""
    for bucket, chunks in grouped(batches, "bucket"):
        tables = [_from_ipc(p) for p in chunks.column("payload").to_pylist()]
        table = pa.concat_tables(tables, promote_options="default")
        write_parquet(reduce_fn(table), workdir / "reduce" / f"r{int(bucket):05d}.parquet")
        yield pa.RecordBatch.from_pylist([{"bucket": int(bucket)}], schema=_BUCKET)


_EDGES = pa.schema([("u", pa.int64()), ("v", pa.int64())])


def _edges_task(files: Sequence[str], keep_column: str | None, batches: Iterator[pa.RecordBatch]
                ) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for i in batch.column("id").to_pylist():
            t = pq.read_table(arrow(files[i]), columns=["u", "v", *([keep_column] if keep_column else [])])
            if keep_column:
                t = t.filter(t.column(keep_column))
            yield from t.select(["u", "v"]).cast(_EDGES).to_batches()


_WRITTEN = pa.schema([("file", pa.string())])


def _labels_task(workdir: Path, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One sorted (node, root) label file per partition of the range-partitioned labels."""
    tables = [pa.Table.from_batches([b]) for b in batches if b.num_rows]
    if not tables:
        return
    table = pa.concat_tables(tables).rename_columns(["node", "root"])
    path = workdir / "labels" / f"part-{_task_id():05d}.parquet"
    write_parquet(table, path, row_group_size=LABEL_ROWS)
    yield pa.RecordBatch.from_pylist([{"file": str(path)}], schema=_WRITTEN)


# ----------------------------------------------------------------------------------------------
# driver side


_ERROR_LINE = re.compile(r"^(?!org\.apache\.|py4j\.)[A-Za-z_][\w.]*(Error|Exception|Failed)(: .*)?$")


def python_error(exc: BaseException) -> str:
    """The last `SomeError: message` line of a worker's Python traceback (what failed), else the
    exception's first line: Spark reports worker errors as the traceback's text."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return next((line for line in reversed(lines) if _ERROR_LINE.match(line)), lines[0] if lines else repr(exc))


def get_session(cfg: SparkConfig) -> tuple[SparkSession, bool]:
    """The active session (spark-submit, a notebook, tests), a Spark Connect session when `cfg.remote`
    is set, else a new classic one from `cfg`. Returns (session, owned): an owned session is stopped
    by `close`."""
    from pyspark.sql import SparkSession

    if cfg.remote:
        builder = SparkSession.builder.remote(cfg.remote)
        for key, value in cfg.conf.items():
            builder = builder.config(key, value)
        return builder.getOrCreate(), False  # the server's session outlives this client
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
    return builder.getOrCreate(), True


def task_slots(conf: Callable[[str], str | None], fallback: int) -> int:
    """Task slots from the session's settings (Spark Connect has no context object to ask): the default
    parallelism if set, else N of `local[N]`, else executors × cores, else `fallback`."""
    if value := conf("spark.default.parallelism"):
        return max(1, int(value))
    master = conf("spark.master") or ""
    if m := re.fullmatch(r"local(?:-cluster)?\[(\*|\d+)(?:,\s*\d+)*\]", master):
        return (os.cpu_count() or 1) if m.group(1) == "*" else int(m.group(1))
    if master == "local":
        return 1
    executors, cores = conf("spark.executor.instances"), conf("spark.executor.cores")
    if executors and cores:
        return max(1, int(executors) * int(cores))
    if cores_max := conf("spark.cores.max"):
        return max(1, int(cores_max))
    return max(1, fallback)


class SparkExecutor:
    """Executor on a Spark session; the session starts on first use, so a fully cached run needs none."""

    name = "spark"

    def __init__(self, cfg: PipelineConfig, spark: SparkSession | None = None):
        self.cfg = cfg
        self._given = spark
        self._spark: SparkSession | None = None
        self._owned = False
        self._slots: int | None = None

    # -- session --------------------------------------------------------------------------------
    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            started = time.monotonic()
            if self._given is not None:
                self._spark, self._owned = self._given, False
            else:
                self._spark, self._owned = get_session(self.cfg.spark)
            for key, value in self.cfg.spark.conf.items():
                if key.startswith("spark.sql."):
                    self._spark.conf.set(key, value)
            log.info("spark: session ready in %.1fs (%s, %d task slots)", time.monotonic() - started,
                     self.cfg.spark.remote or self._conf("spark.master"), self.workers)
        return self._spark

    def _conf(self, key: str) -> str | None:
        try:
            return self.spark.conf.get(key, None)
        except Exception:  # a setting the server will not show
            return None

    @property
    def workers(self) -> int:
        if self._slots is None:
            self._slots = task_slots(self._conf, self.cfg.workers)
        return self._slots

    @property
    def is_local(self) -> bool:
        """Whether the session runs in one process on this machine (`local[N]`)."""
        return (self._conf("spark.master") or "").startswith("local")

    def shuffle_partitions(self, groups: int) -> int:
        """Spark partitions for a shuffle into `groups` groups: a task takes several groups when there
        are more than `spark.sql.shuffle.partitions`."""
        cap = int(self._conf("spark.sql.shuffle.partitions") or 200)
        return max(1, min(groups, cap))

    def __enter__(self) -> SparkExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned and self._spark is not None:
            self._spark.stop()
        self._spark = None
        self._owned = False

    @contextmanager
    def job(self, label: str) -> Iterator[None]:
        """Spark actions under `label`: worker errors become one-line `StageFailed`s for the CLI."""
        try:
            yield
        except StageFailed:
            raise
        except Exception as exc:  # PySpark errors carry the worker traceback as text
            raise StageFailed(label, RuntimeError(python_error(exc))) from exc

    def positions(self, n: int) -> DataFrame:
        """A DataFrame of `id` 0..n-1 in at most TASKS_PER_SLOT tasks per task slot, each task a
        contiguous run of positions. Spark pays a fixed cost per task (scheduling, the Python worker
        round trip: 0.1-0.3 s measured on 2 loaded cores), so one task per item would make that cost
        grow with the corpus; a few tasks per slot still balance uneven items. A retried task redoes
        only its unfinished items (every item's output is atomic and checked first)."""
        return self.spark.range(0, n, 1, numPartitions=max(1, min(n, TASKS_PER_SLOT * self.workers)))

    # -- primitives -----------------------------------------------------------------------------
    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], progress: Progress | None = None) -> list[Any]:
        """Apply `fn` to every item, one Spark task per item; results in item order. Raises StageFailed."""
        from pyspark import cloudpickle

        items = list(items)
        if progress:
            progress(0, len(items))
        if not items:
            return []
        task = functools.partial(_item_task, fn, items)
        with self.job(getattr(fn, "__name__", "map")), tracked(self.spark, progress, len(items)):  # items: labels below
            rows = self.positions(len(items)).mapInArrow(task, spark_schema(_RESULT)).toArrow()
        results: list[Any] = [None] * len(items)
        for i, ok, payload in zip(rows.column("i").to_pylist(), rows.column("ok").to_pylist(),
                                  rows.column("payload").to_pylist(), strict=True):
            value = cloudpickle.loads(payload)
            if not ok:
                if isinstance(value, StageFailed):
                    raise value
                raise StageFailed(task_label(items[i]), value)
            results[i] = value
        if progress:
            progress(len(items), len(items))
        return results

    def group_by_key(self, partitions: Sequence[Path | str], key_fn: Callable[[Path, int], pa.Table],
                     reduce_fn: Callable[[pa.Table], pa.Table], workdir: Path, n_buckets: int | None = None,
                     partitioner: str = "hash", progress: Progress | None = None) -> list[str]:
        """The local contract on a DataFrame shuffle; resumable per call (finished outputs reused)."""
        n_buckets = n_buckets or max(4 * self.workers, 8)
        params = {"executor": "spark", "n_buckets": n_buckets, "partitioner": partitioner, "parts": len(partitions)}
        outputs = [workdir / "reduce" / f"r{b:05d}.parquet" for b in range(n_buckets)]
        if read_json_or_none(workdir / "_params.json") == params and all(o.exists() for o in outputs):
            return [str(o) for o in outputs]
        storage.rmtree(workdir)
        write_json(params, workdir / "_params.json")
        if progress:
            progress(0, n_buckets)
        if partitions:
            paths = [str(p) for p in partitions]
            chunks = self.positions(len(paths)).mapInArrow(
                functools.partial(_group_map_task, key_fn, paths, n_buckets, partitioner, workdir.name),
                spark_schema(_CHUNK))
            reduced = (chunks.repartition(self.shuffle_partitions(n_buckets), "bucket")
                       .sortWithinPartitions("bucket", "part")
                       .mapInArrow(functools.partial(_group_reduce_task, reduce_fn, workdir), spark_schema(_BUCKET)))
            with self.job(f"{workdir.name} group-by"), tracked(self.spark, progress, n_buckets):
                reduced.toArrow()
        for out in outputs:
            if not out.exists():  # no rows fell in this bucket
                write_parquet(reduce_fn(pa.table({})), out)
        if progress:
            progress(n_buckets, n_buckets)
        return [str(o) for o in outputs]

    def components(self, edge_files: Sequence[str], workdir: Path, keep_column: str | None = None,
                   progress: Progress | None = None) -> list[str]:
        """Large-star / small-star rounds over the edges; labels range-partitioned by node, one sorted
        file per partition. On a cluster each round is checkpointed to Parquet under `workdir` (it
        survives a lost executor); in local mode a local checkpoint does."""
        from pipeline.executors.spark_graph import connected_components

        done = workdir / "labels" / "_files.json"
        if (files := read_json_or_none(done)) is not None:
            return files
        storage.rmtree(workdir / "labels")
        files = [str(f) for f in edge_files]
        edges = self.positions(len(files)).mapInArrow(functools.partial(_edges_task, files, keep_column),
                                                      spark_schema(_EDGES))
        checkpoints = None if self.is_local or not storage.is_local(workdir) else to_uri(workdir / "_rounds")
        with self.job("components"):
            labels = connected_components(edges, checkpoint_dir=checkpoints)
            parts = self.shuffle_partitions(max(1, self.workers))
            ordered = labels.repartitionByRange(parts, "node").sortWithinPartitions("node")
            written = ordered.mapInArrow(functools.partial(_labels_task, workdir), spark_schema(_WRITTEN)).toArrow()
        out = sorted(written.column("file").to_pylist())
        write_json(out, done)
        if checkpoints:
            storage.rmtree(workdir / "_rounds")
        return out

    def start_workers(self, preload: Sequence[str] = ()) -> None:
        """Nothing: Spark starts its Python workers with the first task and keeps them (reuse)."""

    def generation_engine(self, kind: str, **kwargs: Any) -> Any | None:
        """`http`: requests sent from Spark tasks. The offline engine stays on the driver, which owns
        the accelerator: right for local mode on a GPU box; on a cluster serve the model instead."""
        if kind == "http":
            from pipeline.executors.spark_synth import SparkHTTPEngine

            return SparkHTTPEngine(self, **kwargs)
        if not self.is_local:
            log.warning("synth: engine %s runs on the Spark driver, not in Spark tasks; on a cluster serve the "
                        "model (vllm serve) and use engine: http", kind)
        return None
