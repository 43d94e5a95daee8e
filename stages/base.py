"""The stage contract.

A stage is a settings model (`Config`, a `pipeline.config.StageConfig`) plus pure functions on Arrow
tables. What shape of work it is decides which executor primitive runs it:

* `MapStage`: row-wise; `apply(table)` returns the same rows with signal columns added and a
  `reason` column (null = keep). Executors run it per partition, in any order, on any worker.
* `KeyedDedupStage`: keep one document per key; `keys(table)` gives key columns, and the survivor
  of each key group is the smallest `(priority..., id)`. Executors group keys (disk-backed).
* `GlobalStage`: anything needing a view of the whole corpus (near-dup graphs, percentiles,
  mixing, ordered shard writing) implements `run(ctx)` against the executor's primitives.

Stages never do I/O beyond what their context gives them, so the same functions run in a local
process pool and inside Spark's `mapInArrow`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

from pipeline import storage
from pipeline.config import PipelineConfig, StageConfig
from pipeline.paths import stage_write_path

if TYPE_CHECKING:
    from pipeline.primitives import Executor


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

    def index_dir(self) -> Path | None:
        """Where keys of earlier runs' kept documents live (incremental runs); None = no index."""
        index = stage_write_path(self.pipeline, self.config, "index") if hasattr(self.config, "index") else None
        return storage.location(index) if index else None


@dataclass
class StageContext:
    """What a global stage gets to run: its inputs, its directory and the executor."""

    stage: StageConfig
    pipeline: PipelineConfig
    inputs: list[Path]
    stage_dir: Path
    output_dir: Path
    executor: Executor
    stats: dict[str, Any] = field(default_factory=dict)


class GlobalStage(Stage):
    shape = "global"

    def run(self, ctx: StageContext) -> dict[str, Any]:  # pragma: no cover - interface
        """Do the work; return manifest counts: in, kept, removed, added, by_reason (+ extras)."""
        raise NotImplementedError
