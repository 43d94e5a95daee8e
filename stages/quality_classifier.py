"""`quality_classifier`: fastText P(high quality) per document, then a global decision.

Decisions that depend on the whole corpus (keep the top 10%, Nemotron-CC-style quality buckets
from token-weighted percentiles) are computed from all scores at once, never per partition, so
the kept set is the same for any partitioning or worker count. Scoring and deciding are two
passes; scores are kept on disk between them so a resumed run does not score again.
"""

from __future__ import annotations

import math
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
from pipeline.config import StageConfig
from pipeline.executors.local import get_stage, merge_counts, part_done, partition_name, write_split
from pipeline.io import write_parquet
from pipeline.schema import REASON
from pipeline.storage import arrow
from stages.base import GlobalStage, StageContext


class QualityClassifierConfig(StageConfig):
    model: str
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
    """The score of the k-th best document, k = ceil(fraction * N): keep scores >= it."""
    if len(scores) == 0:
        return math.inf
    k = max(1, math.ceil(fraction * len(scores)))
    return float(np.sort(scores)[::-1][k - 1])


def bucket_boundaries(scores: np.ndarray, weights: np.ndarray, n: int) -> list[float]:
    """Score cut points so each of n buckets holds ~1/n of the total weight (tokens)."""
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


def assign_buckets(scores: np.ndarray, cuts: list[float]) -> np.ndarray:
    return np.searchsorted(np.asarray(cuts, dtype=np.float64), scores.astype(np.float64), side="right").astype(np.int16)


def _weights(table: pa.Table) -> np.ndarray:
    if "n_tokens" in table.column_names:
        return pc.fill_null(table.column("n_tokens"), 0).to_numpy().astype(np.float64)
    return pc.utf8_length(table.column("text")).to_numpy(zero_copy_only=False).astype(np.float64)


def _score_partition(task: tuple[StageConfig, Any, str, Path, Path]) -> None:
    config, pipeline, stage_hash, in_path, out_path = task
    if out_path.exists():
        return
    stage = get_stage(config, pipeline, stage_hash)
    table = pq.read_table(arrow(in_path))
    if "quality_score" in table.column_names:
        table = table.drop_columns(["quality_score"])
    scores = stage.score(table)
    write_parquet(table.append_column("quality_score", pa.array(scores, pa.float32())), out_path)


def _decide_partition(task: tuple[StageConfig, str, Path, Path, float | None, list[float] | None]) -> None:
    config, stage_hash, scored_path, stage_dir, threshold, cuts = task
    table = pq.read_table(arrow(scored_path))
    scores = table.column("quality_score").to_numpy(zero_copy_only=False)
    if cuts is not None:
        table = table.append_column("quality_bucket", pa.array(assign_buckets(scores, cuts), pa.int16()))
    reasons: list[str | None] = [None] * table.num_rows
    if threshold is not None:
        label = "quality:not_top" if config.keep_top is not None else "quality:below_threshold"
        reasons = [None if s >= threshold else label for s in scores]
    table = table.append_column(REASON, pa.array(reasons, pa.string()))
    write_split(table, stage_dir, partition_name(scored_path), stage_hash, {})


class Stage(GlobalStage):
    Config = QualityClassifierConfig
    config: QualityClassifierConfig

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
        stage_hash = ctx.stats["stage_hash"]
        scored_dir = ctx.stage_dir / "_scored"
        scored = [scored_dir / p.name for p in ctx.inputs]
        ctx.executor.map(_score_partition, [(self.config, ctx.pipeline, stage_hash, p, s)
                                            for p, s in zip(ctx.inputs, scored, strict=True)],
                         ctx.stats.get("progress"))
        all_scores, all_weights = [], []
        for path in scored:
            t = pq.read_table(arrow(path), columns=None if self.config.buckets else ["quality_score"])
            all_scores.append(t.column("quality_score").to_numpy(zero_copy_only=False))
            if self.config.buckets:
                all_weights.append(_weights(t))
        scores = np.concatenate(all_scores) if all_scores else np.zeros(0, np.float32)
        threshold = self.config.threshold
        if self.config.keep_top is not None:
            threshold = keep_top_threshold(scores, self.config.keep_top)
        cuts = None
        if self.config.buckets:
            cuts = bucket_boundaries(scores, np.concatenate(all_weights), self.config.buckets)
        todo = [s for s in scored if part_done(ctx.stage_dir, partition_name(s), stage_hash) is None]
        ctx.executor.map(_decide_partition, [(self.config, stage_hash, s, ctx.stage_dir, threshold, cuts)
                                             for s in todo], ctx.stats.get("progress"))
        counts = merge_counts(part_done(ctx.stage_dir, partition_name(s), stage_hash) or {} for s in scored)
        counts["threshold"] = threshold
        counts["score_mean"] = float(scores.mean()) if len(scores) else None
        if cuts is not None:
            counts["bucket_boundaries"] = cuts
        return counts  # the runner removes `_scored` once the manifest is written
