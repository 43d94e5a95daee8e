"""Throughput of `decontaminate` and `paragraph_dedup`, and peak memory against eval-set size.

Builds the demo corpus (`--docs`, cached under `--data`), then for each eval-set size (default 1k,
10k and 100k generated question/answer items, `pipeline.demo.plants.eval_items`) runs
`curate run` with workers 1 (everything in one process, so its peak RSS is the stage's) on
ingest -> normalize -> decontaminate -> paragraph_dedup. ingest and normalize are computed once and
reused (finished stages). Reported per size: the eval n-grams and their table's bytes, seconds to
build it, docs/s of both stages (wall clock; per CPU-second of the process too, the machines are
shared) and the run's peak RSS.

Baseline: the straightforward way, a Python set of 13-word tuples and a loop over each document's
windows (same normalization), on the first 2,000 documents against the 10k set.

Usage: python bench/decontaminate.py [--docs 20000] [--sizes 1000,10000,100000] [--data DIR]
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import pyarrow.parquet as pq  # noqa: E402
import yaml  # noqa: E402

from pipeline.demo.corpus import demo_inputs, write_demo_corpus  # noqa: E402
from pipeline.demo.plants import eval_items  # noqa: E402


def corpus(data: Path, n_docs: int) -> Path:
    summary = data / "_bench_summary.json"
    if summary.exists() and json.loads(summary.read_text()).get("key") == [n_docs, 0]:
        return data
    t0 = time.perf_counter()
    write_demo_corpus(data, n_docs, 0)
    summary.write_text(json.dumps({"key": [n_docs, 0]}))
    print(f"generated {n_docs} demo documents in {time.perf_counter() - t0:.1f}s -> {data}", flush=True)
    return data


def eval_file(data: Path, n: int) -> Path:
    path = data / "bench_eval" / f"qa-{n}.jsonl"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(i) + "\n" for i in eval_items(0, n)))
    return path


def run(data: Path, out: Path, evals: Path, stages: bool = True) -> dict[str, Any]:
    cfg = {"name": "bench-decon", "output": str(out), "workers": 1, "seed": 0, "partition_rows": 2000,
           "inputs": demo_inputs(data),
           "stages": [{"name": "normalize"},
                      {"name": "decontaminate", "eval_sets": [{"name": "qa", "path": str(evals)}]},
                      {"name": "paragraph_dedup", "max_docs": 10}]}
    if not stages:
        cfg["stages"] = cfg["stages"][:1]
    config = out.parent / "bench-decon.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    proc = subprocess.run([sys.executable, __file__, "--child", str(config)], cwd=REPO, text=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child(config: Path) -> None:
    """One run in this (fresh) process; prints its own peak RSS and CPU seconds."""
    from pipeline.config import load_config
    from pipeline.runner import Runner

    Runner(load_config(config)).run()
    use = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"peak_rss_mb": use.ru_maxrss / 1024.0, "cpu": use.ru_utime + use.ru_stime}))


def manifest(out: Path, stage: str) -> dict[str, Any]:
    return json.loads((out / stage / "_manifest.json").read_text())


def _words(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()
    return re.findall(r"[^\W_]+", text)


def sample_texts(data_out: Path, n_docs: int = 2000) -> list[str]:
    texts: list[str] = []
    for f in sorted((data_out / "normalize" / "data").glob("*.parquet")):
        texts += pq.read_table(f, columns=["text"]).column("text").to_pylist()
        if len(texts) >= n_docs:
            break
    return texts[:n_docs]


def stage_core(texts: list[str], evals: Path) -> tuple[float, tuple[int, ...]]:
    """docs per CPU-second of the stage's matching (tokenize, hash, look up), batches of 1,000."""
    import pyarrow as pa

    from filters.ngrams import Membership, tokenize
    from stages.decontaminate import DecontaminateConfig, build_eval_table, match

    cfg = DecontaminateConfig(name="d", eval_sets=[{"name": "qa", "path": str(evals)}])
    table, stats = build_eval_table(cfg)
    member = Membership(table.column("hash").to_numpy())
    sets, items = table.column("set").to_numpy(), table.column("item").to_numpy()
    t0 = time.process_time()
    for i in range(0, len(texts), 1000):
        match(tokenize(pa.array(texts[i:i + 1000])), tuple(stats["lengths"]), member, sets, items)
    return len(texts) / (time.process_time() - t0), tuple(stats["lengths"])


