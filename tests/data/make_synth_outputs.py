"""Regenerate ``synth_outputs.jsonl``: real SmolLM2-135M-Instruct outputs (vLLM CPU) for every built-in recipe.

Sampling is the demo pipeline's: each recipe's temperature and top-p, outputs capped at 384 tokens,
repetition_penalty 1.1. Why a file: the post-processing test (tests/test_synth_real_outputs.py) checks each
recipe's clean-up on what a real instruction model writes, in seconds; this script is how those outputs were
made (and how to refresh them after a template change):
``python tests/data/make_synth_outputs.py [MODEL_DIR] [DOCS_PER_SOURCE] [PENALTY] [RECIPE,...]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def source_docs(per_source: int) -> list[dict[str, str]]:
    """Encyclopedia (high quality) and web (low quality) documents of the demo corpus, 300-2000 characters."""
    import pyarrow.parquet as pq

    from pipeline.demo.corpus import write_demo_corpus

    root = HERE / "_demo"
    if not (root / "truth.jsonl").exists():
        write_demo_corpus(root, n_docs=400, seed=0)
    docs = []
    for src, pattern in (("encyclopedia", "encyclopedia/*.parquet"), ("web", "web/*.jsonl.gz")):
        picked = 0
        for f in sorted(root.glob(pattern)):
            if f.suffix == ".parquet":
                rows = pq.read_table(f).to_pylist()
            else:
                import gzip

                rows = []
                for line in gzip.open(f, "rb"):  # the demo corpus plants broken lines: skip them
                    try:
                        rows.append(json.loads(line.decode("utf-8")))
                    except ValueError:
                        continue
            for row in rows:
                text = row.get("text") or ""
                if 300 <= len(text) <= 2000 and picked < per_source:
                    docs.append({"source": src, "text": text})
                    picked += 1
    return docs


def main() -> None:
    from synth.engine_vllm import VLLMEngine
    from synth.engines import GenRequest, Sampling
    from synth.recipes import builtin_names, load_recipes
    from synth.tokenizer import PromptTokenizer

    model = sys.argv[1] if len(sys.argv) > 1 else str(REPO / ".cache" / "demo-model")
    per_source = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    penalty = float(sys.argv[3]) if len(sys.argv) > 3 else 1.1  # the demo pipeline's synth repetition_penalty
    docs = source_docs(per_source)
    tok = PromptTokenizer(model)
    only = sys.argv[4].split(",") if len(sys.argv) > 4 else None  # regenerate these recipes' rows only
    recipes = load_recipes(only or builtin_names())
    rows, requests = [], []
    for i, doc in enumerate(docs):
        for r in recipes:
            s = r.spec
            prompt = r.prompt(tok, text=doc["text"])
            params = Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=min(s.max_output_tokens, 384),
                              seed=i, repetition_penalty=penalty, regex=s.regex)
            requests.append(GenRequest(f"{r.name}:{i}", prompt, params))
            rows.append({"recipe": r.name, "doc": i, "source": doc["source"], "input": doc["text"]})
    engine = VLLMEngine(model, kv_cache_gb=1, max_model_len=4096)
    try:
        results = engine.generate(requests)
    finally:
        engine.close()
    path = HERE / "synth_outputs.jsonl"
    kept = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if only else []
    for row, res in zip(rows, results, strict=True):
        row.update(model="SmolLM2-135M-Instruct", output=res.text, finish_reason=res.finish_reason,
                   completion_tokens=res.completion_tokens)
    merged = [r for r in kept if r["recipe"] not in set(only or ())] + rows
    merged.sort(key=lambda r: (r["doc"], r["recipe"]))
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in merged), encoding="utf-8")


if __name__ == "__main__":
    main()
