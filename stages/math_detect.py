"""`math_detect`: `math_score` (0-1) and `is_math` per document, from what survives extraction.

Signals (each a column, `filters/math_signals.py`): TeX formulas in delimiters (the larger of the
text's own count and `math_formulas`, the formulas `extract` converted from MathJax/KaTeX/MathML),
known TeX math commands, the density of Unicode math symbols, and the share of lines that are plain-text
equations, all measured outside fenced code. A page that loads MathJax but holds no formula scores as
any other page: the loader is not a signal. The rule score is a logistic model whose weights are data
(`filters/math_detect.json`, fitted on real pages: docs/math.md).

With `model:` (a fastText classifier trained by `curate train quality --from-annotations RUN --recipe
math_score`), the score is `(1 - model_weight) * rule + model_weight * P(model)`.

`action`: `tag` (default) removes nothing; `keep` removes non-math documents (`math_detect:not_math`),
`drop` removes math documents (`math_detect:math`). Documents out of scope (`sources`/`skip_sources`)
are kept with `is_math` false and null signals.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from filters import math_signals
from filters.fasttext_classifier import (
    check_quality_model,
    file_fingerprint,
    model_preprocessing,
    predict_proba,
    prepare_lines,
)
from filters.text import in_sources
from pipeline.config import ReadFile, StageConfig
from pipeline.schema import REASON
from stages.base import Column, MapStage

SIGNALS: dict[str, pa.DataType] = {
    "math_delimited": pa.int32(),  # TeX formulas in delimiters in the text
    "math_display": pa.int32(),  # of which displayed ($$..$$, \\[..\\])
    "math_tex_commands": pa.int32(),
    "math_symbol_density": pa.float32(),
    "math_equation_lines": pa.int32(),
}


class MathDetectConfig(StageConfig):
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # is_math: score >= it (default: the data file's)
    action: Literal["tag", "keep", "drop"] = "tag"
    sources: list[str] | None = None  # measure only these sources (default: all)
    skip_sources: list[str] = []
    model: ReadFile | None = None  # fastText math classifier (optional)
    positive_label: str = "hq"  # the label `curate train quality --from-annotations` gives positives
    model_weight: float = Field(default=0.5, ge=0.0, le=1.0)
    max_chars: int = Field(default=20000, ge=100)  # text the model reads


class Stage(MapStage):
    Config = MathDetectConfig
    config: MathDetectConfig

    def fingerprint(self) -> dict[str, Any]:
        if self.config.model is None:
            return {}
        check_quality_model(self.config.model, self.config.positive_label)
        return file_fingerprint(self.config.model)

    def setup(self) -> None:
        self.model = None
        if self.config.model is not None:
            self.model = check_quality_model(self.config.model, self.config.positive_label)
            self.preprocess = model_preprocessing(self.config.model)

    def threshold(self) -> float:
        return self.config.threshold if self.config.threshold is not None else math_signals.tables().threshold

    def reads(self) -> tuple[Column, ...]:
        return (Column("text", pa.string()), Column("source", pa.string()),
                Column("math_formulas", pa.int32(), optional=True, made_by="extract"))

    def adds(self) -> tuple[Column, ...]:
        model = (Column("math_model_score", pa.float32()),) if self.config.model else ()
        return (*(Column(n, t) for n, t in SIGNALS.items()), *model, Column("math_score", pa.float32()),
                Column("is_math", pa.bool_()))

    def scores(self, table: pa.Table) -> dict[str, np.ndarray]:
        """Signals, the model's probability (when configured) and the combined score of in-scope rows."""
        sig = math_signals.measure(table.column("text"))
        page = None
        if "math_formulas" in table.column_names:
            page = pc.fill_null(table.column("math_formulas"), 0).to_numpy(zero_copy_only=False)
        score = math_signals.rule_score(math_signals.features(sig, page))
        out = {"math_delimited": sig.formulas, "math_display": sig.display, "math_tex_commands": sig.tex_commands,
               "math_symbol_density": sig.symbol_density, "math_equation_lines": sig.equation_lines}
        if self.model is not None:
            lines = prepare_lines(table.column("text"), self.config.max_chars, **self.preprocess)
            prob = predict_proba(self.model, lines, self.config.positive_label)
            out["math_model_score"] = prob
            w = self.config.model_weight
            score = ((1.0 - w) * score + w * prob).astype(np.float32)
        out["math_score"] = score
        return out

    def apply(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        scope = in_sources(table.column("source"), self.config.sources, self.config.skip_sources)
        idx = np.flatnonzero(scope)
        values = self.scores(table.take(pa.array(idx))) if len(idx) else {}
        out = table.drop_columns([c.name for c in self.adds() if c.name in table.column_names] +
                                 ([REASON] if REASON in table.column_names else []))
        is_math = np.zeros(n, bool)
        for col in self.adds():
            if col.name == "is_math" or col.type is None:
                continue
            full = np.zeros(n, dtype=col.type.to_pandas_dtype())
            if len(idx):
                full[idx] = values[col.name]
            out = out.append_column(col.name, pa.array(full, col.type, mask=~scope))
        if len(idx):
            is_math[idx] = values["math_score"] >= self.threshold()
        out = out.append_column("is_math", pa.array(is_math, pa.bool_()))
        return out.append_column(REASON, self.reasons(is_math, scope))

    def reasons(self, is_math: np.ndarray, scope: np.ndarray) -> pa.Array:
        action = self.config.action
        reasons = np.full(len(is_math), None, dtype=object)
        if action == "keep":
            reasons[scope & ~is_math] = "math_detect:not_math"
        elif action == "drop":
            reasons[is_math] = "math_detect:math"
        return pa.array(reasons, pa.string())

    def counters(self, result: pa.Table) -> dict[str, int]:
        return {"math": int(pc.sum(result.column("is_math")).as_py() or 0),
                "math_measured": result.num_rows - result.column("math_score").null_count}
