"""`mix`: select documents per domain to hit a token budget with given weights and epoch caps.

1. Tokens available per domain are summed over the whole corpus (`n_tokens`, from `tokenize`).
2. Weights come from the config, a JSON file (e.g. from a DoReMi/RegMix search), the natural
   distribution, temperature sampling (w ∝ tokens^(1/τ)) or UniMax (uniform, capped).
3. Targets are budget × weight, water-filled: a domain cannot exceed `max_epochs` × available; its
   shortfall goes to the others in proportion to their weights.
4. Each domain repeats whole epochs, then takes a partial epoch in `hash(seed, id)` order until the
   target is met, so the result overshoots by less than one document and is deterministic.
Each selected copy carries its `epoch` (0 for the first); copies beyond the first count as `added`.

With `rehydrate:` (FineWeb-2's rehydration) a document that stood for a duplicate cluster of
`dup_count` copies enters steps 1 and 4 as `copies(dup_count)` documents (the weight table,
`filters/rehydration.py`), each with its own shuffle key (`copy_keys`): a whole pass brings all its
copies, a partial pass each copy whose key falls under the cut.
Targets (budget × weight, at most `max_epochs` × the domain's unique tokens) do not change, so
rehydration decides which documents fill a domain's share, never how large the share is.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, field_validator, model_validator

from filters.minhash import mix64
from filters.rehydration import check_table, default_table
from filters.rehydration import copies as rehydration_copies
from pipeline.config import ConfigError, ReadFile, StageConfig
from pipeline.hashing import shuffle_keys
from pipeline.primitives import Executor, Progress, aggregate
from pipeline.schema import REASON
from pipeline.storage import arrow
from stages.base import Column, GlobalStage, Part, PartitionOutput, StageContext

UINT64_MAX = (1 << 64) - 1  # the cut of a domain taken whole: every key is <= it


class MixConfig(StageConfig):
    by: str = "domain"  # the column whose values are mixed (domain, source, quality_bucket, ...)
    weighting: Literal["explicit", "natural", "temperature", "unimax"] | None = None
    weights: dict[str, float] | None = None
    weights_file: ReadFile | None = None  # JSON {"domain": weight, ...} from an external mixture search
    temperature: float = Field(default=1.0, gt=0.0)
    budget_tokens: int | None = Field(default=None, ge=1)  # None: everything available, once
    max_epochs: float = Field(default=4.0, gt=0.0)
    max_epochs_by: dict[str, float] = Field(default_factory=dict)
    # synthetic documents (domain `synth_<recipe>`, source `synth/<recipe>`) are not repeated by default
    max_epochs_synthetic: float = Field(default=1.0, gt=0.0)
    # upsample by duplicate-cluster size (`dup_count` from exact_dedup/near_dedup): true = FineWeb-2's
    # table {1: 1, 2: 2, 3: 3, 5: 5, 100: 8, 1000: 1}, linear between; or a table {size: copies}
    rehydrate: bool | dict[int, float] = False

    @field_validator("rehydrate")
    @classmethod
    def _table(cls, value: bool | dict[int, float]) -> bool | dict[int, float]:
        return check_table(value) if isinstance(value, dict) else value

    def rehydration(self) -> dict[int, float] | None:
        """The weight table in use, or None without rehydration."""
        if isinstance(self.rehydrate, dict):
            return self.rehydrate
        return default_table() if self.rehydrate else None

    @model_validator(mode="after")
    def _resolve(self) -> MixConfig:
        if self.weights is not None and self.weights_file is not None:
            raise ValueError("set weights or weights_file, not both")
        if self.weighting is None:
            self.__dict__["weighting"] = "explicit" if (self.weights or self.weights_file) else "natural"
        if self.weighting == "explicit" and self.weights is None and self.weights_file is None:
            raise ValueError("weighting: explicit needs weights or weights_file")
        if any(w < 0 for w in (self.weights or {}).values()):
            raise ValueError("weights must be >= 0")
        return self


def load_weights(cfg: MixConfig) -> dict[str, float] | None:
    if cfg.weights is not None:
        return cfg.weights
    if cfg.weights_file is None:
        return None
    path = Path(cfg.weights_file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read mixture weights ({exc})"]) from None
    if isinstance(data, dict) and isinstance(data.get("weights"), dict):
        data = data["weights"]
    if not isinstance(data, dict) or not all(isinstance(v, int | float) and v >= 0 for v in data.values()):
        raise ConfigError([f"{path}: expected a JSON object of domain -> non-negative weight"])
    return {str(k): float(v) for k, v in data.items()}


def domain_weights(cfg: MixConfig, available: dict[str, int]) -> dict[str, float]:
    """Normalized weights over the domains present."""
    if cfg.weighting == "explicit":
        given = load_weights(cfg) or {}
        raw = {d: given.get(d, 0.0) for d in available}
    elif cfg.weighting == "natural":
        raw = {d: float(t) for d, t in available.items()}
    elif cfg.weighting == "temperature":
        raw = {d: float(t) ** (1.0 / cfg.temperature) for d, t in available.items()}
    else:  # unimax: uniform; the epoch caps in water-filling do the rest
        raw = {d: 1.0 if t > 0 else 0.0 for d, t in available.items()}
    total = sum(raw.values())
    return {d: (w / total if total > 0 else 0.0) for d, w in sorted(raw.items())}


def plan_targets(available: dict[str, int], weights: dict[str, float], budget: int,
                 caps: dict[str, float]) -> dict[str, float]:
    """Water-filling: budget × weight, each domain capped at caps[d]; excess goes to the rest."""
    targets = {d: 0.0 for d in available}
    active = {d for d, w in weights.items() if w > 0 and available.get(d, 0) > 0}
    remaining = float(budget)
    while active and remaining > 1e-9:
        total_w = sum(weights[d] for d in active)
        tentative = {d: remaining * weights[d] / total_w for d in active}
        over = {d for d in active if tentative[d] > caps[d]}
        if not over:
            targets.update(tentative)
            break
        for d in sorted(over):
            targets[d] = caps[d]
            remaining -= caps[d]
            active.discard(d)
    return targets


def _domain_keys(path: Path, by: str, seed: int, rehydrate: dict[int, float] | None = None) -> pa.Table:
    """(domain as text, shuffle key, tokens) of one partition; a null domain reads "None". With a
    rehydration table a document's tokens count once per copy it brings."""
    table = pq.read_table(arrow(path), columns=["id", by, "n_tokens", *(["dup_count"] if rehydrate else [])])
    keys = shuffle_keys(table.column("id"), seed)
    domain = pc.fill_null(pc.cast(table.column(by), pa.string()), "None")
    tokens = pc.fill_null(pc.cast(table.column("n_tokens"), pa.int64()), 0)
    if rehydrate:
        owner, keys = copy_keys(keys, _copies(table, rehydrate))
        domain, tokens = domain.take(pa.array(owner)), tokens.take(pa.array(owner))
    return pa.table({"domain": domain, "key": pa.array(keys, pa.uint64()), "n_tokens": tokens})


