"""Which documents each recipe works on, and the work items they become, wave by wave.

Selection reads only the columns the recipes' `select` expressions name, across all partitions, and
applies the `max_docs_per_recipe` cap by the smallest hash(seed, id) (ties by id), so the sample does not
depend on partitioning. Work items come out in (partition, recipe, row) order, each a document's chunks
and their request seeds, cut into waves of about `wave_requests` requests (bounded memory, one resumable
step per wave).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import ConfigError
from pipeline.hashing import shuffle_keys
from pipeline.storage import arrow
from synth.chunking import Chunk, chunk_text
from synth.recipes import Recipe

TEMPLATE_COLUMNS = ("lang", "source", "url")  # document columns a recipe's template may use

Selection = dict[str, dict[int, np.ndarray]]  # recipe -> partition index -> selected row numbers


@dataclass
class Work:
    """One (source document, recipe): its chunks and the requests made from them."""

    recipe: Recipe
    parent_id: str
    row: dict[str, Any]
    chunks: list[Chunk]
    seeds: list[int] = field(default_factory=list)
    first: int = 0  # index of its first request in the wave


def request_seed(seed: int, parent_id: str, chunk: int, recipe: str) -> int:
    """A 31-bit sampling seed per request: the same output whatever the batch it lands in."""
    digest = hashlib.sha256(f"{seed}\0{parent_id}\0{chunk}\0{recipe}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _picked(table: pa.Table, recipes: list[Recipe], seed: int, capped: bool
            ) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One partition: recipe -> (selected rows, their hash(seed, id), their ids)."""
    ids = table.column("id")
    keys = shuffle_keys(ids, seed) if capped else np.zeros(table.num_rows, np.uint64)
    id_values = np.asarray(ids.to_pylist(), dtype=object) if capped else np.zeros(table.num_rows, object)
    out = {}
    for r in recipes:
        mask = r.select.mask(table) if r.select is not None else np.ones(table.num_rows, dtype=bool)
        rows = np.flatnonzero(mask)
        if len(rows):
            out[r.name] = (rows, keys[rows], id_values[rows])
    return out


def _capped(chunks: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]], cap: int | None) -> dict[int, np.ndarray]:
    """One recipe's picks across partitions, cut to the `cap` smallest hash(seed, id) (ties by id)."""
    if not chunks:
        return {}
    parts = np.concatenate([np.full(len(rows), p) for p, rows, _, _ in chunks])
    rows = np.concatenate([rows for _, rows, _, _ in chunks])
    if cap is not None and len(rows) > cap:
        keys = np.concatenate([k for _, _, k, _ in chunks])
        ids = np.concatenate([i for _, _, _, i in chunks])
        keep = np.zeros(len(rows), dtype=bool)
        keep[np.lexsort((ids, keys))[:cap]] = True
        parts, rows = parts[keep], rows[keep]
    return {int(p): np.sort(rows[parts == p]) for p in np.unique(parts)}


def select(inputs: Sequence[Path], recipes: list[Recipe], seed: int, cap: int | None) -> Selection:
    """recipe -> partition index -> selected row numbers (after the deterministic cap)."""
    cols = list(dict.fromkeys(["id", *(c for r in recipes if r.select for c in r.select.columns)]))
    picked: dict[str, list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = {r.name: [] for r in recipes}
    for part, path in enumerate(inputs):
        for name, (rows, keys, ids) in _picked(pq.read_table(arrow(path), columns=cols), recipes, seed,
                                               cap is not None).items():
            picked[name].append((part, rows, keys, ids))
    return {name: _capped(chunks, cap) for name, chunks in picked.items()}


def chunk_budgets(recipes: list[Recipe], tok: Any, stage: str) -> dict[str, int]:
    """Tokens left for the chunk in each recipe's input budget after the prompt around it.

    Recipes with the same ``max_input_tokens`` get the smallest of their budgets, so they cut a document
    into the same chunks and their prompts share each chunk as a prefix in vLLM's prefix cache (the
    templates put the document first); otherwise a few tokens of instruction length would move the chunk
    boundaries of every long document."""
    budgets = {}
    for r in recipes:
        overhead = tok.count([r.prompt(tok, text="")])[0]
        budget = r.spec.max_input_tokens - overhead
        if budget < max(1, r.spec.min_input_tokens):
            raise ConfigError([f"stages.{stage}.recipes.{r.name}.max_input_tokens: the prompt alone takes {overhead} "
                               f"of {r.spec.max_input_tokens} tokens, leaving less than "
                               f"min_input_tokens={r.spec.min_input_tokens} for the text"])
        budgets[r.name] = budget
    shared: dict[int, int] = {}
    for r in recipes:
        shared[r.spec.max_input_tokens] = min(shared.get(r.spec.max_input_tokens, budgets[r.name]), budgets[r.name])
    # a recipe whose min_input_tokens the shared budget cannot hold keeps its own
    return {r.name: shared[r.spec.max_input_tokens] if shared[r.spec.max_input_tokens] >= r.spec.min_input_tokens
            else budgets[r.name] for r in recipes}


def _works(recipe: Recipe, rows: list[dict[str, Any]], tok: Any, budget: int, seed: int) -> Iterator[Work]:
    for row in rows:
        chunks = chunk_text(row["text"] or "", budget, tok.count, recipe.spec.min_input_tokens)
        if recipe.spec.kind == "annotate":
            chunks = chunks[:1]  # a document is scored on its opening (FineWeb-Edu), once
        if chunks:
            pid = str(row["id"])
            yield Work(recipe, pid, row, chunks, [request_seed(seed, pid, c.index, recipe.name) for c in chunks])


def waves(inputs: Sequence[Path], recipes: list[Recipe], selection: Selection, tok: Any, budgets: dict[str, int],
          seed: int, wave_requests: int, inherit: Sequence[str]) -> Iterator[list[Work]]:
    """Work items in (partition, recipe, row) order, cut into waves of about ``wave_requests`` requests."""
    wave: list[Work] = []
    n_requests = 0
    for part, path in enumerate(inputs):
        wanted = {r.name: selection.get(r.name, {}).get(part) for r in recipes}
        if not any(v is not None and len(v) for v in wanted.values()):
            continue
        names = pq.read_schema(arrow(path)).names
        cols = list(dict.fromkeys(["id", "text", *(c for c in (*TEMPLATE_COLUMNS, *inherit) if c in names)]))
        table = pq.read_table(arrow(path), columns=cols)
        for r in recipes:
            rows = wanted[r.name]
            if rows is None or not len(rows):
                continue
            for work in _works(r, table.take(pa.array(rows)).to_pylist(), tok, budgets[r.name], seed):
                wave.append(work)
                n_requests += len(work.chunks)
                if n_requests >= wave_requests:
                    yield wave
                    wave, n_requests = [], 0
    if wave:
        yield wave
