"""`semantic_dedup`: SemDeDup over the `embed` stage's vectors: k-means, then near-neighbours per cluster.

Paraphrases, reworded templates and rephrasings of one source share meaning but few n-grams, so
MinHash misses them; their sentence embeddings lie close. Comparing every pair is quadratic, so
(as in SemDeDup, Abbas et al. 2023) documents are first clustered with k-means on their unit
vectors and only members of one cluster are compared.

Plan, every step over the executor primitives (pure functions below, a thin `run`):

1. seeds (`aggregate`): the `clusters` documents with the smallest hash of (seed, id) are the first
   centroids: a sample that does not depend on partitioning.
2. k-means rounds (`aggregate` each): every document joins its most similar centroid (ties: the
   lowest cluster number); per-cluster integer sums of vectors come back and the new centroids are
   their directions. Vectors sit on a fixed-point grid (`filters/vectors.py`), so sums and dot
   products are exact and the result is the same for any worker count or partitioning. Rounds stop
   when no centroid moves or after `iterations`; each round's centroids are saved, so a resumed run
   continues from the last finished round.
3. pairs (`group_by_key` by cluster): within a cluster, documents in survivor-rule order
   (near_dedup's policies, filters/survivor_rule.py: by default quality, length, id); a document is a duplicate when its
   cosine to an earlier *kept* member is >= 1 - eps, and `dup_of` names the most similar such member
   (so no chain of paraphrases removes a document whose only near neighbour was itself removed).
   Similarities are computed in row blocks, so a large cluster needs block x cluster memory.
4. apply (`map`): columns `semantic_cluster`, `semantic_sim` (the cosine to the most similar earlier
   member of its cluster: the signal a re-run with another eps needs), `dup_of`; removed documents
   get `semantic_dup:of=<id>`.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from filters.survivor_rule import Policy, RuleItem, needed_columns, parse_policies, rank_column, rank_type
from filters.vectors import cosines, fixed_point, from_column, unit_fixed_point
from pipeline import storage
from pipeline.config import StageConfig
from pipeline.io import atomic_open
from pipeline.primitives import aggregate
from pipeline.schema import REASON
from pipeline.storage import arrow
from stages.base import Column, GlobalStage, Part, PartitionOutput, StageContext

REASON_PREFIX = "semantic_dup"


class SemanticDedupConfig(StageConfig):
    column: str = "embedding"  # written by `embed`
    eps: float = Field(default=0.3, gt=0.0, lt=1.0)  # duplicates: cosine >= 1 - eps (0.7 for 128-token vectors)
    clusters: int | None = Field(default=None, ge=1)  # default: ceil(documents / cluster_size)
    cluster_size: int = Field(default=1000, ge=10)  # documents per cluster the default aims at
    iterations: int = Field(default=10, ge=0, le=100)  # k-means rounds (fewer if centroids settle)
    # which copy survives (filters/survivor_rule.py, as near_dedup): quality, length, id, newest,
    # {source_priority: [...]}, or '<column> asc|desc'; ties end on the smallest id
    survivor: list[RuleItem] = Field(default_factory=lambda: list[RuleItem](["quality", "length", "id"]), min_length=1)
    date_field: str = "date"  # for `newest`: a column, else meta.fields.<name> or meta.<name>
    block_rows: int = Field(default=1024, ge=16)  # rows of a similarity block (memory: block x cluster)
    # only documents whose `lang` is listed take part (the model's languages; all-MiniLM-L6-v2 is English:
    # on other text its vectors crowd together and unrelated pages look alike); empty = every document
    languages: list[str] = []

    @field_validator("survivor")
    @classmethod
    def _rules(cls, value: list[RuleItem]) -> list[RuleItem]:
        parse_policies(value)
        return value

    def policies(self) -> list[Policy]:
        return parse_policies(self.survivor)


@dataclass(frozen=True)
class Plan:
    column: str
    threshold: float  # 1 - eps
    seed: int
    k: int
    rank: tuple[tuple[Policy, str], ...]  # survivor policies with their rank columns' arrow types
    date_field: str
    block_rows: int
    languages: tuple[str, ...] = ()
    centroids: str = ""  # .npy of the final centroids (grid vectors), once known


# ----------------------------------------------------------------------------------------------
# pure functions on arrays (also used in memory by `curate semdedup-params`)


def id_hashes(ids: list[str], seed: int) -> np.ndarray:
    return np.array([int.from_bytes(hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest(), "little")
                     for i in ids], dtype=np.uint64)


def assign(vectors: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid of each grid vector (exact integer dot products; ties: the lowest index)."""
    if len(vectors) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.argmax(vectors @ centroids.T, axis=1).astype(np.int64)


