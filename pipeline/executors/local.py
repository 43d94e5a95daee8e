"""The local executor: a process pool over Parquet partitions, plus a disk-backed group-by.

This is the only module (with its Spark twin) that knows how work is spread. Stages hand it pure
functions; it runs them per partition, in parallel, and keeps per-partition completion markers so a
killed run resumes without redoing finished partitions. Nothing here depends on the number of
workers: results are always assembled in partition order.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import storage
from pipeline.config import PipelineConfig, StageConfig
from pipeline.io import clean_temp_files, read_json_or_none, write_json, write_parquet
from pipeline.schema import REASON, reason_key
from pipeline.storage import arrow

Progress = Callable[[int, int], None]  # (done, total)


class StageFailed(Exception):
    """A stage raised on some partition; carries where, so the CLI can say it in one line."""

    def __init__(self, where: str, error: BaseException):
        super().__init__(f"{where}: {type(error).__name__}: {error}")
        self.where = where
        self.error = error


# ----------------------------------------------------------------------------------------------
# Worker-side stage cache: `setup()` (model loading) runs once per worker process, not per task.
_STAGE_CACHE: dict[str, Any] = {}


def get_stage(config: StageConfig, pipeline: PipelineConfig, stage_hash: str) -> Any:
    from stages.registry import make_stage

    stage = _STAGE_CACHE.get(stage_hash)
    if stage is None:
        stage = make_stage(config, pipeline)
        stage.setup()
        _STAGE_CACHE.clear()  # one stage at a time: free the previous stage's models
        _STAGE_CACHE[stage_hash] = stage
    return stage


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    try:
        return fn(item)
    except StageFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - re-raised with the item that failed
        raise StageFailed(str(item), exc) from exc


# ----------------------------------------------------------------------------------------------
def partition_name(path: str | Path) -> str:
    """`.../part-00003.parquet` -> `part-00003` (a local path, a URI or a remote path object)."""
    return str(path).rsplit("/", 1)[-1].removesuffix(".parquet")


def hash_keys(values: pa.Array) -> np.ndarray:
    """Stable 64-bit hashes of string/binary keys (SipHash via pandas; same on every run)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.uint64)
    objs = np.asarray(values.to_pylist(), dtype=object)
    return pd.util.hash_array(objs, categorize=False)


def split_by_reason(table: pa.Table) -> tuple[pa.Table, pa.Table]:
    """Kept rows (reason null, column dropped) and removed rows (with reason)."""
    reason = table.column(REASON)
    removed_mask = pc.is_valid(reason)
    kept = table.filter(pc.invert(removed_mask)).drop_columns([REASON])
    return kept, table.filter(removed_mask)


def count_split(kept: pa.Table, removed: pa.Table) -> dict[str, Any]:
    by_reason: dict[str, int] = {}
    if removed.num_rows:
        for reason in removed.column(REASON).to_pylist():
            key = reason_key(reason)
            by_reason[key] = by_reason.get(key, 0) + 1
    return {
        "in": kept.num_rows + removed.num_rows,
        "kept": kept.num_rows,
        "removed": removed.num_rows,
        "added": 0,
        "by_reason": by_reason,
        "chars_kept": int(pc.sum(pc.utf8_length(kept.column("text"))).as_py() or 0) if kept.num_rows else 0,
        **({"tokens_kept": int(pc.sum(kept.column("n_tokens")).as_py() or 0)} if "n_tokens" in kept.column_names
           else {}),
    }


def write_split(table: pa.Table, stage_dir: Path, name: str, stage_hash: str, extra: dict[str, Any],
                added: int = 0) -> dict:
    """Write kept/removed files for one partition, then its completion marker (last, atomically).
    `added` says how many kept rows are new (not in the stage's input), e.g. repeated or synthetic."""
    kept, removed = split_by_reason(table)
    write_parquet(kept, stage_dir / "data" / f"{name}.parquet")
    removed_path = stage_dir / "removed" / f"{name}.parquet"
    if removed.num_rows:
        write_parquet(removed, removed_path)
    else:
        removed_path.unlink(missing_ok=True)
    counts = count_split(kept, removed)
    counts["in"] -= added
    counts["added"] = added
    counts.update(extra)
    write_json({"config_hash": stage_hash, "counts": counts}, stage_dir / "_parts" / f"{name}.json")
    return counts


