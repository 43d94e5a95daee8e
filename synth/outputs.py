"""What one wave of generations becomes: synthetic documents with provenance, failure rows, annotations.

Every input partition passes through with null provenance columns, so all partitions of the stage share one
schema; synthetic documents go to extra partitions `part-synth-<wave>-<k>`, sorted by id (ids are
hash(parent id, recipe, chunk), so the bytes do not depend on batching). A request the engine could not
serve, or an output clean-up rejected, is a row of `failed/part-<wave>.parquet`, never a document.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.io import write_parquet
from synth.engines import GenResult
from synth.selection import Work

PROVENANCE: list[pa.Field] = [
    pa.field("parent_id", pa.string()),
    pa.field("recipe", pa.string()),
    pa.field("model", pa.string()),
    pa.field("synth_prompt_tokens", pa.int32()),
    pa.field("synth_completion_tokens", pa.int32()),
]
FAILED_SCHEMA = pa.schema([
    pa.field("request_id", pa.string()),
    pa.field("parent_id", pa.string()),
    pa.field("recipe", pa.string()),
    pa.field("chunk", pa.int32()),
    pa.field("stage", pa.string()),  # "generation" (the engine failed) or "postprocess" (output rejected)
    pa.field("cause", pa.string()),
    pa.field("reason", pa.string()),
    pa.field("finish_reason", pa.string()),
    pa.field("prompt_tokens", pa.int32()),
    pa.field("completion_tokens", pa.int32()),
    pa.field("text", pa.string()),  # the rejected output, for inspection
])  # fmt: skip
# annotate recipes: one row per scored document (OUT/<stage>/annotations/part-<wave>.parquet)
ANNOTATION_SCHEMA = pa.schema([
    pa.field("id", pa.string()),
    pa.field("recipe", pa.string()),
    pa.field("score", pa.int32()),
    pa.field("model", pa.string()),
    pa.field("text", pa.string()),  # the document that was scored (what a classifier trains on)
    pa.field("output", pa.string()),  # the model's answer, justification included
])  # fmt: skip
JOINED = -1  # chunk number of a document made of all its chunks' outputs


def output_schema(schema: pa.Schema) -> pa.Schema:
    """The stage's schema: the input's plus the provenance columns it lacks."""
    for f in PROVENANCE:
        if f.name not in schema.names:
            schema = schema.append(f)
    return schema


def with_provenance(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` (an input partition) with null provenance columns, in ``schema``'s column order."""
    for f in schema:
        if f.name not in table.column_names:
            table = table.append_column(f, pa.nulls(table.num_rows, f.type))
    return table.select(schema.names)


def synth_id(parent_id: str, recipe: str, chunk: int) -> str:
    digest = hashlib.sha256(f"{parent_id}\0{recipe}\0{chunk}".encode()).hexdigest()
    return f"synth-{digest[:24]}"


def failure(request_id: str, w: Work, chunk: int, stage: str, cause: str, reason: str, res: GenResult | None,
            text: str | None = None) -> dict[str, Any]:
    """A row of `failed/`: which request, why, and what came back."""
    return {"request_id": request_id, "parent_id": w.parent_id, "recipe": w.recipe.name, "chunk": chunk,
            "stage": stage, "cause": cause, "reason": reason,
            "finish_reason": res.finish_reason if res is not None else None,
            "prompt_tokens": res.prompt_tokens if res is not None else None,
            "completion_tokens": res.completion_tokens if res is not None else None,
            "text": text if text is not None else (res.text or None) if res is not None else None}


def document(w: Work, chunk: int, chunk_ids: list[int], results: list[GenResult], text: str, model: str | None,
             inherit: list[str]) -> dict[str, Any]:
    """One synthetic document: its parent's inherited columns, its text and its provenance."""
    meta = {"parent_id": w.parent_id, "recipe": w.recipe.name, "chunk": chunk, "chunks": chunk_ids,
            "model": model, "finish_reason": [r.finish_reason for r in results]}
    doc = {k: w.row.get(k) for k in inherit if k in w.row}
    doc.update({"id": synth_id(w.parent_id, w.recipe.name, chunk), "text": text,
                "source": f"synth/{w.recipe.name}", "url": None,
                "meta": json.dumps(meta, ensure_ascii=False, sort_keys=True), "domain": w.recipe.domain,
                "parent_id": w.parent_id, "recipe": w.recipe.name, "model": model,
                "synth_prompt_tokens": sum(r.prompt_tokens for r in results),
                "synth_completion_tokens": sum(r.completion_tokens for r in results)})  # fmt: skip
    return doc


def annotation(w: Work, res: GenResult, score: str, model: str | None) -> dict[str, Any]:
    return {"id": w.parent_id, "recipe": w.recipe.name, "score": int(score), "model": model,
            "text": w.row.get("text"), "output": res.text}


def synthetic_partitions(docs: list[dict[str, Any]], schema: pa.Schema, wave: int, rows_per_part: int
                         ) -> list[tuple[str, pa.Table]]:
    """Synthetic documents as ``part-synth-<wave>-<k>`` tables, sorted by id, in the stage's schema."""
    docs = sorted(docs, key=lambda d: d["id"])
    step = max(1, rows_per_part)
    return [(f"part-synth-{wave:04d}-{k // step:04d}",
             pa.Table.from_pylist([{c: d.get(c) for c in schema.names} for d in docs[k:k + step]], schema=schema))
            for k in range(0, len(docs), step)]


def write_side(path: Path, rows: list[dict[str, Any]], schema: pa.Schema, order: tuple[str, ...]) -> None:
    """A wave's side table (failures, annotations) in a stable order; no rows, no file."""
    if rows:
        rows = sorted(rows, key=lambda r: tuple(r[k] for k in order)) if order else rows
        write_parquet(pa.Table.from_pylist(rows, schema=schema), path)
    else:
        path.unlink(missing_ok=True)

