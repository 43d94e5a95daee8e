"""`near_dedup`: MinHash-LSH near-duplicate removal with exact Jaccard verification.

Steps, each through the executor's disk-backed `group_by_key`, so memory is bounded by one
partition or one bucket, never by the corpus:

1. signatures (map over partitions): normalize, shingle, MinHash, band keys. Side outputs per
   partition: a small `meta` file (id, length, survivor-rule columns) and, with `verify`, each
   document's shingle-hash set written straight into node buckets (`sets/bNNNNN/`).
   Band rows (key, node, order) are grouped by band key; each bucket yields candidate edges,
   every member linked to its `window` predecessors (so degrees stay bounded).
2. verification (`verify: true`): two bucket joins on integer node ids: edges keyed by `u` pick
   up u's set, then keyed by `v` meet v's set; the exact Jaccard of each distinct pair is computed
   in one vectorized sort per bucket, and only pairs >= threshold are kept.
3. components: union-find over dense int ids (global row numbers), a few bytes per document.
4. survivors: members of each component are grouped by component; the best by the survivor rule
   (default quality_score desc, length desc, id asc) stays, the rest get `near_dup:of=<id>`.
5. apply per partition: columns `dup_cluster` (survivor id; null for singletons) and `dup_of`.

Every ordering decision uses document content or ids (band keys, a hash of the id, the survivor
rule), never partition numbers, so results are identical for any partitioning and worker count.

A persistent `index` directory keeps band keys and signatures of kept documents as append-only
generations; later runs join them as extra nodes that always survive, so new documents that match
earlier ones are removed as `near_dup:of=<earlier id>`. Index matches are verified against the
stored signatures (estimated Jaccard), since the earlier text is not kept.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, field_validator, model_validator

from filters.code_language import code_documents, code_languages
from filters.dup_clusters import DECISION_SCHEMA, PAIR_SCHEMA, survivor_pairs, verdicts
from filters.lsh_graph import unique_edges, window_edges
from filters.minhash import (
    MinHashParams,
    band_keys,
    common_hash_range,
    containment_from_sizes,
    estimated_intersection,
    estimated_jaccard,
    intersection_sizes,
    jaccard_from_sizes,
    lsh_choices,
    minhash_signatures,
    mix64,
    optimal_bands,
    shingle_sets,
)
from filters.survivor_rule import Policy, RuleItem, needed_columns, parse_policies, rank_column, rank_type
from pipeline import storage
from pipeline.config import StageConfig
from pipeline.hashing import seed_key, siphash64
from pipeline.index_store import IndexStore, run_key
from pipeline.io import write_parquet
from pipeline.paths import stage_write_path
from pipeline.primitives import Progress, aggregate
from pipeline.schema import REASON
from pipeline.storage import arrow
from stages.base import Column, GlobalStage, Part, PartitionOutput, StageContext


class NearDedupConfig(StageConfig):
    write_paths: ClassVar[tuple[str, ...]] = ("index",)

    threshold: float = Field(default=0.8, gt=0.0, lt=1.0)  # Jaccard similarity that counts as a duplicate
    num_perm: int | None = Field(default=None, ge=1, le=4096)  # default 112 (= 14 bands × 8 rows)
    bands: int | None = Field(default=None, ge=1)
    rows: int | None = Field(default=None, ge=1)
    fp_weight: float = Field(default=0.5, ge=0.0)  # weights when bands/rows are derived from threshold
    fn_weight: float = Field(default=0.5, ge=0.0)
    # auto: identifier/operator tokens for source code (a `language` that is a programming language, or a
    # `path` that names one, or a source in `code_sources`), characters for Han/kana-dominant documents,
    # words otherwise; code: identifier/operator tokens for every document, whitespace ignored
    shingle: Literal["word", "char", "auto", "code"] = "auto"
    code_sources: list[str] = []  # with shingle: auto, sources whose documents all get code shingles
    ngram: int = Field(default=5, ge=1, le=64)  # words per shingle
    char_ngram: int = Field(default=5, ge=1, le=64)  # characters per shingle for CJK text
    cjk_ratio: float = Field(default=0.3, ge=0.0, le=1.0)  # share of Han/kana letters that makes a doc CJK
    verify: bool = True  # exact Jaccard of candidate pairs (drops LSH false positives)
    # how a member is checked against its cluster's survivor (and candidate pairs, with verify):
    # jaccard of the shingle sets, or containment (the member's share of shingles found in the
    # survivor: a document that another one repeats and extends, an `append`-style duplicate)
    similarity: Literal["jaccard", "containment"] = "jaccard"
    # rounds of (components, survivor, members verified against it) over the members still open;
    # members open after the last round are kept
    max_rounds: int = Field(default=20, ge=1, le=1000)
    # mega-documents: MinHash and verification over the `max_shingles` smallest shingle hashes (a
    # consistent sample) of a text with more distinct shingles; None = whole sets
    max_shingles: int | None = Field(default=100_000, ge=1)
    # which copy survives (filters/survivor_rule.py): quality, length, id, newest,
    # {source_priority: [...]}, or '<column> asc|desc'; ties end on the smallest id
    survivor: list[RuleItem] = Field(default_factory=lambda: list[RuleItem](["quality", "length", "id"]), min_length=1)
    date_field: str = "date"  # for `newest`: a column, else meta.fields.<name> or meta.<name>
    window: int = Field(default=4, ge=1, le=64)  # edges per member of an LSH bucket (bounds degrees)
    index: str | None = None  # directory (relative to OUT) of band keys of documents kept by earlier runs

    @field_validator("survivor")
    @classmethod
    def _rules(cls, value: list[RuleItem]) -> list[RuleItem]:
        parse_policies(value)
        return value

    @model_validator(mode="after")
    def _lsh(self) -> NearDedupConfig:
        if self.bands is not None and self.rows is not None:
            if self.num_perm is not None and self.bands * self.rows > self.num_perm:
                raise ValueError(f"bands × rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        elif (self.bands or self.rows or 0) > (self.num_perm or 112):
            raise ValueError("bands/rows exceed num_perm")
        return self

    def lsh(self) -> tuple[int, int, int]:
        """(num_perm, bands, rows): explicit values, else 112 = 14 × 8, else derived from threshold."""
        if self.bands is not None and self.rows is not None:
            return self.num_perm or self.bands * self.rows, self.bands, self.rows
        if self.num_perm is None and self.bands is None and self.rows is None:
            return 112, 14, 8
        perms = self.num_perm or 112
        if self.bands is not None:
            return perms, self.bands, _best_other(self.threshold, perms, self.bands, self, fixed="bands")
        if self.rows is not None:
            return perms, _best_other(self.threshold, perms, self.rows, self, fixed="rows"), self.rows
        b, r = optimal_bands(self.threshold, perms, self.fp_weight, self.fn_weight)
        return perms, b, r

    def policies(self) -> list[Policy]:
        return parse_policies(self.survivor)


def _best_other(threshold: float, perms: int, fixed_value: int, cfg: NearDedupConfig, fixed: str) -> int:
    """The free one of bands/rows that minimizes the weighted error when the other is fixed."""
    choices = lsh_choices(threshold, perms, cfg.fp_weight, cfg.fn_weight)
    for _, b, r, _, _ in choices:
        if (b if fixed == "bands" else r) == fixed_value:
            return r if fixed == "bands" else b
    raise ValueError(f"{fixed} = {fixed_value} does not fit in {perms} permutations")


# ----------------------------------------------------------------------------------------------
# Everything a worker needs, picklable.


@dataclass(frozen=True)
class Plan:
    work: Path
    params: MinHashParams
    shingle: str
    ngram: int
    char_ngram: int
    cjk_ratio: float
    verify: bool
    threshold: float
    window: int
    n_inputs: int  # input partitions; group-by parts >= n_inputs are index files
    base: tuple[int, ...]  # first node id of each input partition
    n_docs: int  # nodes >= n_docs are index documents
    index_base: tuple[int, ...]  # first node id of each index file
    set_buckets: int
    rank: tuple[tuple[str, bool, str], ...]  # (column, descending, arrow type) of the survivor rule
    keep_index_rows: bool  # write band keys + signatures of kept documents for the index
    labels: tuple[str, ...] = ()  # components' (node, root) files, once known
    similarity: str = "jaccard"
    max_shingles: int | None = None
    policies: tuple[Policy, ...] = ()  # the survivor rule's policies, in `rank` order
    date_field: str = "date"
    code_sources: tuple[str, ...] = ()

    @property
    def set_columns(self) -> list[str]:
        """What the set buckets hold per document: the shingle set (exact checks), the signature
        (estimates against earlier runs' documents, or every check without `verify`), its size."""
        cols = ["set"] if self.verify else []
        if self.keep_index_rows or not self.verify:
            cols.append("sig")
        return [*cols, "size"]

    def set_dir(self, bucket: int) -> Path:
        return self.work / "sets" / f"b{bucket:05d}"


def _buckets(nodes: np.ndarray, n_buckets: int) -> np.ndarray:
    keys = mix64(nodes.astype(np.uint64))
    return ((keys >> np.uint64(32)) * np.uint64(n_buckets)) >> np.uint64(32)


def _fsb(arr: np.ndarray) -> pa.Array:
    """(n, k) numpy array -> fixed-size binary column (compact storage for keys and signatures)."""
    arr = np.ascontiguousarray(arr)
    width = arr.shape[1] * arr.itemsize
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(arr), [None, pa.py_buffer(arr.tobytes())])


