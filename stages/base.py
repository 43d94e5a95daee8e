"""The stage contract.

A stage is a settings model (`Config`, a `pipeline.config.StageConfig`) plus pure functions on Arrow
tables. What shape of work it is decides which executor primitive runs it:

* `MapStage`: row-wise; `apply(table)` returns the same rows with signal columns added and a
  `reason` column (null = keep). Executors run it per partition, in any order, on any worker.
* `KeyedDedupStage`: keep one document per key; `keys(table)` gives key columns, and the survivor
  of each key group is the smallest `(priority..., id)`. Executors group keys (disk-backed).
* `GlobalStage`: anything needing a view of the whole corpus (near-dup graphs, percentiles,
  mixing, ordered shard writing) implements `run(ctx)` against the executor's primitives.

Every shape runs with a `StageContext` (pipeline/stage_context.py) and hands its rows back to it: the
runner owns partition markers, the kept/removed split, counts and manifests. docs/stage-contract.md
says how to write each shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from pipeline import storage
from pipeline.columns import Column
from pipeline.config import PipelineConfig, StageConfig
from pipeline.index_store import IndexStore, run_key
from pipeline.paths import stage_write_path
from pipeline.schema import DOC_SCHEMA
from pipeline.stage_context import Part, PartitionOutput, PartitionSink, StageContext


class Stage:
    """Base of every stage; `config` is the validated settings, `pipeline` the whole config."""

    Config: ClassVar[type[StageConfig]] = StageConfig
    shape: ClassVar[str] = "map"

    def __init__(self, config: StageConfig, pipeline: PipelineConfig):
        self.config = config
        self.pipeline = pipeline

    def setup(self) -> None:
        """Load models or build tables once per worker process (not per partition)."""

    def fingerprint(self) -> dict[str, Any]:
        """Extra inputs that decide the output besides settings (e.g. a model file's hash)."""
        return {}

    def reads(self) -> tuple[Column, ...]:
        """Columns this stage reads (checked along the plan when the config loads); `text` by default."""
        return (Column("text", pa.string()),)

    def adds(self) -> tuple[Column, ...]:
        """Columns this stage adds to the documents it passes on."""
        return ()

    def input_problems(self, key: str, schema: pa.Schema) -> list[str]:
        """Checks of the input schema beyond `reads()` (e.g. synth's selection expressions); one line each."""
        return []


class MapStage(Stage):
    shape = "map"

    def apply(self, table: pa.Table) -> pa.Table:  # pragma: no cover - interface
        """Return `table`'s rows in order, with signal columns and a `reason` column added."""
        raise NotImplementedError

    def counters(self, result: pa.Table) -> dict[str, int]:
        """Extra manifest counters computed from `apply`'s result (e.g. PII matches per kind)."""
        return {}


@dataclass(frozen=True)
class DedupKey:
    """One key to deduplicate on; documents sharing it keep only the best one."""

    name: str  # reason prefix, e.g. "exact_dup"
    values: pa.Array  # binary or string; null = document has no such key (never removed by it)


class KeyedDedupStage(Stage):
    shape = "dedup"

    def keys(self, table: pa.Table) -> list[DedupKey]:  # pragma: no cover - interface
        raise NotImplementedError

    def priority(self, table: pa.Table) -> pa.Table:
        """Columns sorted ascending before `id` to choose a survivor (default: id alone)."""
        return pa.table({})

    def key_names(self) -> list[str]:
        """The names of `keys()` (reason prefixes), known without data."""
        return [k.name for k in self.keys(DOC_SCHEMA.empty_table())]

    def index_params(self, name: str) -> dict[str, Any]:
        """What gives key `name`'s index entries their meaning (its normalization, its type): an index
        built with other values is a config error, not a key type clash in the middle of a run."""
        return {}

    def index_stores(self) -> dict[str, IndexStore]:
        """Each key's persistent index store (incremental runs: keys of earlier runs' kept documents),
        none without an `index` setting. Checked here, so a mismatch stops the plan, not the run."""
        index = stage_write_path(self.pipeline, self.config, "index") if hasattr(self.config, "index") else None
        if not index:
            return {}
        where = f"stages.{self.config.name}.index"
        key = run_key(self.pipeline.output, self.config.name)
        stores = {n: IndexStore(storage.location(index) / n, {"key": n, **self.index_params(n)}, key, where)
                  for n in self.key_names()}
        for store in stores.values():
            store.check()
        return stores

    def fingerprint(self) -> dict[str, Any]:
        """The index generations of other runs decide the output (a new one reruns the stage)."""
        stores = self.index_stores()
        return {"index": {n: [g.name for g in s.others()] for n, s in stores.items()}} if stores else {}


class GlobalStage(Stage):
    """A plan over the executor primitives. `run` decides, hands its rows back through the context
    (`ctx.write_partitions`, `ctx.add_partition`) and returns its own figures for the manifest's
    stats; the runner writes the partitions' split and markers, counts them and writes the manifest.
    `writes_partitions = False`: the stage writes elsewhere (shard's shards); its input passes through."""

    shape = "global"
    writes_partitions: ClassVar[bool] = True

    def run(self, ctx: StageContext) -> dict[str, Any] | None:  # pragma: no cover - interface
        """Do the work; return extra manifest figures (the counts come from the partitions)."""
        raise NotImplementedError


__all__ = ["Column", "DedupKey", "GlobalStage", "KeyedDedupStage", "MapStage", "Part", "PartitionOutput",
           "PartitionSink", "Stage", "StageContext"]
