"""What the runner hands every stage, and the bookkeeping it keeps for it.

A stage decides; the runner records. Whatever its shape (map, keyed dedup, global plan), a stage gets
a `StageContext`: its settings and identity (stage hash), its input partitions and the ones still to
do, a progress reporter and the executor. It hands back rows with a `reason` column (null = kept);
the runner's `PartitionSink` writes the kept/removed split and then the partition's completion marker,
counts what every partition kept and removed, and writes the manifest. So resume, the
`in + added = kept + removed` invariant and atomic outputs are written once, here, not per stage.

Three ways to hand rows back:

* `ctx.write_partitions(fn)`: `fn(part)` runs in a task for every input partition still to do and
  returns a `PartitionOutput`; the task writes it through the sink.
* `ctx.add_partition(name, table)`: rows the stage made (synthetic documents), written from the driver.
* `ctx.write_scratch(folder, fn)`: per-partition intermediates a later step reads (scores before a
  global threshold), reused by a resumed run and removed with the stage's scratch.
* `ctx.step(name, fn)`: a step of the stage's own (a wave of generations, the clustering) done once per
  stage hash: its JSON-able result is kept beside the stage's outputs, so a resumed run reuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.config import PipelineConfig, StageConfig
from pipeline.io import read_json_or_none, write_json, write_parquet
from pipeline.partitions import merge_counts, part_done, partition_name, write_split
from pipeline.primitives import Executor, Progress
from pipeline.schema import REASON
from pipeline.storage import arrow

PRIVATE = "_"  # a partition counter named `_x` reaches the stage (`ctx.counts()`), not the manifest


@dataclass(frozen=True)
class Part:
    """One input partition: its position among the stage's inputs (group-by results name it so) and its file."""

    index: int
    path: Path

    @property
    def name(self) -> str:
        return partition_name(self.path)

    @property
    def label(self) -> str:
        return self.name


@dataclass
class PartitionOutput:
    """What a stage hands back for one partition: its rows in order with a `reason` column (null =
    kept; no such column = all kept), counters summed into the manifest, and how many of the kept rows
    are new (repeated or made by the stage, not in its input)."""

    table: pa.Table
    counters: dict[str, Any] = field(default_factory=dict)
    added: int = 0


@dataclass(frozen=True)
class PartitionSink:
    """Where kept and removed rows go: `data/` and `removed/` of the stage, then `_parts/<name>.json`.
    Picklable, so tasks on any executor write their own partitions."""

    stage_dir: Path
    stage_hash: str

    def write(self, name: str, out: PartitionOutput) -> dict[str, Any]:
        table = out.table
        if REASON not in table.column_names:
            table = table.append_column(REASON, pa.nulls(table.num_rows, pa.string()))
        return write_split(table, self.stage_dir, name, self.stage_hash, out.counters, added=out.added)

    def done(self, name: str) -> dict[str, Any] | None:
        """The counts of a finished partition, None if it is not finished (for this stage hash)."""
        return part_done(self.stage_dir, name, self.stage_hash)

    def side_file(self, name: str, suffix: str) -> Path:
        """A partition's own side output (e.g. its contamination rows), written before its marker."""
        return self.stage_dir / "_parts" / f"{name}.{suffix}"

    def added_names(self, inputs: Iterable[str]) -> list[str]:
        """Finished partitions of this stage hash that are not input partitions (made by the stage)."""
        known = set(inputs)
        markers = sorted((self.stage_dir / "_parts").glob("*.json"))
        names = [m.name.removesuffix(".json") for m in markers]
        return [n for n in names if n not in known and self.done(n) is not None]


@dataclass(frozen=True)
class _PartitionTask:
    fn: Callable[[Part], PartitionOutput]
    sink: PartitionSink
    part: Part
    stage: str

    @property
    def label(self) -> str:
        return f"{self.stage} {self.part.name}"


def _write_partition(task: _PartitionTask) -> dict[str, Any]:
    return task.sink.write(task.part.name, task.fn(task.part))


@dataclass(frozen=True)
class _ScratchTask:
    fn: Callable[[Part], pa.Table]
    out: Path
    part: Part
    stage: str

    @property
    def label(self) -> str:
        return f"{self.stage} {self.part.name}"


def _write_scratch(task: _ScratchTask) -> None:
    if not task.out.exists():  # written by an earlier attempt (atomically: whole or absent)
        write_parquet(task.fn(task.part), task.out)


