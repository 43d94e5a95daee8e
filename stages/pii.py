"""`pii`: mask e-mail addresses, IP addresses and phone numbers; count them per document.

Never removes a document: writes `pii_email`, `pii_ip`, `pii_phone` (matches per document, for
the kinds selected) and replaces each match with its placeholder (`<EMAIL>`, `<IP_ADDRESS>`,
`<PHONE>`) unless `mask: false` (count only). The manifest gets totals per kind and the number of
documents with any PII. Matching rules and their false-positive guards are in `filters/pii.py`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import field_validator

from filters.pii import KINDS, PLACEHOLDERS, Kind, mask_pii
from filters.text import as_string_array
from pipeline.config import StageConfig
from pipeline.schema import REASON
from stages.base import Column, MapStage


class PiiConfig(StageConfig):
    kinds: list[Kind] = list(KINDS)
    mask: bool = True  # false: only count
    placeholders: dict[Kind, str] = dict(PLACEHOLDERS)

    @field_validator("kinds")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each kind may be listed once")
        return value


class Stage(MapStage):
    Config = PiiConfig
    config: PiiConfig

    def adds(self) -> tuple[Column, ...]:
        return tuple(Column(f"pii_{kind}", pa.int64()) for kind in KINDS if kind in self.config.kinds)

    def apply(self, table: pa.Table) -> pa.Table:
        texts = as_string_array(table.column("text"))
        masked, counts = mask_pii(texts, self.config.kinds, self.config.placeholders, self.config.mask)
        field = table.schema.field("text")
        out = table.set_column(table.schema.get_field_index("text"), field, masked.cast(field.type))
        for kind in KINDS:
            if kind in self.config.kinds:
                name = f"pii_{kind}"
                out = out.drop_columns([name]) if name in out.column_names else out
                out = out.append_column(name, pa.array(counts[kind], pa.int64()))
        out = out.drop_columns([REASON]) if REASON in out.column_names else out
        return out.append_column(REASON, pa.nulls(table.num_rows, pa.string()))

    def counters(self, result: pa.Table) -> dict[str, int]:
        out: dict[str, int] = {}
        any_pii = np.zeros(result.num_rows, bool)
        for kind in self.config.kinds:
            column = result.column(f"pii_{kind}")
            out[f"pii_{kind}"] = int(pc.sum(column).as_py() or 0)
            any_pii |= column.to_numpy() > 0
        out["pii_docs"] = int(any_pii.sum())
        return out
