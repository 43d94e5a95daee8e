"""`mix`: select documents per domain to hit a token budget with given weights and epoch caps.

1. Tokens available per domain are summed over the whole corpus (`n_tokens`, from `tokenize`).
2. Weights come from the config, a JSON file (e.g. from a DoReMi/RegMix search), the natural
   distribution, temperature sampling (w ∝ tokens^(1/τ)) or UniMax (uniform, capped).
3. Targets are budget × weight, water-filled: a domain cannot exceed `max_epochs` × available; its
   shortfall goes to the others in proportion to their weights.
4. Each domain repeats whole epochs, then takes a partial epoch in `hash(seed, id)` order until the
   target is met, so the result overshoots by less than one document and is deterministic.
Each selected copy carries its `epoch` (0 for the first); copies beyond the first count as `added`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from pipeline.config import ConfigError, ReadFile, StageConfig
from pipeline.executors.local import merge_counts, part_done, partition_name, write_split
from pipeline.schema import REASON
from pipeline.storage import arrow
from stages.base import GlobalStage, StageContext
from stages.shard import shuffle_keys


class MixConfig(StageConfig):
    by: str = "domain"  # the column whose values are mixed (domain, source, quality_bucket, ...)
    weighting: Literal["explicit", "natural", "temperature", "unimax"] | None = None
    weights: dict[str, float] | None = None
    weights_file: ReadFile | None = None  # JSON {"domain": weight, ...} from an external mixture search
    temperature: float = Field(default=1.0, gt=0.0)
    budget_tokens: int | None = Field(default=None, ge=1)  # None: everything available, once
    max_epochs: float = Field(default=4.0, gt=0.0)
    max_epochs_by: dict[str, float] = Field(default_factory=dict)

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


def _domain_keys(path: Path, by: str, seed: int) -> pa.Table:
    table = pq.read_table(arrow(path), columns=["id", by, "n_tokens"])
    keys = shuffle_keys(table.column("id"), seed)
    return pa.table({"domain": pc.cast(table.column(by), pa.string()), "key": pa.array(keys, pa.uint64()),
                     "n_tokens": table.column("n_tokens")})


def _select_partition(task: tuple[str, Path, Path, str, int, dict[str, tuple[int, int | None]]]) -> None:
    stage_hash, in_path, stage_dir, by, seed, plan = task
    table = pq.read_table(arrow(in_path))
    keys = shuffle_keys(table.column("id"), seed)
    domains = pc.cast(table.column(by), pa.string()).to_pylist()
    copies = np.zeros(table.num_rows, dtype=np.int64)
    for i, (d, k) in enumerate(zip(domains, keys, strict=True)):
        full, cut = plan.get(str(d), (0, None))
        copies[i] = full + (1 if cut is not None and int(k) <= cut else 0)
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
    write_split(out.append_column(REASON, reasons), stage_dir, partition_name(in_path), stage_hash, {}, added=added)


@dataclass
class MixPlan:
    """Targets per domain from tokens available: weights, budget, whole epochs and the remainder
    each domain must take from a partial epoch. Executors differ only in how they find that cut."""

    weights: dict[str, float]
    budget: int
    targets: dict[str, float]
    full_epochs: dict[str, int]
    rests: dict[str, float]


def plan_mix(cfg: MixConfig, available: dict[str, int]) -> MixPlan:
    weights = domain_weights(cfg, available)
    budget = cfg.budget_tokens if cfg.budget_tokens is not None else sum(available.values())
    caps = {d: available[d] * cfg.max_epochs_by.get(d, cfg.max_epochs) for d in available}
    targets = plan_targets(available, weights, budget, caps)
    full = {d: int(math.floor(targets[d] / available[d])) if available[d] else 0 for d in available}
    rests = {d: targets[d] - full[d] * available[d] for d in available}
    return MixPlan(weights, budget, targets, full, rests)


def select_and_count(ctx: StageContext, cfg: MixConfig, available: dict[str, int], docs: dict[str, int],
                     weights: dict[str, float], targets: dict[str, float], budget: int,
                     full_epochs: dict[str, int], partial: dict[str, tuple[int, int | None, int]]) -> dict[str, Any]:
    """The part of the mix every executor shares once the partial-epoch cuts are known: the per-domain
    report, the shortfall, the per-partition selection, and the manifest counts.
    `partial[d]` is (documents taken, last key taken, tokens taken) of domain d's partial epoch."""
    stage_hash = ctx.stats["stage_hash"]
    plan: dict[str, tuple[int, int | None]] = {}
    report: dict[str, dict[str, Any]] = {}
    for d in available:
        target, avail, full = targets[d], available[d], full_epochs[d]
        _n_take, cut, taken_tokens = partial.get(d, (0, None, 0))
        plan[d] = (full, cut)
        realized = full * avail + taken_tokens
        note = None
        if weights[d] > 0 and target + 1e-6 < budget * weights[d]:
            note = f"capped at max_epochs={cfg.max_epochs_by.get(d, cfg.max_epochs)}"
        report[d] = {"available_tokens": avail, "available_docs": docs[d], "weight": round(weights[d], 6),
                     "target_tokens": round(target, 1), "realized_tokens": realized,
                     "epochs": round(realized / avail, 4) if avail else 0.0, "note": note}
    planned_total = sum(targets.values())
    shortfall = None
    if planned_total + 1e-6 < budget:
        shortfall = (f"budget {budget} tokens not reachable: {planned_total:.0f} available within the epoch caps "
                     f"({sum(available.values())} tokens × max_epochs)")
    todo = [p for p in ctx.inputs if part_done(ctx.stage_dir, partition_name(p), stage_hash) is None]
    ctx.executor.map(_select_partition, [(stage_hash, p, ctx.stage_dir, cfg.by, ctx.pipeline.seed, plan)
                                         for p in todo], ctx.stats.get("progress"))
    counts = merge_counts(part_done(ctx.stage_dir, partition_name(p), stage_hash) or {} for p in ctx.inputs)
    counts["budget_tokens"] = budget
    counts["realized_tokens"] = sum(r["realized_tokens"] for r in report.values())
    counts["domains"] = report
    counts["shortfall"] = shortfall
    return counts


