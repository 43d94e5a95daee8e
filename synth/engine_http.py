"""Generation through OpenAI-compatible servers (``vllm serve``, SGLang, ...) via ``/v1/completions``.

Why this shape: on Spark (or any cluster) the GPUs sit behind inference servers, and the data workers
only send text. One HTTP request per unique prompt keeps errors per row (a 400 for an over-long prompt
fails that row alone); the server does the batching. Requests go round-robin over the base URLs and a
retry moves to the next URL, so one server restarting does not stall the job. Connection errors,
timeouts, 429 and 5xx are retried with exponential backoff (honouring ``Retry-After``); other 4xx are
final. Every request yields a result: a batch is never lost.

Surviving a server restart: retries are bounded by time, not by a count, because what matters is how long
a server may be away (a restart loading a large checkpoint takes minutes). Each request retries for up to
``retry_max_s`` (default 10 minutes) with capped exponential backoff and jitter. The engine also keeps an
outage clock: the time since the first retryable failure with no answer from any server since (reset by
any answer, even a 4xx). When the outage outlasts ``retry_max_s``, every request of the batch still waiting
fails at once with an error starting "server unavailable:" and naming the URLs (instead of each queued
request waiting out its own budget, which would take hours for a large batch). The synth stage then stops
the run after committing what was finished, and a rerun resumes from its response cache.

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

from synth.engines import GenRequest, GenResult, batch_stats, dedupe_requests

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class ServerUnavailableError(RuntimeError):
    """No server answered within ``retry_max_s`` where there is no row to fail (reading the model name)."""


class HTTPEngine:
    """Engine over one or several OpenAI-compatible completion servers.

    ``model`` is the served model name; when None it is read from ``/v1/models`` of the first server.
    ``timeout_s`` bounds one HTTP attempt. Retryable failures are retried with backoff ``backoff_s * 2**n``
    (capped at ``backoff_max_s``, jittered) for up to ``retry_max_s`` seconds per request and of server
    outage; ``max_retries`` optionally also caps the number of retries per request (None: time only).
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
        max_retries: int | None = None,
        retry_max_s: float = 600.0,
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
        self.max_retries = None if max_retries is None else max(0, int(max_retries))
        self.retry_max_s = max(0.0, float(retry_max_s))
        self.backoff_s = max(0.0, float(backoff_s))
        self.backoff_max_s = max(0.0, float(backoff_max_s))
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
        self._retries = 0
        self._down_since: float | None = None  # first retryable failure with no server answer since
        self._outage: str | None = None  # set once the outage outlasted retry_max_s (for the current batch)
        self._wake = threading.Event()  # set with _outage: requests sleeping in a backoff give up at once
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
        with self._rr_lock:  # each batch starts with a clean slate: it probes the servers again
            self._retries = 0
            self._down_since = None
            self._outage = None
            self._wake.clear()
        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(unique)))) as pool:
            unique_results = list(pool.map(self._one_safe, unique))
        results = [unique_results[j].with_id(r.id) for r, j in zip(requests, mapping, strict=True)]
        self.last_stats = batch_stats(requests, unique_results, time.perf_counter() - t0, retries=self._retries,
                                      unavailable=self._outage)
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
            **({"repetition_penalty": p.repetition_penalty} if p.repetition_penalty != 1.0 else {}),
            **({"structured_outputs": {"regex": p.regex}} if p.regex is not None else {}),  # vLLM's server
            **({"stop": list(p.stop)} if p.stop else {}),
            **self.extra_body,
        }
        start = self._next_url_index()
        first_failure: float | None = None
        attempt = 0
        while True:
            if self._outage is not None:  # another request found the servers gone for too long
                return GenResult.failure(req.id, self._outage)
            url = self.base_urls[(start + attempt) % len(self.base_urls)]
            retry_after: float | None = None
            try:
                resp = self._client.post(f"{url}/v1/completions", json=body)
            except httpx.TransportError as e:  # connect refused/reset, timeouts, protocol errors
                last_error = f"{type(e).__name__}: {e} ({url})"
            else:
                if resp.status_code == 200:
                    self._answered()
                    return _parse_completion(req.id, resp)
                last_error = f"HTTP {resp.status_code} from {url}: {_error_message(resp)}"
                if resp.status_code not in RETRY_STATUS:
                    self._answered()
                    return GenResult.failure(req.id, last_error)
                retry_after = _retry_after(resp)
            now = time.monotonic()
            if first_failure is None:
                first_failure = now
            down_for = self._failed(now)
            if down_for >= self.retry_max_s:
                return GenResult.failure(req.id, self._declare_outage(down_for, last_error))
            waited = now - first_failure
            if waited >= self.retry_max_s or (self.max_retries is not None and attempt >= self.max_retries):
                return GenResult.failure(
                    req.id, f"gave up after {attempt + 1} attempts in {waited:.0f} s: {last_error}"
                )
            delay = min(self.backoff_max_s, self.backoff_s * 2 ** min(attempt, 30)) * (0.5 + random.random() / 2)
            if retry_after is not None:
                delay = min(self.backoff_max_s, max(delay, retry_after))
            delay = min(delay, self.retry_max_s - down_for)  # one last attempt when the budget runs out
            with self._rr_lock:
                self._retries += 1
            log.info("retrying %s in %.2fs after: %s", req.id, delay, last_error)
            self._wake.wait(max(0.0, delay))
            attempt += 1

    def _answered(self) -> None:
        """A server answered: whatever failed before, the servers are not down."""
        with self._rr_lock:
            self._down_since = None

    def _failed(self, now: float) -> float:
        """Record a retryable failure; seconds since the servers stopped answering."""
        with self._rr_lock:
            if self._down_since is None:
                self._down_since = now
            return now - self._down_since

    def _declare_outage(self, down_for: float, last_error: str) -> str:
        with self._rr_lock:
            if self._outage is None:
                urls = ", ".join(self.base_urls)
                self._outage = (f"server unavailable: no answer from {urls} for {down_for:.0f} s "
                                f"(retry_max_s={self.retry_max_s:g}); last error: {last_error}")  # fmt: skip
                log.warning("%s", self._outage)
                self._wake.set()
            return self._outage

    def _discover_model(self) -> str:
        """Served model name from ``/v1/models`` (retrying while the server comes up)."""
        import httpx

        last = ""
        deadline = time.monotonic() + self.retry_max_s
        attempt = 0
        while True:
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
            left = deadline - time.monotonic()
            if left <= 0 or (self.max_retries is not None and attempt >= self.max_retries):
                break
            time.sleep(min(left, self.backoff_max_s, self.backoff_s * 2 ** min(attempt, 30)))
            attempt += 1
        raise ServerUnavailableError(
            f"server unavailable: could not read the served model name from "
            f"{', '.join(self.base_urls)} (retry_max_s={self.retry_max_s:g}): {last}"
        )


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
