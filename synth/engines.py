"""The generation-engine contract shared by the offline vLLM engine and the OpenAI-compatible HTTP engine.

Why one contract: the synth stage (and its cache) must not care whether text comes from an in-process
``vllm.LLM`` on the local executor or from ``vllm serve``/SGLang servers reached over HTTP from Spark
workers. Every request gets exactly one result, in the caller's order, with a per-row status, so a bad
row never sinks a batch and nothing is silently lost.

Importing this module never imports vllm or httpx; `synth.engine_kinds.make_engine` picks and loads an engine.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Status = Literal["ok", "failed"]


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters of one request (the subset both engines honour identically).

    ``seed`` makes a request reproducible independently of batching; callers that want several distinct
    samples of one prompt must give them distinct seeds (identical requests are generated once).
    """

    temperature: float = 0.5
    top_p: float = 0.9
    max_tokens: int = 512
    seed: int | None = None
    stop: tuple[str, ...] = ()
    repetition_penalty: float = 1.0  # > 1 discourages repeats (small models loop without it)
    regex: str | None = None  # structured output: the completion must match (e.g. a score " [0-5]")

    def __post_init__(self) -> None:
        if isinstance(self.stop, list | str):
            object.__setattr__(self, "stop", (self.stop,) if isinstance(self.stop, str) else tuple(self.stop))
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    def to_dict(self) -> dict[str, Any]:
        """Canonical, JSON-able form (used for cache keys and HTTP bodies); ``repetition_penalty`` and
        ``regex`` only when set, so cache keys written before they existed still match."""
        d = asdict(self)
        d["stop"] = list(self.stop)
        for key, default in (("repetition_penalty", 1.0), ("regex", None)):
            if d[key] == default:
                del d[key]
        return d


@dataclass(frozen=True)
class GenRequest:
    """One prompt to complete. ``id`` is the caller's handle (e.g. ``<doc id>:<chunk>:<recipe>``)."""

    id: str
    prompt: str
    params: Sampling = field(default_factory=Sampling)

    def dedup_key(self) -> str:
        """Requests with the same key are generated once and the result fanned out."""
        blob = json.dumps([self.prompt, self.params.to_dict()], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class GenResult:
    """Outcome of one request. ``status == "failed"`` always carries a human-readable ``error``."""

    id: str
    status: Status
    text: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None  # "stop" | "length" | "abort" | ... (None when failed before running)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_id(self, req_id: str) -> GenResult:
        """The same outcome under another request id (dedup fan-out, cache hits)."""
        return self if self.id == req_id else GenResult(**{**asdict(self), "id": req_id})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GenResult:
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if k in d})

    @classmethod
    def failure(cls, req_id: str, error: str, prompt_tokens: int = 0) -> GenResult:
        return cls(id=req_id, status="failed", prompt_tokens=prompt_tokens, error=error)


@runtime_checkable
class Engine(Protocol):
    """What the synth stage needs from an engine.

    ``model_id`` names the model for provenance (the ``model`` column) and cache keys.
    ``generate`` returns one result per request, in the same order, and never raises for a row's fault.
    ``last_stats`` describes the last ``generate`` call (`batch_stats`; the stage sums ``retries``,
    ``speculative`` and ``prefix_cache`` from it, and stops on ``unavailable``).
    """

    @property
    def model_id(self) -> str: ...

    @property
    def last_stats(self) -> dict[str, Any]: ...

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]: ...

    def close(self) -> None: ...


@runtime_checkable
class RemoteEngine(Engine, Protocol):
    """An engine whose requests run elsewhere (Spark tasks): where, and its running totals for the manifest."""

    generated_on: str  # e.g. "spark_tasks" (an in-process engine: "driver")
    totals: dict[str, Any]  # remote jobs, tasks, requests, retries, task seconds


def batch_stats(requests: Sequence[GenRequest], unique_results: Sequence[GenResult], seconds: float,
                **extra: Any) -> dict[str, Any]:
    """An engine's ``last_stats`` for one ``generate`` call: requests, unique requests, failed rows, tokens
    and seconds, then the engine's own figures (``retries``, ``unavailable``, ``speculative``, ...; a None
    figure is left out)."""
    stats: dict[str, Any] = {
        "requests": len(requests),
        "unique": len(unique_results),
        "failed": sum(not r.ok for r in unique_results),
        "prompt_tokens": sum(r.prompt_tokens for r in unique_results),
        "completion_tokens": sum(r.completion_tokens for r in unique_results),
        "seconds": seconds,
    }
    stats.update({k: v for k, v in extra.items() if v is not None or k == "unavailable"})
    return stats


def dedupe_requests(requests: Sequence[GenRequest]) -> tuple[list[GenRequest], list[int]]:
    """Unique requests (first occurrence wins) and, for each input, the index of its unique request."""
    index: dict[str, int] = {}
    unique: list[GenRequest] = []
    mapping: list[int] = []
    for r in requests:
        k = r.dedup_key()
        if k not in index:
            index[k] = len(unique)
            unique.append(r)
        mapping.append(index[k])
    return unique, mapping
