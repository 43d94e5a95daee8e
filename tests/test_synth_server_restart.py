"""`curate run` with the HTTP engine while its REAL `vllm serve` is SIGKILLed mid-generation.

The test starts its own server on a fixed port (the session's shared server is left alone) and runs the
synth stage in two `curate run` subprocesses at once, against that server, watching their response caches
to kill the server once each has a few chunks committed and more requests in flight:

A. survive: with the default retry budget (`retry_max_s`, 10 minutes) the run's in-flight and queued
   requests wait for the server, which is started again on the same port, and the run ends with exit 0,
   every selected document generated once (nothing failed, nothing duplicated);
B. resume: with a small `retry_max_s` the server stays down longer than the budget: the run stops with
   exit 1 and a message naming the server's URL; with the server back (the restart A waits for), a rerun
   serves every response committed before the failure from the cache and generates only the rest.

Both outputs must hold exactly one synthetic document per selected source document, with the ids
`synth_id(parent, recipe, 0)`, and the same texts (per-request seeds: a restart changes nothing).
Two server starts (about 30-60 s each on 2 cores) bound that test's runtime: one kill serves both
scenarios, and B's rerun uses the server A's run survived into.

The other tests check the same rules in seconds, without vLLM: the engine against a stub server that goes
away and comes back, and the stage with a scripted engine whose server disappears.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_synth_support import (
    Server,
    cache_rows,
    free_port,
    require,
    start_vllm_server,
    stop_vllm_server,
    wait_healthy,
)

from synth.engines import GenRequest, GenResult, Sampling
from tests.conftest import pipeline_config, write_config

pytest_plugins = ["test_synth_support"]

MODEL_LEN = 1024  # this test's server: every selected document (<= 390 tokens) fits one chunk
RECIPE = "rephrase"
SELECT = ["c", "d", "e"]  # 48 plain documents each (source `b` has long upper-cased duplicates)
KILL_AT = 16  # committed responses (two chunks) before the server is killed


def restart_config(model_dir: Path, url: str, output: str, **synth: Any) -> dict[str, Any]:
    cfg = pipeline_config(output=output)
    recipe = {"name": RECIPE, "prompt": "Rewrite this text clearly.\n{{ text }}",
              "select": f"source in {SELECT}", "max_input_tokens": 600, "min_input_tokens": 10,
              "max_output_tokens": 32, "min_output_tokens": 1, "drop_truncated": False}  # fmt: skip
    stage = {"name": "synth", "engine": "http", "base_urls": [url], "model": "tiny-moe",
             "tokenizer": str(model_dir), "trust_remote_code": True, "recipes": [recipe],
             "chunk_size": 8, "concurrency": 2, **synth}  # fmt: skip
    cfg["stages"] = [stage]
    return cfg


def start_run(workdir: Path, config: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("ab") as fh:
        return subprocess.Popen([sys.executable, "-m", "pipeline", "run", config], cwd=workdir, env=env,
                                stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip


def kill_server_mid_runs(runs: dict[str, tuple[subprocess.Popen[bytes], Path, Path]], server: Server) -> dict[str, int]:
    """SIGKILL the server (API process and engine core) once every run (name: process, response cache,
    log) has KILL_AT responses committed; returns how many each had committed then."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        counts = {name: cache_rows(cache) for name, (_, cache, _) in runs.items()}
        if min(counts.values()) >= KILL_AT:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=30)
            return counts
        if any(run.poll() is not None for run, _, _ in runs.values()):
            break
        time.sleep(0.02)
    for run, _, _ in runs.values():
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
    logs = "\n".join(f"{name} ({run.poll()}):\n{tail(log)}" for name, (run, _, log) in runs.items())
    raise AssertionError(f"the runs never all got {KILL_AT} responses committed:\n{logs}")


def tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def wait_run(run: subprocess.Popen[bytes], timeout: float, log: Path) -> int:
    try:
        return run.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
        raise AssertionError(f"the run did not end within {timeout:g} s:\n{tail(log)}") from None


def manifest(out: Path) -> dict[str, Any]:
    return json.loads((out / "synth" / "_manifest.json").read_text())


def synthetic(out: Path) -> pa.Table:
    table = pa.concat_tables([pq.read_table(p) for p in sorted((out / "synth" / "data").glob("*.parquet"))])
    return table.filter(pc.is_valid(table.column("parent_id"))).sort_by("id")


