"""The local executor: the primitives of `pipeline.primitives` on one machine.

`map` runs tasks inline (1 worker) or in a spawned process pool; `group_by_key` spills each
partition's keyed rows into buckets on disk and reduces whole buckets; `components` is union-find over
the nodes that have edges. Nothing here depends on the number of workers: results are always assembled
in input order. Finished map and reduce steps are kept on disk, so a killed run resumes where it was.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from filters.lsh_graph import UnionFind
from pipeline import storage
from pipeline.errors import call_naming_item, task_label
from pipeline.hashing import siphash64
from pipeline.io import clean_temp_files, read_json_or_none, write_json, write_parquet
from pipeline.primitives import Progress
from pipeline.storage import arrow

LABEL_ROWS = 1 << 16  # rows per row group of a components label file (readers prune by node range)


def bucket_of(keys: pa.Array | pa.ChunkedArray, n_buckets: int, partitioner: str) -> np.ndarray:
    """The bucket of every key: uint64 key ranges in order (`range`) or a hash of the key (`hash`)."""
    if partitioner == "range":
        k = keys.to_numpy().astype(np.uint64)
        return ((k >> np.uint64(32)) * np.uint64(n_buckets)) >> np.uint64(32)
    return siphash64(keys) % np.uint64(n_buckets)


def bucket_slices(table: pa.Table, n_buckets: int, partitioner: str) -> list[tuple[int, pa.Table]]:
    """`table`'s rows split by bucket (stable within a bucket), in bucket order."""
    bucket = bucket_of(table.column("key"), n_buckets, partitioner)
    order = np.argsort(bucket, kind="stable")
    sorted_buckets = bucket[order]
    table = table.take(pa.array(order))
    bounds = np.flatnonzero(np.diff(sorted_buckets)) + 1
    starts = np.concatenate([[0], bounds]).astype(np.int64)
    ends = np.concatenate([bounds, [len(order)]]).astype(np.int64)
    return [(int(sorted_buckets[s]), table.slice(int(s), int(e - s))) for s, e in zip(starts, ends, strict=True)]


@dataclass(frozen=True)
class _GroupMap:
    """One partition's keyed rows spilled into buckets; `label` is what an error names."""

    key_fn: Callable[[Path, int], pa.Table]
    path: Path
    part: int
    workdir: Path
    n_buckets: int
    partitioner: str

    @property
    def label(self) -> str:
        return f"{self.workdir.name} map {task_label(self.path)}"


@dataclass(frozen=True)
class _GroupReduce:
    """One bucket reduced whole; `label` is what an error names."""

    reduce_fn: Callable[[pa.Table], pa.Table]
    workdir: Path
    bucket: int

    @property
    def label(self) -> str:
        return f"{self.workdir.name} bucket {self.bucket}"


def _group_map(task: _GroupMap) -> int:
    key_fn, path, part, workdir = task.key_fn, task.path, task.part, task.workdir
    n_buckets, partitioner = task.n_buckets, task.partitioner
    marker = workdir / "map_done" / f"p{part:06d}.json"
    if marker.exists():
        return 0
    table = key_fn(path, part)
    if table.num_rows:
        for b, piece in bucket_slices(table, n_buckets, partitioner):
            write_parquet(piece, workdir / "map" / f"b{b:05d}" / f"p{part:06d}.parquet")
    write_json({"rows": table.num_rows}, marker)
    return table.num_rows


def _group_reduce(task: _GroupReduce) -> str:
    reduce_fn, workdir, bucket = task.reduce_fn, task.workdir, task.bucket
    out = workdir / "reduce" / f"r{bucket:05d}.parquet"
    if out.exists():
        return str(out)
    files = sorted((workdir / "map" / f"b{bucket:05d}").glob("p*.parquet"))
    table = pa.concat_tables([pq.read_table(arrow(f)) for f in files], promote_options="default") if files else None
    result = reduce_fn(table) if table is not None else reduce_fn(pa.table({}))
    write_parquet(result, out)
    return str(out)


