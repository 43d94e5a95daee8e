"""The two stage shapes the runner plans itself, written once over the executor primitives.

* A row-wise `MapStage`: `map` over input partitions; each task applies the stage and hands its rows
  to the context's sink, which writes the partition's kept/removed split and marker.
* A `KeyedDedupStage`: for each of its keys a `group_by_key` (hash buckets) whose reduce keeps the
  smallest `(priority..., id)` of every key group; then `map` writes each partition with the reasons
  the reduces chose. Keys of an incremental index (earlier runs' kept documents) join the group-by
  and always win.

Global stages (`GlobalStage.run`) compose the same primitives themselves; all three shapes hand
their rows back through the same `StageContext` (pipeline/stage_context.py).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import PipelineConfig, StageConfig
from pipeline.index_store import IndexStore
from pipeline.io import write_parquet
from pipeline.schema import REASON
from pipeline.stage_context import Part, PartitionOutput, StageContext
from pipeline.storage import arrow
from stages.registry import cached_stage, make_stage

# ----------------------------------------------------------------------------------------------
# row-wise stages


def _map_partition(config: StageConfig, pipeline: PipelineConfig, stage_hash: str, part: Part) -> PartitionOutput:
    stage = cached_stage(config, pipeline, stage_hash)
    result = stage.apply(pq.read_table(arrow(part.path)))
    return PartitionOutput(result, stage.counters(result))


def run_map_stage(ctx: StageContext) -> None:
    ctx.write_partitions(functools.partial(_map_partition, ctx.stage, ctx.pipeline, ctx.stage_hash))


# ----------------------------------------------------------------------------------------------
# keyed dedup


def keep_first_per_key(table: pa.Table, reason_prefix: str) -> pa.Table:
    """Reduce for dedup: in each key group the smallest (prio..., id) survives; others get a reason.
    With a `weight` column (copies each row already stands for), the survivor of a group of two or
    more also gets a row with a null reason and the group's total `count` (its `dup_count`)."""
    counted = "weight" in table.column_names
    empty = pa.table({"part": pa.array([], pa.int32()), "row": pa.array([], pa.int64()),
                      REASON: pa.array([], pa.string()), **({"count": pa.array([], pa.int64())} if counted else {})})
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
    if counted:
        weights = table.column("weight").to_numpy().astype(np.int64)
        heads = np.flatnonzero(starts)
        totals = np.add.reduceat(weights, heads)
        grouped = np.diff(np.append(heads, table.num_rows)) > 1
        lead = pa.array(heads[grouped])
        out = pa.concat_tables([out.append_column("count", pa.nulls(out.num_rows, pa.int64())), pa.table({
            "part": table.column("part").take(lead), "row": table.column("row").take(lead),
            REASON: pa.nulls(len(lead), pa.string()), "count": pa.array(totals[grouped], pa.int64())})])
    return out.sort_by([("part", "ascending"), ("row", "ascending")])


def removed_rows(result_paths: Sequence[str], part: int) -> dict[int, str]:
    """row -> reason for one partition, read from group-by results (filter pushed into Parquet)."""
    out: dict[int, str] = {}
    for path in result_paths:
        t = pq.read_table(arrow(path), filters=[("part", "=", part)], columns=["row", REASON])
        for row, reason in zip(t.column("row").to_pylist(), t.column(REASON).to_pylist(), strict=True):
            if reason is not None:
                out.setdefault(row, reason)
    return out


def survivor_counts(result_paths: Sequence[str], part: int) -> dict[int, int]:
    """row -> copies it stands for, for one partition's survivors of groups of two or more; keys run
    in order and each key's weights are the earlier keys' counts, so the last count is the total."""
    out: dict[int, int] = {}
    for path in result_paths:
        if "count" not in pq.read_schema(arrow(path)).names:
            continue
        t = pq.read_table(arrow(path), filters=[("part", "=", part)], columns=["row", "count"])
        for row, count in zip(t.column("row").to_pylist(), t.column("count").to_pylist(), strict=True):
            if count is not None:
                out[row] = count
    return out


def _input_weights(table: pa.Table) -> np.ndarray:
    """Copies each row already stands for: an earlier dedup stage's `dup_count`, else 1."""
    if "dup_count" not in table.column_names:
        return np.ones(table.num_rows, np.int64)
    return pc.fill_null(table.column("dup_count").cast(pa.int64()), 1).to_numpy().astype(np.int64)


