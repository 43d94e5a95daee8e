"""`paragraph_dedup`: remove repeated paragraphs (or lines) across the corpus, then rewrite documents.

Two rules (CCNet line dedup, Dolma paragraph dedup, RefinedWeb repeated lines):

* `keep: first`: each unit's first occurrence, in the document with the smallest id (then the
  lowest unit number), stays; every later copy, in other documents or the same one, goes.
* `max_docs: N`: a unit found in more than N documents is boilerplate (navigation, cookie and legal
  text) and goes from all of them.

Steps: a `group_by_key` on the unit hash (range buckets on the uint64 hash), whose reduce decides
per unit which (partition, row, unit number) lose it; then a `map` over partitions rewrites the
documents that lost units. Each decision depends only on the unit's own group, so results are the
same for any bucket count, worker count or executor. A rewritten document shorter than
`min_chars` is removed (`paragraph_dedup:too_short`, the original text kept in removed/).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from filters.units import drop_units, unit_keys
from pipeline.config import StageConfig
from pipeline.schema import REASON
from pipeline.storage import arrow
from stages.base import GlobalStage, Part, PartitionOutput, StageContext

LOSER_SCHEMA = pa.schema([("part", pa.int32()), ("row", pa.int64()), ("unit", pa.int32())])


class ParagraphDedupConfig(StageConfig):
    unit: Literal["paragraph", "line"] = "paragraph"
    keep: Literal["first"] = "first"  # the rule when max_docs is not set
    max_docs: int | None = Field(default=None, ge=1)  # set: drop units found in more than this many documents
    min_unit_chars: int = Field(default=0, ge=0)  # shorter units are never keyed (never removed)
    min_chars: int = Field(default=50, ge=0)  # a rewritten document with fewer characters is removed


@dataclass(frozen=True)
class Plan:
    unit: str
    max_docs: int | None
    min_unit_chars: int
    min_chars: int


def _unit_rows(plan: Plan, path: Path, part: int) -> pa.Table:
    """Key rows of one partition: (key = unit hash, part, row, unit number, document id)."""
    table = pq.read_table(arrow(path), columns=["id", "text"])
    doc, index, keys, _ = unit_keys(table.column("text"), plan.unit, plan.min_unit_chars)
    return pa.table({"key": pa.array(keys, pa.uint64()), "part": pa.array(np.full(len(doc), part, np.int32)),
                     "row": pa.array(doc), "unit": pa.array(index.astype(np.int32)),
                     "id": table.column("id").combine_chunks().take(pa.array(doc))})


def _losers(plan: Plan, table: pa.Table) -> pa.Table:
    """One bucket of unit rows -> the (part, row, unit) occurrences that lose their unit."""
    if table.num_rows == 0:
        return LOSER_SCHEMA.empty_table()
    table = table.sort_by([("key", "ascending"), ("id", "ascending"), ("unit", "ascending")])
    keys = table.column("key").to_numpy()
    starts = np.ones(len(keys), bool)
    starts[1:] = keys[1:] != keys[:-1]
    group = np.cumsum(starts) - 1
    if plan.max_docs is None:
        lose = ~starts
    else:
        ids = pc.dictionary_encode(table.column("id").combine_chunks()).indices.to_numpy()
        new_doc = starts.copy()
        new_doc[1:] |= ids[1:] != ids[:-1]  # rows of one key are sorted by id: a new id starts a document
        docs_per_group = np.bincount(group, weights=new_doc).astype(np.int64)
        lose = docs_per_group[group] > plan.max_docs
    out = table.filter(pa.array(lose)).select(["part", "row", "unit"])
    return out.sort_by([("part", "ascending"), ("row", "ascending"), ("unit", "ascending")]).cast(LOSER_SCHEMA)


def _losers_of(results: list[str], part: int) -> dict[int, set[int]]:
    """row -> unit numbers it loses, for one partition (filter pushed into the Parquet reads)."""
    out: dict[int, set[int]] = {}
    for path in results:
        t = pq.read_table(arrow(path), filters=[("part", "=", part)], columns=["row", "unit"])
        for row, unit in zip(t.column("row").to_pylist(), t.column("unit").to_pylist(), strict=True):
            out.setdefault(row, set()).add(unit)
    return out


def _rewrite(plan: Plan, results: list[str], part: Part) -> PartitionOutput:
    table = pq.read_table(arrow(part.path))
    losers = _losers_of(results, part.index)
    texts = table.column("text").to_pylist()
    reasons: list[str | None] = [None] * table.num_rows
    units = chars = rewritten = 0
    for row in sorted(losers):
        new, removed = drop_units(texts[row], plan.unit, losers[row])
        units += len(losers[row])
        chars += removed
        rewritten += 1
        if len(new) < plan.min_chars:
            reasons[row] = "paragraph_dedup:too_short"  # removed/ keeps the original text
        else:
            texts[row] = new
    table = table.set_column(table.column_names.index("text"), "text", pa.array(texts, pa.string()))
    table = table.append_column(REASON, pa.array(reasons, pa.string()))
    counters = {"units_removed": units, "chars_removed": chars, "docs_rewritten": rewritten}
    return PartitionOutput(table, counters)


class Stage(GlobalStage):
    Config = ParagraphDedupConfig
    config: ParagraphDedupConfig

    def run(self, ctx: StageContext) -> None:
        cfg = self.config
        ex = ctx.executor
        plan = Plan(cfg.unit, cfg.max_docs, cfg.min_unit_chars, cfg.min_chars)
        if not ctx.todo:
            return
        text_bytes = sum(_data_bytes(p) for p in ctx.inputs)
        n_buckets = int(max(2 * ex.workers, text_bytes // (64 << 20) + 1))
        results = ex.group_by_key(ctx.inputs, functools.partial(_unit_rows, plan), functools.partial(_losers, plan),
                                  ctx.stage_dir / "_work" / "units", n_buckets=n_buckets, partitioner="range",
                                  progress=ctx.phase("units"))
        ctx.write_partitions(functools.partial(_rewrite, plan, results), progress=ctx.phase("rewrite", "partitions"))


def _data_bytes(path: Path) -> int:
    """Uncompressed size of a partition, from its Parquet metadata (no data read)."""
    md = pq.ParquetFile(arrow(path)).metadata
    return sum(md.row_group(g).total_byte_size for g in range(md.num_row_groups))