@dataclass
class StageContext:
    """Everything a stage runs with; built by the runner for every stage shape."""

    stage: StageConfig
    pipeline: PipelineConfig
    inputs: list[Path]
    stage_dir: Path
    output_dir: Path
    executor: Executor
    stage_hash: str
    reporter: Callable[[str | None, str | None], Progress] = field(repr=False)
    progress: Progress | None = None  # the stage's main progress line (done, total)

    @property
    def sink(self) -> PartitionSink:
        return PartitionSink(self.stage_dir, self.stage_hash)

    @property
    def parts(self) -> list[Part]:
        return [Part(i, p) for i, p in enumerate(self.inputs)]

    @property
    def todo(self) -> list[Part]:
        """The input partitions whose output is not finished yet (all of them on a first run)."""
        sink = self.sink
        return [p for p in self.parts if sink.done(p.name) is None]

    def phase(self, phase: str | None = None, unit: str | None = None) -> Progress:
        """A progress line of its own for one phase of the stage (`near_dedup: signatures 14/14`)."""
        return self.reporter(phase, unit)

    def write_partitions(self, fn: Callable[[Part], PartitionOutput], parts: list[Part] | None = None,
                         progress: Progress | None = None) -> None:
        """`fn(part)` in a task for every partition still to do (or `parts`); each task writes its own."""
        todo = self.todo if parts is None else parts
        tasks = [_PartitionTask(fn, self.sink, p, self.stage.name) for p in todo]
        self.executor.map(_write_partition, tasks, progress or self.progress)

    def write_scratch(self, folder: str, fn: Callable[[Part], pa.Table], progress: Progress | None = None
                      ) -> list[Path]:
        """`fn(part)` in a task for every input partition, kept as `<stage>/<folder>/<name>.parquet` (an
        intermediate a later step of the stage reads, e.g. scores before a global threshold). A file an
        earlier attempt wrote is reused. Add the folder to the runner's SCRATCH_DIRS: it goes once the
        manifest is written. Returns the files in input order."""
        outs = [self.stage_dir / folder / p.path.name for p in self.parts]
        tasks = [_ScratchTask(fn, out, p, self.stage.name) for p, out in zip(self.parts, outs, strict=True)]
        self.executor.map(_write_scratch, tasks, progress or self.progress)
        return outs

    def add_partition(self, name: str, table: pa.Table) -> dict[str, Any]:
        """Write rows the stage made as partition `name` (all of them added and kept unless a reason says)."""
        if name in {partition_name(p) for p in self.inputs}:
            raise ValueError(f"{name}: an added partition cannot take an input partition's name")
        kept = table.num_rows if REASON not in table.column_names else int(pc.sum(pc.is_null(table.column(REASON)))
                                                                             .as_py() or 0)
        return self.sink.write(name, PartitionOutput(table, added=kept))

    def step(self, name: str, fn: Callable[[], Any]) -> tuple[Any, bool]:
        """`fn()` once per stage hash: its JSON-able result is kept in `<stage>/<name>.json` and a resumed
        run gets it back without calling `fn`. Returns (result, reused)."""
        path = self.stage_dir / f"{name}.json"
        found = read_json_or_none(path)
        if found and found.get("config_hash") == self.stage_hash and "result" in found:
            return found["result"], True
        result = fn()
        write_json({"config_hash": self.stage_hash, "result": result}, path)
        return result, False

    def counts(self) -> dict[str, Any]:
        """Counts merged over every finished partition so far, input and added ones (private counters too)."""
        names = [partition_name(p) for p in self.inputs]
        sink = self.sink
        return merge_counts(sink.done(n) or {} for n in [*names, *sink.added_names(names)])


def finish_counts(ctx: StageContext, writes_partitions: bool, stats: dict[str, Any] | None) -> dict[str, Any]:
    """The stage's manifest counts: its partitions' (checked: every input partition finished), private
    counters dropped, then the stage's own figures. A stage that writes no partitions (shard) passes its
    input through: in = kept = the input rows."""
    stats = dict(stats or {})
    if not writes_partitions:
        n = sum(pq.ParquetFile(arrow(p)).metadata.num_rows for p in ctx.inputs)
        counts: dict[str, Any] = {"in": n, "kept": n, "removed": 0, "added": 0, "by_reason": {}}
    else:
        missing = [p.name for p in ctx.todo]
        if missing:
            raise RuntimeError(f"{len(missing)} input partitions were not written (first: {missing[0]})")
        remove_unfinished(ctx)
        counts = {k: v for k, v in ctx.counts().items() if not k.startswith(PRIVATE)}
    counts.update(stats)
    return counts


def remove_unfinished(ctx: StageContext) -> None:
    """Data files without a finished marker (an added partition a killed attempt began and this run did
    not write again) would silently join the output: they go."""
    sink = ctx.sink
    for sub in ("data", "removed"):
        for f in sorted((ctx.stage_dir / sub).glob("part-*.parquet")):
            if sink.done(f.name.removesuffix(".parquet")) is None:
                f.unlink(missing_ok=True)
