"""`decontaminate`: drop (or mask) documents that share a normalized n-gram with an evaluation item.

The GPT-3 / Llama / OLMo overlap check: normalized word 13-grams (`filters/ngrams.py`), character
n-grams for Chinese and Japanese, whole-item matching for items shorter than `ngram` tokens.

Steps:

1. driver: every eval item is tokenized and hashed once per run; the (hash, eval set, item) rows are
   sorted by hash and written to `_work/eval_ngrams.parquet` (14 bytes per eval n-gram). No eval
   text is written anywhere, only hashes.
2. `map` over partitions: each worker loads the sorted hashes once (a process-level cache), hashes
   the windows of its documents and looks them up with `np.searchsorted`; it writes the partition's
   kept/removed split (masked text for `action: mask`) and a contamination table
   `_parts/<part>.contamination.parquet` of (id, eval set, item, matched n-grams), before its marker.
3. driver: `contamination.parquet` = the parts concatenated in partition order; manifest stats per
   eval set from the partition counters (documents matched) and that table (distinct items found).

Decisions depend on each document alone, so any partitioning, worker count or executor gives the
same kept/removed ids and bytes.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, field_validator, model_validator

from filters.code_tokens import strip_comments
from filters.ngrams import Membership, Tokens, ngram_keys_by_length, token_spans, tokenize
from pipeline.config import StageConfig, Strict, local_path
from pipeline.hashing import siphash64
from pipeline.io import sha256_file, write_parquet
from pipeline.schema import REASON
from pipeline.storage import arrow
from stages.base import GlobalStage, Part, PartitionOutput, PartitionSink, StageContext

EVAL_SCHEMA = pa.schema([("hash", pa.uint64()), ("set", pa.int16()), ("item", pa.int32())])
CONTAMINATION_SCHEMA = pa.schema([("id", pa.string()), ("eval_set", pa.string()), ("item", pa.int32()),
                                  ("ngrams", pa.int32())])


# code benchmarks' layouts: the fields an item's text is made of (its prompt, solution and tests)
CODE_LAYOUTS = {"humaneval": ["prompt", "canonical_solution", "test"], "mbpp": ["text", "code", "test_list"]}


class EvalSetConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: str
    format: Literal["jsonl", "parquet", "hf"] = "jsonl"
    fields: list[str] | None = Field(default=None, min_length=1)  # default: question, answer (or the layout's)
    split: str | None = None  # for an `hf` DatasetDict saved with save_to_disk
    # a code benchmark: `layout` names its fields; code items and code documents lose comments before matching
    layout: Literal["humaneval", "mbpp"] | None = None
    code: bool = False  # implied by `layout`

    @field_validator("path")
    @classmethod
    def _file_uri(cls, value: str) -> str:
        return local_path(value)

    @model_validator(mode="after")
    def _layout(self) -> EvalSetConfig:
        if self.fields is None:
            self.__dict__["fields"] = list(CODE_LAYOUTS[self.layout]) if self.layout else ["question", "answer"]
        if self.layout is not None:
            self.__dict__["code"] = True
        return self


class DecontaminateConfig(StageConfig):
    eval_sets: list[EvalSetConfig] = Field(min_length=1)
    ngram: int = Field(default=13, ge=1, le=64)  # words per n-gram (GPT-3, Llama 2, OLMo)
    cjk_ngram: int = Field(default=20, ge=1, le=128)  # chars per n-gram, Chinese/Japanese (docs/decontamination.md)
    cjk_ratio: float = Field(default=0.5, ge=0.0, le=1.0)  # share of CJK tokens that makes an item CJK
    min_item_tokens: int = Field(default=4, ge=1)  # shorter items ("yes", "42") are not matched at all
    action: Literal["remove", "mask"] = "remove"
    margin: int = Field(default=200, ge=0)  # mask: characters cut on each side of a match (GPT-3)
    min_chars: int = Field(default=200, ge=0)  # mask: fewer left -> removed as decontaminate:too_short
    # with a code eval set: documents of these sources, and every document with a `language` (code input),
    # lose their comments before matching, as the code items do
    code_sources: list[str] = []

    @field_validator("eval_sets")
    @classmethod
    def _unique(cls, value: list[EvalSetConfig]) -> list[EvalSetConfig]:
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError(f"eval set names repeat: {names}")
        return value


# ----------------------------------------------------------------------------------------------
# eval items -> sorted n-gram hashes (driver, once per run)


def _jsonl_rows(cfg: EvalSetConfig, path: Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"eval set {cfg.name}: {path}, line {line_no}: invalid JSON ({exc.msg})") from exc
    return rows


def _rows(cfg: EvalSetConfig, path: Path) -> list[dict[str, Any]]:
    if cfg.format == "jsonl":
        return _jsonl_rows(cfg, path)
    if cfg.format == "parquet":
        return pq.read_table(path).to_pylist()
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        ds = ds[cfg.split or next(iter(ds))]
    return ds.to_list()


def read_items(cfg: EvalSetConfig) -> list[str]:
    """Each item's text: its `fields` joined by a space (missing or null fields are skipped)."""
    path = Path(cfg.path)
    rows = _rows(cfg, path)
    fields = cfg.fields or []  # never None after validation (the layout's or question, answer)
    missing = [f for f in fields if rows and all(f not in r for r in rows)]
    if missing:
        raise ValueError(f"eval set {cfg.name}: {path} has no field {missing[0]!r} (fields: {fields})")
    return [" ".join(_field_text(r.get(f)) for f in fields if r.get(f) is not None) for r in rows]