class Stage(GlobalStage):
    Config = MixConfig
    config: MixConfig

    def fingerprint(self) -> dict[str, Any]:
        weights = load_weights(self.config)  # a bad weights file fails before anything is written
        return {"weights": weights} if self.config.weights_file else {}

    def run(self, ctx: StageContext) -> dict[str, Any]:
        cfg = self.config
        seed = ctx.pipeline.seed
        names = pq.read_schema(arrow(ctx.inputs[0])).names if ctx.inputs else []
        missing = [c for c in (cfg.by, "n_tokens") if ctx.inputs and c not in names]
        if missing:
            raise ConfigError([f"stages.{ctx.stage.name}: input documents have no column {missing[0]!r} "
                               f"(add a {'tokenize' if missing[0] == 'n_tokens' else 'classifier'} stage before)"])
        tables = [_domain_keys(p, cfg.by, seed) for p in ctx.inputs]
        allkeys = pa.concat_tables(tables) if tables else pa.table({"domain": [], "key": [], "n_tokens": []})
        domains = allkeys.column("domain").to_numpy(zero_copy_only=False).astype(str)
        keys = allkeys.column("key").to_numpy()
        tokens = allkeys.column("n_tokens").to_numpy(zero_copy_only=False).astype(np.int64)
        available = {d: int(tokens[domains == d].sum()) for d in sorted(set(domains.tolist()))}
        docs = {d: int((domains == d).sum()) for d in available}
        plan = plan_mix(cfg, available)
        partial: dict[str, tuple[int, int | None, int]] = {}
        for d in available:
            rest = plan.rests[d]
            mask = domains == d
            order = np.argsort(keys[mask], kind="stable")
            sorted_keys, sorted_tokens = keys[mask][order], tokens[mask][order]
            before = np.cumsum(sorted_tokens) - sorted_tokens
            n_take = int(np.sum(before < rest)) if rest > 0 else 0
            cut = int(sorted_keys[n_take - 1]) if n_take else None
            partial[d] = (n_take, cut, int(sorted_tokens[:n_take].sum()))
        return select_and_count(ctx, cfg, available, docs, plan.weights, plan.targets, plan.budget,
                                plan.full_epochs, partial)
