"""Generation through OpenAI-compatible servers (``vllm serve``, SGLang, ...) via ``/v1/completions``.

Why this shape: on Spark (or any cluster) the GPUs sit behind inference servers, and the data workers
only send text. One HTTP request per unique prompt keeps errors per row (a 400 for an over-long prompt
fails that row alone); the server does the batching. Requests go round-robin over the base URLs and a
retry moves to the next URL, so one server restarting does not stall the job. Connection errors,
timeouts, 429 and 5xx are retried with exponential backoff (honouring ``Retry-After``); other 4xx are
final. Every request yields a result: a batch is never lost.

The API key is read from the environment variable named by ``api_key_env`` and never logged or repr'd.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from synth.engines import GenRequest, GenResult, dedupe_requests

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class HTTPEngine:
    """Engine over one or several OpenAI-compatible completion servers.

    ``model`` is the served model name; when None it is read from ``/v1/models`` of the first server.
    ``timeout_s`` bounds one HTTP attempt; ``max_retries`` counts retries after the first attempt.
    ``extra_body`` is merged into every request body (e.g. ``{"repetition_penalty": 1.05}``).
    """

    def __init__(
        self,
        base_urls: str | Sequence[str],
        model: str | None = None,
        *,
        api_key_env: str | None = None,
        concurrency: int = 16,
        timeout_s: float = 600.0,
        connect_timeout_s: float = 10.0,
        max_retries: int = 6,
        backoff_s: float = 0.5,
        backoff_max_s: float = 30.0,
        extra_body: dict[str, Any] | None = None,
        model_id: str | None = None,
    ) -> None:
        import httpx

        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("HTTPEngine needs at least one base URL")
        self.base_urls = [_normalize_url(u) for u in urls]
        self.concurrency = max(1, int(concurrency))
        self.max_retries = max(0, int(max_retries))
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.extra_body = dict(extra_body or {})
        headers = {"Content-Type": "application/json"}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ValueError(f"environment variable {api_key_env!r} (api_key_env) is not set or empty")
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency),
        )
        self._rr = 0
        self._rr_lock = threading.Lock()
        self.model = model or self._discover_model()
        self.model_id = model_id or self.model
        self.last_stats: dict[str, Any] = {}

    def __repr__(self) -> str:  # never shows the key
        return f"HTTPEngine(base_urls={self.base_urls!r}, model={self.model!r})"

    # -- public ---------------------------------------------------------------------------------------
    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        """One result per request, in order; duplicates are sent once; rows fail individually."""
        t0 = time.perf_counter()
        unique, mapping = dedupe_requests(requests)
        self._retries = 0
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(unique)))) as pool:
            unique_results = list(pool.map(self._one_safe, unique))
        results = [unique_results[j].with_id(r.id) for r, j in zip(requests, mapping, strict=True)]
        self.last_stats = {
            "requests": len(requests),
            "unique": len(unique),
            "failed": sum(not r.ok for r in unique_results),
            "retries": self._retries,
            "prompt_tokens": sum(r.prompt_tokens for r in unique_results),
            "completion_tokens": sum(r.completion_tokens for r in unique_results),
            "seconds": time.perf_counter() - t0,
        }
        return results

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HTTPEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------------
    def _next_url_index(self) -> int:
        with self._rr_lock:
            i = self._rr
            self._rr += 1
            return i

    def _one_safe(self, req: GenRequest) -> GenResult:
        try:
            return self._one(req)
        except Exception as e:  # a bug or odd payload must still yield a row
            return GenResult.failure(req.id, f"{type(e).__name__}: {e}")

    def _one(self, req: GenRequest) -> GenResult:
        import httpx

        p = req.params
        body: dict[str, Any] = {
            "model": self.model,
            "prompt": req.prompt,
            "temperature": p.temperature,
            "top_p": p.top_p,
            "max_tokens": p.max_tokens,
            **({"seed": p.seed} if p.seed is not None else {}),
            **({"stop": list(p.stop)} if p.stop else {}),
            **self.extra_body,
        }
        start = self._next_url_index()
        last_error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            url = self.base_urls[(start + attempt) % len(self.base_urls)]
            retry_after: float | None = None
            try:
                resp = self._client.post(f"{url}/v1/completions", json=body)
            except httpx.TransportError as e:  # connect refused/reset, timeouts, protocol errors
                last_error = f"{type(e).__name__}: {e} ({url})"
            else:
                if resp.status_code == 200:
                    return _parse_completion(req.id, resp)
                last_error = f"HTTP {resp.status_code} from {url}: {_error_message(resp)}"
                if resp.status_code not in RETRY_STATUS:
                    return GenResult.failure(req.id, last_error)
                retry_after = _retry_after(resp)
            if attempt < self.max_retries:
                with self._rr_lock:
                    self._retries += 1
                delay = min(self.backoff_max_s, self.backoff_s * 2**attempt) * (0.5 + random.random() / 2)
                if retry_after is not None:
                    delay = min(self.backoff_max_s, max(delay, retry_after))
                log.info("retrying %s in %.2fs after: %s", req.id, delay, last_error)
                time.sleep(delay)
        return GenResult.failure(req.id, f"gave up after {self.max_retries + 1} attempts: {last_error}")

    def _discover_model(self) -> str:
        """Served model name from ``/v1/models`` (retrying while the server comes up)."""
        import httpx

        last = ""
        for attempt in range(self.max_retries + 1):
            url = self.base_urls[attempt % len(self.base_urls)]
            try:
                resp = self._client.get(f"{url}/v1/models")
                if resp.status_code == 200:
                    data = resp.json().get("data") or []
                    if data:
                        return str(data[0]["id"])
                    last = "no models served"
                else:
                    last = f"HTTP {resp.status_code}"
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}"
            time.sleep(min(self.backoff_max_s, self.backoff_s * 2**attempt))
        raise RuntimeError(f"could not read the served model name from {self.base_urls}: {last}")


def _normalize_url(u: str) -> str:
    u = u.strip().rstrip("/")
    if u.endswith("/v1"):
        u = u[: -len("/v1")]
    if "://" not in u:
        u = "http://" + u
    return u


def _parse_completion(req_id: str, resp: Any) -> GenResult:
    try:
        data = resp.json()
        choice = data["choices"][0]
        usage = data.get("usage") or {}
        finish = choice.get("finish_reason")
        ok = finish in ("stop", "length")
        return GenResult(
            id=req_id,
            status="ok" if ok else "failed",
            text=choice.get("text") or "",
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=finish,
            error=None if ok else f"finished with {finish!r}",
        )
    except (ValueError, KeyError, IndexError, TypeError) as e:
        return GenResult.failure(req_id, f"unparseable completion response: {type(e).__name__}: {e}")


def _error_message(resp: Any) -> str:
    try:
        data = resp.json()
        err = data.get("error", data) if isinstance(data, dict) else data
        msg = err.get("message", err) if isinstance(err, dict) else err
        return str(msg)[:500]
    except ValueError:
        return resp.text[:500]


def _retry_after(resp: Any) -> float | None:
    value = resp.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