def part_done(stage_dir: Path, name: str, stage_hash: str) -> dict | None:
    marker = read_json_or_none(stage_dir / "_parts" / f"{name}.json")
    if marker and marker.get("config_hash") == stage_hash and (stage_dir / "data" / f"{name}.parquet").exists():
        return marker["counts"]
    return None


def merge_counts(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {"in": 0, "kept": 0, "removed": 0, "added": 0, "by_reason": {}}
    for counts in parts:
        for key, value in counts.items():
            if key == "by_reason":
                for reason, n in value.items():
                    total["by_reason"][reason] = total["by_reason"].get(reason, 0) + n
            elif isinstance(value, int | float):
                total[key] = total.get(key, 0) + value
    total["by_reason"] = dict(sorted(total["by_reason"].items()))
    return total


# ----------------------------------------------------------------------------------------------
def _map_partition(task: tuple[StageConfig, PipelineConfig, str, Path, Path]) -> dict[str, Any]:
    config, pipeline, stage_hash, in_path, stage_dir = task
    stage = get_stage(config, pipeline, stage_hash)
    result = stage.apply(pq.read_table(arrow(in_path)))
    return write_split(result, stage_dir, partition_name(in_path), stage_hash, stage.counters(result))


def _dedup_keys(
    task: tuple[StageConfig, PipelineConfig, str, int, list[str], int], path: Path, part: int
) -> pa.Table:
    """Key table of one partition for key number `key_index`, minus rows earlier keys removed.
    Paths past the stage's inputs are index files of earlier runs: their rows always survive."""
    config, pipeline, stage_hash, key_index, earlier, n_inputs = task
    if part >= n_inputs:
        index = pq.read_table(arrow(path), columns=["key", "id"])
        n = index.num_rows
        return pa.table({"key": index.column("key"), "part": pa.array(np.full(n, -1, dtype=np.int32)),
                         "row": pa.array(np.full(n, -1, dtype=np.int64)), "id": index.column("id"),
                         "prio_0": pa.array(np.zeros(n, dtype=np.int8))})
    stage = get_stage(config, pipeline, stage_hash)
    table = pq.read_table(arrow(path))
    key = stage.keys(table)[key_index]
    prio = stage.priority(table)
    cols: dict[str, Any] = {
        "key": key.values,
        "part": pa.array(np.full(table.num_rows, part, dtype=np.int32)),
        "row": pa.array(np.arange(table.num_rows, dtype=np.int64)),
        "id": table.column("id"),
        "prio_0": pa.array(np.ones(table.num_rows, dtype=np.int8)),
    }
    for i, name in enumerate(prio.column_names, start=1):
        cols[f"prio_{i}"] = prio.column(name)
    keys = pa.table(cols)
    mask = pc.is_valid(keys.column("key"))
    if earlier:
        gone = removed_rows(earlier, part)
        if gone:
            mask = pc.and_(mask, pc.invert(pc.is_in(keys.column("row"), pa.array(sorted(gone), pa.int64()))))
    return keys.filter(mask)


def index_files(index_dir: Path | None, key_index: int, stage_hash: str) -> list[Path]:
    """Key files of earlier runs' kept documents, excluding this stage run's own generation."""
    if index_dir is None:
        return []
    files = sorted((index_dir / f"key{key_index}").glob("gen-*.parquet"))
    return [f for f in files if f.name != f"gen-{stage_hash}.parquet"]


def _index_keys(task: tuple[StageConfig, PipelineConfig, str, int], path: Path) -> pa.Table:
    config, pipeline, stage_hash, key_index = task
    stage = get_stage(config, pipeline, stage_hash)
    table = pq.read_table(arrow(path))
    key = stage.keys(table)[key_index]
    return pa.table({"key": key.values, "id": table.column("id")}).filter(pc.is_valid(key.values))


def keep_first_per_key(table: pa.Table, reason_prefix: str) -> pa.Table:
    """Reduce for dedup: in each key group the smallest (prio..., id) survives; others get a reason."""
    empty = pa.table({"part": pa.array([], pa.int32()), "row": pa.array([], pa.int64()),
                      REASON: pa.array([], pa.string())})
    if table.num_rows == 0:
        return empty
    prio_cols = sorted(c for c in table.column_names if c.startswith("prio_"))
    order = [("key", "ascending")] + [(c, "ascending") for c in prio_cols] + [("id", "ascending")]
    table = table.sort_by(order)
    keys = table.column("key").combine_chunks()
    starts = np.ones(table.num_rows, dtype=bool)
    if table.num_rows > 1:
        starts[1:] = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1)).to_numpy(zero_copy_only=False)
    group = np.cumsum(starts) - 1
    survivor = np.flatnonzero(starts)[group]
    dup = ~starts
    if not dup.any():
        return empty
    ids = table.column("id").combine_chunks()
    of = ids.take(pa.array(survivor[dup]))
    reasons = pc.binary_join_element_wise(pa.scalar(f"{reason_prefix}:of="), of.cast(pa.string()), "")
    out = pa.table({"part": table.column("part").filter(pa.array(dup)),
                    "row": table.column("row").filter(pa.array(dup)), REASON: reasons})
    return out.sort_by([("part", "ascending"), ("row", "ascending")])


