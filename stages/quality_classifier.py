"""`quality_classifier`: fastText P(high quality) per document, then a global decision.

Decisions that depend on the whole corpus (keep the top 10%, Nemotron-CC-style quality buckets
from token-weighted percentiles) are computed from all scores at once, never per partition, so
the kept set is the same for any partitioning or worker count. Scoring and deciding are two
passes; scores are kept on disk between them so a resumed run does not score again.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from filters.fasttext_classifier import (
    check_quality_model,
    file_fingerprint,
    model_preprocessing,
    predict_proba,
    prepare_lines,
)
from pipeline.config import ReadFile, StageConfig
from pipeline.primitives import Executor, Progress, aggregate
from pipeline.schema import REASON
from pipeline.storage import arrow
from stages.base import Column, GlobalStage, Part, PartitionOutput, StageContext
from stages.registry import cached_stage


class QualityClassifierConfig(StageConfig):
    model: ReadFile
    positive_label: str = "hq"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # keep P(positive) >= threshold
    keep_top: float | None = Field(default=None, gt=0.0, le=1.0)  # keep this fraction, globally
    buckets: int | None = Field(default=None, ge=2, le=1000)  # quality_bucket 0..N-1, token-weighted
    max_chars: int = Field(default=20000, ge=100)

    @model_validator(mode="after")
    def _one_decision(self) -> QualityClassifierConfig:
        if self.threshold is not None and self.keep_top is not None:
            raise ValueError("set threshold or keep_top, not both")
        return self


def keep_top_threshold(scores: np.ndarray, fraction: float) -> float:
    """The score of the k-th best document, k = ceil(fraction * N): keep scores >= it (in-memory form)."""
    if len(scores) == 0:
        return math.inf
    k = max(1, math.ceil(fraction * len(scores)))
    return float(np.sort(scores)[::-1][k - 1])


def bucket_boundaries(scores: np.ndarray, weights: np.ndarray, n: int) -> list[float]:
    """Score cut points so each of n buckets holds ~1/n of the total weight (in-memory form): cut i is
    the smallest score whose cumulative weight share exceeds i/n."""
    if len(scores) == 0:
        return []
    order = np.lexsort((weights, scores))
    cum = np.cumsum(weights[order].astype(np.float64))
    cum /= cum[-1] if cum[-1] > 0 else 1.0
    cuts = []
    for i in range(1, n):
        pos = int(np.searchsorted(cum, i / n, side="right"))  # first doc past the i-th weight quantile
        cuts.append(float(scores[order][min(pos, len(order) - 1)]))
    return cuts


# -- the same two decisions from mergeable histograms (driver memory independent of the corpus) --
# A float32 score maps to a uint32 key of the same order; pass 1 histograms the keys' high 16 bits
# (count and weight per bin), pass 2 the low 16 bits inside the few bins where a wanted position
# falls. Counts and integer weights add up exactly, so the result is the in-memory one, bit for bit.

HIGH = 1 << 16


def score_keys(scores: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(scores, dtype=np.float32).view(np.uint32)
    return np.where(bits & np.uint32(0x80000000), ~bits, bits | np.uint32(0x80000000)).astype(np.uint32)


def key_score(key: int) -> float:
    bits = key ^ 0x80000000 if key & 0x80000000 else ~key & 0xFFFFFFFF
    return float(np.array([bits], np.uint32).view(np.float32)[0])


SCORE_UNIT = 2**32  # fixed point of the score sum (scores are probabilities: |score| * rows stays < 2**63)


@dataclass
class ScoreHistogram:
    """Counts and weight sums per high-16-bit score bin, plus the score sum for the mean in fixed point
    (units of 2**-32, an integer): merging must be exact, so the result does not depend on how
    partitions were grouped into tasks."""

    counts: np.ndarray
    weights: np.ndarray
    score_sum: int = 0

    @staticmethod
    def zero() -> ScoreHistogram:
        return ScoreHistogram(np.zeros(HIGH, np.int64), np.zeros(HIGH, np.int64))

    def merge(self, other: ScoreHistogram) -> ScoreHistogram:
        return ScoreHistogram(self.counts + other.counts, self.weights + other.weights,
                              self.score_sum + other.score_sum)


def _high_histogram(task: tuple[Path, bool]) -> ScoreHistogram:
    path, weighted = task
    scores, weights = _scores_and_weights(path, weighted)
    high = (score_keys(scores) >> np.uint32(16)).astype(np.int64)
    return ScoreHistogram(np.bincount(high, minlength=HIGH).astype(np.int64),
                          np.bincount(high, weights=weights, minlength=HIGH).astype(np.int64),
                          int(np.rint(scores.astype(np.float64) * SCORE_UNIT).astype(np.int64).sum()))


def _low_values(task: tuple[Path, bool, tuple[int, ...]]) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For each wanted high bin: its distinct low 16 bits with their counts and weight sums."""
    path, weighted, bins = task
    scores, weights = _scores_and_weights(path, weighted)
    keys = score_keys(scores)
    high = keys >> np.uint32(16)
    out = {}
    for b in bins:
        mask = high == b
        low, inverse = np.unique(keys[mask] & np.uint32(0xFFFF), return_inverse=True)
        out[b] = (low.astype(np.int64), np.bincount(inverse, minlength=len(low)).astype(np.int64),
                  np.bincount(inverse, weights=weights[mask], minlength=len(low)).astype(np.int64))
    return out