def check_output(out: Path, selected: list[str]) -> pa.Table:
    """One synthetic document per selected source document (or its clean-up rejection), deterministic
    ids, no generation failures; returns the synthetic documents."""
    from stages.synth import synth_id

    m = manifest(out)
    s = m["stats"]
    assert s["prompts"] == len(selected), s  # one chunk, so one request, per document
    assert s["failed"] == 0 and s["failures_by_cause"] == {}, s
    failed_files = sorted((out / "synth" / "failed").glob("*.parquet"))
    rejected = pa.concat_tables([pq.read_table(p) for p in failed_files]).to_pylist() if failed_files else []
    assert all(f["stage"] == "postprocess" and f["reason"] for f in rejected), rejected
    assert len(rejected) == s["dropped"]
    docs = synthetic(out)
    parents = docs.column("parent_id").to_pylist()
    assert len(parents) == len(set(parents)) == m["counts"]["added"] == s["synthetic_docs"]  # once each
    assert sorted(parents + [f["parent_id"] for f in rejected]) == sorted(selected)  # ... and all of them
    assert docs.column("id").to_pylist() == sorted(synth_id(p, RECIPE, 0) for p in parents)
    for d in docs.to_pylist():
        assert d["recipe"] == RECIPE and d["model"] == "tiny-moe" and d["synth_completion_tokens"] > 0
        assert json.loads(d["meta"])["chunks"] == [0]
    return docs


def test_http_synth_survives_a_server_restart_and_resumes_after_an_outage(workdir: Path, tiny_model_dir: Path) -> None:
    require("vllm")
    require("httpx")
    require("transformers")
    port = free_port()
    t0 = time.monotonic()
    serve_log = workdir / "serve.log"
    server = start_vllm_server(tiny_model_dir, serve_log, port, max_model_len=MODEL_LEN)
    runs: list[subprocess.Popen[bytes]] = []
    try:
        wait_healthy(server)

        # A (default retry budget) and B (retry_max_s=6) generate at once; one kill of the server serves both
        write_config(workdir / "a.yaml", restart_config(tiny_model_dir, server.base_url, "outA",
                                                        retry_backoff_max_s=2))  # fmt: skip
        write_config(workdir / "b.yaml", restart_config(tiny_model_dir, server.base_url, "outB",
                                                        retry_max_s=6, retry_backoff_max_s=1))  # fmt: skip
        log_a, log_b = workdir / "run-a.log", workdir / "run-b.log"
        cache_a, cache_b = workdir / "outA" / "_cache" / "synth.sqlite", workdir / "outB" / "_cache" / "synth.sqlite"
        run_a = start_run(workdir, "a.yaml", log_a)
        run_b = start_run(workdir, "b.yaml", log_b)
        runs += [run_a, run_b]
        killed_at = kill_server_mid_runs({"A": (run_a, cache_a, log_a), "B": (run_b, cache_b, log_b)}, server)
        t_kill = time.monotonic()
        phases: dict[str, Any] = {"start": round(t_kill - t0), "killed_at": killed_at}

        # -- B: down longer than retry_max_s: exit 1 naming the server, what was finished is in the cache --
        rc = wait_run(run_b, 120, log_b)
        gave_up_s = time.monotonic() - t_kill
        out_b = tail(log_b)
        assert rc == 1, f"exit {rc}:\n{out_b}"
        assert gave_up_s < 60, f"took {gave_up_s:.0f} s to give up with retry_max_s=6"
        error = next(line for line in out_b.splitlines() if line.startswith("curate: stage failed"))
        assert server.base_url in error and "server unavailable" in error and "rerun" in error, error
        assert not (workdir / "outB" / "synth" / "_manifest.json").exists()
        committed = cache_rows(cache_b)
        phases.update(b_committed=committed, b_gave_up_s=round(gave_up_s))
        assert run_a.poll() is None, f"A ended ({run_a.poll()}) while the server was down:\n{tail(log_a)}"

        # -- A: the server is started again on the same port; the run waits for it (default retry budget) --
        server = start_vllm_server(tiny_model_dir, serve_log, port, max_model_len=MODEL_LEN)
        wait_healthy(server)
        down_s = time.monotonic() - t_kill
        phases["a_down_s"] = round(down_s)
        rc = wait_run(run_a, 300, log_a)
        assert rc == 0, f"exit {rc} after a {down_s:.0f} s restart:\n{tail(log_a)}"
        ingest = pq.read_table(workdir / "outA" / "ingest" / "data", columns=["id", "source"])
        selected = ingest.filter(pc.is_in(ingest.column("source"), pa.array(SELECT))).column("id").to_pylist()
        assert killed_at["A"] < len(selected) == 144  # the kill landed mid-generation
        assert KILL_AT <= killed_at["B"] <= committed < len(selected)
        s = manifest(workdir / "outA")["stats"]
        assert s["cache_hits"] == 0 and s["generated"] == len(selected), s  # dropped ones included
        phases["a_retries"] = s["engine_retries"]
        assert s["engine_retries"] > 0  # requests were in flight or queued while the server was down
        assert cache_rows(cache_a) == len(selected)
        docs_a = check_output(workdir / "outA", selected)

        # -- B, rerun against the restarted server: resumes from the cache ------------------------------
        runs.append(start_run(workdir, "b.yaml", log_b))
        rc = wait_run(runs[-1], 300, log_b)
        assert rc == 0, f"rerun exit {rc}:\n{tail(log_b)}"
        s = manifest(workdir / "outB")["stats"]
        assert s["cache_hits"] == committed, s  # nothing finished before the outage is generated again
        assert s["generated"] == len(selected) - committed and s["engine_retries"] == 0, s
        assert cache_rows(cache_b) == len(selected)
        docs_b = check_output(workdir / "outB", selected)
        phases.update(dropped=s["dropped"], total_s=round(time.monotonic() - t0))
        print(f"\nserver restart test: {phases}")
        assert docs_b.select(["id", "parent_id", "text"]).equals(docs_a.select(["id", "parent_id", "text"]))
    finally:
        for run in runs:  # a failed assertion leaves no run behind
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
                run.wait(timeout=30)
        stop_vllm_server(server)


