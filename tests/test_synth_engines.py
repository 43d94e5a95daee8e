"""Engines against real vLLM on the tiny Ling model: the offline ``vllm.LLM`` engine, the HTTP engine
against a real ``vllm serve`` (behind a flaky forwarding proxy for the retry cases), and the cache."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from test_synth_support import ENGINE_ARGS, MAX_MODEL_LEN, SERVED_NAME, FlakyProxy, Server, free_port, require

from synth.cache import ResponseCache, cache_key, generate_cached, model_identity
from synth.engine_kinds import make_engine
from synth.engines import Engine, GenRequest, GenResult, Sampling, dedupe_requests

pytest_plugins = ["test_synth_support"]

SP = Sampling(temperature=0.8, top_p=0.95, max_tokens=12, seed=7)
TOO_LONG = "river stone garden window " * 200  # ~ 800 tokens > MAX_MODEL_LEN


def _prompts(n: int, prefix: str = "Rephrase the text in a Wikipedia style.\nText: ") -> list[str]:
    return [f"{prefix}document number {i} about the harbor and the forest." for i in range(n)]


def _text_of_tokens(engine: Any, n: int) -> str:
    """A prompt of at most ``n`` (and nearly ``n``) tokens under the engine's tokenizer."""
    words = ("The harbor and the forest are near the village. " * n).split(" ")
    lo, hi = 1, len(words)
    while lo < hi:  # the longest word prefix with <= n tokens
        mid = (lo + hi + 1) // 2
        if len(engine.tokenize([" ".join(words[:mid])])[0]) <= n:
            lo = mid
        else:
            hi = mid - 1
    text = " ".join(words[:lo])
    assert n - 10 <= len(engine.tokenize([text])[0]) <= n
    return text


# -- contract (no vLLM needed) --------------------------------------------------------------------------


def test_sampling_and_dedup_contract() -> None:
    with pytest.raises(ValueError):
        Sampling(max_tokens=0)
    assert Sampling(stop=["a", "b"]).stop == ("a", "b")
    reqs = [GenRequest("a", "p", SP), GenRequest("b", "p", SP), GenRequest("c", "p", Sampling(seed=8))]
    unique, mapping = dedupe_requests(reqs)
    assert [u.id for u in unique] == ["a", "c"] and mapping == [0, 0, 1]
    with pytest.raises(ValueError):
        make_engine("nope")