def python_baseline(texts: list[str], evals: Path, lengths: tuple[int, ...] = (13,)) -> tuple[float, float]:
    """(docs per CPU-second, bytes per n-gram) of Python sets of word tuples, one per window length
    (short items matched whole at their own length, as the stage does), one window loop per document."""
    grams: dict[int, set[tuple[str, ...]]] = {n: set() for n in lengths}
    for line in evals.read_text().splitlines():
        item = json.loads(line)
        w = _words(f"{item['question']} {item['answer']}")
        n = min(13, len(w))
        if n in grams:
            grams[n].update(tuple(w[i:i + n]) for i in range(len(w) - n + 1))
    size = sum(sys.getsizeof(g) + sum(sys.getsizeof(t) for t in g) for g in grams.values())
    count = sum(len(g) for g in grams.values())
    t0 = time.process_time()
    hits = 0
    for t in texts:
        w = _words(t)
        hits += any(tuple(w[i:i + n]) in g for n, g in grams.items() for i in range(len(w) - n + 1))
    return len(texts) / (time.process_time() - t0), size / max(1, count)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--data", type=Path, default=REPO / ".cache" / "bench" / "decon")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    data = corpus(args.data / f"demo-{args.docs}", args.docs)
    out = args.data / f"out-{args.docs}"
    base = run(data, out, eval_file(args.data, 1000), stages=False)  # ingest + normalize, reused below
    print(f"ingest + normalize: peak RSS {base['peak_rss_mb']:.0f} MB (not part of the figures below)", flush=True)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        evals = eval_file(args.data, n)
        got = run(data, out, evals)
        d, p = manifest(out, "decontaminate"), manifest(out, "paragraph_dedup")
        sets = d["stats"]["eval_sets"]["qa"]
        row = {"eval_items": n, "cpu_seconds_run": round(got["cpu"], 1),
               "docs_per_cpu_s_both_stages": round(2 * d["counts"]["in"] / got["cpu"], 1),
               "eval_ngrams": sets["ngrams"],
               "docs": d["counts"]["in"],
               "docs_matched": sets["docs_matched"], "items_found": sets["items_found"],
               "decontaminate_docs_per_s": round(d["counts"]["in"] / d["seconds"], 1),
               "paragraph_dedup_docs_per_s": round(p["counts"]["in"] / p["seconds"], 1),
               "decontaminate_seconds": d["seconds"], "paragraph_dedup_seconds": p["seconds"],
               "units_removed": p["stats"]["units_removed"], "peak_rss_mb": round(got["peak_rss_mb"], 1),
               "eval_table_bytes": d["stats"]["eval_table_bytes"]}
        rows.append(row)
        print(f"eval {n:>7} items, {sets['ngrams']:>8} n-grams: decontaminate {row['decontaminate_docs_per_s']:>8} "
              f"docs/s ({d['seconds']:.1f}s), paragraph_dedup {row['paragraph_dedup_docs_per_s']:>8} docs/s, "
              f"peak RSS {row['peak_rss_mb']} MB, matched {sets['docs_matched']} docs", flush=True)
    base_eval = eval_file(args.data, 10000)
    texts = sample_texts(out)
    core, lengths = stage_core(texts, base_eval)
    baseline, set_bytes = python_baseline(texts, base_eval, lengths)
    only13, _ = python_baseline(texts, base_eval)
    mid = next((r for r in rows if r["eval_items"] == 10000), rows[-1])
    ratio = core / baseline
    print(f"matching only, {len(texts)} documents vs 10k items, per CPU-second: stage {core:.0f} docs/s; Python sets "
          f"of word tuples at the same window lengths {lengths}: {baseline:.0f} docs/s ({ratio:.1f}x), "
          f"{set_bytes:.0f} bytes per n-gram (stage: {mid['eval_table_bytes'] / mid['eval_ngrams']:.0f}); "
          f"13-grams only: {only13:.0f} docs/s")
    print(json.dumps({"docs_per_s": mid["decontaminate_docs_per_s"], "core_docs_per_cpu_s": round(core, 1),
                      "baseline_13_only_docs_per_s": round(only13, 1), "baseline_bytes_per_ngram": round(set_bytes),
                      "paragraph_dedup_docs_per_s": mid["paragraph_dedup_docs_per_s"],
                      "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
                      "ratio_vs_python_set": round(ratio, 2), "baseline_docs_per_s": round(baseline, 1),
                      "sizes": rows}))


if __name__ == "__main__":
    main()