def removed_rows(result_paths: Sequence[str], part: int) -> dict[int, str]:
    """row -> reason for one partition, read from group-by results (filter pushed into Parquet)."""
    out: dict[int, str] = {}
    for path in result_paths:
        t = pq.read_table(arrow(path), filters=[("part", "=", part)], columns=["row", REASON])
        for row, reason in zip(t.column("row").to_pylist(), t.column(REASON).to_pylist(), strict=True):
            out.setdefault(row, reason)
    return out


def _dedup_apply(task: tuple[str, list[str], Path, Path, int]) -> dict[str, Any]:
    stage_hash, results, in_path, stage_dir, part = task
    table = pq.read_table(arrow(in_path))
    gone = removed_rows(results, part)
    reasons = [gone.get(i) for i in range(table.num_rows)]
    table = table.append_column(REASON, pa.array(reasons, pa.string()))
    return write_split(table, stage_dir, partition_name(in_path), stage_hash, {})


# ----------------------------------------------------------------------------------------------
def _group_map(task: tuple[Callable[[Path, int], pa.Table], Path, int, Path, int, str]) -> int:
    key_fn, path, part, workdir, n_buckets, partitioner = task
    marker = workdir / "map_done" / f"p{part:06d}.json"
    if marker.exists():
        return 0
    table = key_fn(path, part)
    if table.num_rows:
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
        for s, e in zip(starts, ends, strict=True):
            b = int(sorted_buckets[s])
            write_parquet(table.slice(int(s), int(e - s)), workdir / "map" / f"b{b:05d}" / f"p{part:06d}.parquet")
    write_json({"rows": table.num_rows}, marker)
    return table.num_rows