def _merge_low(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, (low, n, w) in b.items():
        if k in out:
            low0, n0, w0 = out[k]
            merged, inverse = np.unique(np.concatenate([low0, low]), return_inverse=True)
            out[k] = (merged, np.bincount(inverse, np.concatenate([n0, n]).astype(np.float64)).astype(np.int64),
                      np.bincount(inverse, np.concatenate([w0, w]).astype(np.float64)).astype(np.int64))
        else:
            out[k] = (low, n, w)
    return out


def _scores_and_weights(path: Path, weighted: bool) -> tuple[np.ndarray, np.ndarray]:
    cols = None if weighted else ["quality_score"]
    t = pq.read_table(arrow(path), columns=cols)
    scores = t.column("quality_score").to_numpy(zero_copy_only=False).astype(np.float32)
    return scores, (_weights(t) if weighted else np.zeros(len(scores)))


@dataclass
class Wanted:
    """A position to find: the `rank`-th score (0-based, ascending) or the first score whose
    cumulative weight share exceeds `share`."""

    rank: int | None = None
    share: float | None = None


def _locate(counts: np.ndarray, weights: np.ndarray, total_w: int, want: Wanted, before_n: int = 0,
            before_w: int = 0) -> tuple[int, int, int]:
    """(bin, count before it, weight before it) of the bin holding `want`."""
    cum_n = before_n + np.cumsum(counts)
    if want.rank is not None:
        i = int(np.searchsorted(cum_n, want.rank, side="right"))
    else:
        cum_w = before_w + np.cumsum(weights)
        share = cum_w.astype(np.float64) / float(total_w) if total_w > 0 else np.zeros(len(cum_w))
        i = int(np.searchsorted(share, want.share or 0.0, side="right"))  # one of rank and share is set
        if i >= len(counts):  # no share exceeds it (all weights 0): the last document, as in memory
            return _locate(counts, weights, total_w, Wanted(rank=int(cum_n[-1]) - 1), before_n, before_w)
    i = min(i, len(counts) - 1)
    return i, int(cum_n[i] - counts[i]), int(before_w + np.cumsum(weights)[i] - weights[i])


def histogram_scores(ex: Executor, scored: list[Path], wanted: list[Wanted], weighted: bool,
                     progress: Progress | None = None) -> tuple[list[float], float | None, int]:
    """The scores at `wanted` positions over all `scored` partitions; plus the mean score and N."""
    hist = aggregate(ex, _high_histogram, [(p, weighted) for p in scored], ScoreHistogram.merge,
                     ScoreHistogram.zero(), progress)
    n, total_w = int(hist.counts.sum()), int(hist.weights.sum())
    if n == 0:
        return [], None, 0
    bins = [_locate(hist.counts, hist.weights, total_w, w) for w in wanted]
    needed = tuple(sorted({b for b, _, _ in bins}))
    lows: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    lows = aggregate(ex, _low_values, [(p, weighted, needed) for p in scored], _merge_low, {}, progress)
    out = []
    for want, (b, before_n, before_w) in zip(wanted, bins, strict=True):
        low, counts, weights = lows[b]
        j, _, _ = _locate(counts, weights, total_w, want, before_n, before_w)
        out.append(key_score((b << 16) | int(low[j])))
    return out, hist.score_sum / SCORE_UNIT / n, n


def assign_buckets(scores: np.ndarray, cuts: list[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(cuts, dtype=np.float64), scores.astype(np.float64), side="right").astype(np.int16)


def _weights(table: pa.Table) -> np.ndarray:
    if "n_tokens" in table.column_names:
        return pc.fill_null(table.column("n_tokens"), 0).to_numpy().astype(np.float64)
    return pc.utf8_length(table.column("text")).to_numpy(zero_copy_only=False).astype(np.float64)


def _score_partition(config: StageConfig, pipeline: Any, stage_hash: str, part: Part) -> pa.Table:
    stage = cached_stage(config, pipeline, stage_hash)
    table = pq.read_table(arrow(part.path))
    if "quality_score" in table.column_names:
        table = table.drop_columns(["quality_score"])
    return table.append_column("quality_score", pa.array(stage.score(table), pa.float32()))


def _decide_partition(config: QualityClassifierConfig, scored_dir: Path, threshold: float | None,
                      cuts: list[float] | None, part: Part) -> PartitionOutput:
    table = pq.read_table(arrow(scored_dir / part.path.name))
    scores = table.column("quality_score").to_numpy(zero_copy_only=False)
    if cuts is not None:
        table = table.append_column("quality_bucket", pa.array(assign_buckets(scores, cuts), pa.int16()))
    reasons: list[str | None] = [None] * table.num_rows
    if threshold is not None:
        label = "quality:not_top" if config.keep_top is not None else "quality:below_threshold"
        reasons = [None if s >= threshold else label for s in scores]
    return PartitionOutput(table.append_column(REASON, pa.array(reasons, pa.string())))


class Stage(GlobalStage):
    Config = QualityClassifierConfig
    config: QualityClassifierConfig

    def reads(self) -> tuple[Column, ...]:
        return (Column("text", pa.string()), Column("n_tokens", pa.int32(), optional=True))

    def adds(self) -> tuple[Column, ...]:
        buckets = (Column("quality_bucket", pa.int16()),) if self.config.buckets else ()
        return (Column("quality_score", pa.float32()), *buckets)

    def fingerprint(self) -> dict[str, Any]:
        check_quality_model(self.config.model, self.config.positive_label)  # fail before anything is written
        return file_fingerprint(self.config.model)

    def setup(self) -> None:
        self.model = check_quality_model(self.config.model, self.config.positive_label)
        self.preprocess = model_preprocessing(self.config.model)  # score as trained

    def score(self, table: pa.Table) -> np.ndarray:
        lines = prepare_lines(table.column("text"), self.config.max_chars, **self.preprocess)
        return predict_proba(self.model, lines, self.config.positive_label)

    def run(self, ctx: StageContext) -> dict[str, Any]:
        scored_dir = ctx.stage_dir / "_scored"
        scored = ctx.write_scratch("_scored", functools.partial(_score_partition, self.config, ctx.pipeline,
                                                                ctx.stage_hash))
        cfg = self.config
        n = sum(pq.ParquetFile(arrow(p)).metadata.num_rows for p in scored)
        buckets = cfg.buckets or 0
        wanted = [Wanted(share=i / buckets) for i in range(1, buckets)]
        if cfg.keep_top is not None:  # the k-th best, k = ceil(keep_top * N), is rank N - k from the bottom
            wanted.append(Wanted(rank=n - max(1, math.ceil(cfg.keep_top * n))))
        values, score_mean, _ = histogram_scores(ctx.executor, scored, wanted, bool(cfg.buckets),
                                                 ctx.phase("score histogram"))
        threshold = cfg.threshold
        if cfg.keep_top is not None:
            threshold = values[-1] if values else math.inf
        cuts = (values[:cfg.buckets - 1] if values else []) if cfg.buckets else None
        ctx.write_partitions(functools.partial(_decide_partition, self.config, scored_dir, threshold, cuts),
                             progress=ctx.phase("decisions", "partitions"))
        counts: dict[str, Any] = {"threshold": threshold}
        counts["score_mean"] = score_mean
        if cuts is not None:
            counts["bucket_boundaries"] = cuts
        return counts  # the runner removes `_scored` once the manifest is written