def _copies(table: pa.Table, rehydrate: dict[int, float]) -> np.ndarray:
    sizes = pc.fill_null(pc.cast(table.column("dup_count"), pa.int64()), 1).to_numpy()
    return rehydration_copies(sizes, rehydrate)


def copy_keys(keys: np.ndarray, copies: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A rehydrated document's copies as rows of their own: (document row, shuffle key) per copy. The
    first copy keeps the document's key, the others get keys mixed from it, so each copy falls
    anywhere in the shuffle order: a partial epoch takes some of a document's copies, in proportion
    to its weight, and overshoots the target by less than one document, as without rehydration."""
    keys = np.asarray(keys, dtype=np.uint64)
    owner = np.repeat(np.arange(len(keys), dtype=np.int64), copies)
    starts = np.cumsum(copies) - copies
    j = np.arange(len(owner), dtype=np.int64) - np.repeat(starts, copies)
    out = keys[owner].copy()
    later = j > 0
    out[later] = mix64(out[later] ^ (j[later].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    return owner, out


# -- the partial-epoch cut from mergeable summaries (no per-document array on the driver) ---------
# Per domain, documents are taken in shuffle-key order while the tokens taken before each are below
# the target's rest. Pass 1 sums tokens and documents per domain; pass 2 per (domain, top 16 key bits);
# pass 3 reads only the documents of the one key bin where each domain's rest is reached.

Totals = dict[str, tuple[int, int]]  # domain -> (tokens, documents)
Bins = dict[str, dict[int, tuple[int, int]]]  # domain -> key bin -> (tokens, documents)


def _domain_totals(task: tuple[Path, str, int] | tuple[Path, str, int, dict[int, float] | None]) -> Totals:
    t = _domain_keys(*task)
    out: Totals = {}
    for d, (tokens, docs) in _sum_by(t.column("domain"), t.column("n_tokens")).items():
        out[d] = (tokens, docs)
    return out


def _sum_by(groups: pa.ChunkedArray | pa.Array, tokens: pa.ChunkedArray | pa.Array) -> dict[Any, tuple[int, int]]:
    agg = pa.table({"g": groups, "t": tokens}).group_by("g").aggregate([("t", "sum"), ("t", "count")])
    return {g: (int(t or 0), int(n)) for g, t, n in zip(agg.column("g").to_pylist(), agg.column("t_sum").to_pylist(),
                                                       agg.column("t_count").to_pylist(), strict=True)}


def _merge_totals(a: Totals, b: Totals) -> Totals:
    out = dict(a)
    for d, (t, n) in b.items():
        t0, n0 = out.get(d, (0, 0))
        out[d] = (t0 + t, n0 + n)
    return out


def _key_bins(task: tuple[Path, str, int, tuple[str, ...], dict[int, float] | None]) -> Bins:
    path, by, seed, wanted, rehydrate = task
    t = _domain_keys(path, by, seed, rehydrate)
    t = t.filter(pc.is_in(t.column("domain"), pa.array(wanted, pa.string())))
    high = pa.array((t.column("key").to_numpy() >> np.uint64(48)).astype(np.int64))
    out: Bins = {}
    for d in wanted:
        mask = pc.equal(t.column("domain"), d)
        out[d] = _sum_by(high.filter(mask), t.column("n_tokens").filter(mask))
    return out


def _merge_bins(a: Bins, b: Bins) -> Bins:
    out = {d: dict(bins) for d, bins in a.items()}
    for d, bins in b.items():
        into = out.setdefault(d, {})
        for k, (t, n) in bins.items():
            t0, n0 = into.get(k, (0, 0))
            into[k] = (t0 + t, n0 + n)
    return out


def _bin_rows(task: tuple[Path, str, int, dict[str, int], dict[int, float] | None]
              ) -> dict[str, list[tuple[int, int]]]:
    """(key, tokens) of the documents in each domain's wanted key bin."""
    path, by, seed, wanted, rehydrate = task
    t = _domain_keys(path, by, seed, rehydrate)
    keys = t.column("key").to_numpy()
    domains = t.column("domain").to_numpy(zero_copy_only=False)
    tokens = t.column("n_tokens").to_numpy()
    out: dict[str, list[tuple[int, int]]] = {}
    for d, b in wanted.items():
        mask = (domains == d) & ((keys >> np.uint64(48)).astype(np.int64) == b)
        out[d] = [(int(k), int(n)) for k, n in zip(keys[mask], tokens[mask], strict=True)]
    return out


def _merge_rows(a: dict[str, list[tuple[int, int]]], b: dict[str, list[tuple[int, int]]]
                ) -> dict[str, list[tuple[int, int]]]:
    return {d: a.get(d, []) + b.get(d, []) for d in sorted({*a, *b})}


def partial_epochs(ex: Executor, inputs: list[Path], by: str, seed: int, rests: dict[str, float],
                   progress: Progress | None = None, rehydrate: dict[int, float] | None = None
                   ) -> dict[str, tuple[int, int | None, int]]:
    """Per domain with a rest > 0: (documents taken, last key taken, tokens taken) of its partial epoch
    (tokens of rehydrated copies, with a rehydration table)."""
    wanted = tuple(sorted(d for d, r in rests.items() if r > 0))
    if not wanted:
        return {}
    bins: dict[str, dict[int, tuple[int, int]]]
    bins = aggregate(ex, _key_bins, [(p, by, seed, wanted, rehydrate) for p in inputs], _merge_bins, {}, progress)
    found: dict[str, tuple[int, int, int]] = {}  # domain -> (bin, tokens before it, documents before it)
    out: dict[str, tuple[int, int | None, int]] = {}
    for d in wanted:
        before = count = 0
        for b, (t, n) in sorted(bins.get(d, {}).items()):
            if before + t >= rests[d]:
                found[d] = (b, before, count)
                break
            before, count = before + t, count + n
        else:  # the rest reaches past the domain's tokens: every document
            out[d] = (count, UINT64_MAX if count else None, before)
    rows: dict[str, list[tuple[int, int]]]
    rows = aggregate(ex, _bin_rows, [(p, by, seed, {d: b for d, (b, _, _) in found.items()}, rehydrate)
                                     for p in inputs], _merge_rows, {}, progress) if found else {}
    for d, (_, before, count) in found.items():
        taken = tokens = 0
        last = None
        for key, n in sorted(rows.get(d, [])):
            if before + tokens >= rests[d]:
                break
            taken, tokens, last = taken + 1, tokens + n, key
        out[d] = (count + taken, last, before + tokens)
    return out


def _select_partition(by: str, seed: int, plan: dict[str, tuple[int, int | None]],
                      rehydrate: dict[int, float] | None, part: Part) -> PartitionOutput:
    table = pq.read_table(arrow(part.path))
    keys = shuffle_keys(table.column("id"), seed)
    domains = pc.fill_null(pc.cast(table.column(by), pa.string()), "None").to_pylist()
    owner = np.arange(table.num_rows, dtype=np.int64)
    if rehydrate:
        owner, keys = copy_keys(keys, _copies(table, rehydrate))
    copies = np.zeros(table.num_rows, dtype=np.int64)
    for i, k in zip(owner, keys, strict=True):
        full, cut = plan.get(domains[i], (0, None))
        copies[i] += full + (1 if cut is not None and int(k) <= cut else 0)
    kept_rows = np.flatnonzero(copies > 0)
    removed_rows = np.flatnonzero(copies == 0)
    take = np.concatenate([np.repeat(kept_rows, copies[kept_rows]), removed_rows]).astype(np.int64)
    epochs = np.concatenate([np.concatenate([np.arange(c) for c in copies[kept_rows]]) if len(kept_rows)
                             else np.zeros(0, np.int64), np.zeros(len(removed_rows), np.int64)])
    out = table.take(pa.array(take))
    if "epoch" in out.column_names:
        out = out.drop_columns(["epoch"])
    out = out.append_column("epoch", pa.array(epochs.astype(np.int16)))
    n_kept = int(copies[kept_rows].sum()) if len(kept_rows) else 0
    reasons = pa.array([None] * n_kept + ["mix:not_selected"] * len(removed_rows), pa.string())
    added = n_kept - len(kept_rows)
    return PartitionOutput(out.append_column(REASON, reasons), added=added)


@dataclass
class MixPlan:
    """Targets per domain from tokens available: weights, budget, whole epochs and the remainder
    each domain must take from a partial epoch. Executors differ only in how they find that cut."""

    weights: dict[str, float]
    budget: int
    targets: dict[str, float]
    full_epochs: dict[str, int]
    rests: dict[str, float]


def is_synthetic(domain: str) -> bool:
    return domain.startswith(("synth_", "synth/"))


def epoch_cap(cfg: MixConfig, domain: str) -> float:
    """`max_epochs_by` for the domain, else `max_epochs_synthetic` for synthetic domains, else `max_epochs`."""
    if domain in cfg.max_epochs_by:
        return cfg.max_epochs_by[domain]
    return cfg.max_epochs_synthetic if is_synthetic(domain) else cfg.max_epochs


def plan_mix(cfg: MixConfig, available: dict[str, int], pool: dict[str, int] | None = None) -> MixPlan:
    """Targets from unique tokens `available`; whole epochs and rests over `pool`, the tokens of one
    pass over the domain (with rehydration: every document times its copies; else `available`)."""
    pool = pool or available
    weights = domain_weights(cfg, available)
    budget = cfg.budget_tokens if cfg.budget_tokens is not None else sum(available.values())
    caps = {d: available[d] * epoch_cap(cfg, d) for d in available}
    targets = plan_targets(available, weights, budget, caps)
    full = {d: int(math.floor(targets[d] / pool[d])) if pool[d] else 0 for d in available}
    rests = {d: targets[d] - full[d] * pool[d] for d in available}
    return MixPlan(weights, budget, targets, full, rests)


def select_and_count(ctx: StageContext, cfg: MixConfig, available: dict[str, int], docs: dict[str, int],
                     weights: dict[str, float], targets: dict[str, float], budget: int,
                     full_epochs: dict[str, int], partial: dict[str, tuple[int, int | None, int]],
                     pool: dict[str, int] | None = None) -> dict[str, Any]:
    """The part of the mix every executor shares once the partial-epoch cuts are known: the per-domain
    report, the shortfall, the per-partition selection, and the manifest figures.
    `partial[d]` is (documents taken, last key taken, tokens taken) of domain d's partial epoch."""
    plan: dict[str, tuple[int, int | None]] = {}
    report: dict[str, dict[str, Any]] = {}
    pool = pool or available
    for d in available:
        target, avail, full = targets[d], available[d], full_epochs[d]
        _n_take, cut, taken_tokens = partial.get(d, (0, None, 0))
        plan[d] = (full, cut)
        realized = full * pool[d] + taken_tokens
        note = None
        if weights[d] > 0 and target + 1e-6 < budget * weights[d]:
            note = f"capped at max_epochs={epoch_cap(cfg, d)}"
        report[d] = {"available_tokens": avail, "available_docs": docs[d], "weight": round(weights[d], 6),
                     "target_tokens": round(target, 1), "realized_tokens": realized,
                     "epochs": round(realized / avail, 4) if avail else 0.0, "note": note}
        if cfg.rehydration() is not None:
            report[d]["rehydrated_tokens"] = pool[d]
    planned_total = sum(targets.values())
    shortfall = None
    if planned_total + 1e-6 < budget:
        shortfall = (f"budget {budget} tokens not reachable: {planned_total:.0f} available within the epoch caps "
                     f"({sum(available.values())} tokens × max_epochs)")
    ctx.write_partitions(functools.partial(_select_partition, cfg.by, ctx.pipeline.seed, plan, cfg.rehydration()),
                         progress=ctx.phase("selection", "partitions"))
    counts: dict[str, Any] = {}
    counts["budget_tokens"] = budget
    counts["realized_tokens"] = sum(r["realized_tokens"] for r in report.values())
    counts["domains"] = report
    counts["shortfall"] = shortfall
    return counts


class Stage(GlobalStage):
    Config = MixConfig
    config: MixConfig

    def reads(self) -> tuple[Column, ...]:
        made_by = "near_dedup"  # or exact_dedup
        counts = (Column("dup_count", pa.int64(), made_by=made_by),) if self.config.rehydrate else ()
        return (Column("id", pa.string()), Column(self.config.by), Column("n_tokens", pa.int32()), *counts)

    def adds(self) -> tuple[Column, ...]:
        return (Column("epoch", pa.int16()),)

    def fingerprint(self) -> dict[str, Any]:
        weights = load_weights(self.config)  # a bad weights file fails before anything is written
        return {"weights": weights} if self.config.weights_file else {}

    def run(self, ctx: StageContext) -> dict[str, Any]:
        cfg = self.config
        seed = ctx.pipeline.seed
        rehydrate = cfg.rehydration()
        items = [(p, cfg.by, seed) for p in ctx.inputs]
        totals: dict[str, tuple[int, int]]
        totals = aggregate(ctx.executor, _domain_totals, items, _merge_totals, {}, ctx.phase("domain tokens"))
        available = {d: totals[d][0] for d in sorted(totals)}
        docs = {d: totals[d][1] for d in available}
        pool = None
        if rehydrate:
            pooled: dict[str, tuple[int, int]]
            pooled = aggregate(ctx.executor, _domain_totals, [(*i, rehydrate) for i in items], _merge_totals, {},
                               ctx.phase("rehydration pool"))
            pool = {d: pooled.get(d, (0, 0))[0] for d in available}
        plan = plan_mix(cfg, available, pool)
        partial = partial_epochs(ctx.executor, list(ctx.inputs), cfg.by, seed, plan.rests, ctx.phase("partial epochs"),
                                 rehydrate)
        return select_and_count(ctx, cfg, available, docs, plan.weights, plan.targets, plan.budget,
                                plan.full_epochs, partial, pool)