def cluster_sums(vectors: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster int64 sums of grid vectors and member counts."""
    sums = np.zeros((k, vectors.shape[1]), dtype=np.int64)
    np.add.at(sums, labels, vectors.astype(np.int64))
    return sums, np.bincount(labels, minlength=k).astype(np.int64)


def next_centroids(previous: np.ndarray, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Spherical k-means update: directions of the sums; a cluster left empty keeps its centroid."""
    new = unit_fixed_point(sums)
    empty = counts == 0
    new[empty] = previous[empty]
    return new


def kmeans(vectors: np.ndarray, ids: list[str], k: int, seed: int, iterations: int) -> tuple[np.ndarray, int]:
    """In-memory k-means with the same seeds and updates as the stage (for samples)."""
    k = max(1, min(k, len(ids)))
    order = np.lexsort((np.array(ids, dtype=object).astype(str), id_hashes(ids, seed)))[:k]
    centroids = vectors[order].copy()
    rounds = 0
    for _ in range(iterations):
        sums, counts = cluster_sums(vectors, assign(vectors, centroids), k)
        new = next_centroids(centroids, sums, counts)
        rounds += 1
        if np.array_equal(new, centroids):
            break
        centroids = new
    return centroids, rounds


def dedup_cluster(vectors: np.ndarray, threshold: float, block_rows: int = 1024
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Members of one cluster, already in survivor order -> (duplicate?, index of the kept member it
    duplicates or -1, cosine to the most similar earlier member or NaN for the first).

    A member is a duplicate when an earlier kept member has cosine >= threshold; it then points at
    the most similar such member (ties: the earliest)."""
    m = len(vectors)
    dup = np.zeros(m, dtype=bool)
    of = np.full(m, -1, dtype=np.int64)
    best = np.full(m, np.nan, dtype=np.float64)
    for lo in range(0, m, block_rows):
        hi = min(m, lo + block_rows)
        sims = cosines(vectors[lo:hi], vectors[:hi])  # rows lo..hi against every earlier row
        sims[np.arange(hi - lo)[:, None] + lo <= np.arange(hi)[None, :]] = -np.inf  # only earlier members
        top = sims.max(axis=1)
        best[lo:hi] = np.where(np.isfinite(top), top, np.nan)
        for r in np.flatnonzero(top >= threshold):  # the few with a close earlier member
            row = np.where(~dup[:hi], sims[r], -np.inf)
            j = int(np.argmax(row))
            if row[j] >= threshold:
                dup[lo + r] = True
                of[lo + r] = j
    return dup, of, best


# ----------------------------------------------------------------------------------------------
# steps over the primitives


def _read_eligible(plan: Plan, path: Path, columns: list[str]) -> tuple[pa.Table, np.ndarray]:
    """The partition's columns, restricted to documents in `plan.languages`, and their row numbers."""
    wanted = list(dict.fromkeys(columns + (["lang"] if plan.languages else [])))
    t = pq.read_table(arrow(path), columns=wanted)
    rows = np.arange(t.num_rows, dtype=np.int64)
    if plan.languages:
        mask = pc.fill_null(pc.is_in(t.column("lang"), pa.array(list(plan.languages), pa.string())), False)
        rows = rows[np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)]
        t = t.filter(mask)
    return t, rows


def _grid(table: pa.Table, column: str) -> np.ndarray:
    return fixed_point(from_column(table.column(column), np.float32))


def _seed_rows(plan: Plan, path: Path) -> tuple[list[int], list[str], np.ndarray]:
    """The k smallest (hash, id) of one partition with their grid vectors."""
    t, _ = _read_eligible(plan, path, ["id", plan.column])
    ids = t.column("id").to_pylist()
    h = id_hashes(ids, plan.seed)
    order = np.lexsort((np.array(ids, dtype=object).astype(str), h))[:plan.k]
    return [int(h[i]) for i in order], [ids[i] for i in order], _grid(t.take(pa.array(order)), plan.column)


def _merge_seeds(k: int, a: tuple[list[int], list[str], np.ndarray], b: tuple[list[int], list[str], np.ndarray]
                 ) -> tuple[list[int], list[str], np.ndarray]:
    keys = list(zip(a[0] + b[0], a[1] + b[1], strict=True))
    vecs = np.concatenate([a[2], b[2]]) if len(a[2]) and len(b[2]) else (a[2] if len(a[2]) else b[2])
    order = sorted(range(len(keys)), key=lambda i: keys[i])[:k]
    return [keys[i][0] for i in order], [keys[i][1] for i in order], vecs[order] if len(order) else vecs


def _round_partial(plan: Plan, centroids: np.ndarray, path: Path) -> tuple[np.ndarray, np.ndarray]:
    vectors = _grid(_read_eligible(plan, path, [plan.column])[0], plan.column)
    return cluster_sums(vectors, assign(vectors, centroids), plan.k)


def _add(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return a[0] + b[0], a[1] + b[1]


def _member_rows(plan: Plan, path: Path, part: int) -> pa.Table:
    """Every document of a partition keyed by its cluster, with what the survivor rule needs."""
    schema = pq.read_schema(arrow(path))
    needed = needed_columns([p for p, _ in plan.rank], schema, plan.date_field)
    t, rows = _read_eligible(plan, path, list(dict.fromkeys(["id", plan.column, *needed])))
    labels = assign(_grid(t, plan.column), _load_npy(plan.centroids))
    cols: dict[str, Any] = {"key": pa.array(labels.astype(np.uint64)),
                            "part": pa.array(np.full(t.num_rows, part, np.int32)),
                            "row": pa.array(rows), "id": t.column("id")}
    for i, (policy, typ) in enumerate(plan.rank):
        cols[f"rank_{i}"] = rank_column(policy, t, typ, plan.date_field)
    cols["vec"] = t.column(plan.column)
    return pa.table(cols)


_PAIR_SCHEMA = pa.schema([("part", pa.int32()), ("row", pa.int64()), ("cluster", pa.int32()),
                          ("sim", pa.float32()), ("dup_of", pa.string())])


def _dedup_bucket(plan: Plan, table: pa.Table) -> pa.Table:
    """One bucket of clusters -> per member: its cluster, best earlier cosine, and what it duplicates."""
    if table.num_rows == 0:
        return _PAIR_SCHEMA.empty_table()
    order: list[tuple[str, str, str]] = [("key", "ascending", "at_end")]
    for i, (policy, _) in enumerate(plan.rank):
        order.append((f"rank_{i}", "descending" if policy.descending else "ascending", "at_end"))
    order.append(("id", "ascending", "at_end"))
    t = table.sort_by(order)
    keys = t.column("key").to_numpy()
    vectors = _grid(t, "vec")
    ids = t.column("id").to_pylist()
    sims = np.full(len(keys), np.nan)
    dup_of: list[str | None] = [None] * len(keys)
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], len(keys)], strict=True):
        dup, of, best = dedup_cluster(vectors[a:b], plan.threshold, plan.block_rows)
        sims[a:b] = best
        for i in np.flatnonzero(dup):
            dup_of[a + i] = ids[a + int(of[i])]
    out = pa.table({"part": t.column("part"), "row": t.column("row"), "cluster": pa.array(keys.astype(np.int32)),
                    "sim": pa.array(sims.astype(np.float32), from_pandas=True),
                    "dup_of": pa.array(dup_of, pa.string())}, schema=_PAIR_SCHEMA)
    return out.sort_by([("part", "ascending"), ("row", "ascending")])


