"""Which copy of a duplicate cluster survives: an ordered list of policies, the first that differs wins.

Items of a `survivor:` list (dedup stages):

* `quality` (= `quality_score desc`): the best-scored copy; `length` (= `length desc`): the longest;
  `id` (= `id asc`): the smallest id, always appended last so every tie is broken the same way;
* `newest`: the latest date, read from the column named by `date_field` or, since ingest keeps a
  record's extra fields in `meta`, from `meta.fields.<date_field>` / `meta.<date_field>` (WARC input
  has `meta.warc_date`). ISO 8601 text (`2024-05-01`, `2024-05-01T10:00:00Z`); unparsable or
  missing dates rank last;
* `{source_priority: [a, b, ...]}`: a copy from an earlier-listed source (the `source` column, the
  input's name) first; unlisted sources after all listed ones;
* `<column> asc|desc`: any numeric or text column (a missing column ranks every copy the same).

Nulls always rank last. Pure functions: the stage reads the columns and sorts.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

RuleItem = str | dict[str, list[str]]
_COLUMN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(asc|desc)?\s*$")
SHORTHANDS = {"quality": ("quality_score", True), "length": ("length", True), "id": ("id", False)}


@dataclass(frozen=True)
class Policy:
    """One survivor criterion: `name` is the rank column it produces, sorted descending or not."""

    name: str
    descending: bool
    kind: str = "column"  # column | length | id | newest | source_priority
    sources: tuple[str, ...] = ()


def parse_policies(items: list[RuleItem]) -> list[Policy]:
    """The configured list as policies (ValueError naming the item that is not one)."""
    out: list[Policy] = []
    for item in items:
        if isinstance(item, dict):
            if set(item) != {"source_priority"} or not isinstance(item["source_priority"], list):
                raise ValueError(f"{item!r}: expected {{source_priority: [source, ...]}}")
            out.append(Policy("source_priority", False, "source_priority",
                              tuple(str(s) for s in item["source_priority"])))
            continue
        text = item.strip()
        if text == "newest":
            out.append(Policy("newest", True, "newest"))
            continue
        if text == "source_priority":
            raise ValueError("source_priority needs its list: {source_priority: [source, ...]}")
        name, desc = SHORTHANDS.get(text, (None, False))
        if name is None:
            m = _COLUMN.match(text)
            if not m:
                raise ValueError(f"'{item}': expected quality, length, id, newest, {{source_priority: [...]}} "
                                 "or '<column> asc|desc'")
            name, desc = m.group(1), (m.group(2) or "asc") == "desc"
        kind = name if name in ("length", "id") else "column"
        out.append(Policy(name, desc, kind))
    return out


def rank_type(policy: Policy, schema: pa.Schema) -> str | None:
    """Arrow type alias of a policy's rank column; None for a column the data does not have."""
    if policy.kind in ("length", "newest", "source_priority"):
        return "int64"
    if policy.kind == "id":
        return "string"
    if policy.name not in schema.names:
        return None
    t = schema.field(policy.name).type
    numeric = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
    return "double" if numeric else "string"


def needed_columns(policies: list[Policy], schema: pa.Schema, date_field: str) -> list[str]:
    """Input columns the rank columns are computed from."""
    cols: list[str] = []
    for p in policies:
        if p.kind == "column" and p.name in schema.names:
            cols.append(p.name)
        elif p.kind == "newest":
            cols.append(date_field if date_field in schema.names else "meta")
        elif p.kind == "source_priority":
            cols.append("source")
        elif p.kind == "length":
            cols.append("text")
    return [c for i, c in enumerate(cols) if c in schema.names and c not in cols[:i]]


def rank_column(policy: Policy, table: pa.Table, typ: str, date_field: str) -> pa.Array:
    """One policy's rank values for the rows of `table` (read with `needed_columns`)."""
    n = table.num_rows
    if policy.kind == "length":
        return pc.utf8_length(table.column("text")).cast(pa.int64()).combine_chunks()
    if policy.kind == "id":
        return table.column("id").cast(pa.string()).combine_chunks()
    if policy.kind == "source_priority":
        pos = pc.index_in(table.column("source"), value_set=pa.array(list(policy.sources), pa.string()))
        return pc.fill_null(pos, len(policy.sources)).cast(pa.int64()).combine_chunks()
    if policy.kind == "newest":
        if date_field in table.column_names:
            values = [None if v is None else str(v) for v in table.column(date_field).to_pylist()]
        elif "meta" in table.column_names:
            values = [_meta_date(m, date_field) for m in table.column("meta").to_pylist()]
        else:
            values = [None] * n
        return pa.array(_timestamps(values), pa.int64())
    if policy.name not in table.column_names:
        return pa.nulls(n, pa.type_for_alias(typ))
    return table.column(policy.name).cast(pa.type_for_alias(typ)).combine_chunks()


def _meta_date(meta: str | None, field: str) -> str | None:
    try:
        data: Any = json.loads(meta) if meta else {}
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    fields = data.get("fields")
    value = fields.get(field) if isinstance(fields, dict) and field in fields else data.get(field)
    return None if value is None else str(value)


def _timestamps(values: list[str | None]) -> list[int | None]:
    """ISO 8601 text -> UTC microseconds (None where it does not parse)."""
    import pandas as pd  # local: pandas costs ~0.6 s to import

    parsed = pd.to_datetime(pd.Series(values, dtype=object), utc=True, errors="coerce", format="ISO8601")
    return [None if pd.isna(v) else int(v.value // 1000) for v in parsed]
