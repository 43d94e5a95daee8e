"""`semantic_dedup` on rephrasings written by a real model: does it find a model's paraphrase of a document?

The MRPC figures (bench/semantic_dedup.py) are human paraphrases of single news sentences. Synthetic data
brings a second kind: a model rewrites a whole passage (Nemotron-CC's `wiki_rephrase`), and a rewrite that
lands in the corpus beside its source is a semantic duplicate MinHash cannot see. This bench makes them
with the `synth` stage itself (vLLM, the recipe, its post-processing and the fidelity checks, exactly as a
pipeline runs them) from the real articles of ../shared/data/article-extraction, then embeds originals and
surviving rewrites with the `embed` stage's model and runs the real `semantic_dedup` stage at several eps:

  * rephrasings found: a rewrite or its source removed as `dup_of` the other;
  * originals removed against another original (different outlets on the same story are near in topic,
    not paraphrases: the false-positive side).

    python bench/semantic_dedup_rephrase.py --model .cache/demo-model [--docs 120] [--words 250]

The model must be a checkpoint vLLM loads (`curate demo-model DIR` writes SmolLM2-135M-Instruct). Figures
go to BENCHMARKS.md with the model named: a 135M model's rewrites drift more than a production model's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from semantic_dedup import ARTICLES, run_stage  # noqa: E402

from filters.embedding import Embedder  # noqa: E402
from filters.vectors import to_column  # noqa: E402


def write_articles(path: Path, n_docs: int, n_words: int) -> int:
    """The first `n_words` words of the first `n_docs` articles (sorted by key): one chunk per document."""
    if not ARTICLES.exists():
        raise SystemExit(f"{ARTICLES} is missing (the shared article set)")
    items = sorted(json.loads(ARTICLES.read_text()).items())[:n_docs]
    with open(path, "w", encoding="utf-8") as fh:
        for key, value in items:
            text = " ".join(value["articleBody"].split()[:n_words])
            fh.write(json.dumps({"id": f"art-{key[:12]}", "text": text, "lang": "en"}) + "\n")
    return len(items)


def synth_pipeline(tmp: Path, model: str, min_similarity: float) -> dict[str, Any]:
    return {
        "name": "rephrase-bench", "output": str(tmp / "out"), "workers": 1, "seed": 0,
        "inputs": [{"name": "articles", "path": str(tmp / "articles.jsonl"), "format": "jsonl"}],
        "stages": [{
            "name": "synth", "engine": "vllm", "model": model, "max_model_len": 2048, "kv_cache_gb": 1,
            "repetition_penalty": 1.1,
            "recipes": [{"recipe": "wiki_rephrase", "select": "id is not None", "max_output_tokens": 448}],
            # the demo's fidelity settings: unrelated outputs (cosine < floor) and copies (> 0.98) dropped
            "fidelity": {"wiki_rephrase": {"min_similarity": min_similarity, "max_similarity": 0.98}},
        }],
    }


def generate(tmp: Path, model: str, min_similarity: float) -> tuple[pa.Table, float]:
    """Run `curate run` on the synth-only pipeline; (originals + surviving rewrites, seconds)."""
    cfg = tmp / "pipeline.yaml"
    cfg.write_text(yaml.safe_dump(synth_pipeline(tmp, model, min_similarity)))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", "run", str(cfg)], check=True, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    seconds = time.perf_counter() - t
    table = pq.read_table(tmp / "out" / "synth" / "data")
    return table.select(["id", "text", "parent_id"]), seconds


def failed_causes(tmp: Path) -> dict[str, int]:
    folder = tmp / "out" / "synth" / "failed"
    if not folder.exists() or not list(folder.glob("*.parquet")):
        return {}
    causes: dict[str, int] = {}
    for cause in pq.read_table(folder).column("cause").to_pylist():
        causes[cause] = causes.get(cause, 0) + 1
    return causes


def score(docs: pa.Table, work: Path, eps_values: list[float], workers: int) -> dict[str, Any]:
    rows = docs.to_pylist()
    parent = {r["id"]: r["parent_id"] for r in rows if r["parent_id"]}
    originals = [r["id"] for r in rows if not r["parent_id"]]
    vec = Embedder().encode([r["text"] for r in rows])
    table = pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows],
                      "embedding": to_column(vec)})
    by_id = {r["id"]: i for i, r in enumerate(rows)}
    cosines = sorted(float(vec[by_id[s]].astype("float32") @ vec[by_id[p]].astype("float32"))
                     for s, p in parent.items())
    print("cosine(rewrite, source), sorted:", " ".join(f"{c:.2f}" for c in cosines), flush=True)
    out: dict[str, Any] = {"cosines": [round(c, 3) for c in cosines]}
    for eps in eps_values:
        result, _ = run_stage(table, work / f"eps{eps}", workers, 256, eps=eps)
        dup = {r["id"]: r["dup_of"] for r in result.to_pylist() if r["dup_of"]}
        found = sum(dup.get(s) == p or dup.get(p) == s for s, p in parent.items())
        originals_removed = sum(1 for o in originals if o in dup and dup[o] not in parent)
        out[f"eps{eps}"] = {"rephrasings_found": round(found / max(1, len(parent)), 3),
                            "originals_removed_against_originals": round(originals_removed / len(originals), 4)}
        print(f"eps {eps:<5} rephrasings found {found}/{len(parent)}  originals removed against other "
              f"originals {originals_removed}/{len(originals)}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="a checkpoint directory vLLM loads (curate demo-model DIR)")
    ap.add_argument("--docs", type=int, default=120)
    ap.add_argument("--words", type=int, default=250)
    ap.add_argument("--min-similarity", type=float, default=0.3, help="fidelity floor (the demo's)")
    ap.add_argument("--eps", type=lambda s: [float(x) for x in s.split(",")], default=[0.1, 0.2, 0.3])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default=None, help="keep the run here (default: a temporary folder)")
    args = ap.parse_args()
    result: dict[str, Any] = {"load_average_start": round(os.getloadavg()[0], 2), "model": args.model}
    with tempfile.TemporaryDirectory(prefix="rephrase-bench-") as name:
        tmp = Path(args.work or name)
        tmp.mkdir(parents=True, exist_ok=True)
        result["documents"] = write_articles(tmp / "articles.jsonl", args.docs, args.words)
        docs, seconds = generate(tmp, str(Path(args.model).resolve()), args.min_similarity)
        n_synth = sum(1 for p in docs.column("parent_id").to_pylist() if p)
        result.update(synth_seconds=round(seconds, 1), rewrites_kept=n_synth, rewrites_dropped=failed_causes(tmp))
        print(f"{result['documents']} articles -> {n_synth} rewrites kept by fidelity "
              f"(dropped: {result['rewrites_dropped']}) in {seconds:.0f} s", flush=True)
        result["semantic_dedup"] = score(docs, tmp / "sd", args.eps, args.workers)
    result["load_average_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
