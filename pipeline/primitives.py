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

`aggregate` (below) is `map` with partial results merged on the driver: only per-partition summaries
travel, so driver memory does not grow with the corpus. Every primitive is deterministic: results
never depend on the number of workers or on how tasks were scheduled, retried or killed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa

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

    def group_by_key(self, partitions: Sequence[Path], key_fn: Callable[[Path, int], pa.Table],
                     reduce_fn: Callable[[pa.Table], pa.Table], workdir: Path, n_buckets: int | None = None,
                     partitioner: str = "hash", progress: Progress | None = None) -> list[str]:
        """`key_fn(path, i)` gives rows with a `key` column per partition; rows go to buckets by key
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

    def generation_engine(self, kind: str, **kwargs: Any) -> Any | None:
        """An engine whose `generate` runs where this executor runs work, or None to build it in-process."""
        ...

    def close(self) -> None:
        ...


def aggregate(executor: Executor, partial: Callable[[Any], T], items: Sequence[Any],
              merge: Callable[[T, T], T], zero: T, progress: Progress | None = None) -> T:
    """Fold per-item partial results on the driver (histograms, sums, counts): mergeable summaries only."""
    result = zero
    for part in executor.map(partial, items, progress):
        result = merge(result, part)
    return result
