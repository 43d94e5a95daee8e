"""`exact_dedup`: keep one document per normalized-text hash (and optionally per URL).

Survivor rule: `survivor:` policies (`filters/survivor_rule.py`; default the smallest id), ties
broken by the smallest id, so the result is the same whatever the partitioning or worker count.
Each survivor carries `dup_count`: how many copies its group had (summing an earlier stage's counts).
Keys are 128-bit BLAKE2b digests of lower-cased, whitespace-collapsed text (punctuation and
digits optionally ignored; for code, `lowercase: false` and `whitespace: ignore`); URLs are
compared after host/scheme case, `www.`, fragments and trailing slashes are normalized.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from filters.survivor_rule import RuleItem, parse_policies, rank_column, rank_type
from pipeline.config import StageConfig
from stages.base import Column, DedupKey, KeyedDedupStage


class ExactDedupConfig(StageConfig):
    write_paths: ClassVar[tuple[str, ...]] = ("index",)

    text: bool = True
    url: bool = False
    lowercase: bool = True
    ignore_punctuation: bool = False
    ignore_digits: bool = False
    # collapse: runs of whitespace count as one space; ignore: whitespace is dropped, so copies of code that
    # differ only in indentation, spacing or line breaks (`a=b` / `a = b`) share a key
    whitespace: Literal["collapse", "ignore"] = "collapse"
    index: str | None = None  # keys of kept documents (dir, relative to OUT); later runs dedup against them
    # which copy survives: id (default), quality, length, newest, {source_priority: [...]}, '<column> asc|desc'
    survivor: list[RuleItem] = Field(default_factory=lambda: list[RuleItem](["id"]), min_length=1)
    date_field: str = "date"  # for `newest`: a column, else meta.fields.<name> or meta.<name>

    @field_validator("survivor")
    @classmethod
    def _rules(cls, value: list[RuleItem]) -> list[RuleItem]:
        for policy in parse_policies(value):
            if policy.descending and policy.kind == "column" and policy.name in ("text", "url", "source", "meta"):
                raise ValueError(f"'{policy.name} desc': text columns sort ascending only here")
        return value


def normalized_for_hash(texts: pa.Array, cfg: ExactDedupConfig) -> pa.Array:
    if cfg.lowercase:
        texts = pc.utf8_lower(texts)
    if cfg.ignore_punctuation:
        texts = pc.replace_substring_regex(texts, r"[\p{P}\p{S}]+", " ")
    if cfg.ignore_digits:
        texts = pc.replace_substring_regex(texts, r"\d", "0")
    texts = pc.replace_substring_regex(texts, r"\s+", "" if cfg.whitespace == "ignore" else " ")
    return pc.utf8_trim_whitespace(texts)


def text_digests(texts: pa.Array) -> pa.Array:
    """128-bit digests as fixed-size binary (hashlib is C; one call per document)."""
    out = [hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() if t is not None else None
           for t in texts.to_pylist()]
    return pa.array(out, pa.binary(16))


def normalize_url(url: str | None) -> str | None:
    if not url or not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    host = (parts.hostname or "").lower().removeprefix("www.")
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    path = parts.path.rstrip("/") or ""
    return urlunsplit((parts.scheme.lower() or "http", netloc, path, parts.query, ""))


class Stage(KeyedDedupStage):
    Config = ExactDedupConfig
    config: ExactDedupConfig

    def priority(self, table: pa.Table) -> pa.Table:
        """The survivor policies as ascending sort columns (descending numbers negated, nulls last)."""
        cols: dict[str, pa.Array] = {}
        for i, policy in enumerate(parse_policies(self.config.survivor)):
            if policy.kind == "id":
                continue  # the final tie-break anyway
            typ = rank_type(policy, table.schema)
            if typ is None:
                continue
            values = rank_column(policy, table, typ, self.config.date_field)
            if typ == "string":
                cols[f"p{i}"] = values
                continue
            numbers = values.cast(pa.float64())
            if policy.descending:
                numbers = pc.negate(numbers)
            cols[f"p{i}"] = pc.fill_null(numbers, float("inf"))
        return pa.table(cols) if cols else pa.table({})

    def reads(self) -> tuple[Column, ...]:
        ranks: list[Column] = [Column("dup_count", pa.int64(), optional=True)]
        for policy in parse_policies(self.config.survivor):
            if policy.kind in ("column", "length"):
                ranks.append(Column("text" if policy.kind == "length" else policy.name, optional=True))
            elif policy.kind == "newest":
                ranks += [Column(self.config.date_field, optional=True), Column("meta", optional=True)]
            elif policy.kind == "source_priority":
                ranks.append(Column("source", pa.string()))
        return ((Column("text", pa.string()),) if self.config.text else ()) + \
            ((Column("url", pa.string()),) if self.config.url else ()) + tuple(ranks)

    def adds(self) -> tuple[Column, ...]:
        return (Column("dup_count", pa.int64()),)

    def key_names(self) -> list[str]:
        return (["exact_dup"] if self.config.text else []) + (["url_dup"] if self.config.url else [])

    def index_params(self, name: str) -> dict[str, Any]:
        if name == "url_dup":
            return {"type": "string", "normalize": "url"}
        cfg = self.config
        return {"type": "fixed_size_binary[16]", "hash": "blake2b-128", "lowercase": cfg.lowercase,
                "ignore_punctuation": cfg.ignore_punctuation, "ignore_digits": cfg.ignore_digits}

    def keys(self, table: pa.Table) -> list[DedupKey]:
        keys = []
        if self.config.text:
            texts = normalized_for_hash(table.column("text").combine_chunks(), self.config)
            keys.append(DedupKey("exact_dup", text_digests(texts)))
        if self.config.url:
            urls = [normalize_url(u) for u in table.column("url").to_pylist()]
            keys.append(DedupKey("url_dup", pa.array(urls, pa.string())))
        return keys