def _dedup_keys(task: tuple[StageConfig, PipelineConfig, str, int, list[str], int], path: Path, part: int
                ) -> pa.Table:
    """Key table of one partition for key number `key_index`, minus rows earlier keys removed.
    Paths past the stage's inputs are index files of earlier runs: their rows always survive."""
    config, pipeline, stage_hash, key_index, earlier, n_inputs = task
    if part >= n_inputs:
        index = pq.read_table(arrow(path), columns=["key", "id"])
        n = index.num_rows
        return pa.table({"key": index.column("key"), "part": pa.array(np.full(n, -1, dtype=np.int32)),
                         "row": pa.array(np.full(n, -1, dtype=np.int64)), "id": index.column("id"),
                         "prio_0": pa.array(np.zeros(n, dtype=np.int8)), "weight": pa.array(np.ones(n, np.int64))})
    stage = cached_stage(config, pipeline, stage_hash)
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
    weights = _input_weights(table)
    for row, count in survivor_counts(earlier, part).items():
        weights[row] = count
    cols["weight"] = pa.array(weights)
    keys = pa.table(cols)
    mask = pc.is_valid(keys.column("key"))
    if earlier:
        gone = removed_rows(earlier, part)
        if gone:
            mask = pc.and_(mask, pc.invert(pc.is_in(keys.column("row"), pa.array(sorted(gone), pa.int64()))))
    return keys.filter(mask)


def _index_keys(task: tuple[StageConfig, PipelineConfig, str, int], path: Path) -> pa.Table:
    config, pipeline, stage_hash, key_index = task
    stage = cached_stage(config, pipeline, stage_hash)
    table = pq.read_table(arrow(path))
    key = stage.keys(table)[key_index]
    return pa.table({"key": key.values, "id": table.column("id")}).filter(pc.is_valid(key.values))


def _dedup_apply(results: list[str], part: Part) -> PartitionOutput:
    table = pq.read_table(arrow(part.path))
    gone = removed_rows(results, part.index)
    reasons = [gone.get(i) for i in range(table.num_rows)]
    counts = _input_weights(table)
    for row, count in survivor_counts(results, part.index).items():
        counts[row] = count
    dup_count = pa.array([None if r is not None else int(c) for r, c in zip(reasons, counts, strict=True)],
                         pa.int64())
    if "dup_count" in table.column_names:
        table = table.set_column(table.column_names.index("dup_count"), "dup_count", dup_count)
    else:
        table = table.append_column("dup_count", dup_count)
    return PartitionOutput(table.append_column(REASON, pa.array(reasons, pa.string())))


def run_dedup_stage(ctx: StageContext) -> None:
    config, pipeline, stage_hash, inputs = ctx.stage, ctx.pipeline, ctx.stage_hash, ctx.inputs
    stage = make_stage(config, pipeline)
    stores = stage.index_stores()
    key_names = stage.key_names() if inputs and ctx.todo else []
    results: list[str] = []
    for k, name in enumerate(key_names):
        extra = stores[name].files() if stores else []
        key_fn = functools.partial(_dedup_keys, (config, pipeline, stage_hash, k, list(results), len(inputs)))
        reduce_fn = functools.partial(keep_first_per_key, reason_prefix=name)
        results += ctx.executor.group_by_key([*inputs, *extra], key_fn, reduce_fn, ctx.stage_dir / "_work" / f"key{k}",
                                             progress=ctx.progress)
    ctx.write_partitions(functools.partial(_dedup_apply, results))
    if stores:
        _append_index(ctx, stage, stores)


def _append_index(ctx: StageContext, stage: Any, stores: dict[str, IndexStore]) -> None:
    """Add the keys of this run's kept documents to each key's index store as a new generation (one per
    output directory and stage: a resumed or repeated run replaces its own, never matches against it)."""
    kept = sorted((ctx.stage_dir / "data").glob("part-*.parquet"))
    docs = ctx.counts()["kept"]
    for k, name in enumerate(stage.key_names()):
        store = stores[name]
        if not kept or store.current(ctx.stage_hash) is not None:
            continue
        tables = ctx.executor.map(functools.partial(_index_keys, (ctx.stage, ctx.pipeline, ctx.stage_hash, k)), kept)
        staged = ctx.stage_dir / "_work" / f"index-{name}.parquet"
        write_parquet(pa.concat_tables(tables), staged)
        store.write([staged], ctx.stage_hash, docs)