def _apply(results: list[str], p: Part) -> PartitionOutput:
    part = p.index
    table = pq.read_table(arrow(p.path))
    n = table.num_rows
    cluster = np.full(n, -1, np.int32)  # -1: not compared (a language outside `languages`)
    sim = np.full(n, np.nan, np.float32)
    dup_of: list[str | None] = [None] * n
    for path in results:
        t = pq.read_table(arrow(path), filters=[("part", "=", part)], columns=["row", "cluster", "sim", "dup_of"])
        rows = t.column("row").to_numpy()
        cluster[rows] = t.column("cluster").to_numpy()
        sim[rows] = t.column("sim").to_numpy(zero_copy_only=False)
        for r, d in zip(rows.tolist(), t.column("dup_of").to_pylist(), strict=True):
            dup_of[r] = d
    of = pa.array(dup_of, pa.string())
    reason = pc.binary_join_element_wise(pa.scalar(f"{REASON_PREFIX}:of="), of, "")
    cols = {"semantic_cluster": pa.array(cluster), "semantic_sim": pa.array(sim, from_pandas=True),
            "dup_of": of, REASON: reason}
    for name, col in cols.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, col)
        else:
            table = table.append_column(name, col)
    return PartitionOutput(table, {"compared_docs": int((cluster >= 0).sum())})


