"""Throughput of the synth stage against naive vLLM use, bare ``vllm.LLM.generate`` and the ``http`` engine.

On the demo corpus (``pipeline.demo.corpus``), the synth stage runs in this process (ingest -> synth, fresh
response cache) with Nemotron-CC's recipes (wiki_rephrase on web/forum documents, the four high-quality
recipes on the same encyclopedia documents). Its generated tokens per second of stage time (selection,
chunking, prompts, cache, generation, clean-up and writing; the model load excluded) are compared with:

* bare ``LLM.generate`` on exactly the prompts and sampling parameters the stage sent, in one call, on the
  same ``vllm.LLM`` object (same process, same engine settings, prefix cache reset before each run);
* naive use, the way a loop written without the stage would drive vLLM: its own ``vllm.LLM`` with vLLM's
  defaults (scheduling, chunked prefill, CPU thread binding; only the model, context length, dtype, eager
  mode and KV-cache size are set, the same as the stage's so both hold the same memory), one
  ``LLM.generate`` call per recipe, the instruction first and the document after (so recipes of one
  document share no prefix), the documents in input order, duplicates sent again, text prompts, one
  sampling setting per recipe (no per-request seed); same documents, chunks and sampling otherwise;
* the same naive loop on the stage's engine ("naive, stage's engine"), which splits the stage's gain into
  what its requests give (batching, order, prompt layout) and what its engine settings give;
* ``HTTPEngine`` (``--http``) on the same requests against a local OpenAI-compatible vLLM server started
  here with the same settings (``python -m vllm.entrypoints.openai.api_server``).

Ratios above 1 mean the stage is faster; each figure is the median of ``--repeat`` runs (default 3). The
default model is the demo's SmolLM2-135M-Instruct (``.cache/demo-model``, ``curate demo-model``), else the
tiny random MoE; ``--model PATH`` runs the same bench on any checkpoint (a Ling model on a GPU machine).

    python bench/synth.py [--docs 400] [--per-recipe 8] [--max-tokens 128] [--model DIR] [--repeat 3] [--http]
                          [--gpu-memory-utilization 0.45]

Both engines stay loaded and the contenders take turns, so a change in the machine's load falls on all
alike; on a GPU each engine gets ``--gpu-memory-utilization`` of it (default 0.45).

The last line printed is one JSON object with every figure (``docs_per_s``: synthetic documents per second
of stage time; ``peak_rss_mb``: this process, vLLM's engine-core process not included).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

MAX_MODEL_LEN = 2048
INPUTS = [
    {"name": "web", "path": "web/*.jsonl.gz", "format": "jsonl.gz", "url_field": "url"},
    {"name": "forum", "path": "forum/*.jsonl.zst", "format": "jsonl.zst", "id_field": "doc_id", "text_field": "body",
     "url_field": "link"},
    {"name": "encyclopedia", "path": "encyclopedia/*.parquet", "format": "parquet", "id_field": "id",
     "url_field": "url"},
]  # fmt: skip


class Recorder:
    """The stage's engine, recording every request it is sent (the bare and HTTP runs replay them)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.requests: list[Any] = []

    @property
    def last_stats(self) -> dict[str, Any]:
        return self.inner.last_stats

    def generate(self, requests: Sequence[Any]) -> list[Any]:
        self.requests.extend(requests)
        return self.inner.generate(requests)

    def close(self) -> None:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(model: Path, port: int, log: Path, trust_remote_code: bool) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
           "--served-model-name", "bench", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--max-model-len", str(MAX_MODEL_LEN), "--enforce-eager", "--seed", "0",
           "--no-enable-chunked-prefill", "--disable-log-stats",
           *(["--trust-remote-code"] if trust_remote_code else [])]  # fmt: skip
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    with log.open("wb") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def wait_healthy(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vLLM server exited {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError("vLLM server not healthy in time")


# Nemotron-CC's layout: the low-quality documents are rephrased, each high-quality document gets all four
# high-quality recipes. Those four share max_input_tokens, so a document is cut into the same chunks for each
# and its prompts share the chunk as a prefix (the stage's templates put the document first).
HQ_RECIPES = ("diverse_qa", "distill", "extract_knowledge", "knowledge_list")


def stage_config(root: Path, model: Path, out: Path, per_recipe: int, max_tokens: int, tiny: bool,
                 hq_recipes: Sequence[str] = HQ_RECIPES) -> dict[str, Any]:
    """wiki_rephrase on web/forum documents, ``hq_recipes`` on the same encyclopedia documents."""
    common = {"max_output_tokens": max_tokens, "min_output_tokens": 1, "drop_truncated": False}
    recipes = [{"recipe": "wiki_rephrase", "select": "source in ['web', 'forum']", **common}]
    recipes += [{"recipe": name, "select": "source == 'encyclopedia'", "max_input_tokens": 700, **common}
                for name in hq_recipes]
    inputs = [{**i, "path": str(root / i["path"])} for i in INPUTS]
    synth = {"name": "synth", "model": str(model), "trust_remote_code": tiny, "max_model_len": MAX_MODEL_LEN,
             "recipes": recipes, "max_docs_per_recipe": per_recipe, "cache": "cache.sqlite"}
    return {"name": "bench-synth", "output": str(out), "workers": 1, "seed": 0, "partition_rows": 500,
            "inputs": inputs, "stages": [synth]}


def naive_prompt(prompt: str, recipe: Any) -> str:
    """The same request with the instruction first and the document after (a template as users write them).
    The stage's user message is ``Passage:\\n<chunk>\\n\\n<instruction>``; everything around it (chat markup,
    response prefix) stays."""
    instruction = recipe.render(text="\x00").split("\x00", 1)[1].strip()
    start = prompt.index("Passage:\n")
    end = prompt.index(instruction, start)
    chunk = prompt[start + len("Passage:\n") : end].rstrip("\n")
    naive = instruction.replace("passage above", "passage below").replace("Passage above", "Passage below")
    return prompt[:start] + naive + "\n\nPassage:\n" + chunk + prompt[end + len(instruction) :]


def naive_engine(model: Path, stage_llm: Any, trust_remote_code: bool, gpu_memory_utilization: float) -> Any:
    """``vllm.LLM`` as a user would start it: vLLM's defaults but for what both engines must share to hold
    the same memory and compute the same model (context length, dtype, eager mode, KV-cache size)."""
    from vllm import LLM

    cfg = stage_llm.llm_engine.vllm_config
    kwargs: dict[str, Any] = {"model": str(model), "max_model_len": MAX_MODEL_LEN, "seed": 0,
                              "dtype": str(cfg.model_config.dtype).removeprefix("torch."),
                              "enforce_eager": cfg.model_config.enforce_eager,
                              "trust_remote_code": trust_remote_code,
                              "gpu_memory_utilization": gpu_memory_utilization}  # fmt: skip
    kv_bytes = cfg.cache_config.kv_cache_memory_bytes
    if kv_bytes:
        kwargs["kv_cache_memory_bytes"] = kv_bytes
    return LLM(**kwargs)


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def prefix_counts(llm: Any) -> tuple[int, int]:
    """vLLM's cumulative prefix-cache counters (prompt tokens looked up, found) of the stage's engine. The
    naive engine keeps vLLM's default of no stats: two engines with stats in one process register under
    the same labels, and the second one's counters then hide the first one's (measured: 0 hits read)."""
    queried = hits = 0
    for m in llm.get_metrics():
        if m.name == "vllm:prefix_cache_queries":
            queried += int(m.value)
        elif m.name == "vllm:prefix_cache_hits":
            hits += int(m.value)
    return queried, hits


def hit_rate(before: tuple[int, int], after: tuple[int, int]) -> float:
    queried = after[0] - before[0]
    return round((after[1] - before[1]) / queried, 3) if queried else 0.0


def timed_generate(llm: Any, prompts: list[Any], params: list[Any]) -> tuple[float, int]:
    t0 = time.perf_counter()
    outs = llm.generate(prompts, params, use_tqdm=False)
    return time.perf_counter() - t0, sum(len(o.outputs[0].token_ids) for o in outs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=400, help="demo corpus size")
    ap.add_argument("--per-recipe", type=int, default=8, help="max_docs_per_recipe")
    ap.add_argument("--max-tokens", type=int, default=128, help="max_output_tokens of every recipe")
    ap.add_argument("--model", help="checkpoint dir (default: .cache/demo-model, else the tiny MoE built here)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each contender; the median is reported")
    ap.add_argument("--http", action="store_true", help="also the http engine against a local vllm server")
    ap.add_argument("--hq-recipes", default=",".join(HQ_RECIPES),
                    help="recipes applied to every selected encyclopedia document (comma-separated)")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.45,
                    help="each engine's share of a GPU (both stay loaded); ignored on CPU")
    args = ap.parse_args(argv)
    hq_recipes = [r for r in args.hq_recipes.split(",") if r]

    from vllm import SamplingParams

    import stages.synth
    from pipeline.config import validate
    from pipeline.demo.corpus import write_demo_corpus
    from pipeline.runner import Runner
    from synth.engine_http import HTTPEngine
    from synth.engine_vllm import VLLMEngine
    from synth.recipes import load_recipe
    from synth.tiny_model import build_tiny_model

    tmp = Path(tempfile.mkdtemp(prefix="bench-synth-"))
    write_demo_corpus(tmp / "demo", n_docs=args.docs, seed=0)
    demo = REPO / ".cache" / "demo-model"
    model = Path(args.model) if args.model else demo if (demo / "config.json").is_file() else None
    tiny = model is None
    model = model or build_tiny_model(tmp / "tiny-moe")
    print(f"model: {model}")
    port = free_port()
    server_log = tmp / "server.log"
    server = start_server(model, port, server_log, tiny) if args.http else None  # loads beside the engine
    try:
        t0 = time.perf_counter()
        engine = VLLMEngine(model, max_model_len=MAX_MODEL_LEN, trust_remote_code=tiny, kv_cache_gb=1, seed=0,
                            gpu_memory_utilization=args.gpu_memory_utilization)
        print(f"stage's engine loaded in {time.perf_counter() - t0:.1f} s (compute cores: {engine.cpu_cores})")
        llm = engine._llm
        t0 = time.perf_counter()
        naive_llm = naive_engine(model, llm, tiny, args.gpu_memory_utilization)
        print(f"naive engine (vLLM defaults) loaded in {time.perf_counter() - t0:.1f} s")

        def params_of(r: Any, seeded: bool = True) -> Any:
            p = r.params
            return SamplingParams(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
                                  seed=p.seed if seeded else None, repetition_penalty=p.repetition_penalty)

        def naive_loop(target: Any, reqs: list[Any], seeded: bool) -> float:
            """One call per recipe, in input order, instruction first; tokens/s over all calls."""
            by_recipe: dict[str, list[Any]] = {}
            for r in reqs:  # the stage's requests come in (partition, recipe, row) order: input order per recipe
                by_recipe.setdefault(r.id.split(":", 1)[0], []).append(r)
            recipes.update({name: load_recipe(name) for name in by_recipe if name not in recipes})
            target.reset_prefix_cache()
            secs = toks = 0
            for name, group in by_recipe.items():
                s_, t_ = timed_generate(target, [naive_prompt(r.prompt, recipes[name]) for r in group],
                                        [params_of(r, seeded) for r in group])
                secs, toks = secs + s_, toks + t_
            return toks / secs

        # The contenders take turns (stage, bare, naive, naive on the stage's engine; again), so a change in
        # the machine's load over the run falls on all of them alike instead of on whichever ran last.
        stage_runs, bare_runs, naive_runs, same_runs = [], [], [], []
        hits: dict[str, list[float]] = {"stage": [], "bare": [], "naive_same_engine": []}
        recorder = Recorder(engine)
        recipes: dict[str, Any] = {}
        for i in range(args.repeat):
            recorder.requests = []
            stages.synth.ENGINE_OVERRIDE = recorder
            llm.reset_prefix_cache()
            cfg = stage_config(tmp / "demo", model, tmp / f"out{i}", args.per_recipe, args.max_tokens, tiny,
                               hq_recipes)
            Runner(validate(cfg)).run()
            manifest = json.loads((tmp / f"out{i}" / "synth" / "_manifest.json").read_text())
            stats = manifest["stats"]
            stage_s = manifest["seconds"] - stats["load_seconds"]  # the whole stage but the model load
            stage_runs.append((stats["generated_tokens"] / stage_s, stage_s, stats))
            reqs = list(recorder.requests)

            hits["stage"].append((stats.get("prefix_cache") or {}).get("hit_rate", 0.0))

            llm.reset_prefix_cache()
            c0 = prefix_counts(llm)
            secs, toks = timed_generate(llm, [r.prompt for r in reqs], [params_of(r) for r in reqs])
            bare_runs.append(toks / secs)
            hits["bare"].append(hit_rate(c0, prefix_counts(llm)))
            naive_runs.append(naive_loop(naive_llm, reqs, seeded=False))  # its hit rate: see prefix_counts
            c0 = prefix_counts(llm)
            same_runs.append(naive_loop(llm, reqs, seeded=True))
            hits["naive_same_engine"].append(hit_rate(c0, prefix_counts(llm)))
            print(f"round {i + 1}: stage {stage_runs[-1][0]:.1f}, bare {bare_runs[-1]:.1f}, "
                  f"naive {naive_runs[-1]:.1f}, naive on the stage's engine {same_runs[-1]:.1f} tok/s "
                  f"(load {os.getloadavg()[0]:.1f}); prefix-cache hit rates {({k: v[-1] for k, v in hits.items()})}",
                  flush=True)  # fmt: skip
        stage_tok_s = median([r[0] for r in stage_runs])
        _, stage_s, stats = sorted(stage_runs, key=lambda r: r[0])[len(stage_runs) // 2]
        print(f"synth stage: {stats['prompts']} prompts, {stats['generated_tokens']} tokens generated in "
              f"{stage_s:.2f} s of stage time = {stage_tok_s:.1f} tok/s (engine time only: "
              f"{stats['tokens_per_s']:.1f} tok/s); {stats['synthetic_docs']} documents")  # fmt: skip
        bare_tok_s = median(bare_runs)
        print(f"bare LLM.generate (the stage's requests, one call): {bare_tok_s:.1f} tok/s")
        naive_tok_s = median(naive_runs)
        print(f"naive (own LLM with vLLM defaults, one LLM.generate per recipe, instruction first, input order): "
              f"{naive_tok_s:.1f} tok/s")
        same_tok_s = median(same_runs)
        print(f"naive on the stage's engine: {same_tok_s:.1f} tok/s")
        engine.close()

        http_tok_s = None
        if server is not None:
            url = f"http://127.0.0.1:{port}"
            wait_healthy(server, url, server_log)
            http_runs = []
            with HTTPEngine(url, "bench", concurrency=64) as http:
                http.generate(reqs[:4])  # warm-up
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    res = http.generate(reqs)
                    secs = time.perf_counter() - t0
                    http_runs.append(sum(r.completion_tokens for r in res if r.ok) / secs)
            http_tok_s = median(http_runs)
            print(f"http engine (64 concurrent, local vllm server): {http_tok_s:.1f} tok/s")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, 9)

    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process (not vLLM's workers)
    figures = {
        "docs_per_s": round(stats["synthetic_docs"] / stage_s, 2),  # synthetic documents per second of stage
        "peak_rss_mb": round(peak_rss_mb, 1),
        "model": str(model),
        "stage_tokens_per_s": round(stage_tok_s, 1),
        "stage_engine_tokens_per_s": stats["tokens_per_s"],
        "bare_llm_tokens_per_s": round(bare_tok_s, 1),
        "naive_tokens_per_s": round(naive_tok_s, 1),
        "naive_same_engine_tokens_per_s": round(same_tok_s, 1),
        "ratio_vs_naive": round(stage_tok_s / naive_tok_s, 3),
        "ratio_vs_naive_same_engine": round(stage_tok_s / same_tok_s, 3),
        "rounds": {"stage": [round(r[0], 1) for r in stage_runs], "bare": [round(x, 1) for x in bare_runs],
                   "naive": [round(x, 1) for x in naive_runs], "naive_same_engine": [round(x, 1) for x in same_runs]},
        "prefix_cache_hit_rates": hits,
        "ratio_vs_bare_llm": round(stage_tok_s / bare_tok_s, 3),
        "prompts": stats["prompts"],
        "generated_tokens": stats["generated_tokens"],
        "max_tokens": args.max_tokens,
        "hq_recipes": hq_recipes,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "docs": args.docs,
        "repeat": args.repeat,
    }
    if http_tok_s:
        figures.update(http_tokens_per_s=round(http_tok_s, 1), ratio_vs_http=round(stage_tok_s / http_tok_s, 3))
    print(f"ratios (medians of {args.repeat}): stage / naive = {figures['ratio_vs_naive']}, "
          f"stage / naive on the stage's engine = {figures['ratio_vs_naive_same_engine']}, "
          f"stage / bare LLM.generate = {figures['ratio_vs_bare_llm']}")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