def _group_reduce(task: tuple[Callable[[pa.Table], pa.Table], Path, int]) -> str:
    reduce_fn, workdir, bucket = task
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

    def _get_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx,
                                             initializer=_exit_with_parent, initargs=(os.getpid(),))
        return self._pool

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], progress: Progress | None = None) -> list[Any]:
        """Apply `fn` to every item; return results in item order. Raises StageFailed."""
        results: list[Any] = [None] * len(items)
        if progress:
            progress(0, len(items))
        if self.workers == 1 or len(items) <= 1:
            for i, item in enumerate(items):
                results[i] = _call(fn, item)
                if progress:
                    progress(i + 1, len(items))
            return results
        pool = self._get_pool()
        pending: dict[Future, int] = {pool.submit(_call, fn, item): i for i, item in enumerate(items)}
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
        partitions: Sequence[Path],
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
        map_tasks = [(key_fn, p, i, workdir, n_buckets, partitioner) for i, p in enumerate(partitions)]
        total = len(map_tasks) + n_buckets

        def map_progress(done: int, _n: int) -> None:
            if progress:
                progress(done, total)

        def reduce_progress(done: int, _n: int) -> None:
            if progress:
                progress(len(map_tasks) + done, total)

        self.map(_group_map, map_tasks, map_progress)
        reduce_tasks = [(reduce_fn, workdir, b) for b in range(n_buckets)]
        return self.map(_group_reduce, reduce_tasks, reduce_progress)

    # -- stage shapes ---------------------------------------------------------------------------
    def run_map_stage(
        self, config: StageConfig, pipeline: PipelineConfig, stage_hash: str,
        inputs: Sequence[Path], stage_dir: Path, progress: Progress | None = None,
    ) -> dict[str, Any]:
        todo = [p for p in inputs if part_done(stage_dir, partition_name(p), stage_hash) is None]
        self.map(_map_partition, [(config, pipeline, stage_hash, p, stage_dir) for p in todo], progress)
        return merge_counts(part_done(stage_dir, partition_name(p), stage_hash) or {} for p in inputs)

    def run_dedup_stage(
        self, config: StageConfig, pipeline: PipelineConfig, stage_hash: str,
        inputs: Sequence[Path], stage_dir: Path, progress: Progress | None = None,
    ) -> dict[str, Any]:
        from stages.registry import make_stage

        stage = make_stage(config, pipeline)
        sample = pq.read_table(arrow(inputs[0])).slice(0, 0) if inputs else None
        all_done = all(part_done(stage_dir, partition_name(p), stage_hash) is not None for p in inputs)
        key_names = [k.name for k in stage.keys(sample)] if sample is not None and not all_done else []
        results: list[str] = []
        index_dir = stage.index_dir()
        for k, name in enumerate(key_names):
            extra = index_files(index_dir, k, stage_hash)
            key_fn = functools.partial(_dedup_keys, (config, pipeline, stage_hash, k, list(results), len(inputs)))
            reduce_fn = functools.partial(keep_first_per_key, reason_prefix=name)
            results += self.group_by_key([*inputs, *extra], key_fn, reduce_fn, stage_dir / "_work" / f"key{k}",
                                         progress=progress)
        todo = [(i, p) for i, p in enumerate(inputs) if part_done(stage_dir, partition_name(p), stage_hash) is None]
        self.map(_dedup_apply, [(stage_hash, results, p, stage_dir, i) for i, p in todo], progress)
        counts = merge_counts(part_done(stage_dir, partition_name(p), stage_hash) or {} for p in inputs)
        if index_dir is not None:
            self._append_index(config, pipeline, stage_hash, stage, index_dir, stage_dir)
        return counts

    def _append_index(self, config: StageConfig, pipeline: PipelineConfig, stage_hash: str, stage: Any,
                      index_dir: Path, stage_dir: Path) -> None:
        """Add the keys of this run's kept documents as a new index generation (named by stage hash,
        so a resumed run rewrites the same file and never matches against itself)."""
        kept = sorted((stage_dir / "data").glob("part-*.parquet"))
        sample = pq.read_table(arrow(kept[0])).slice(0, 0) if kept else None
        if sample is None:
            return
        for k in range(len(stage.keys(sample))):
            tables = self.map(functools.partial(_index_keys, (config, pipeline, stage_hash, k)), kept)
            write_parquet(pa.concat_tables(tables), index_dir / f"key{k}" / f"gen-{stage_hash}.parquet")


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
