"""The executor primitives every stage composes: the whole contract between stages and executors.

An executor knows how work is spread (a local process pool, a Spark cluster); it knows nothing of
stages. Stages are plans over these primitives (`stages/*.py`, `pipeline/plans.py`), written once:

* `map(fn, items)`: `fn(item)` for every item, results in item order (local: a process pool; Spark:
  `mapInArrow` tasks, a few contiguous runs of items per task slot).
* `group_by_key(parts, key_fn, reduce_fn)`: rows keyed per partition, whole key groups reduced, in
  `hash` or `range` buckets. A range group-by is a global sort, a group-by on a key both sides share is
  a join (local: buckets spilled to disk; Spark: a shuffle by bucket).
* `components(edge_files)`: connected components of an edge list, written as (node, root) label
  files (local: union-find over the nodes that have edges; Spark: large-star / small-star rounds).
* `generation_engine(kind, ...)`: where generation requests run (local: in-process; Spark: http
  requests sent from tasks).

`aggregate` (below) is `map` with partial results folded in the tasks and merged on the driver: only
a few summaries travel, so driver memory does not grow with the corpus. Every primitive is deterministic: results
never depend on the number of workers or on how tasks were scheduled, retried or killed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from pipeline.errors import call_naming_item

Progress = Callable[[int, int], None]  # (done, total)
T = TypeVar("T")


class Executor(Protocol):
    name: str

    @property
    def workers(self) -> int:
        """Task slots: stages size their bucket counts by it (results never depend on it)."""
        ...

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], progress: Progress | None = None) -> list[Any]:
        """Apply `fn` to every item (picklable, small results); results in item order. Raises StageFailed."""
        ...

    def group_by_key(self, partitions: Sequence[Path | str], key_fn: Callable[[Path, int], pa.Table],
                     reduce_fn: Callable[[pa.Table], pa.Table], workdir: Path, n_buckets: int | None = None,
                     partitioner: str = "hash", progress: Progress | None = None) -> list[str]:
        """`key_fn(path, i)` gives rows with a `key` column per partition (`path` a path object, also for a
        partition given as a string or URI); rows go to buckets by key
        (hash of the key, or uint64 key ranges in order for `partitioner="range"`), each bucket's rows
        arrive in partition order, and `reduce_fn` sees whole buckets. Returns one reduce output file
        per bucket, in bucket order. Resumable: finished work under `workdir` is reused."""
        ...

    def components(self, edge_files: Sequence[str], workdir: Path, keep_column: str | None = None,
                   progress: Progress | None = None) -> list[str]:
        """Connected components of the undirected edges (u, v) in `edge_files` (only rows whose
        `keep_column` is true, if given). Returns Parquet files of (node, root) for every node that has
        an edge, root = the smallest node of its component, each file sorted by node."""
        ...

    def start_workers(self, preload: Sequence[str] = ()) -> None:
        """Start the task slots now, each importing the modules named in `preload`, so that their start
        overlaps the driver's work before the first `map` (nothing where slots need no start)."""
        ...

    def generation_engine(self, kind: str, **kwargs: Any) -> Any | None:
        """An engine whose `generate` runs where this executor runs work, or None to build it in-process."""
        ...

    def close(self) -> None:
        ...


FOLDS_PER_WORKER = 4  # contiguous runs of items an `aggregate` folds inside tasks, per task slot


def aggregate(executor: Executor, partial: Callable[[Any], T], items: Sequence[Any],
              merge: Callable[[T, T], T], zero: T, progress: Progress | None = None) -> T:
    """Fold per-item partial results (histograms, counts, integer sums) into one.

    The items are cut into a few contiguous runs per task slot and each task folds its run, so the
    driver holds a handful of partials whatever the corpus size (a 1 MB histogram per partition would
    otherwise be 500 MB at 1M documents). `merge` must be associative and exact (integers, in-order
    concatenation; no float sums), so the result does not depend on how the items were grouped, hence
    not on the number of workers either.
    """
    items = list(items)
    if not items:
        return zero
    runs = min(len(items), FOLDS_PER_WORKER * max(1, executor.workers))
    cuts = [len(items) * i // runs for i in range(runs + 1)]
    groups = [items[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    result = zero
    for part in executor.map(functools.partial(_fold, partial, merge, zero), groups, progress):
        result = merge(result, part)
    return result


def _fold(partial: Callable[[Any], T], merge: Callable[[T, T], T], zero: T, items: Sequence[Any]) -> T:
    result = zero
    for item in items:  # an error names its item, not the whole run
        result = merge(result, call_naming_item(partial, item))
    return result
