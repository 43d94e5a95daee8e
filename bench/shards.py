"""Tokenized shard writing: the `tokenize` stage + Megatron writer against the bare tokenizer.

Both contenders tokenize the same texts with the same `tokenizers` object; the stage also builds
Arrow columns, and the writer concatenates ids and writes `.bin/.idx`. The ratio (stage tokens/s
over bare `encode_batch_fast` tokens/s) is the cost of everything around the tokenizer.

    python bench/shards.py [--docs 4000] [--tokenizer DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    import pyarrow as pa

    from pipeline.config import PipelineConfig
    from pipeline.demo.text import generate
    from pipeline.megatron import dtype_for_vocab, write_indexed_dataset
    from pipeline.tokenizer import load_tokenizer
    from stages.tokenize import Stage, TokenizeConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--tokenizer", help="tokenizer dir (default: the tiny model's, built in a temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tok_dir = args.tokenizer
        if tok_dir is None:
            from synth.tiny_model import build_tiny_model

            tok_dir = str(build_tiny_model(Path(tmp) / "tiny"))
        domains = ["news", "encyclopedia", "forum", "code", "math"]
        texts = [generate("en", domains[i % 5], "high", 10_000 + i).text for i in range(args.docs)]
        table = pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts})
        mb = sum(len(t.encode()) for t in texts) / 1e6
        tok = load_tokenizer(tok_dir)

        def bare() -> int:
            encodings = tok.tokenizer.encode_batch_fast(texts, add_special_tokens=False)
            return sum(len(e.ids) for e in encodings)

        cfg = TokenizeConfig(name="tokenize", kind="tokenize", tokenizer=tok_dir)
        stage = Stage(cfg, PipelineConfig(output=tmp, inputs=[{"name": "x", "path": "x"}]))
        stage.setup()

        def ours() -> int:
            result = stage.apply(table)
            ids = result.column("token_ids").combine_chunks()
            lengths = result.column("n_tokens").to_numpy()
            write_indexed_dataset(Path(tmp) / "bench_0", ids.flatten().to_numpy(), lengths,
                                  dtype_for_vocab(tok.vocab_size))
            return int(lengths.sum())

        best = {}
        for name, fn in (("bare", bare), ("stage", ours)):
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                tokens = fn()
                times.append(time.perf_counter() - started)
            best[name] = (min(times), tokens)
    bare_tps = best["bare"][1] / best["bare"][0]
    stage_tps = best["stage"][1] / best["stage"][0]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.docs} docs, {mb:.1f} MB of text")
    print(f"bare encode_batch_fast: {bare_tps:,.0f} tokens/s")
    print(f"tokenize stage + Megatron writer: {stage_tps:,.0f} tokens/s (includes {args.docs} end-of-document tokens)")
    print(json.dumps({"bench": "shards", "docs_per_s": round(args.docs / best["stage"][0], 1),
                      "tokens_per_s": round(stage_tps), "bare_tokens_per_s": round(bare_tps),
                      "ratio_vs_bare_tokenizer": round(stage_tps / bare_tps, 3), "peak_rss_mb": round(peak, 1)}))


if __name__ == "__main__":
    main()