def _field_text(value: Any) -> str:
    if isinstance(value, list):  # e.g. multiple-choice options
        return " ".join(_field_text(v) for v in value)
    return str(value)


def item_ngrams(tokens: Tokens, cfg: DecontaminateConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item index, n-gram hash) rows and each item's window length: `ngram`-word windows
    (`cjk_ngram` for CJK items), the whole item when shorter, nothing under `min_item_tokens`."""
    sizes = tokens.per_text()
    cjk_share = np.bincount(tokens.text, weights=tokens.cjk, minlength=tokens.n_texts)[: tokens.n_texts] / \
        np.maximum(sizes, 1)
    n_of = np.where(cjk_share >= cfg.cjk_ratio, cfg.cjk_ngram, cfg.ngram)
    n_of = np.where(sizes < n_of, sizes, n_of)
    items, hashes = [np.zeros(0, np.int64)], [np.zeros(0, np.uint64)]
    wanted = [int(n) for n in np.unique(n_of) if n >= cfg.min_item_tokens]
    for n, (pos, keys) in ngram_keys_by_length(tokens.hashes, tokens.text, wanted).items():
        item = tokens.text[pos]
        mine = n_of[item] == n
        items.append(item[mine])
        hashes.append(keys[mine])
    return np.concatenate(items), np.concatenate(hashes), n_of


def build_eval_table(cfg: DecontaminateConfig, chunk: int = 20_000) -> tuple[pa.Table, dict[str, Any]]:
    """Distinct (hash, set, item) rows sorted by hash; per set its items and distinct n-grams, and
    the window lengths the items use (documents are hashed at those lengths only). Items are
    tokenized `chunk` at a time, so memory follows the n-grams, not the eval text."""
    hashes, sets, items, stats, lengths = [], [], [], {}, set()
    for s, eval_set in enumerate(cfg.eval_sets):
        texts = read_items(eval_set)
        if eval_set.code:
            texts = strip_comments(pa.array(texts, pa.string())).to_pylist()
        set_keys, set_items = [], []
        for start in range(0, len(texts), chunk):
            item, keys, n_of = item_ngrams(tokenize(pa.array(texts[start:start + chunk], pa.string())), cfg)
            lengths |= {int(n) for n in np.unique(n_of[np.unique(item)])}
            set_keys.append(keys)
            set_items.append(item + start)
        keys = np.concatenate(set_keys) if set_keys else np.zeros(0, np.uint64)
        item = np.concatenate(set_items) if set_items else np.zeros(0, np.int64)
        stats[eval_set.name] = {"items": len(texts), "ngrams": int(len(np.unique(keys))),
                                "items_matchable": int(len(np.unique(item)))}
        hashes.append(keys)
        sets.append(np.full(len(keys), s, np.int16))
        items.append(item.astype(np.int32))
    h = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
    st = np.concatenate(sets) if sets else np.zeros(0, np.int16)
    it = np.concatenate(items) if items else np.zeros(0, np.int32)
    order = np.lexsort((it, st, h))
    h, st, it = h[order], st[order], it[order]
    first = np.ones(len(h), bool)  # drop repeats of a (hash, set, item): an n-gram twice in one item
    first[1:] = (h[1:] != h[:-1]) | (st[1:] != st[:-1]) | (it[1:] != it[:-1])
    table = pa.table({"hash": h[first], "set": st[first], "item": it[first]}, schema=EVAL_SCHEMA)
    return table, {"sets": stats, "lengths": sorted(lengths), "table_bytes": table.nbytes}


# ----------------------------------------------------------------------------------------------
# matching (workers)


@dataclass(frozen=True)
class Plan:
    eval_path: str
    eval_sha: str  # the cache key of the loaded hashes in a worker
    set_names: tuple[str, ...]
    ngram: int
    cjk_ngram: int
    lengths: tuple[int, ...]  # every window length an eval item uses
    action: str
    margin: int
    min_chars: int
    code_sources: tuple[str, ...] | None = None  # None: no code eval set, documents are matched as they are


def code_normalized(table: pa.Table, code_sources: tuple[str, ...] | None) -> pa.Array:
    """The texts to match: code documents (listed sources, or with a `language`) without comments."""
    texts = table.column("text").combine_chunks()
    if code_sources is None:
        return texts
    code = pc.fill_null(pc.is_in(table.column("source"), pa.array(code_sources, pa.string())), False)
    if "language" in table.column_names:
        code = pc.or_(code, pc.is_valid(table.column("language")))
    if not pc.any(code).as_py():
        return texts
    return pc.if_else(code, strip_comments(texts), texts)


_EVAL_CACHE: dict[str, tuple[Membership, np.ndarray, np.ndarray]] = {}


def load_eval(plan: Plan) -> tuple[Membership, np.ndarray, np.ndarray]:
    """(membership of the sorted hashes, set, item), once per worker process."""
    got = _EVAL_CACHE.get(plan.eval_sha)
    if got is None:
        t = pq.read_table(arrow(plan.eval_path))
        got = (Membership(t.column("hash").to_numpy()), t.column("set").to_numpy(), t.column("item").to_numpy())
        _EVAL_CACHE.clear()
        _EVAL_CACHE[plan.eval_sha] = got
    return got


def match(tokens: Tokens, lengths: tuple[int, ...], eval_keys: Membership, eval_set: np.ndarray,
          eval_item: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every (doc, window start, window length, set, item) where a document window equals an eval n-gram."""
    docs, starts, ns, sets, items = [], [], [], [], []
    for n, (pos, keys) in ngram_keys_by_length(tokens.hashes, tokens.text, lengths).items():
        hit, lo, hi = eval_keys.lookup(keys)
        if not len(hit):
            continue
        rep = hi - lo  # one window can be an n-gram of several items
        entry = np.repeat(lo, rep) + (np.arange(rep.sum()) - np.repeat(np.cumsum(rep) - rep, rep))
        p = np.repeat(pos[hit], rep)
        docs.append(tokens.text[p])
        starts.append(p)
        ns.append(np.full(len(p), n, np.int64))
        sets.append(eval_set[entry].astype(np.int64))
        items.append(eval_item[entry].astype(np.int64))
    if not docs:
        z = np.zeros(0, np.int64)
        return z, z, z, z, z
    return tuple(np.concatenate(x) for x in (docs, starts, ns, sets, items))  # type: ignore[return-value]


