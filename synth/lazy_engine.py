"""The synth stage's engine, loaded on first use, and the engine figures its manifest reports.

A rerun whose responses are all cached never loads the model: the engine is made only when a request
misses the cache. Rows that failed because the servers stayed unreachable stop the run (a rerun resumes
from the cache) instead of being recorded as failed generations.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from synth.engine_output import engine_output
from synth.engines import Engine, GenRequest, GenResult, RemoteEngine
from synth.waves import failure_cause

log = logging.getLogger("curate.synth")


class ServerUnavailable(RuntimeError):
    """The engine's servers stayed unreachable longer than ``retry_max_s``: not a row's fault, so the run
    stops (a rerun resumes from the cache) instead of recording every row as failed."""


class LazyEngine:
    """The configured engine, loaded only when a request misses the cache.

    When a batch comes back with rows that failed because the servers were unavailable (cause
    ``unavailable``), the batch is still returned (so the cache commits what it finished) and the next
    call, or `raise_if_unavailable`, raises `ServerUnavailable`.
    """

    def __init__(self, cfg: Any, seed: int, model_id: str | None, factory: Callable[..., Any] | None = None,
                 log_path: Path | None = None, override: Engine | None = None) -> None:
        """``cfg``: the synth stage's settings (`engine`, `model`, `engine_kwargs`); ``override``: an engine
        a test or benchmark already loaded, used as is and never closed here."""
        self.cfg, self.seed = cfg, seed
        self.override = override
        self.log_path = log_path  # engine output (vLLM, torch, Triton; child processes too) goes here
        self._model_id = model_id
        self._factory = factory  # (kind, **engine kwargs) -> engine; default synth.engine_kinds.make_engine
        self._engine: Any = None
        self._closed: Any = None  # the engine after close (its placement and totals are still reported)
        self.was_loaded = False
        self.load_seconds = 0.0
        self.generate_seconds = 0.0
        self.retries = 0
        self.spec: dict[str, int] = {}  # speculative decoding: drafts, draft_tokens, accepted_tokens (summed)
        self.prefix: dict[str, int] = {}  # prefix cache: queried_tokens, hit_tokens (summed; vllm engine)
        self.unavailable: str | None = None  # the error of a row that failed for want of a server

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    @property
    def placement(self) -> dict[str, Any]:
        """Where generation ran (`generated_on`) and, for requests sent from executor tasks, their totals."""
        engine = self._engine or self._closed
        if engine is None:
            return {}
        if isinstance(engine, RemoteEngine):
            return {"generated_on": engine.generated_on, **engine.totals}
        return {"generated_on": "driver"}

    def _get(self) -> Any:
        if self._engine is None:
            t0 = time.perf_counter()
            if self.override is not None:
                self._engine = self.override
            else:
                from synth.engine_kinds import make_engine

                log.info("loading %s engine for %s", self.cfg.engine, self.cfg.model or self.cfg.base_urls)
                from synth.engine_http import ServerUnavailableError

                factory = self._factory or make_engine
                # _model_id, not model_id: for an http server without a configured name, the engine finds it
                try:
                    with engine_output(self.log_path):
                        self._engine = factory(self.cfg.engine, **self.cfg.engine_kwargs(self.seed, self._model_id))
                except ServerUnavailableError as e:  # an http server's model name could not be read
                    raise ServerUnavailable(str(e)) from None
            self.load_seconds = time.perf_counter() - t0
            self.was_loaded = True
        return self._engine

    @property
    def model_id(self) -> str:
        if self._model_id is None:  # an http server's model name, read from the server
            self._model_id = str(self._get().model_id)
        return self._model_id

    @property
    def last_stats(self) -> dict[str, Any]:
        return self._engine.last_stats if self._engine is not None else {}

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        self.raise_if_unavailable()
        engine = self._get()
        t0 = time.perf_counter()
        try:
            with engine_output(self.log_path if engine is not self.override else None):
                results = engine.generate(requests)
        finally:
            self.generate_seconds += time.perf_counter() - t0
        last = engine.last_stats or {}
        self.retries += int(last.get("retries") or 0)
        for key, n in (last.get("speculative") or {}).items():
            self.spec[key] = self.spec.get(key, 0) + int(n)
        for key, n in (last.get("prefix_cache") or {}).items():
            self.prefix[key] = self.prefix.get(key, 0) + int(n)
        down = [r for r in results if not r.ok and failure_cause(r.error) == "unavailable"]
        if down:
            self.unavailable = f"{len(down)} of {len(results)} requests not served: {down[0].error}"
        return results

    def raise_if_unavailable(self) -> None:
        if self.unavailable is not None:
            raise ServerUnavailable(f"{self.unavailable}; finished responses are cached: rerun to resume")

    def close(self) -> None:
        if self._engine is not None and self._engine is not self.override:
            with engine_output(self.log_path):
                self._engine.close()
        self._closed = self._engine or self._closed
        self._engine = None


def speculative_stats(spec_config: dict[str, Any] | None, counts: dict[str, int]) -> dict[str, Any] | None:
    """The manifest's ``speculative`` entry: vLLM's draft/accept counts over this run's generations and the
    acceptance rate (accepted / drafted tokens; None when nothing was drafted, e.g. all cached)."""
    if not spec_config:
        return None
    drafts, drafted, accepted = (int(counts.get(k, 0)) for k in ("drafts", "draft_tokens", "accepted_tokens"))
    return {
        "method": spec_config.get("method"),
        "num_speculative_tokens": spec_config.get("num_speculative_tokens"),
        "drafts": drafts,
        "draft_tokens": drafted,
        "accepted_tokens": accepted,
        "acceptance_rate": round(accepted / drafted, 4) if drafted else None,
        # tokens per target-model step for a drafted request: 1 verified + the accepted drafts
        "mean_acceptance_length": round(1 + accepted / drafts, 3) if drafts else None,
    }


def prefix_cache_stats(counts: dict[str, int]) -> dict[str, Any] | None:
    """The manifest's ``prefix_cache`` entry: prompt tokens vLLM looked up in its prefix cache and found
    there over this run's generations (None when the engine reports none: http, or nothing generated)."""
    queried, hits = int(counts.get("queried_tokens", 0)), int(counts.get("hit_tokens", 0))
    if not queried:
        return None
    return {"queried_tokens": queried, "hit_tokens": hits, "hit_rate": round(hits / queried, 4)}