def _exit_with_parent(parent: int) -> None:
    """Pool initializer: end this worker once the run that spawned it is gone. A run killed outright
    (SIGKILL, OOM killer) cannot shut its pool down, and its idle workers would otherwise wait on the
    task queue forever, holding their memory (loaded models) and the run's stdout and stderr."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _start_worker(parent: int, preload: tuple[str, ...]) -> None:
    """Pool initializer: watch the parent (`_exit_with_parent`), then import `preload`, the modules
    the coming tasks need, while the driver still plans (rather than when the first task arrives)."""
    _exit_with_parent(parent)
    for name in preload:
        # not here: an initializer that raises breaks the whole pool with no word of why; the first
        # task that needs the module imports it again and its error names the task
        with contextlib.suppress(Exception):
            importlib.import_module(name)


class LocalExecutor:
    """Runs tasks inline (1 worker) or in a spawned process pool; results in input order."""

    name = "local"

    def __init__(self, workers: int = 1):
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def start_workers(self, preload: Sequence[str] = ()) -> None:
        """Start every worker process now, in the background, each importing `preload`: a spawned
        worker takes about half a CPU-second to start (an interpreter, pyarrow, the project's modules),
        which then overlaps the driver's own work before its first `map` instead of following it.
        Nothing for one worker (tasks run inline) or when the pool is already running."""
        if self.workers > 1 and self._pool is None:
            pool = self._get_pool(tuple(preload))
            for _ in range(self.workers):  # with no idle worker, each submit spawns one
                pool.submit(int)

    def _get_pool(self, preload: tuple[str, ...] = ()) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                             initializer=_start_worker, initargs=(os.getpid(), preload))
        return self._pool

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], progress: Progress | None = None) -> list[Any]:
        """Apply `fn` to every item; return results in item order. Raises StageFailed."""
        results: list[Any] = [None] * len(items)
        if progress:
            progress(0, len(items))
        if self.workers == 1 or len(items) <= 1:
            for i, item in enumerate(items):
                results[i] = call_naming_item(fn, item)
                if progress:
                    progress(i + 1, len(items))
            return results
        pool = self._get_pool()
        pending: dict[Future, int] = {pool.submit(call_naming_item, fn, item): i for i, item in enumerate(items)}
        done_count = 0
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    results[pending.pop(fut)] = fut.result()
                    done_count += 1
                    if progress:
                        progress(done_count, len(items))
        except BaseException:
            for fut in pending:
                fut.cancel()
            raise
        return results

    # -- primitives -----------------------------------------------------------------------------
    def group_by_key(
        self,
        partitions: Sequence[Path | str],
        key_fn: Callable[[Path, int], pa.Table],
        reduce_fn: Callable[[pa.Table], pa.Table],
        workdir: Path,
        n_buckets: int | None = None,
        partitioner: str = "hash",
        progress: Progress | None = None,
    ) -> list[str]:
        """Disk-backed group-by: `key_fn` emits rows with a `key` column per partition; rows are
        spilled into buckets by key; `reduce_fn` sees one whole bucket (all rows of each of its keys).
        With `partitioner="range"` (uint64 keys) buckets are key ranges, in order: a global sort.
        Returns the reduce outputs in bucket order. Resumable: finished map and reduce steps are kept.
        """
        n_buckets = n_buckets or max(4 * self.workers, 8)
        workdir.mkdir(parents=True, exist_ok=True)
        params = read_json_or_none(workdir / "_params.json")
        if params != {"n_buckets": n_buckets, "partitioner": partitioner, "parts": len(partitions)}:
            storage.rmtree(workdir)
            write_json({"n_buckets": n_buckets, "partitioner": partitioner, "parts": len(partitions)},
                       workdir / "_params.json")
        for sub in (workdir / "map").glob("b*"):
            clean_temp_files(sub)
        map_tasks = [_GroupMap(key_fn, storage.location(p), i, workdir, n_buckets, partitioner)
                     for i, p in enumerate(partitions)]
        total = len(map_tasks) + n_buckets

        def map_progress(done: int, _n: int) -> None:
            if progress:
                progress(done, total)

        def reduce_progress(done: int, _n: int) -> None:
            if progress:
                progress(len(map_tasks) + done, total)

        self.map(_group_map, map_tasks, map_progress)
        reduce_tasks = [_GroupReduce(reduce_fn, workdir, b) for b in range(n_buckets)]
        return self.map(_group_reduce, reduce_tasks, reduce_progress)


    def components(self, edge_files: Sequence[str], workdir: Path, keep_column: str | None = None,
                   progress: Progress | None = None) -> list[str]:
        """Union-find over the nodes that have an edge (memory grows with the edges, not the corpus):
        one pass collects those nodes, a second unions the edges file by file."""
        out = workdir / "labels" / "part-00000.parquet"
        if out.exists():
            return [str(out)]
        columns = ["u", "v", *([keep_column] if keep_column else [])]

        def edges(f: str) -> tuple[np.ndarray, np.ndarray]:
            t = pq.read_table(arrow(f), columns=columns)
            if keep_column:
                t = t.filter(t.column(keep_column))
            return t.column("u").to_numpy().astype(np.int64), t.column("v").to_numpy().astype(np.int64)

        nodes = np.zeros(0, np.int64)
        for f in edge_files:
            u, v = edges(f)
            nodes = np.union1d(nodes, np.concatenate([u, v]))
        uf = UnionFind(len(nodes))
        for i, f in enumerate(edge_files):
            u, v = edges(f)
            uf.union(np.searchsorted(nodes, u), np.searchsorted(nodes, v))
            if progress:
                progress(i + 1, len(edge_files))
        roots = nodes[uf.roots()] if len(nodes) else nodes  # nodes are sorted: the smallest index is the smallest node
        write_parquet(pa.table({"node": pa.array(nodes), "root": pa.array(roots)}), out, row_group_size=LABEL_ROWS)
        return [str(out)]

    def generation_engine(self, kind: str, **kwargs: Any) -> Any | None:
        return None  # engines run in this process (the offline engine owns the accelerator)

def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