# -- the same rules in seconds, without vLLM ---------------------------------------------------------------

SP = Sampling(temperature=0.0, max_tokens=4, seed=1)


class StubServer:
    """Answers ``/v1/completions`` like vLLM (text = the prompt reversed); ``start``/``stop`` at will."""

    def __init__(self, port: int) -> None:
        self.port, self.served = port, 0
        self._server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StubServer:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # http.server's naming
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                stub.served += 1
                payload = json.dumps({"choices": [{"text": body["prompt"][::-1], "finish_reason": "stop"}],
                                      "usage": {"prompt_tokens": 3, "completion_tokens": 2}}).encode()  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def test_http_engine_waits_out_a_restart_within_retry_max_s() -> None:
    require("httpx")
    from synth.engine_http import HTTPEngine

    stub = StubServer(free_port())  # down at first: connection refused
    timer = threading.Timer(1.5, stub.start)
    timer.start()
    try:
        with HTTPEngine(stub.base_url, "m", concurrency=3, retry_max_s=30, backoff_s=0.05, backoff_max_s=0.3) as eng:
            results = eng.generate([GenRequest(f"r{i}", f"prompt {i}", SP) for i in range(12)])
            assert eng.last_stats["retries"] >= 3 and eng.last_stats["unavailable"] is None
    finally:
        timer.join()
        stub.stop()
    assert [r.id for r in results] == [f"r{i}" for i in range(12)]
    assert all(r.ok and r.text == f"prompt {i}"[::-1] for i, r in enumerate(results)), results
    assert stub.served == 12  # each request answered once


def test_http_engine_declares_an_outage_once_for_the_whole_batch() -> None:
    """A dead server fails a batch after retry_max_s in all, not after retry_max_s per queued request."""
    require("httpx")
    from stages.synth import failure_cause
    from synth.engine_http import HTTPEngine

    stub = StubServer(free_port())
    with HTTPEngine(stub.base_url, "m", concurrency=2, retry_max_s=1.0, backoff_s=0.05, backoff_max_s=0.2) as eng:
        t0 = time.monotonic()
        results = eng.generate([GenRequest(f"r{i}", f"prompt {i}", SP) for i in range(40)])
        took = time.monotonic() - t0
        assert took < 6, f"{took:.1f} s for 40 requests at concurrency 2 with retry_max_s=1"
        assert [r.id for r in results] == [f"r{i}" for i in range(40)]
        for r in results:
            assert r.status == "failed" and r.error.startswith("server unavailable: no answer from"), r
            assert stub.base_url in r.error and "retry_max_s=1" in r.error
            assert failure_cause(r.error) == "unavailable"
        assert eng.last_stats["unavailable"] == results[0].error
        stub.start()  # the next batch probes the server again
        try:
            again = eng.generate([GenRequest("x", "abc", SP)])
        finally:
            stub.stop()
    assert again[0].ok and again[0].text == "cba" and eng.last_stats["unavailable"] is None


