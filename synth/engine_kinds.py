"""Engines by kind: the one place that imports the concrete engines, lazily, so that the contract
(`synth.engines`), the stage and `curate validate` never load vllm or httpx."""

from __future__ import annotations

from typing import Any

from synth.engines import Engine


def make_engine(kind: str, **kwargs: Any) -> Engine:
    """The engine of ``kind`` (``"vllm"`` or ``"http"``), built from the stage's engine settings."""
    if kind == "vllm":
        from synth.engine_vllm import VLLMEngine

        return VLLMEngine(**kwargs)
    if kind == "http":
        from synth.engine_http import HTTPEngine

        return HTTPEngine(**kwargs)
    raise ValueError(f"unknown engine kind {kind!r} (expected 'vllm' or 'http')")