def contamination_rows(ids: pa.Array, docs: np.ndarray, sets: np.ndarray, items: np.ndarray,
                       names: tuple[str, ...]) -> pa.Table:
    """One row per (document, eval set, item) with its count of matched windows, in document order."""
    if not len(docs):
        return CONTAMINATION_SCHEMA.empty_table()
    key = np.stack([docs, sets, items], axis=1)
    uniq, counts = np.unique(key, axis=0, return_counts=True)  # sorted by doc, set, item
    return pa.table({"id": ids.take(pa.array(uniq[:, 0])), "eval_set": pa.array([names[s] for s in uniq[:, 1]]),
                     "item": pa.array(uniq[:, 2].astype(np.int32)), "ngrams": pa.array(counts.astype(np.int32))},
                    schema=CONTAMINATION_SCHEMA)


def mask_text(text: str, plan: Plan, eval_keys: Membership) -> tuple[str, int]:
    """`text` with every matching window (recomputed on exact token offsets) cut out with `margin`
    characters each side; pieces joined by a newline. Returns (text, characters cut)."""
    tokens, spans = token_spans(text)
    if not tokens:
        return text, 0
    hashes = siphash64(tokens)
    where = np.zeros(len(tokens), np.int64)
    cuts = []
    for n, (pos, keys) in ngram_keys_by_length(hashes, where, plan.lengths).items():
        for p in pos[eval_keys.lookup(keys)[0]]:
            cuts.append((max(0, spans[p][0] - plan.margin), min(len(text), spans[p + n - 1][1] + plan.margin)))
    if not cuts:
        return text, 0
    cuts.sort()
    merged = [list(cuts[0])]
    for a, b in cuts[1:]:
        if a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    pieces, last = [], 0
    for a, b in merged:
        pieces.append(text[last:a])
        last = b
    pieces.append(text[last:])
    kept = [p.strip() for p in pieces if p.strip()]
    return "\n".join(kept), len(text) - sum(len(p) for p in kept)