def test_cache_key_is_stable_and_model_identity_follows_contents(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    import shutil

    from synth.tiny_model import build_tiny_model

    k = cache_key("m", "wiki_rephrase", "text", SP)
    assert k == cache_key("m", "wiki_rephrase", "text", Sampling(0.8, 0.95, 12, 7, ()))
    assert len({k, cache_key("m2", "wiki_rephrase", "text", SP), cache_key("m", "qa", "text", SP),
                cache_key("m", "wiki_rephrase", "text ", SP),
                cache_key("m", "wiki_rephrase", "text", Sampling(0.8, 0.95, 12, 8))}) == 5  # fmt: skip
    moved = tmp_path / "tiny-moe"
    shutil.copytree(tiny_model_dir, moved)
    assert model_identity(moved) == model_identity(tiny_model_dir)  # paths do not matter
    other = build_tiny_model(tmp_path / "x" / "tiny-moe", seed=5)
    assert model_identity(other) != model_identity(tiny_model_dir)  # contents do
    assert model_identity("served-name") == "served-name"


# -- offline vLLM ---------------------------------------------------------------------------------------


def test_offline_generates_a_batch_in_caller_order(vllm_engine: Any) -> None:
    assert isinstance(vllm_engine, Engine)
    prompts = _prompts(8)[::-1]  # not in sorted order: results must still follow the caller
    reqs = [GenRequest(f"id{i}", p, SP) for i, p in enumerate(prompts)]
    results = vllm_engine.generate(reqs)
    assert [r.id for r in results] == [r.id for r in reqs]
    for r in results:
        assert r.status == "ok" and r.error is None, r
        assert r.text and r.prompt_tokens > 5 and 0 < r.completion_tokens <= SP.max_tokens
        assert r.finish_reason in ("stop", "length")


def test_offline_generates_duplicates_once(vllm_engine: Any) -> None:
    reqs = [GenRequest(f"d{i}", p, SP) for i, p in enumerate(_prompts(3) * 3)]
    results = vllm_engine.generate(reqs)
    assert vllm_engine.last_stats["unique"] == 3 and vllm_engine.last_stats["requests"] == 9
    assert [r.id for r in results] == [f"d{i}" for i in range(9)]
    for i in range(3):
        assert results[i].text == results[i + 3].text == results[i + 6].text
    assert results[0].text != results[1].text


def test_offline_reports_prefix_cache_hits_of_prompts_sharing_a_document(vllm_engine: Any) -> None:
    doc = _text_of_tokens(vllm_engine, 200)
    reqs = [GenRequest(f"q{i}", f"{doc}\nTask {i}: say something about it.", SP) for i in range(4)]
    results = vllm_engine.generate(reqs)
    assert all(r.ok for r in results)
    prefix = vllm_engine.last_stats["prefix_cache"]
    # every prompt token is looked up; three of the four prompts find (most of) the document there
    assert prefix["queried_tokens"] >= sum(r.prompt_tokens for r in results) - len(results)
    assert 3 * 100 <= prefix["hit_tokens"] <= 3 * 200
    again = vllm_engine.generate(reqs[:1])  # a second call counts only its own lookups
    assert vllm_engine.last_stats["prefix_cache"]["queried_tokens"] <= again[0].prompt_tokens


def test_offline_bad_rows_fail_with_reason_while_others_succeed(vllm_engine: Any) -> None:
    reqs = [
        GenRequest("ok1", _prompts(1)[0], SP),
        GenRequest("long", TOO_LONG, SP),
        GenRequest("empty", "", SP),
        GenRequest("ok2", "Question: what is a river?", SP),
        # fits, but prompt + max_tokens exceeds max_model_len: vLLM stops at the limit ("length")
        GenRequest(
            "tight", _text_of_tokens(vllm_engine, MAX_MODEL_LEN - 20), Sampling(max_tokens=100, seed=1)
        ),
    ]
    by_id = {r.id: r for r in vllm_engine.generate(reqs)}
    assert by_id["ok1"].ok and by_id["ok2"].ok
    assert by_id["long"].status == "failed" and "prompt too long" in by_id["long"].error
    assert by_id["long"].prompt_tokens > MAX_MODEL_LEN
    assert by_id["empty"].status == "failed" and "empty" in by_id["empty"].error
    tight = by_id["tight"]
    assert tight.ok and tight.finish_reason == "length"
    assert tight.prompt_tokens + tight.completion_tokens <= MAX_MODEL_LEN


def test_offline_survives_seeded_batches_larger_than_the_token_budget(vllm_engine: Any) -> None:
    """Regression: on the CPU build a seeded request whose prefill is chunked killed the engine core."""
    sched = vllm_engine._llm.llm_engine.vllm_config.scheduler_config
    assert sched.enable_chunked_prefill is False
    prompts = [_text_of_tokens(vllm_engine, 150) + f" {i}" for i in range(12)]
    assert 12 * 150 > sched.max_num_batched_tokens
    results = vllm_engine.generate([GenRequest(f"b{i}", p, SP) for i, p in enumerate(prompts)])
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]


