"""One conformance suite for the executors: every primitive of `pipeline.primitives` (`map`,
`aggregate`, `group_by_key`, `components`, `generation_engine`) against its written contract, run on
each executor through one parametrized `executor` fixture: the local executor inline (1 worker) and
with a process pool (2 workers), and Spark `local[2]` (marked `spark`: the fast tier starts no JVM).

Expected results come from the contract, computed in memory here (the bucket rule, union-find),
never from another executor, so a bug both executors shared would still fail. Covered for each:
empty input, one item, skewed keys or graphs, a task failure named in the error, and reuse of
finished work.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from filters.lsh_graph import UnionFind
from pipeline.config import validate
from pipeline.errors import StageFailed
from pipeline.hashing import siphash64
from pipeline.primitives import Executor, aggregate

KINDS = [pytest.param("local-inline", id="local-inline"), pytest.param("local-pool", id="local-pool"),
         pytest.param("spark", id="spark-local2", marks=pytest.mark.spark)]


@pytest.fixture(scope="module", params=KINDS)
def executor(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Executor]:
    """Each executor once per module (a process pool or a Spark session is started once)."""
    if request.param == "spark":
        from tests.spark_util import TEST_CONF, require_pyspark

        require_pyspark()
        session = request.getfixturevalue("spark")  # the session's local[2], this module pickled by value
        from pipeline.executors.spark import SparkExecutor

        cfg = validate({"output": str(tmp_path_factory.mktemp("spark_out")), "executor": "spark",
                        "inputs": [{"name": "a", "path": "unused/*.jsonl"}], "stages": ["normalize"],
                        "spark": {"master": "local[2]", "conf": TEST_CONF}})
        ex: Any = SparkExecutor(cfg, spark=session)
    else:
        from pipeline.executors.local import LocalExecutor

        ex = LocalExecutor(1 if request.param == "local-inline" else 2)
    yield ex
    ex.close()


class Progress:
    """Records every (done, total) call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def finished(self) -> bool:
        return bool(self.calls) and self.calls[-1][0] == self.calls[-1][1] and all(
            0 <= d <= t for d, t in self.calls)


# -- map ------------------------------------------------------------------------------------------
def _square(x: int) -> int:
    return x * x


def _describe(item: tuple[str, Path, np.ndarray]) -> tuple[str, str, int]:
    name, path, values = item
    return name.upper(), path.name, int(values.sum())


def _fail_on(bad: int, x: int) -> int:
    if x == bad:
        raise ValueError(f"boom at {x}")
    return x


def _fail_on_name(bad: str, x: str) -> str:
    if x == bad:
        raise ValueError(f"boom at {x}")
    return x


def _reraise_stage_failed(x: str) -> str:
    raise StageFailed(f"partition {x}", KeyError("n_tokens"))


def test_map_returns_results_in_item_order(executor: Executor) -> None:
    items = list(range(97))  # more items than tasks: each task runs a run of them
    progress = Progress()
    assert executor.map(_square, items, progress) == [x * x for x in items]
    assert progress.finished() and progress.calls[-1] == (97, 97)


def test_map_on_no_items_and_on_one_item(executor: Executor) -> None:
    progress = Progress()
    assert executor.map(_square, [], progress) == []
    assert progress.calls in ([], [(0, 0)])
    assert executor.map(_square, [7]) == [49]