def test_http_retry_settings_and_defaults() -> None:
    from stages.synth import SynthConfig

    cfg = SynthConfig(name="synth", engine="http", base_urls=["http://h:8000"], recipes=["wiki_rephrase"])
    kw = cfg.engine_kwargs(0, "m")
    # the defaults outlast a server restart that loads a large checkpoint
    assert (kw["retry_max_s"], kw["backoff_s"], kw["backoff_max_s"]) == (600.0, 0.5, 30.0)
    cfg = SynthConfig(name="synth", engine="http", base_urls=["http://h:8000"], recipes=["wiki_rephrase"],
                      retry_max_s=5, retry_backoff_s=0.1, retry_backoff_max_s=1)  # fmt: skip
    kw = cfg.engine_kwargs(0, "m")
    assert (kw["retry_max_s"], kw["backoff_s"], kw["backoff_max_s"]) == (5, 0.1, 1)
    require("httpx")
    from synth.engine_http import HTTPEngine

    with HTTPEngine("http://127.0.0.1:9", "m") as eng:
        assert (eng.retry_max_s, eng.max_retries, eng.backoff_max_s) == (600.0, None, 30.0)


class _ServerGoesAway:
    """Serves the first ``ok_calls`` chunks, then answers every request as an engine whose server is gone."""

    model_id = "scripted"

    def __init__(self, ok_calls: int | None) -> None:
        self.ok_calls, self.calls, self.sent = ok_calls, 0, 0
        self.last_stats: dict[str, Any] = {}

    def generate(self, requests: Sequence[GenRequest]) -> list[GenResult]:
        self.calls += 1
        self.sent += len(requests)
        down = self.ok_calls is not None and self.calls > self.ok_calls
        error = "server unavailable: no answer from http://gpu-7:8000 for 600 s (retry_max_s=600); last error: x"
        self.last_stats = {"retries": 3 if down else 0}
        return [GenResult.failure(r.id, error) if down and i % 2 else
                GenResult(r.id, "ok", f"Generated text number {i} for the request.", 5, 9, "stop")
                for i, r in enumerate(requests)]  # fmt: skip

    def close(self) -> None:
        pass


def test_stage_stops_on_an_outage_and_a_rerun_resumes(
    workdir: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows an outage failed are not recorded as failed documents: the stage fails naming the server,
    after the cache committed what was finished (half of the failing chunk too), and stops sending."""
    require("transformers")
    import stages.synth
    from pipeline.config import validate
    from pipeline.errors import StageFailed
    from pipeline.runner import Runner

    monkeypatch.chdir(workdir)
    cfg = restart_config(tiny_model_dir, "http://gpu-7:8000", "out")
    engine = _ServerGoesAway(ok_calls=2)
    monkeypatch.setattr(stages.synth, "ENGINE_OVERRIDE", engine)
    with pytest.raises(StageFailed, match=r"ServerUnavailable: 4 of 8 requests not served: server unavailable: "
                                          r"no answer from http://gpu-7:8000 .* rerun to resume"):  # fmt: skip
        Runner(validate(cfg)).run()
    assert engine.calls == 3 and engine.sent == 24  # nothing sent after the outage
    cache = workdir / "out" / "_cache" / "synth.sqlite"
    assert cache_rows(cache) == 20 and not (workdir / "out" / "synth" / "failed").exists()

    engine = _ServerGoesAway(ok_calls=None)
    monkeypatch.setattr(stages.synth, "ENGINE_OVERRIDE", engine)
    Runner(validate(cfg)).run()
    s = manifest(workdir / "out")["stats"]
    assert s["cache_hits"] == 20 and s["generated"] == s["prompts"] - 20 == engine.sent and s["failed"] == 0
    assert cache_rows(cache) == s["prompts"] == 144


def test_stage_fails_cleanly_when_the_served_model_name_cannot_be_read(
    workdir: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("httpx")
    require("transformers")
    from pipeline.config import validate
    from pipeline.errors import StageFailed
    from pipeline.runner import Runner

    monkeypatch.chdir(workdir)
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = restart_config(tiny_model_dir, dead, "out", model=None, retry_max_s=0.5, retry_backoff_s=0.05)
    with pytest.raises(StageFailed, match=f"ServerUnavailable: server unavailable: could not read the served "
                                          f"model name from {dead} \\(retry_max_s=0.5\\)"):  # fmt: skip
        Runner(validate(cfg)).run()
