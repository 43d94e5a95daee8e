"""`domain_classifier`: a `domain` label per document from rules first, then a fastText model.

Rules (source defaults, URL host/path patterns, a filter expression over columns such as
`where: is_math`) encode what the user knows for sure and so take
precedence; the model labels the rest. Documents below `min_score` get `other_label`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from filters.fasttext_classifier import (
    check_domain_model,
    file_fingerprint,
    model_preprocessing,
    predict_top,
    prepare_lines,
)
from pipeline.config import ReadFile, StageConfig, Strict
from pipeline.schema import REASON
from stages.base import Column, MapStage
from synth.filter_expr import FilterExpr, valid_expression


class DomainRule(Strict):
    domain: str
    source: str | None = None  # all documents of this input
    url: str | None = None  # regex searched in the URL (host and path)
    where: str | None = None  # a filter expression over columns, e.g. "is_math" (math_detect)

    @field_validator("url")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from None
        return value

    @field_validator("where")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        return valid_expression(value)

    @model_validator(mode="after")
    def _has_condition(self) -> DomainRule:
        if self.source is None and self.url is None and self.where is None:
            raise ValueError("a rule needs `source`, `url` or `where`")
        return self


class DomainClassifierConfig(StageConfig):
    model: ReadFile | None = None
    rules: list[DomainRule] = Field(default_factory=list)
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    other_label: str = "other"
    keep: list[str] | None = None  # remove documents whose domain is not listed
    max_chars: int = Field(default=20000, ge=100)

    @model_validator(mode="after")
    def _needs_something(self) -> DomainClassifierConfig:
        if self.model is None and not self.rules:
            raise ValueError("set `model`, `rules`, or both")
        return self


class Stage(MapStage):
    Config = DomainClassifierConfig
    config: DomainClassifierConfig

    def fingerprint(self) -> dict[str, Any]:
        if self.config.model is None:
            return {}
        check_domain_model(self.config.model)
        return file_fingerprint(self.config.model)

    def setup(self) -> None:
        self.model = check_domain_model(self.config.model) if self.config.model else None
        self.preprocess = model_preprocessing(self.config.model) if self.config.model else {}  # as trained

    def reads(self) -> tuple[Column, ...]:
        where = {c: i for i, r in enumerate(self.config.rules) if r.where for c in FilterExpr(r.where).columns}
        return (Column("text", pa.string()), Column("source", pa.string()), Column("url", pa.string(), optional=True),
                *(Column(c, setting=f"rules[{i}].where") for c, i in where.items() if c not in ("text", "source")))

    def adds(self) -> tuple[Column, ...]:
        return (Column("domain", pa.string()), Column("domain_score", pa.float32()), Column("domain_rule", pa.int32()))

    def _by_rules(self, table: pa.Table) -> tuple[list[str | None], list[int | None]]:
        """Per document: the domain of the first rule it matches (by source and/or URL pattern), and that rule."""
        n = table.num_rows
        domains: list[str | None] = [None] * n
        rule_ids: list[int | None] = [None] * n
        sources = table.column("source").to_pylist()
        urls = table.column("url").to_pylist() if "url" in table.column_names else [None] * n
        for r, rule in enumerate(self.config.rules):
            pattern = re.compile(rule.url) if rule.url else None
            where = FilterExpr(rule.where).mask(table) if rule.where else np.ones(n, bool)
            for i in range(n):
                if domains[i] is None and where[i] and (rule.source is None or sources[i] == rule.source) and \
                        (pattern is None or (urls[i] and pattern.search(urls[i]))):
                    domains[i], rule_ids[i] = rule.domain, r
        return domains, rule_ids

    def _by_model(self, table: pa.Table, domains: list[str | None]) -> np.ndarray:
        """The classifier's domain for documents no rule matched (`other_label` below `min_score`); scores."""
        scores = np.where(np.array([d is not None for d in domains], dtype=bool), 1.0, 0.0).astype(np.float32)
        todo = [i for i, d in enumerate(domains) if d is None]
        if todo and self.model is not None:
            lines = prepare_lines(table.column("text").take(pa.array(todo)), self.config.max_chars, **self.preprocess)
            labels, probs = predict_top(self.model, lines)
            for i, label, prob in zip(todo, labels, probs, strict=True):
                domains[i] = label if prob >= self.config.min_score else self.config.other_label
                scores[i] = prob
        return scores

    def apply(self, table: pa.Table) -> pa.Table:
        domains, rule_ids = self._by_rules(table)
        scores = self._by_model(table, domains)
        domains = [d if d is not None else self.config.other_label for d in domains]
        table = table.drop_columns([c for c in ("domain", "domain_score", "domain_rule") if c in table.column_names])
        table = table.append_column("domain", pa.array(domains, pa.string()))
        table = table.append_column("domain_score", pa.array(scores, pa.float32()))
        table = table.append_column("domain_rule", pa.array(rule_ids, pa.int32()))
        if self.config.keep is not None:
            kept = pc.is_in(table.column("domain"), pa.array(self.config.keep, pa.string()))
            reason = pc.if_else(kept, pa.scalar(None, pa.string()), pa.scalar("domain:not_kept"))
        else:
            reason = pa.nulls(table.num_rows, pa.string())
        return table.append_column(REASON, reason)

    def counters(self, result: pa.Table) -> dict[str, int]:
        counts = pc.value_counts(result.column("domain")).to_pylist()
        return {f"domain_{c['values']}": int(c["counts"]) for c in counts}