CONTAMINATION_PART = "contamination.parquet"  # a partition's contamination rows, written before its marker


def decontaminate_partition(plan: Plan, sink: PartitionSink, part: Part) -> PartitionOutput:
    table = pq.read_table(arrow(part.path))
    eval_keys, eval_set, eval_item = load_eval(plan)
    tokens = tokenize(code_normalized(table, plan.code_sources))
    docs, _, _, sets, items = match(tokens, plan.lengths, eval_keys, eval_set, eval_item)
    ids = table.column("id").combine_chunks()
    n = table.num_rows
    reasons: list[str | None] = [None] * n
    counters: dict[str, int] = {f"_matched_docs.{s}": 0 for s in plan.set_names}  # private: into eval_sets
    first_set = np.full(n, len(plan.set_names), np.int64)
    np.minimum.at(first_set, docs, sets)
    for s, name_s in enumerate(plan.set_names):
        counters[f"_matched_docs.{name_s}"] = int(np.count_nonzero(np.isin(np.arange(n), docs[sets == s])))
    hit_docs = np.flatnonzero(first_set < len(plan.set_names))
    if plan.action == "remove":
        for d in hit_docs:
            reasons[d] = f"decontaminate:{plan.set_names[first_set[d]]}"
    else:
        texts = table.column("text").to_pylist()
        masked_docs = masked_chars = 0
        for d in hit_docs:
            new, cut = mask_text(texts[d], plan, eval_keys)
            if not cut:
                continue
            masked_docs += 1
            masked_chars += cut
            if len(new) < plan.min_chars:
                reasons[d] = "decontaminate:too_short"
            else:
                texts[d] = new
        table = table.set_column(table.column_names.index("text"), "text", pa.array(texts, pa.string()))
        counters.update(masked_docs=masked_docs, masked_chars=masked_chars)
    rows = contamination_rows(ids, docs, sets, items, plan.set_names)
    write_parquet(rows, sink.side_file(part.name, CONTAMINATION_PART))
    table = table.append_column(REASON, pa.array(reasons, pa.string()))
    return PartitionOutput(table, counters)


# ----------------------------------------------------------------------------------------------


class Stage(GlobalStage):
    Config = DecontaminateConfig
    config: DecontaminateConfig

    def fingerprint(self) -> dict[str, Any]:
        """The eval files' content decides the output: a changed eval set reruns the stage."""
        out = {}
        for s in self.config.eval_sets:
            p = Path(s.path)
            files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
            out[s.name] = [sha256_file(f) for f in files if f.exists()]
        return {"eval_sets": out}

    def run(self, ctx: StageContext) -> dict[str, Any]:
        cfg = self.config
        eval_path = ctx.stage_dir / "_work" / "eval_ngrams.parquet"

        def build() -> dict[str, Any]:
            table, stats = build_eval_table(cfg)
            write_parquet(table, eval_path)
            return stats

        stats, _ = ctx.step("_work/eval_stats", build)
        if ctx.todo:
            plan = Plan(str(eval_path), sha256_file(eval_path), tuple(s.name for s in cfg.eval_sets), cfg.ngram,
                        cfg.cjk_ngram, tuple(stats["lengths"]), cfg.action, cfg.margin, cfg.min_chars,
                        tuple(cfg.code_sources) if any(s.code for s in cfg.eval_sets) else None)
            ctx.write_partitions(functools.partial(decontaminate_partition, plan, ctx.sink))
        counts = ctx.counts()
        final = ctx.stage_dir / "contamination.parquet"
        if not final.exists():
            parts = [pq.read_table(arrow(ctx.sink.side_file(p.name, CONTAMINATION_PART))) for p in ctx.parts]
            write_parquet(pa.concat_tables(parts) if parts else CONTAMINATION_SCHEMA.empty_table(), final)
        found = pq.read_table(arrow(final), columns=["eval_set", "item"])
        per_set: dict[str, Any] = {}
        for s in cfg.eval_sets:
            items = found.filter(pc.equal(found.column("eval_set"), s.name)).column("item")
            per_set[s.name] = {**stats.get("sets", {}).get(s.name, {}),
                               "docs_matched": int(counts.get(f"_matched_docs.{s.name}", 0)),
                               "items_found": len(pc.unique(items))}
        return {"eval_sets": per_set, "eval_table_bytes": stats.get("table_bytes")}
