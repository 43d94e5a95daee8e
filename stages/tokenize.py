"""`tokenize`: token counts (`n_tokens`) and, by default, the token ids themselves (`token_ids`).

Counting needs the full encoding anyway, so the ids are kept for the Megatron shards instead of
encoding every document twice. `n_tokens` includes the appended end-of-document token, i.e. it is
what the document costs in a training shard, which is what the mix budgets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.config import ReadFile, StageConfig
from pipeline.schema import REASON
from pipeline.tokenizer import load_tokenizer, tokenizer_fingerprint
from stages.base import Column, MapStage


class TokenizeConfig(StageConfig):
    tokenizer: ReadFile  # a directory with tokenizer.json (a model checkpoint) or the tokenizer.json file
    eod_token: str | None = None
    append_eod: bool = True
    keep_ids: bool = True
    batch_size: int = 512


class Stage(MapStage):
    Config = TokenizeConfig
    config: TokenizeConfig

    def fingerprint(self) -> dict[str, Any]:
        load_tokenizer(self.config.tokenizer, self.config.eod_token)
        return tokenizer_fingerprint(self.config.tokenizer)

    def setup(self) -> None:
        self.tok = load_tokenizer(self.config.tokenizer, self.config.eod_token)

    def adds(self) -> tuple[Column, ...]:
        ids = (Column("token_ids", pa.list_(pa.int32())),) if self.config.keep_ids else ()
        return (Column("n_tokens", pa.int32()), *ids)

    def apply(self, table: pa.Table) -> pa.Table:
        for col in ("n_tokens", "token_ids"):
            if col in table.column_names:
                table = table.drop_columns([col])
        texts = table.column("text").to_pylist()
        lengths_all, ids_all = [], []
        for start in range(0, len(texts), self.config.batch_size):
            flat, lengths = self.tok.encode(texts[start:start + self.config.batch_size], self.config.append_eod)
            lengths_all.append(lengths)
            ids_all.append(flat)
        lengths = np.concatenate(lengths_all) if lengths_all else np.zeros(0, np.int64)
        table = table.append_column("n_tokens", pa.array(lengths.astype(np.int32)))
        if self.config.keep_ids:
            flat = np.concatenate(ids_all) if ids_all else np.zeros(0, np.int64)
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
            ids = pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat.astype(np.int32)))
            table = table.append_column("token_ids", ids)
        return table.append_column(REASON, pa.nulls(table.num_rows, pa.string()))

    def counters(self, result: pa.Table) -> dict[str, int]:
        return {"tokens": int(np.sum(result.column("n_tokens").to_numpy()))}