def _read(path: Path, part: int) -> pa.Table:
    return pq.read_table(arrow(path))


def _save_npy(array: np.ndarray, path: Path) -> None:
    """Atomic (and local or remote alike): a killed run never leaves half a centroid file."""
    with atomic_open(path, "wb") as fh:
        np.save(fh, array)


def _load_npy(path: Path | str) -> np.ndarray:
    with storage.location(path).open("rb") as fh:
        return np.load(fh)


# ----------------------------------------------------------------------------------------------


class Stage(GlobalStage):
    Config = SemanticDedupConfig
    config: SemanticDedupConfig

    def _rank(self, inputs: list[Path]) -> tuple[tuple[Policy, str], ...]:
        """Survivor policies whose rank column exists (length, id, ... always), each with one Arrow type."""
        schema = pq.read_schema(arrow(inputs[0])) if inputs else pa.schema([])
        out = []
        for policy in self.config.policies():
            typ = rank_type(policy, schema)
            if typ is not None:
                out.append((policy, typ))
        return tuple(out)

    def reads(self) -> tuple[Column, ...]:
        ranks = [Column(p.name, optional=True) for p in self.config.policies() if p.kind == "column"]
        if any(p.kind == "newest" for p in self.config.policies()):
            ranks += [Column(self.config.date_field, optional=True), Column("meta", optional=True)]
        if any(p.kind == "source_priority" for p in self.config.policies()):
            ranks.append(Column("source", pa.string()))
        lang = (Column("lang", pa.string(), made_by="langid"),) if self.config.languages else ()
        return (Column("id", pa.string()), Column("text", pa.string()),
                Column(self.config.column, made_by="embed"), *lang, *ranks)

    def adds(self) -> tuple[Column, ...]:
        return (Column("semantic_cluster", pa.int32()), Column("semantic_sim", pa.float32()),
                Column("dup_of", pa.string()))

    def run(self, ctx: StageContext) -> dict[str, Any]:
        found, _ = ctx.step("_work/stats", lambda: self._dedup(ctx))  # a resumed run reuses the figures
        return found

    def _dedup(self, ctx: StageContext) -> dict[str, Any]:
        """k-means, pairs per cluster, then every unfinished partition written; returns the figures."""
        cfg = self.config
        ex = ctx.executor
        inputs = list(ctx.inputs)
        work = ctx.stage_dir / "_work"
        progress = ctx.progress
        n_docs = sum(pq.ParquetFile(arrow(p)).metadata.num_rows for p in inputs)
        k = max(1, min(n_docs, cfg.clusters or math.ceil(n_docs / cfg.cluster_size)))
        plan = Plan(column=cfg.column, threshold=1.0 - cfg.eps, seed=int(ctx.pipeline.seed), k=k,
                    rank=self._rank(inputs), date_field=cfg.date_field, block_rows=cfg.block_rows,
                    languages=tuple(cfg.languages))
        laps: dict[str, float] = {}
        clock = time.monotonic()
        final, rounds = self._kmeans(ex, plan, inputs, work, ctx.phase("k-means", "tasks"))
        centroids = _load_npy(final)
        laps["seconds_kmeans"] = round(time.monotonic() - clock, 3)
        plan = replace(plan, centroids=str(final))
        clock = time.monotonic()
        buckets = int(max(2 * ex.workers, n_docs * 900 // (64 << 20) + 1))  # ~900 bytes per member row
        results = [] if len(centroids) == 0 else ex.group_by_key(
            inputs, functools.partial(_member_rows, plan), functools.partial(_dedup_bucket, plan), work / "clusters",
            n_buckets=buckets, partitioner="hash", progress=progress)
        laps["seconds_pairs"] = round(time.monotonic() - clock, 3)
        clock = time.monotonic()
        ctx.write_partitions(functools.partial(_apply, results))
        laps["seconds_apply"] = round(time.monotonic() - clock, 3)
        return {"clusters": len(centroids), "kmeans_rounds": rounds, "eps": cfg.eps, **laps}

    def _kmeans(self, ex: Any, plan: Plan, inputs: list[Path], work: Path, progress: Any) -> tuple[Path, int]:
        """The file of the final centroids and the rounds run. Each round's centroids are saved, so a
        resumed run continues after the last saved round (two equal saved rounds: converged)."""
        saved = sorted(work.glob("centroids-r*.npy"))
        if not saved:
            empty: tuple[list[int], list[str], np.ndarray] = ([], [], np.zeros((0, 0)))
            _, _, seeds = aggregate(ex, functools.partial(_seed_rows, plan), inputs,
                                    functools.partial(_merge_seeds, plan.k), empty, progress)
            saved = [work / "centroids-r000.npy"]
            _save_npy(seeds, saved[0])
        centroids = _load_npy(saved[-1])
        done = int(saved[-1].stem.rsplit("r", 1)[1])
        converged = len(saved) >= 2 and np.array_equal(_load_npy(saved[-2]), centroids)
        while len(centroids) and not converged and done < self.config.iterations:
            k, dim = centroids.shape
            zero = (np.zeros((k, dim), np.int64), np.zeros(k, np.int64))
            sums, counts = aggregate(ex, functools.partial(_round_partial, replace(plan, k=k), centroids), inputs,
                                     _add, zero, progress)
            new = next_centroids(centroids, sums, counts)
            done += 1
            _save_npy(new, work / f"centroids-r{done:03d}.npy")
            converged = bool(np.array_equal(new, centroids))
            centroids = new
        return work / f"centroids-r{done:03d}.npy", done


# ----------------------------------------------------------------------------------------------
# choosing eps: `curate semdedup-params`


def params_report(ids: list[str], texts: list[str], vectors: np.ndarray, eps_values: list[float],
                  cluster_size: int = 1000, seed: int = 0, iterations: int = 10, examples: int = 3,
                  width: int = 160) -> str:
    """For a sample: documents that would go at each eps, with examples beside their survivors.

    The same k-means and within-cluster rule as the stage, in memory, in id order (the sample has no
    survivor-rule columns, so earlier = smaller id)."""
    order = np.argsort(np.array(ids, dtype=object).astype(str), kind="stable")
    ids = [ids[i] for i in order]
    texts = [texts[i] for i in order]
    grid = fixed_point(vectors[order])
    k = max(1, math.ceil(len(ids) / cluster_size))
    centroids, rounds = kmeans(grid, ids, k, seed, iterations)
    labels = assign(grid, centroids)
    lines = [f"sample: {len(ids)} documents, {len(centroids)} clusters ({rounds} k-means rounds)", "",
             f"{'eps':>6} {'cosine >=':>10} {'removed':>9} {'share':>7}"]
    shown: list[str] = []
    for eps in eps_values:
        removed: list[tuple[int, int, float]] = []
        for c in np.unique(labels):
            members = np.flatnonzero(labels == c)
            dup, of, best = dedup_cluster(grid[members], 1.0 - eps)
            for i in np.flatnonzero(dup):
                a, b = int(members[i]), int(members[int(of[i])])
                removed.append((a, b, float(cosines(grid[a:a + 1], grid[b:b + 1])[0, 0])))
        share = len(removed) / max(1, len(ids))
        lines.append(f"{eps:>6.3f} {1 - eps:>10.3f} {len(removed):>9d} {share:>7.2%}")
        # examples: the least similar removals at this eps (the ones a user must judge)
        picks = sorted(removed, key=lambda r: r[2])[:examples]
        if picks:
            shown.append(f"\n-- eps {eps}: least similar pairs removed --")
            for a, b, cos in picks:
                shown.append(f"cosine {cos:.3f}\n  removed  {ids[a]}: {_excerpt(texts[a], width)}\n"
                             f"  survivor {ids[b]}: {_excerpt(texts[b], width)}")
    return "\n".join(lines + shown)


def _excerpt(text: str | None, width: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"
