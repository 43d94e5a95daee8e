"""Benchmark: bare ``vllm.LLM.generate`` vs ``VLLMEngine.generate`` on the same prompts (tiny model, CPU).

Why: the engine adds tokenization, pre-checks, dedup and prefix sorting around ``LLM.generate``; this
shows what that costs or saves. Prompts look like synth work: a shared recipe prefix + a source document,
in shuffled order, with a share of exact duplicates. Prints readable lines, then one JSON line.

    python -m synth.bench_engines [--model DIR] [--prompts 256] [--max-tokens 64] [--dtype float32]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

from synth.engines import GenRequest, Sampling

RECIPES = [
    "Rephrase the following text in a clear, Wikipedia-like style. Keep every fact.\nText: ",
    "Generate questions and answers about the passage. Use yes/no, open and multiple choice.\nPassage: ",
]
WORDS = "the harbor forest village river market science history engine planet season bridge".split()


def make_requests(n: int, max_tokens: int, dup_share: float, seed: int = 0) -> list[GenRequest]:
    rng = random.Random(seed)
    n_unique = max(1, round(n * (1 - dup_share)))
    unique = []
    for i in range(n_unique):
        doc = " ".join(rng.choice(WORDS) for _ in range(rng.randint(40, 120)))
        unique.append(
            GenRequest(f"u{i}", RECIPES[i % 2] + doc, Sampling(0.5, 0.9, max_tokens, seed=1000 + i))
        )
    reqs = unique + [rng.choice(unique) for _ in range(n - n_unique)]
    rng.shuffle(reqs)
    return [GenRequest(f"r{i}", r.prompt, r.params) for i, r in enumerate(reqs)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="checkpoint dir (default: build the tiny model in a temp dir)")
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--dup-share", type=float, default=0.25)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="allow torch.compile (default: enforce_eager)")
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vllm import SamplingParams

    from synth.engine_vllm import VLLMEngine
    from synth.tiny_model import build_tiny_model

    model = Path(args.model) if args.model else build_tiny_model(Path(tempfile.mkdtemp()) / "tiny-moe")
    engine = VLLMEngine(
        model, dtype=args.dtype, max_model_len=1024, enforce_eager=not args.compile,
        trust_remote_code=True, kv_cache_gb=1, seed=0,
    )  # fmt: skip
    print(f"load: {engine.load_seconds:.1f} s (dtype={args.dtype}, eager={not args.compile})")
    llm = engine._llm

    warm = make_requests(8, 8, 0.0, seed=99)
    engine.generate(warm)

    figures: dict[str, float] = {"load_s": round(engine.load_seconds, 2)}
    for dup in (0.0, args.dup_share):
        reqs = make_requests(args.prompts, args.max_tokens, dup)
        params = [
            SamplingParams(temperature=r.params.temperature, top_p=r.params.top_p,
                           max_tokens=r.params.max_tokens, seed=r.params.seed)
            for r in reqs
        ]  # fmt: skip
        bare_times, eng_times = [], []
        for _ in range(args.repeat):  # alternate, keep the best: the machine may be shared
            llm.reset_prefix_cache()
            t0 = time.perf_counter()
            outs = llm.generate([r.prompt for r in reqs], params, use_tqdm=False)
            bare_times.append(time.perf_counter() - t0)
            llm.reset_prefix_cache()
            t0 = time.perf_counter()
            res = engine.generate(reqs)
            eng_times.append(time.perf_counter() - t0)
        bare_s, eng_s = min(bare_times), min(eng_times)
        bare_out = sum(len(o.outputs[0].token_ids) for o in outs)
        eng_out = sum(r.completion_tokens for r in res)  # delivered tokens, duplicates included
        eng_gen = engine.last_stats["completion_tokens"]  # tokens actually generated
        same = sum(o.outputs[0].text == r.text for o, r in zip(outs, res, strict=True))
        tag = f"dup{int(dup * 100)}"
        print(
            f"[{tag}] {len(reqs)} prompts ({engine.last_stats['unique']} unique), "
            f"max_tokens {args.max_tokens}, best of {args.repeat}: "
            f"bare LLM.generate {bare_s:.2f} s = {bare_out / bare_s:.0f} out tok/s; "
            f"VLLMEngine {eng_s:.2f} s = {eng_out / eng_s:.0f} delivered tok/s "
            f"({eng_gen / eng_s:.0f} generated tok/s); identical texts {same}/{len(reqs)}"
        )
        figures[f"{tag}_bare_tok_s"] = round(bare_out / bare_s, 1)
        figures[f"{tag}_engine_tok_s"] = round(eng_out / eng_s, 1)
        figures[f"{tag}_ratio_vs_bare"] = round(bare_s / eng_s, 3)
    engine.close()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