def test_map_carries_any_picklable_item_and_result(executor: Executor, tmp_path: Path) -> None:
    items = [(f"part-{i}", tmp_path / f"p{i}.parquet", np.arange(i + 1)) for i in range(5)]
    assert executor.map(_describe, items) == [(f"PART-{i}", f"p{i}.parquet", i * (i + 1) // 2) for i in range(5)]


def test_a_failing_task_is_named_in_the_error(executor: Executor) -> None:
    items = [f"part-{i:03d}" for i in range(12)]
    with pytest.raises(StageFailed) as err:
        executor.map(functools.partial(_fail_on_name, "part-007"), items)
    assert "part-007" in str(err.value) and "ValueError: boom at part-007" in str(err.value)
    assert isinstance(err.value.error, ValueError)


def test_a_stage_failed_raised_by_a_task_passes_through_unchanged(executor: Executor) -> None:
    with pytest.raises(StageFailed) as err:
        executor.map(_reraise_stage_failed, ["p3"])
    assert err.value.where == "partition p3" and isinstance(err.value.error, KeyError)


def test_workers_is_a_positive_slot_count(executor: Executor) -> None:
    assert isinstance(executor.workers, int) and executor.workers >= 1


def _loaded(name: str) -> tuple[int, bool]:
    import sys

    return os.getpid(), name in sys.modules


def test_local_workers_start_before_the_first_map_with_their_modules() -> None:
    """`start_workers` spawns every worker of the pool at once, each importing the modules named (the
    first `map` then finds them started); one worker runs tasks inline and starts nothing."""
    from pipeline.executors.local import LocalExecutor

    with LocalExecutor(1) as inline:
        inline.start_workers(("pipeline.ingest_split",))
        assert inline._pool is None
    with LocalExecutor(2) as ex:
        ex.start_workers(("pipeline.ingest_split",))
        assert ex._pool is not None and len(ex._pool._processes) == 2  # type: ignore[attr-defined]
        pids = set(ex._pool._processes)  # type: ignore[attr-defined]
        ex.start_workers(("json",))  # a running pool is kept
        done = ex.map(_loaded, ["pipeline.ingest_split"] * 8)
        assert all(loaded for _, loaded in done) and {pid for pid, _ in done} <= pids
    with LocalExecutor(2) as broken:  # a module that fails to import does not break the pool
        broken.start_workers(("pipeline.no_such_module",))
        assert broken.map(_square, [1, 2, 3]) == [1, 4, 9]


# -- aggregate --------------------------------------------------------------------------------------
def _as_list(x: int) -> list[int]:
    return [x]


def _concat(a: list[int], b: list[int]) -> list[int]:
    return a + b


def _hist(x: int) -> dict[int, int]:
    return {x % 5: 1}


def _merge_hist(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
    return {k: a.get(k, 0) + b.get(k, 0) for k in sorted({*a, *b})}


def _add(a: int, b: int) -> int:
    return a + b


def test_aggregate_folds_in_item_order(executor: Executor) -> None:
    items = list(range(203))
    assert aggregate(executor, _as_list, items, _concat, []) == items  # in-order concatenation is exact
    assert aggregate(executor, _hist, items, _merge_hist, {}) == {k: sum(1 for x in items if x % 5 == k)
                                                                   for k in range(5)}


def test_aggregate_of_nothing_is_zero_and_of_one_item_is_its_partial(executor: Executor) -> None:
    assert aggregate(executor, _as_list, [], _concat, [-1]) == [-1]
    assert aggregate(executor, _as_list, [4], _concat, []) == [4]


def test_aggregate_names_the_failing_item(executor: Executor) -> None:
    with pytest.raises(StageFailed, match=r"13.*ValueError: boom at 13"):
        aggregate(executor, functools.partial(_fail_on, 13), list(range(40)), _add, 0)


# -- group_by_key -----------------------------------------------------------------------------------
def write_parts(root: Path, tables: list[pa.Table]) -> list[Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, table in enumerate(tables):
        paths.append(root / f"p-{i:03d}.parquet")
        pq.write_table(table, paths[-1])
    return paths


def _keyed(path: Path, part: int) -> pa.Table:
    table = pq.read_table(path)
    return table.append_column("part", pa.array(np.full(table.num_rows, part, np.int32)))


def _identity(table: pa.Table) -> pa.Table:
    return table


def _count_keys(table: pa.Table) -> pa.Table:
    """One row per key: its count (whole groups only, or the counts would be split)."""
    if table.num_rows == 0:
        return pa.table({"key": pa.array([], pa.string()), "n": pa.array([], pa.int64())})
    counts = table.group_by("key").aggregate([("key", "count")])
    return counts.rename_columns(["key", "n"]).sort_by("key")


def _fail_in_partition(bad: int, path: Path, part: int) -> pa.Table:
    if part == bad:
        raise ValueError(f"bad key column in partition {part}")
    return _keyed(path, part)


def _fail_reduce(table: pa.Table) -> pa.Table:
    raise ValueError("reduce ran again")


def read_buckets(files: list[str]) -> list[pa.Table]:
    return [pq.read_table(f) for f in files]


def string_parts(rng: np.random.Generator, sizes: list[int], keys: list[str], p: np.ndarray | None = None
                 ) -> list[pa.Table]:
    return [pa.table({"key": pa.array(rng.choice(keys, n, p=p), pa.string()), "row": pa.array(np.arange(n))})
            for n in sizes]


def test_group_by_key_hash_buckets_hold_whole_keys_in_partition_order(executor: Executor, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    keys = [f"k{i}" for i in range(60)]
    parts = write_parts(tmp_path / "in", string_parts(rng, [50, 0, 80, 1, 64], keys))  # an empty partition
    progress = Progress()
    files = executor.group_by_key(parts, _keyed, _identity, tmp_path / "work", n_buckets=7, progress=progress)
    assert len(files) == 7 and progress.finished()
    all_rows = pa.concat_tables([_keyed(p, i) for i, p in enumerate(parts)])
    for b, table in enumerate(read_buckets(files)):
        want = all_rows.filter(pa.array(siphash64(all_rows.column("key")) % np.uint64(7) == b))
        assert table.to_pydict() == want.to_pydict(), b  # the bucket rule, rows in partition order


def test_group_by_key_range_buckets_are_a_global_sort(executor: Executor, tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    tables = [pa.table({"key": pa.array(rng.integers(0, 2**64, n, dtype=np.uint64)), "row": np.arange(n)})
              for n in (300, 5, 211)]
    files = executor.group_by_key(write_parts(tmp_path / "in", tables), _keyed, _identity, tmp_path / "work",
                                  n_buckets=6, partitioner="range")
    buckets = [t.column("key").to_numpy() for t in read_buckets(files) if t.num_rows]
    assert len(buckets) >= 4  # uniform keys fill most of the ranges
    assert all(a.max() < b.min() for a, b in zip(buckets, buckets[1:], strict=False))  # ranges in key order
    assert sorted(np.concatenate(buckets).tolist()) == sorted(np.concatenate(
        [t.column("key").to_numpy() for t in tables]).tolist())


def test_group_by_key_with_skewed_keys_reduces_each_key_once(executor: Executor, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    keys = ["hot", *(f"k{i}" for i in range(40))]
    weights = np.array([0.9] + [0.1 / 40] * 40)
    tables = string_parts(rng, [400, 400, 400], keys, weights)
    files = executor.group_by_key(write_parts(tmp_path / "in", tables), _keyed, _count_keys, tmp_path / "work",
                                  n_buckets=5)
    got = pa.concat_tables(read_buckets(files))
    assert got.num_rows == len(set(got.column("key").to_pylist()))  # each key reduced in one bucket only
    everything = pa.concat_tables(tables).column("key").to_pylist()
    assert dict(zip(got.column("key").to_pylist(), got.column("n").to_pylist(), strict=True)) == {
        k: everything.count(k) for k in set(everything)}


def test_group_by_key_of_no_partitions_reduces_empty_buckets(executor: Executor, tmp_path: Path) -> None:
    files = executor.group_by_key([], _keyed, _count_keys, tmp_path / "work", n_buckets=3)
    assert len(files) == 3 and all(t.num_rows == 0 and t.column_names == ["key", "n"] for t in read_buckets(files))


def test_group_by_key_of_one_row(executor: Executor, tmp_path: Path) -> None:
    parts = write_parts(tmp_path / "in", [pa.table({"key": ["only"], "row": [0]})])
    files = executor.group_by_key(parts, _keyed, _count_keys, tmp_path / "work", n_buckets=4)
    assert pa.concat_tables(read_buckets(files)).to_pylist() == [{"key": "only", "n": 1}]


def test_group_by_key_reuses_finished_work(executor: Executor, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    parts = write_parts(tmp_path / "in", string_parts(rng, [30, 30], ["a", "b", "c", "d"]))
    first = executor.group_by_key(parts, _keyed, _count_keys, tmp_path / "work", n_buckets=3)
    before = [Path(f).read_bytes() for f in first]
    again = executor.group_by_key(parts, _keyed, _fail_reduce, tmp_path / "work", n_buckets=3)  # nothing reruns
    assert again == first and [Path(f).read_bytes() for f in again] == before


def test_group_by_key_names_the_failing_partition(executor: Executor, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    parts = write_parts(tmp_path / "in", string_parts(rng, [10, 10, 10, 10], ["a", "b"]))
    with pytest.raises(StageFailed) as err:
        executor.group_by_key(parts, functools.partial(_fail_in_partition, 2), _identity, tmp_path / "work",
                              n_buckets=2)
    assert "work map p-002" in str(err.value) and "ValueError: bad key column in partition 2" in str(err.value)


# -- components -------------------------------------------------------------------------------------
def write_edges(root: Path, pieces: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> list[str]:
    tables = [pa.table({"u": pa.array(u, pa.int64()), "v": pa.array(v, pa.int64()), "keep": pa.array(k)})
              for u, v, k in pieces]
    return [str(p) for p in write_parts(root, tables)]


def labels_of(files: list[str]) -> dict[int, int]:
    tables = [pq.read_table(f) for f in files]
    for t in tables:  # each file sorted by node
        assert np.all(np.diff(t.column("node").to_numpy()) > 0)
    table = pa.concat_tables(tables) if tables else pa.table({"node": [], "root": []})
    nodes = table.column("node").to_pylist()
    assert len(nodes) == len(set(nodes))  # each node once over all files
    return dict(zip(nodes, table.column("root").to_pylist(), strict=True))


def expected_labels(u: np.ndarray, v: np.ndarray) -> dict[int, int]:
    """Union-find in memory: every node with an edge -> the smallest node of its component."""
    nodes = np.unique(np.concatenate([u, v]))
    uf = UnionFind(len(nodes))
    uf.union(np.searchsorted(nodes, u), np.searchsorted(nodes, v))
    return dict(zip(nodes.tolist(), nodes[uf.roots()].tolist(), strict=True)) if len(nodes) else {}


def test_components_label_every_edge_node_with_its_smallest(executor: Executor, tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    n, m = 3000, 1200
    u, v = rng.integers(0, n, m), rng.integers(0, n, m)
    u[-2:], v[-2:] = (u[0], u[1]), (u[0], v[1])  # a self-loop and a repeated edge
    keep = rng.random(m) < 0.8
    keep[[0, 1, -2, -1]] = True
    files = write_edges(tmp_path / "edges", [(u[:500], v[:500], keep[:500]), (u[500:], v[500:], keep[500:])])
    progress = Progress()
    got = labels_of(executor.components(files, tmp_path / "cc", "keep", progress=progress))
    assert got == expected_labels(u[keep], v[keep])
    assert not progress.calls or progress.finished()
    unfiltered = labels_of(executor.components(files, tmp_path / "cc_all"))  # no keep column: every edge
    assert unfiltered == expected_labels(u, v)


def test_components_of_a_long_chain_and_a_big_star(executor: Executor, tmp_path: Path) -> None:
    """Skewed graphs: a 400-node path (many rounds for star contraction) and a 3,000-leaf star."""
    chain = np.arange(10_000, 10_400)
    chain_u, chain_v = chain[1:], chain[:-1]
    leaves = np.arange(50_000, 53_000)
    star_u, star_v = leaves, np.full(len(leaves), 60_000)  # the hub is the largest node of its component
    u, v = np.concatenate([chain_u[::-1], star_u]), np.concatenate([chain_v[::-1], star_v])
    files = write_edges(tmp_path / "edges", [(u, v, np.ones(len(u), bool))])
    got = labels_of(executor.components(files, tmp_path / "cc"))
    assert got == expected_labels(u, v)
    assert set(got.values()) == {10_000, 50_000}


def test_components_of_no_edges_and_of_one_edge(executor: Executor, tmp_path: Path) -> None:
    empty = write_edges(tmp_path / "empty", [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool))])
    assert labels_of(executor.components(empty, tmp_path / "cc0")) == {}
    none_kept = write_edges(tmp_path / "dropped", [(np.array([1, 2]), np.array([2, 3]), np.array([False, False]))])
    assert labels_of(executor.components(none_kept, tmp_path / "cc1", "keep")) == {}
    one = write_edges(tmp_path / "one", [(np.array([9]), np.array([4]), np.array([True]))])
    assert labels_of(executor.components(one, tmp_path / "cc2")) == {4: 4, 9: 4}


def test_components_reuse_finished_work(executor: Executor, tmp_path: Path) -> None:
    files = write_edges(tmp_path / "edges", [(np.array([1, 5]), np.array([2, 6]), np.array([True, True]))])
    first = executor.components(files, tmp_path / "cc")
    for f in files:
        os.remove(f)  # finished labels are reused: the edges are not read again
    assert executor.components(files, tmp_path / "cc") == first
    assert labels_of(first) == {1: 1, 2: 1, 5: 5, 6: 5}


# -- generation_engine ------------------------------------------------------------------------------
def test_offline_generation_stays_in_process(executor: Executor) -> None:
    """The offline engine owns the accelerator: every executor leaves it to the driver (None)."""
    assert executor.generation_engine("vllm", label="synth") is None
