"""`secrets`: redact credentials in code and text; count them per kind. Never removes a document.

Cloud keys, service tokens (GitHub, GitLab, Slack, Stripe, Google, SendGrid, npm, Twilio), JWTs,
private key blocks, passwords in connection strings, and passwords/secrets/tokens assigned in code
are replaced by type-tagged placeholders inside their quotes (`"<SECRET_AWS_KEY>"`), so files stay
parseable; e-mail and public IP addresses get `pii`'s placeholders. Writes `secrets` (matches per
document) and `secret_kinds` (`aws_access_key:1,email:2`); the manifest gets totals per kind and the
number of documents with any. Patterns and false-positive guards: `filters/secrets.py` and
`filters/code_data/secrets.yaml`.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import field_validator

from filters.secrets import KINDS, redact_secrets
from filters.text import as_string_array
from pipeline.config import ReadFile, StageConfig
from pipeline.io import sha256_file
from pipeline.schema import REASON
from stages.base import MapStage


class SecretsConfig(StageConfig):
    kinds: list[str] = list(KINDS)  # any of filters.secrets.KINDS
    mask: bool = True  # false: only count
    patterns: ReadFile | None = None  # a patterns file in the shipped format instead of code_data/secrets.yaml
    sources: list[str] | None = None  # apply only to these sources (default: all)
    skip_sources: list[str] = []

    @field_validator("kinds")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(KINDS))
        if unknown:
            raise ValueError(f"unknown kinds {unknown}; known: {', '.join(KINDS)}")
        if len(set(value)) != len(value):
            raise ValueError("each kind may be listed once")
        return value


class Stage(MapStage):
    Config = SecretsConfig
    config: SecretsConfig

    def fingerprint(self) -> dict[str, Any]:
        return {"patterns": sha256_file(self.config.patterns)} if self.config.patterns else {}

    def apply(self, table: pa.Table) -> pa.Table:
        cfg = self.config
        texts = as_string_array(table.column("text"))
        scope = self.in_scope(table.column("source").to_pylist())
        idx = [i for i, ok in enumerate(scope) if ok]
        redacted, found = redact_secrets(texts.take(pa.array(idx, pa.int64())), cfg.kinds, cfg.patterns)
        out = table
        if cfg.mask and any(found):
            out = _with_redacted_text(table, texts, idx, redacted, found)
        counts: list[dict[str, int]] = [{} for _ in range(table.num_rows)]
        for j, i in enumerate(idx):
            counts[i] = found[j]
        for name in ("secrets", "secret_kinds", REASON):
            out = out.drop_columns([name]) if name in out.column_names else out
        out = out.append_column("secrets", pa.array([sum(c.values()) if ok else None
                                                     for c, ok in zip(counts, scope, strict=True)], pa.int64()))
        out = out.append_column("secret_kinds", pa.array(
            [",".join(f"{k}:{c[k]}" for k in sorted(c)) or None for c in counts], pa.string()))
        return out.append_column(REASON, pa.nulls(table.num_rows, pa.string()))

    def in_scope(self, sources: list[str | None]) -> list[bool]:
        """Which rows are redacted: listed sources (all when none are listed), less `skip_sources`."""
        cfg = self.config
        return [(cfg.sources is None or s in cfg.sources) and s not in cfg.skip_sources for s in sources]

    def counters(self, result: pa.Table) -> dict[str, int]:
        totals: dict[str, int] = {}
        docs = 0
        for value in result.column("secret_kinds").to_pylist():
            if not value:
                continue
            docs += 1
            for item in value.split(","):
                kind, n = item.rsplit(":", 1)
                totals[f"secrets_{kind}"] = totals.get(f"secrets_{kind}", 0) + int(n)
        return {**dict(sorted(totals.items())), "secrets_docs": docs}


def _with_redacted_text(table: pa.Table, texts: pa.Array, idx: list[int], redacted: pa.Array,
                        found: list[dict[str, int]]) -> pa.Table:
    """`table` with the text of the in-scope rows `idx` that held a secret replaced by its redaction."""
    values = texts.to_pylist()
    for j, i in enumerate(idx):
        if found[j]:
            values[i] = redacted[j].as_py()
    field = table.schema.field("text")
    return table.set_column(table.schema.get_field_index("text"), field, pa.array(values, field.type))