def _from_fsb(col: pa.Array | pa.ChunkedArray, dtype: type, k: int) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    width = col.type.byte_width
    if len(col) == 0:
        return np.zeros((0, k), dtype=dtype)
    raw = np.frombuffer(col.buffers()[1], dtype=np.uint8)[col.offset * width:(col.offset + len(col)) * width]
    return raw.view(dtype).reshape(len(col), k)


def _csr(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A list<uint32> column as (values, offsets)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks else pa.array([], pa.list_(pa.uint32()))
    lengths = pc.list_value_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = pc.list_flatten(col).to_numpy(zero_copy_only=False).astype(np.uint32, copy=False)
    return values, offsets


def _write_work(table: pa.Table, path: Path) -> None:
    """Scratch files under `_work`: atomic rename (a killed run never sees half a file) but no fsync
    and no compression (hash sets are random bytes; zstd only burns CPU on them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not storage.is_local(path):  # an object store shows an upload whole or not at all
        pq.write_table(table, arrow(path), compression="none", row_group_size=1 << 16)
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="none", row_group_size=1 << 16)
    os.replace(tmp, path)


def _list_column(values: np.ndarray, offsets: np.ndarray) -> pa.Array:
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values, pa.uint32()))


# ----------------------------------------------------------------------------------------------
# 1. signatures -> band rows; band buckets -> candidate edges

_BAND_SCHEMA = pa.schema([("key", pa.uint64()), ("node", pa.int64()), ("order", pa.uint64())])
_EDGE_SCHEMA = pa.schema([("u", pa.int64()), ("v", pa.int64())])


def _band_rows(keys: np.ndarray, nodes: np.ndarray, order: np.ndarray) -> pa.Table:
    bands = keys.shape[1]
    return pa.table({"key": keys.ravel(), "node": np.repeat(nodes, bands), "order": np.repeat(order, bands)},
                    schema=_BAND_SCHEMA)


def _code_documents(plan: Plan, table: pa.Table) -> np.ndarray | None:
    """`shingle: auto`: which documents get code shingles (filters/code_language.code_documents)."""
    if plan.shingle != "auto":
        return None

    def column(name: str) -> list[Any]:
        return table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows

    return code_documents(column("language"), column("path"), column("source"), list(plan.code_sources))


def _signature_rows(plan: Plan, path: Path, part: int) -> pa.Table:
    if part >= plan.n_inputs:
        return _index_rows(plan, path, part - plan.n_inputs)
    schema = pq.read_schema(arrow(path))
    extra = [c for c in needed_columns(list(plan.policies), schema, plan.date_field) if c not in ("id", "text")]
    weight_col = ["dup_count"] if "dup_count" in schema.names else []
    code_cols = [c for c in ("language", "path", "source") if c in schema.names and c not in extra] \
        if plan.shingle == "auto" else []
    table = pq.read_table(arrow(path), columns=["id", "text", *extra, *weight_col, *code_cols])
    ids = table.column("id").combine_chunks()
    sets = shingle_sets(table.column("text"), plan.params.seed, plan.shingle, plan.ngram,  # type: ignore[arg-type]
                        plan.char_ngram, plan.cjk_ratio, plan.max_shingles, _code_documents(plan, table))
    sig = minhash_signatures(sets, plan.params)
    keys = band_keys(sig, plan.params)
    nodes = plan.base[part] + np.arange(table.num_rows, dtype=np.int64)
    order = siphash64(ids, seed_key(plan.params.seed, "order"))
    sizes = sets.sizes
    nonempty = sizes > 0

    meta: dict[str, Any] = {"id": ids, "length": pc.utf8_length(table.column("text")).cast(pa.int64()),
                            "shingles": pa.array(sizes), "cjk": pa.array(sets.cjk),
                            "weight": _weights(table)}
    for policy, (col, _, typ) in zip(plan.policies, plan.rank, strict=True):
        if col not in ("length", "id"):
            meta[f"rank_{col}"] = rank_column(policy, table, typ, plan.date_field)
    if plan.keep_index_rows:
        meta["bands"] = _fsb(keys)
        meta["sig"] = _fsb(sig)
    _write_work(pa.table(meta), plan.work / "meta" / f"p{part:06d}.parquet")

    idx = np.flatnonzero(nonempty)
    buckets = _buckets(nodes[idx], plan.set_buckets)
    cols: dict[str, Any] = {"node": pa.array(nodes)}
    for c in plan.set_columns:
        cols[c] = {"set": lambda: _list_column(sets.values, sets.offsets), "sig": lambda: _fsb(sig),
                   "size": lambda: pa.array(sizes.astype(np.int64))}[c]()
    full = pa.table(cols)
    for b in np.unique(buckets):
        chosen = idx[buckets == b]
        _write_work(full.take(pa.array(chosen)), plan.set_dir(int(b)) / f"p{part:06d}.parquet")
    return _band_rows(keys[nonempty], nodes[nonempty], order[nonempty])


def _weights(table: pa.Table) -> pa.Array:
    """Copies each document already stands for (`dup_count` of an earlier dedup stage, else 1)."""
    if "dup_count" not in table.column_names:
        return pa.array(np.ones(table.num_rows, np.int64))
    return pc.fill_null(table.column("dup_count").cast(pa.int64()), 1).combine_chunks()


def _index_rows(plan: Plan, path: Path, j: int) -> pa.Table:
    """Band rows of one index file (documents kept by earlier runs); signatures go to set buckets."""
    p = plan.params
    table = pq.read_table(arrow(path), columns=["id", "bands", "sig"])
    keys = _from_fsb(table.column("bands"), np.uint64, p.bands)
    nodes = plan.index_base[j] + np.arange(table.num_rows, dtype=np.int64)
    order = siphash64(table.column("id").combine_chunks(), seed_key(p.seed, "order"))
    if table.num_rows:
        buckets = _buckets(nodes, plan.set_buckets)
        sigs = pa.table({"node": nodes, "sig": table.column("sig")})
        for b in np.unique(buckets):
            _write_work(sigs.filter(pa.array(buckets == b)), plan.set_dir(int(b)) / f"x{j:06d}.parquet")
    return _band_rows(keys, nodes, order)


def _band_edges(plan: Plan, table: pa.Table) -> pa.Table:
    """One band bucket -> distinct candidate edges among documents sharing a band key."""
    if table.num_rows < 2:
        return _EDGE_SCHEMA.empty_table()
    keys = table.column("key").to_numpy()
    order = table.column("order").to_numpy()
    nodes = table.column("node").to_numpy()
    perm = np.lexsort((nodes, order, keys))
    u, v = window_edges(keys[perm], nodes[perm], plan.window)
    keep = u < plan.n_docs  # an edge between two index documents changes nothing
    u, v = unique_edges(u[keep], v[keep])
    return pa.table({"u": u, "v": v}, schema=_EDGE_SCHEMA)


# ----------------------------------------------------------------------------------------------
# 2. verification: edges meet u's set, then v's set


def _edges_by_u(path: Path, part: int) -> pa.Table:
    t = pq.read_table(arrow(path))
    u = t.column("u").to_numpy()
    return pa.table({"key": mix64(u.astype(np.uint64)), "u": u, "v": t.column("v").to_numpy()})


def _load_sets(plan: Plan, nodes: np.ndarray, prefix: str, columns: list[str]) -> pa.Table:
    """Rows of the set buckets holding `nodes`, sorted by node (only the needed nodes kept)."""
    tables = []
    for b in np.unique(_buckets(nodes, plan.set_buckets)):
        for f in sorted(plan.set_dir(int(b)).glob(f"{prefix}*.parquet")):
            t = pq.read_table(arrow(f), columns=["node", *columns])
            tables.append(t.filter(pc.is_in(t.column("node"), pa.array(nodes))))
    if not tables:
        return pa.table({"node": pa.array([], pa.int64())})
    t = pa.concat_tables(tables)
    return t.sort_by("node")


def _lookup(table: pa.Table, nodes: np.ndarray) -> np.ndarray:
    have = table.column("node").to_numpy()
    pos = np.searchsorted(have, nodes)
    if len(have) == 0 or (pos >= len(have)).any() or (have[np.minimum(pos, len(have) - 1)] != nodes).any():
        raise RuntimeError("near_dedup: a candidate's shingle set is missing from the work directory")
    return pos


def _set_fields(plan: Plan) -> list[tuple[str, pa.DataType]]:
    types = {"set": pa.list_(pa.uint32()), "sig": pa.binary(4 * plan.params.num_perm), "size": pa.int64()}
    return [(c, types[c]) for c in plan.set_columns]


def _attach_u(plan: Plan, table: pa.Table) -> pa.Table:
    cols = plan.set_columns
    if table.num_rows == 0:
        return pa.schema([("key", pa.uint64()), ("u", pa.int64()), ("v", pa.int64()), *_set_fields(plan)]).empty_table()
    u, v = unique_edges(table.column("u").to_numpy(), table.column("v").to_numpy())
    sets = _load_sets(plan, np.unique(u), "p", cols)
    pos = pa.array(_lookup(sets, u))
    out = {"key": mix64(v.astype(np.uint64)), "u": u, "v": v}
    for c in cols:
        out[c] = sets.column(c).take(pos)
    return pa.table(out)


_VERIFIED_SCHEMA = pa.schema([("u", pa.int64()), ("v", pa.int64()), ("jaccard", pa.float32()),
                              ("keep", pa.bool_())])


def _verify(plan: Plan, table: pa.Table) -> pa.Table:
    """Exact similarity (estimated from signatures for index documents) of every candidate pair."""
    if table.num_rows == 0:
        return _VERIFIED_SCHEMA.empty_table()
    u, v = table.column("u").to_numpy(), table.column("v").to_numpy()
    sim = _similarity(plan, table, v, directed=False)
    return pa.table({"u": u, "v": v, "jaccard": sim.astype(np.float32), "keep": sim >= plan.threshold},
                    schema=_VERIFIED_SCHEMA)


def _measure(plan: Plan, inter: np.ndarray, a_len: np.ndarray, b_len: np.ndarray, directed: bool) -> np.ndarray:
    """Jaccard, or containment: of a in b (directed: a member in its survivor), else of the smaller
    set in the larger (a candidate pair, either of which may be the survivor later)."""
    if plan.similarity == "jaccard":
        return jaccard_from_sizes(inter, a_len, b_len)
    return containment_from_sizes(inter, a_len if directed else np.minimum(a_len, b_len))


def _similarity(plan: Plan, a: pa.Table, v: np.ndarray, directed: bool) -> np.ndarray:
    """Similarity of each row's document (its `set_columns` in `a`) with node `v`: exact over the
    shingle sets when both are stored (`verify`), else estimated from the MinHash signatures (for a
    document of an earlier run only its signature is kept; its size is not, so containment falls
    back to the Jaccard estimate there, which never exceeds it: a miss, never a wrong removal)."""
    sim = np.zeros(len(v), dtype=np.float64)
    new = v < plan.n_docs
    exact = new if plan.verify else np.zeros(len(v), bool)
    if exact.any():
        sets = _load_sets(plan, np.unique(v[exact]), "p", ["set", "size"])
        pos = pa.array(_lookup(sets, v[exact]))
        a_vals, a_off = _csr(a.column("set").filter(pa.array(exact)))
        b_vals, b_off = _csr(sets.column("set").take(pos))
        if plan.max_shingles is not None:
            a_vals, a_off, b_vals, b_off = common_hash_range(a_vals, a_off, b_vals, b_off, plan.max_shingles)
        inter = intersection_sizes(a_vals, a_off, b_vals, b_off)
        sim[exact] = _measure(plan, inter, np.diff(a_off), np.diff(b_off), directed)
    k = plan.params.num_perm
    for mask, prefix in ((new & ~exact, "p"), (~new, "x")):
        if not mask.any():
            continue
        cols = ["sig", "size"] if prefix == "p" else ["sig"]
        sigs = _load_sets(plan, np.unique(v[mask]), prefix, cols)
        pos = pa.array(_lookup(sigs, v[mask]))
        sig_a = _from_fsb(a.column("sig").filter(pa.array(mask)), np.uint32, k)
        jac = estimated_jaccard(sig_a, _from_fsb(sigs.column("sig").take(pos), np.uint32, k))
        if prefix == "p" and plan.similarity == "containment":
            a_len = a.column("size").filter(pa.array(mask)).to_numpy().astype(np.float64)
            b_len = sigs.column("size").take(pos).to_numpy().astype(np.float64)
            jac = _measure(plan, estimated_intersection(jac, a_len, b_len), a_len, b_len, directed)
        sim[mask] = jac
    return sim


# ----------------------------------------------------------------------------------------------
# 4. survivors per component


def _cluster_schema(plan: Plan) -> pa.Schema:
    fields = [("key", pa.uint64()), ("root", pa.int64()), ("node", pa.int64()), ("part", pa.int32()),
              ("row", pa.int64()), ("id", pa.string()), ("is_index", pa.bool_()), ("weight", pa.int64())]
    fields += [(f"rank_{c}", pa.type_for_alias(t)) for c, _, t in plan.rank if c != "id"]
    return pa.schema(fields)


def _labels_in(plan: Plan, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """(node, root) of the clustered nodes in [lo, hi), sorted by node, from the components' label files."""
    nodes, roots = [], []
    for f in plan.labels:
        t = pq.read_table(arrow(f), filters=[("node", ">=", lo), ("node", "<", hi)], columns=["node", "root"])
        nodes.append(t.column("node").to_numpy())
        roots.append(t.column("root").to_numpy())
    node = np.concatenate(nodes).astype(np.int64) if nodes else np.zeros(0, np.int64)
    root = np.concatenate(roots).astype(np.int64) if roots else np.zeros(0, np.int64)
    order = np.argsort(node, kind="stable")
    return node[order], root[order]


def _edge_counts(task: tuple[str, bool]) -> tuple[int, int]:
    """(candidate pairs, verified pairs) of one edge file."""
    path, verify = task
    t = pq.read_table(arrow(path), columns=["keep"] if verify else ["u"])
    return t.num_rows, (int(pc.sum(t.column("keep")).as_py() or 0) if verify else t.num_rows)


def _label_counts(path: str) -> tuple[int, int]:
    """(clustered nodes, components) of one label file: a component is counted at its root."""
    t = pq.read_table(arrow(path), columns=["node", "root"])
    return t.num_rows, int(pc.sum(pc.equal(t.column("node"), t.column("root"))).as_py() or 0)


def _add_pairs(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]


def _cluster_rows(plan: Plan, path: Path, part: int) -> pa.Table:
    """Members of non-singleton components, with what the survivor rule needs."""
    schema = _cluster_schema(plan)
    if part >= plan.n_inputs:
        j = part - plan.n_inputs
        ids = pq.read_table(arrow(path), columns=["id"]).column("id")
        start = plan.index_base[j]
        nodes, root = _labels_in(plan, start, start + len(ids))
        sel = nodes - start
        cols: dict[str, Any] = {"id": ids.take(pa.array(sel)), "is_index": pa.array(np.ones(len(sel), bool)),
                                "weight": pa.array(np.ones(len(sel), np.int64))}
        for f in schema:
            if f.name.startswith("rank_"):
                cols[f.name] = pa.nulls(len(sel), f.type)
        cols["part"] = pa.array(np.full(len(sel), -1, np.int32))
        cols["row"] = pa.array(sel.astype(np.int64))
    else:
        meta = pq.read_table(arrow(plan.work / "meta" / f"p{part:06d}.parquet"))
        start = plan.base[part]
        nodes, root = _labels_in(plan, start, start + meta.num_rows)
        sel = nodes - start
        meta = meta.take(pa.array(sel))
        cols = {"id": meta.column("id"), "is_index": pa.array(np.zeros(len(sel), bool)),
                "weight": meta.column("weight")}
        for f in schema:
            if f.name.startswith("rank_"):
                cols[f.name] = meta.column("length" if f.name == "rank_length" else f.name)
        cols["part"] = pa.array(np.full(len(sel), part, np.int32))
        cols["row"] = pa.array(sel.astype(np.int64))
    cols["node"] = pa.array(nodes)
    cols["root"] = pa.array(root)
    cols["key"] = pa.array(mix64(root.astype(np.uint64)))
    return pa.table({f.name: cols[f.name] for f in schema}, schema=schema)


def _pairs(plan: Plan, table: pa.Table) -> pa.Table:
    """Whole components -> (member, survivor) pairs, keyed by member (to meet its shingle set)."""
    pairs = survivor_pairs(table, plan.rank)
    return pairs.add_column(0, "key", pa.array(mix64(pairs.column("u").to_numpy().astype(np.uint64))))


def _attach_member(plan: Plan, table: pa.Table) -> pa.Table:
    """Pairs of one member bucket get the member's set (signature, size); keyed by survivor next.
    Members that cannot be removed (documents of earlier runs) need none."""
    fields = [*PAIR_SCHEMA, *(pa.field(n, t) for n, t in _set_fields(plan))]
    if table.num_rows == 0:
        return pa.schema([("key", pa.uint64()), *fields]).empty_table()
    pairs = table.select(PAIR_SCHEMA.names)
    u = pairs.column("u").to_numpy()
    need = pairs.column("removable").to_numpy(zero_copy_only=False).astype(bool)
    out = {"key": pa.array(mix64(pairs.column("v").to_numpy().astype(np.uint64)))}
    out.update({n: pairs.column(n) for n in PAIR_SCHEMA.names})
    pos: list[int | None] = [None] * len(u)
    sets = _load_sets(plan, np.unique(u[need]), "p", plan.set_columns) if need.any() else None
    if sets is not None:
        for i, j in zip(np.flatnonzero(need), _lookup(sets, u[need]), strict=True):
            pos[i] = int(j)
    take = pa.array(pos, pa.int64())
    for name, typ in _set_fields(plan):
        out[name] = sets.column(name).take(take) if sets is not None else pa.nulls(len(u), typ)
    return pa.table(out, schema=pa.schema([("key", pa.uint64()), *fields]))


def _judge(plan: Plan, table: pa.Table) -> pa.Table:
    """All pairs of a survivor together: each removable member's similarity with it, then the
    decisions (`filters.dup_clusters.verdicts`)."""
    if table.num_rows == 0:
        return DECISION_SCHEMA.empty_table()
    removable = table.column("removable").to_numpy(zero_copy_only=False).astype(bool)
    sim = np.zeros(table.num_rows, dtype=np.float64)
    if removable.any():
        sub = table.filter(pa.array(removable))
        sim[removable] = _similarity(plan, sub, sub.column("v").to_numpy(), directed=True)
    return verdicts(table.select(PAIR_SCHEMA.names), sim, plan.threshold, plan.base, plan.n_docs)


def _open_rows(end: str, n_edge_files: int, path: Path, i: int) -> pa.Table:
    """Rows of the join that keeps edges between open members: edges keyed by one `end`, and the
    open members of the last round's decisions (u = v = node) keyed by themselves."""
    if i < n_edge_files:
        t = pq.read_table(arrow(path))
        if "keep" in t.column_names:
            t = t.filter(t.column("keep"))
        u, v = t.column("u").to_numpy(), t.column("v").to_numpy()
        marker = np.zeros(len(u), bool)
    else:
        t = pq.read_table(arrow(path), columns=["node", "open"])
        u = v = t.column("node").filter(t.column("open")).to_numpy()
        marker = np.ones(len(u), bool)
    ends = u if end == "u" else v
    return pa.table({"key": mix64(ends.astype(np.uint64)), "u": u, "v": v, "marker": marker})


def _edges_at_open(end: str, table: pa.Table) -> pa.Table:
    """Edges whose `end` is an open member (both ends, after the join on u then on v)."""
    if table.num_rows == 0:
        return _EDGE_KEEP_SCHEMA.empty_table()
    marker = table.column("marker").to_numpy(zero_copy_only=False).astype(bool)
    ends = table.column(end).to_numpy()
    ok = ~marker & np.isin(ends, ends[marker])
    return pa.table({"u": table.column("u").filter(pa.array(ok)), "v": table.column("v").filter(pa.array(ok)),
                     "keep": np.ones(int(ok.sum()), bool)}, schema=_EDGE_KEEP_SCHEMA)


_EDGE_KEEP_SCHEMA = pa.schema([("u", pa.int64()), ("v", pa.int64()), ("keep", pa.bool_())])


def _decision_counts(path: str) -> tuple[int, int, int]:
    """(members removed, clusters, members left open) of one decision file."""
    t = pq.read_table(arrow(path), columns=["dup", "open"])
    dup = t.column("dup").to_numpy(zero_copy_only=False).astype(bool)
    still = t.column("open").to_numpy(zero_copy_only=False).astype(bool)
    return int(dup.sum()), int((~dup & ~still).sum()), int(still.sum())


def _add3(a: tuple[int, int, int], b: tuple[int, int, int]) -> tuple[int, int, int]:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


# ----------------------------------------------------------------------------------------------
# 5. apply per partition


def _apply(plan: Plan, results: list[str], p: Part) -> PartitionOutput:
    part = p.index
    table = pq.read_table(arrow(p.path))
    n = table.num_rows
    cluster: list[str | None] = [None] * n
    dup = np.zeros(n, dtype=bool)
    count = _weights(table).to_numpy().copy()
    for path in results:  # every round's decisions; a member is decided (not open) in one round at most
        t = pq.read_table(arrow(path), filters=[("part", "=", part), ("open", "=", False)],
                          columns=["row", "cluster", "dup", "count"])
        for row, c, d, k in zip(t.column("row").to_pylist(), t.column("cluster").to_pylist(),
                                t.column("dup").to_pylist(), t.column("count").to_pylist(), strict=True):
            cluster[row] = c
            dup[row] = d
            if k is not None:
                count[row] = k
    cluster_arr = pa.array(cluster, pa.string())
    dup_of = pc.if_else(pa.array(dup), cluster_arr, pa.scalar(None, pa.string()))
    reason = pc.binary_join_element_wise(pa.scalar("near_dup:of="), dup_of, "")
    dup_count = pc.if_else(pa.array(dup), pa.scalar(None, pa.int64()), pa.array(count, pa.int64()))
    for name, col in (("dup_cluster", cluster_arr), ("dup_of", dup_of), ("dup_count", dup_count), (REASON, reason)):
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, col)
        else:
            table = table.append_column(name, col)
    meta = pq.read_table(arrow(plan.work / "meta" / f"p{part:06d}.parquet"))
    sizes = meta.column("shingles").to_numpy()
    if plan.keep_index_rows:
        kept = np.flatnonzero(~dup & (sizes > 0))
        write_parquet(meta.select(["id", "bands", "sig"]).take(pa.array(kept)),
                      plan.work / "index_rows" / f"p{part:06d}.parquet")
    extra = {"cjk_docs": int(meta.column("cjk").to_numpy(zero_copy_only=False).sum()),
             "empty_shingle_docs": int((sizes == 0).sum()), "clustered_docs": int(pc.sum(
                 pc.is_valid(cluster_arr)).as_py() or 0)}
    return PartitionOutput(table, extra)


