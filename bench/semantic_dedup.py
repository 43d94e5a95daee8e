"""`semantic_dedup`: accuracy on real paraphrases, and seconds at 10k and 100k documents.

Accuracy (`--mrpc DIR`, the Microsoft Research Paraphrase Corpus files msr_paraphrase_{train,test}.txt,
e.g. from github.com/magsail/MRPC; research licence, never committed here): documents of 8 news
sentences, built from MRPC pairs:
  * paraphrase pairs: document A = 8 first sentences of pairs judged paraphrases, B = their 8 partners;
  * same-topic non-paraphrases: the same from pairs judged *not* paraphrases (one event, other facts);
  * unrelated documents: 8 sentences of 8 different pairs, none used elsewhere;
plus the 181 real articles of ../shared/data/article-extraction (several outlets covering the same
stories on the same days: their close pairs are reported apart). Everything is embedded by the
`embed` stage's model and deduplicated by the stage itself (local executor), at several eps.
Reported: paraphrase pairs found (one removed as `dup_of` the other), same-topic pairs removed,
unrelated documents removed, articles removed.

Scale (`--sizes 10000,100000`): clustered random unit vectors (384 dimensions, float16) in
10k-row partitions: the stage's seconds do not depend on where vectors came from.

    python bench/semantic_dedup.py --mrpc /path/to/MRPC [--sizes 10000,100000] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from filters.embedding import Embedder  # noqa: E402
from filters.vectors import to_column  # noqa: E402
from pipeline.config import PipelineConfig  # noqa: E402
from pipeline.executors.local import LocalExecutor  # noqa: E402
from pipeline.stage_context import finish_counts  # noqa: E402
from stages.base import StageContext  # noqa: E402
from stages.registry import make_stage  # noqa: E402
from stages.semantic_dedup import SemanticDedupConfig  # noqa: E402

ARTICLES = REPO.parent / "shared" / "data" / "article-extraction" / "ground-truth.json"


def mrpc_documents(mrpc: Path, n_pairs: int, seed: int = 0) -> dict[str, list]:
    rows = []
    for name in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt"):
        with open(mrpc / name, encoding="utf-8-sig") as fh:
            rows += list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    rng = random.Random(seed)
    rng.shuffle(rows)
    pos = [r for r in rows if r[0] == "1"]
    neg = [r for r in rows if r[0] == "0"]

    def pairs(rs: list[list[str]], n: int) -> list[tuple[str, str]]:
        return [(" ".join(r[3] for r in rs[i:i + 8]), " ".join(r[4] for r in rs[i:i + 8]))
                for i in range(0, min(len(rs), 8 * n) - 7, 8)]

    para = pairs(pos, n_pairs)
    same = pairs(neg, n_pairs)
    rest = pos[8 * n_pairs:] + neg[8 * n_pairs:]
    unrelated = [" ".join(r[3] for r in rest[i:i + 8]) for i in range(0, len(rest) - 7, 8)]
    return {"para": para, "same": same, "unrelated": unrelated}


def run_stage(table: pa.Table, work: Path, workers: int, rows: int, **settings: Any) -> tuple[pa.Table, float]:
    """The real stage over partitions of `rows` documents; (kept + removed rows, seconds)."""
    if work.exists():
        shutil.rmtree(work)
    (work / "in").mkdir(parents=True)
    inputs = []
    for i in range(0, table.num_rows, rows):
        p = work / "in" / f"part-{i // rows:05d}.parquet"
        pq.write_table(table.slice(i, rows), p)
        inputs.append(p)
    pipe = PipelineConfig.model_validate({"name": "b", "output": str(work / "out"), "workers": workers, "seed": 0,
                                          "inputs": [{"name": "x", "path": "x.jsonl"}],
                                          "stages": [{"name": "semantic_dedup"}]})
    cfg = SemanticDedupConfig(name="semantic_dedup", kind="semantic_dedup", **settings)
    stage = make_stage(cfg, pipe)
    ex = LocalExecutor(workers)
    stage_dir = work / "out" / "semantic_dedup"
    stage_dir.mkdir(parents=True)
    ctx = StageContext(stage=cfg, pipeline=pipe, inputs=inputs, stage_dir=stage_dir, output_dir=work / "out",
                       executor=ex, stage_hash="bench", reporter=lambda phase, unit: None)
    t = time.perf_counter()
    try:
        stats = stage.run(ctx)
        counts = finish_counts(ctx, True, stats)
    finally:
        ex.close()
    seconds = time.perf_counter() - t
    kept = pq.read_table(stage_dir / "data")
    removed_files = list((stage_dir / "removed").glob("*.parquet"))
    removed = pq.read_table(stage_dir / "removed") if removed_files else None
    cols = ["id", "dup_of", "semantic_sim"]
    out = kept.select(cols)
    if removed is not None:
        out = pa.concat_tables([out, removed.select(cols)])
    assert counts["in"] == table.num_rows
    return out, seconds


def accuracy(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    docs = mrpc_documents(Path(args.mrpc), args.pairs)
    ids: list[str] = []
    texts: list[str] = []
    for i, (a, b) in enumerate(docs["para"]):
        ids += [f"para-{i}-a", f"para-{i}-b"]
        texts += [a, b]
    for i, (a, b) in enumerate(docs["same"]):
        ids += [f"same-{i}-a", f"same-{i}-b"]
        texts += [a, b]
    for i, t in enumerate(docs["unrelated"][:args.unrelated]):
        ids.append(f"unrel-{i}")
        texts.append(t)
    if ARTICLES.exists():
        for k, v in sorted(json.loads(ARTICLES.read_text()).items()):
            ids.append(f"art-{k[:12]}")
            texts.append(v["articleBody"])
    print(f"accuracy set: {len(docs['para'])} paraphrase pairs, {len(docs['same'])} same-topic pairs, "
          f"{sum(i.startswith('unrel') for i in ids)} unrelated, {sum(i.startswith('art') for i in ids)} articles")
    out: dict[str, Any] = {}
    for max_tokens, quantize in ((128, True), (256, True), (256, False)):
        emb = Embedder(max_tokens=max_tokens, quantize=quantize)
        t = time.perf_counter()
        vec = emb.encode(texts)
        rate = len(texts) / (time.perf_counter() - t)
        table = pa.table({"id": ids, "text": texts, "embedding": to_column(vec)})
        for eps in args.eps:
            result, _ = run_stage(table, work / "acc", args.workers, 256, eps=eps, cluster_size=args.cluster_size)
            dup = {r["id"]: r["dup_of"] for r in result.to_pylist() if r["dup_of"]}
            n_para = len(docs["para"])
            found = sum((dup.get(f"para-{i}-a") or dup.get(f"para-{i}-b") or "").startswith(f"para-{i}-")
                        for i in range(n_para))
            same = sum(f"same-{i}-a" in dup or f"same-{i}-b" in dup for i in range(len(docs["same"])))
            unrel = [i for i in dup if i.startswith("unrel")]
            arts = [i for i in dup if i.startswith("art")]
            n_unrel = sum(i.startswith("unrel") for i in ids)
            n_art = sum(i.startswith("art") for i in ids)
            name = f"{'int8' if quantize else 'fp32'}_{max_tokens}_eps{eps}"
            line = {"paraphrase_recall": round(found / n_para, 3),
                    "same_topic_removed": round(same / max(1, len(docs["same"])), 3),
                    "unrelated_removed": round(len(unrel) / max(1, n_unrel), 4),
                    "articles_removed": round(len(arts) / max(1, n_art), 4),
                    "non_paraphrase_removed": round((len(unrel) + len(arts)) / max(1, n_unrel + n_art), 4)}
            out[name] = line
            print(f"{name:18s} ({rate:5.1f} docs/s embed) " + "  ".join(f"{k} {v}" for k, v in line.items()),
                  flush=True)
    return out


def clustered_vectors(n: int, dim: int = 384, topics: int = 500, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(topics, dim))
    v = centers[rng.integers(0, topics, n)] + 1.5 * rng.normal(size=(n, dim))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)


def scale(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out = {}
    for n in args.sizes:
        vec = clustered_vectors(n)
        table = pa.table({"id": [f"d{i:08d}" for i in range(n)], "text": pa.array(["x"] * n),
                          "embedding": to_column(vec)})
        result, seconds = run_stage(table, work / f"n{n}", args.workers, 10000, eps=0.2)
        removed = sum(1 for d in result.column("dup_of").to_pylist() if d)
        print(f"{n:>8d} documents: {seconds:7.1f} s ({n / seconds:8.1f} docs/s), {removed} removed, "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        out[f"seconds_{n}"] = round(seconds, 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mrpc", default=None)
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--unrelated", type=int, default=400)
    ap.add_argument("--eps", type=lambda s: [float(x) for x in s.split(",")], default=[0.1, 0.15, 0.2, 0.25])
    ap.add_argument("--cluster-size", type=int, default=1000)
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",") if x], default=[10000, 100000])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    result: dict[str, Any] = {"load_average_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="semdedup-bench-") as tmp:
        if args.mrpc:
            result["accuracy"] = accuracy(args, Path(tmp))
        if args.sizes:
            result.update(scale(args, Path(tmp)))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["load_average_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