def test_offline_isolates_rows_that_vllm_itself_rejects(
    vllm_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the pre-check off, vLLM raises for the whole batch; bisection confines it to the bad row."""
    monkeypatch.setattr(vllm_engine, "_precheck", lambda n: None)
    reqs = [GenRequest(f"g{i}", p, SP) for i, p in enumerate(_prompts(5))]
    reqs.insert(2, GenRequest("bad", TOO_LONG, SP))
    by_id = {r.id: r for r in vllm_engine.generate(reqs)}
    assert by_id["bad"].status == "failed" and "maximum context length" in by_id["bad"].error
    assert all(by_id[f"g{i}"].ok for i in range(5))


def test_offline_is_deterministic_given_seed(vllm_engine: Any) -> None:
    prompts = _prompts(4)
    first = vllm_engine.generate([GenRequest(str(i), p, SP) for i, p in enumerate(prompts)])
    again = vllm_engine.generate([GenRequest(str(i), p, SP) for i, p in enumerate(prompts)])
    assert [r.text for r in first] == [r.text for r in again]
    alone = vllm_engine.generate([GenRequest("x", prompts[2], SP)])[0]
    assert alone.text == first[2].text  # per-request seed: independent of the batch it runs in
    reseeded = vllm_engine.generate(
        [GenRequest(str(i), p, Sampling(0.8, 0.95, 12, 8)) for i, p in enumerate(prompts)]
    )
    assert [r.text for r in reseeded] != [r.text for r in first]
    greedy = Sampling(temperature=0.0, max_tokens=12)
    g1 = vllm_engine.generate([GenRequest("g", prompts[0], greedy)])[0]
    g2 = vllm_engine.generate([GenRequest("g", prompts[0], greedy)])[0]
    assert g1.text == g2.text


def test_offline_data_parallel_replicas_with_ngram_speculation(
    tiny_model_dir: Path, vllm_engine: Any
) -> None:
    """Two replicas (vLLM refuses data_parallel_size>1 in one process) with n-gram speculative decoding:
    greedy output must equal the plain engine's (speculation is lossless; replicas run the same model)."""
    from synth.engine_vllm import VLLMEngine

    greedy = Sampling(temperature=0.0, max_tokens=12)
    reqs = [GenRequest(f"p{i}", p + " the harbor and the forest", greedy) for i, p in enumerate(_prompts(6))]
    reqs.append(GenRequest("long", TOO_LONG, greedy))
    spec = {"method": "ngram", "num_speculative_tokens": 3, "prompt_lookup_max": 3, "prompt_lookup_min": 2}
    with VLLMEngine(
        tiny_model_dir, data_parallel_size=2, speculative_config=spec, kv_cache_gb=0.5, **ENGINE_ARGS
    ) as dp:
        got = dp.generate(reqs)
    want = vllm_engine.generate(reqs)
    assert [r.id for r in got] == [r.id for r in reqs]
    assert [(r.status, r.text) for r in got] == [(r.status, r.text) for r in want]
    assert got[-1].status == "failed" and "prompt too long" in got[-1].error
    assert dp.last_stats["prefix_cache"]["queried_tokens"] > 0  # summed over the replicas


# -- HTTP against vllm serve ----------------------------------------------------------------------------


def test_http_matches_offline_and_fails_bad_rows_alone(vllm_server: Server, vllm_engine: Any) -> None:
    from synth.engine_http import HTTPEngine

    reqs = [GenRequest(f"h{i}", p, SP) for i, p in enumerate(_prompts(6))]
    reqs += [GenRequest("dup", reqs[0].prompt, SP), GenRequest("long", TOO_LONG, SP)]
    # model=None: the served name is discovered from /v1/models; two URLs exercise the round robin.
    with HTTPEngine([vllm_server.base_url, vllm_server.base_url + "/v1/"], concurrency=4) as eng:
        assert eng.model == SERVED_NAME
        results = eng.generate(reqs)
        assert eng.last_stats["unique"] == 7
    assert [r.id for r in results] == [r.id for r in reqs]
    by_id = {r.id: r for r in results}
    assert by_id["long"].status == "failed" and "HTTP 400" in by_id["long"].error
    assert "maximum context length" in by_id["long"].error
    offline = vllm_engine.generate(reqs[:6])
    for h, o in zip(results[:6], offline, strict=True):
        assert h.ok and h.text == o.text and h.completion_tokens == o.completion_tokens
        assert h.prompt_tokens == o.prompt_tokens and h.finish_reason == o.finish_reason
    assert by_id["dup"].text == by_id["h0"].text


def test_http_retries_5xx_then_succeeds(vllm_server: Server) -> None:
    from synth.engine_http import HTTPEngine

    proxy = FlakyProxy(vllm_server.base_url, fail_first=3).start()
    try:
        with HTTPEngine(proxy.base_url, SERVED_NAME, concurrency=2, backoff_s=0.05, max_retries=5) as eng:
            results = eng.generate([GenRequest(f"r{i}", p, SP) for i, p in enumerate(_prompts(4))])
            assert eng.last_stats["retries"] >= 3
    finally:
        proxy.stop()
    assert all(r.ok for r in results), results
    assert proxy.seen >= 7


def test_http_waits_for_a_server_that_comes_up_late(vllm_server: Server) -> None:
    from synth.engine_http import HTTPEngine

    proxy = FlakyProxy(vllm_server.base_url)  # nothing listens on its port yet: connection refused
    timer = threading.Timer(1.5, proxy.start)
    timer.start()
    try:
        with HTTPEngine(proxy.base_url, SERVED_NAME, backoff_s=0.25, max_retries=8) as eng:
            results = eng.generate([GenRequest(f"l{i}", p, SP) for i, p in enumerate(_prompts(3))])
            assert eng.last_stats["retries"] >= 1
    finally:
        timer.join()
        proxy.stop()
    assert all(r.ok for r in results), results


def test_http_gives_up_per_row_without_losing_any(tmp_path: Path) -> None:
    require("httpx")
    from synth.engine_http import HTTPEngine

    dead = f"http://127.0.0.1:{free_port()}"
    with HTTPEngine([dead], "m", backoff_s=0.01, max_retries=1, connect_timeout_s=1) as eng:
        results = eng.generate([GenRequest("a", "x", SP), GenRequest("b", "y", SP)])
    assert [r.id for r in results] == ["a", "b"]
    assert all(r.status == "failed" and "gave up after 2 attempts" in r.error for r in results)


def test_http_api_key_comes_from_env_and_is_never_shown(
    vllm_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synth.engine_http import HTTPEngine

    with pytest.raises(ValueError, match="SYNTH_TEST_KEY"):
        HTTPEngine(vllm_server.base_url, SERVED_NAME, api_key_env="SYNTH_TEST_KEY")
    monkeypatch.setenv("SYNTH_TEST_KEY", "sekret-123")
    proxy = FlakyProxy(vllm_server.base_url).start()
    try:
        with HTTPEngine(proxy.base_url, SERVED_NAME, api_key_env="SYNTH_TEST_KEY") as eng:
            assert "sekret" not in repr(eng)
            assert eng.generate([GenRequest("k", "hello", SP)])[0].ok
    finally:
        proxy.stop()
    assert proxy.headers[-1].get("Authorization") == "Bearer sekret-123"


# -- cache ----------------------------------------------------------------------------------------------


def test_cache_makes_a_rerun_generate_nothing(tmp_path: Path, vllm_engine: Any) -> None:
    reqs = [GenRequest(f"c{i}", p, SP) for i, p in enumerate(_prompts(7))]
    reqs.append(GenRequest("bad", TOO_LONG, SP))
    with ResponseCache(tmp_path / "cache.sqlite") as cache:
        first = generate_cached(vllm_engine, reqs, cache, "wiki_rephrase", chunk_size=3)
        assert (first.hits, first.generated, first.failed, first.chunks) == (0, 7, 1, 3)
        assert len(cache) == 7  # failures are not cached: they are retried next time
    with ResponseCache(tmp_path / "cache.sqlite") as cache:  # a new process would reopen the file
        renamed = [GenRequest("new-" + r.id, r.prompt, r.params) for r in reqs]
        second = generate_cached(vllm_engine, renamed, cache, "wiki_rephrase", chunk_size=3)
    assert (second.hits, second.generated, second.failed) == (7, 0, 1)
    assert [r.id for r in second.results] == [r.id for r in renamed]
    assert [r.text for r in second.results] == [r.text for r in first.results]


class _CrashesOnSecondChunk:
    """Wraps the real engine and dies after one chunk, like a killed job."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.model_id, self.calls = inner, inner.model_id, 0

    def generate(self, requests: list[GenRequest]) -> list[GenResult]:
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt("killed")
        return self.inner.generate(requests)

    def close(self) -> None:
        pass


def test_cache_keeps_finished_chunks_when_a_run_dies(tmp_path: Path, vllm_engine: Any) -> None:
    reqs = [GenRequest(f"p{i}", p, SP) for i, p in enumerate(_prompts(6, prefix="Q: "))]
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        with pytest.raises(KeyboardInterrupt):
            generate_cached(_CrashesOnSecondChunk(vllm_engine), reqs, cache, "qa", chunk_size=2)
        assert len(cache) == 2
        resumed = generate_cached(vllm_engine, reqs, cache, "qa", chunk_size=2)
    assert (resumed.hits, resumed.generated) == (2, 4)
    assert all(r.ok for r in resumed.results)