# ----------------------------------------------------------------------------------------------
# persistent index


# ----------------------------------------------------------------------------------------------


class Stage(GlobalStage):
    Config = NearDedupConfig
    config: NearDedupConfig

    def reads(self) -> tuple[Column, ...]:
        ranks: list[Column] = []
        for policy in self.config.policies():
            if policy.kind == "column":
                ranks.append(Column(policy.name, optional=True))
            elif policy.kind == "newest":
                ranks += [Column(self.config.date_field, optional=True), Column("meta", optional=True)]
            elif policy.kind == "source_priority":
                ranks.append(Column("source", pa.string()))
        return (Column("id", pa.string()), Column("text", pa.string()), *ranks,
                Column("dup_count", pa.int64(), optional=True))

    def adds(self) -> tuple[Column, ...]:
        return (Column("dup_cluster", pa.string()), Column("dup_of", pa.string()), Column("dup_count", pa.int64()))

    def _params(self) -> MinHashParams:
        perms, b, r = self.config.lsh()
        return MinHashParams(perms, b, r, self.pipeline.seed)

    def _index(self) -> IndexStore | None:
        root = stage_write_path(self.pipeline, self.config, "index")  # relative to OUT, kept inside it
        if root is None:
            return None
        c, p = self.config, self._params()
        params: dict[str, Any] = {"num_perm": p.num_perm, "bands": p.bands, "rows": p.rows, "seed": p.seed,
                  "shingle": c.shingle, "ngram": c.ngram, "char_ngram": c.char_ngram, "cjk_ratio": c.cjk_ratio,
                  "max_shingles": c.max_shingles}
        if c.shingle == "auto":  # which documents get code shingles gives the stored signatures their meaning
            languages = hashlib.sha256("\n".join(sorted(code_languages())).encode()).hexdigest()[:16]
            params["auto_code"] = {"languages": languages, "sources": sorted(c.code_sources)}
        return IndexStore(root, params, run_key(self.pipeline.output, c.name), f"stages.{c.name}.index")

    def fingerprint(self) -> dict[str, Any]:
        index = self._index()
        if index is None:
            return {}
        index.check()  # settings that give the stored signatures another meaning stop the plan
        return {"index": [g.name for g in index.others()]}

    def _rank(self, inputs: list[Path]) -> tuple[tuple[Policy, ...], tuple[tuple[str, bool, str], ...]]:
        """Survivor policies whose columns exist (plus length and id), each with one Arrow type."""
        fields: dict[str, pa.Field] = {}
        for p in inputs:
            for f in pq.read_schema(arrow(p)):
                fields.setdefault(f.name, f)
        schema = pa.schema(list(fields.values()))
        policies, rank = [], []
        for policy in self.config.policies():
            typ = rank_type(policy, schema)
            if typ is not None:
                policies.append(policy)
                rank.append((policy.name, policy.descending, typ))
        return tuple(policies), tuple(rank)

    def run(self, ctx: StageContext) -> dict[str, Any]:
        work = ctx.stage_dir / "_work"
        params = self._params()
        index = self._index()
        if index is not None:
            index.check()
        stats: dict[str, Any] = {"num_perm": params.num_perm, "bands": params.bands, "rows": params.rows}
        found, _ = ctx.step("_work/stats", lambda: self._dedup(ctx, list(ctx.inputs), params, index, work))
        stats.update(found)
        current = index.current(ctx.stage_hash) if index is not None else None
        if index is not None and current is None:
            files = sorted((work / "index_rows").glob("p*.parquet"))
            if len(files) != len(ctx.inputs):
                raise RuntimeError("near_dedup: index rows are missing; rerun with --fresh")
            gen = index.write(files, ctx.stage_hash, ctx.counts()["kept"])
            stats["index_generation"] = gen.name
        elif current is not None:  # written by a run killed before its manifest
            stats["index_generation"] = current.name
        return stats

    def _dedup(self, ctx: StageContext, inputs: list[Path], params: MinHashParams, index: IndexStore | None,
               work: Path) -> dict[str, Any]:
        """Signatures, candidate pairs, components and survivors, then every unfinished partition
        written; returns the figures (the runner keeps them, so a resumed run does not redo this)."""
        cfg = self.config
        ex = ctx.executor
        rows = [pq.ParquetFile(arrow(p)).metadata.num_rows for p in inputs]
        base = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        n_docs = int(base[-1])
        index_files = index.files() if index else []
        index_rows = [pq.ParquetFile(arrow(p)).metadata.num_rows for p in index_files]
        index_base = n_docs + np.concatenate([[0], np.cumsum(index_rows)]).astype(np.int64)
        n_nodes = int(index_base[-1])
        text_bytes = _text_bytes(inputs)
        policies, rank = self._rank(inputs)
        # Bucket counts: each (partition, bucket) pair is a small file, and opening files, not
        # memory, is what dominates at scale. A verify reduce filters each set file down to the
        # candidates as it reads, so its memory stays far below a bucket's ~256 MB of sets; band
        # rows are ~24 bytes per band per document and are held whole (~64 MB per bucket).
        set_buckets = int(max(2 * ex.workers, text_bytes // (256 << 20) + 1))
        band_buckets = int(max(2 * ex.workers, n_nodes * params.bands * 24 // (64 << 20) + 1))
        plan = Plan(work=work, params=params, shingle=cfg.shingle, ngram=cfg.ngram, char_ngram=cfg.char_ngram,
                    cjk_ratio=cfg.cjk_ratio, verify=cfg.verify, threshold=cfg.threshold, window=cfg.window,
                    n_inputs=len(inputs), base=tuple(int(x) for x in base[:-1]), n_docs=n_docs,
                    index_base=tuple(int(x) for x in index_base[:-1]), set_buckets=set_buckets,
                    rank=rank, keep_index_rows=index is not None, similarity=cfg.similarity,
                    max_shingles=cfg.max_shingles, policies=policies, date_field=cfg.date_field,
                    code_sources=tuple(cfg.code_sources))
        sources = inputs + index_files
        clock = _Clock()
        edge_files = ex.group_by_key(sources, functools.partial(_signature_rows, plan),
                                     functools.partial(_band_edges, plan), work / "bands", n_buckets=band_buckets,
                                     partitioner="range", progress=ctx.phase("signatures"))
        candidates = sum(pq.ParquetFile(arrow(f)).metadata.num_rows for f in edge_files)
        stats: dict[str, Any] = {"index_docs": n_nodes - n_docs}
        clock.lap("signatures")
        if cfg.verify:
            joined = ex.group_by_key(edge_files, _edges_by_u, functools.partial(_attach_u, plan), work / "join_u",
                                     n_buckets=set_buckets, partitioner="range",
                                     progress=ctx.phase("verify: sets of u"))
            edge_files = ex.group_by_key(joined, _read, functools.partial(_verify, plan), work / "join_v",
                                         n_buckets=set_buckets, partitioner="range",
                                         progress=ctx.phase("verify: sets of v"))
            clock.lap("verify")
        pairs, verified = aggregate(ex, _edge_counts, [(f, cfg.verify) for f in edge_files], _add_pairs, (0, 0),
                                     ctx.phase("edge counts"))
        decisions, round_stats = self._rounds(ex, plan, sources, edge_files, "keep" if cfg.verify else None,
                                              ctx.phase)
        stats.update(candidate_edges=candidates, candidate_pairs=pairs, verified_pairs=verified, **round_stats)
        clock.lap("clusters")
        ctx.write_partitions(functools.partial(_apply, plan, decisions), progress=ctx.phase("removals", "partitions"))
        clock.lap("apply")
        stats.update(clock.laps)
        return stats

    def _rounds(self, ex: Any, plan: Plan, sources: list[Path], edge_files: list[str], keep: str | None,
                phase: Callable[[str | None, str | None], Progress]) -> tuple[list[str], dict[str, Any]]:
        """Clusters without removal by chain: per round, components over the edges between open
        members, the survivor of each (survivor rule), every other member checked against it (joins
        on the member's, then the survivor's shingle set); members that fail stay open for the next
        round. Returns every round's decision files and the counts; `phase(name, unit)` gives each step
        its progress line (`near_dedup: components round 2`)."""
        work = plan.work
        decisions: list[str] = []
        clusters = components = first_rejected = unresolved = rounds = 0
        active, active_keep = edge_files, keep
        for r in range(self.config.max_rounds):
            where = work / f"round{r:03d}"
            n = r + 1
            labels = ex.components(active, where / "components", active_keep, phase(f"components round {n}", None))
            clustered, comps = aggregate(ex, _label_counts, labels, _add_pairs, (0, 0),
                                         phase(f"cluster sizes round {n}", None))
            if comps == 0:
                break
            rounds += 1
            components += comps if r == 0 else 0
            plan_r = dataclasses.replace(plan, labels=tuple(labels))
            cluster_buckets = int(max(2 * ex.workers, clustered * 100 // (64 << 20) + 1))  # ~100 bytes per member
            pair_files = ex.group_by_key(sources, functools.partial(_cluster_rows, plan_r),
                                         functools.partial(_pairs, plan_r), where / "clusters",
                                         n_buckets=cluster_buckets, partitioner="range",
                                         progress=phase(f"survivors round {n}", None))
            joined = ex.group_by_key(pair_files, _read, functools.partial(_attach_member, plan_r),
                                     where / "join_member", n_buckets=plan.set_buckets, partitioner="range",
                                     progress=phase(f"verify members round {n}", None))
            judged = ex.group_by_key(joined, _read, functools.partial(_judge, plan_r), where / "join_survivor",
                                     n_buckets=plan.set_buckets, partitioner="range",
                                     progress=phase(f"verify survivors round {n}", None))
            decisions += judged
            _, made, still_open = aggregate(ex, _decision_counts, judged, _add3, (0, 0, 0),
                                            phase(f"decisions round {n}", None))
            clusters += made
            first_rejected += still_open if r == 0 else 0
            if still_open and r == self.config.max_rounds - 1:
                unresolved = still_open  # kept as they are (no removal without a verified survivor)
            if still_open == 0 or r == self.config.max_rounds - 1:
                break
            n_edges = len(active)
            buckets = 2 * ex.workers
            by_u = ex.group_by_key([*map(Path, active), *map(Path, judged)],
                                   functools.partial(_open_rows, "u", n_edges),
                                   functools.partial(_edges_at_open, "u"), where / "open_u",
                                   n_buckets=buckets, partitioner="range",
                                   progress=phase(f"open edges round {n}", None))
            active = ex.group_by_key([*map(Path, by_u), *map(Path, judged)],
                                     functools.partial(_open_rows, "v", len(by_u)),
                                     functools.partial(_edges_at_open, "v"), where / "open_v",
                                     n_buckets=buckets, partitioner="range",
                                     progress=phase(f"open edges round {n}", None))
            active_keep = "keep"
        return decisions, {"components": components, "clusters": clusters, "rounds": rounds,
                           "members_not_verified_against_first_survivor": first_rejected,
                           "open_after_last_round": unresolved}


class _Clock:
    """Seconds per step, reported in the manifest's stats (where the time goes, at a glance)."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, name: str) -> None:
        now = time.monotonic()
        self.laps[f"seconds_{name}"] = round(now - self._last, 3)
        self._last = now


def _read(path: Path, part: int) -> pa.Table:
    return pq.read_table(arrow(path))


def _text_bytes(inputs: list[Path]) -> int:
    """Uncompressed size of the text column, from Parquet metadata (no data read)."""
    total = 0
    for p in inputs:
        md = pq.ParquetFile(arrow(p)).metadata
        names = [md.schema.column(i).name for i in range(md.num_columns)]
        if "text" not in names:
            continue
        col = names.index("text")
        total += sum(md.row_group(g).column(col).total_uncompressed_size for g in range(md.num_row_groups))
    return total
