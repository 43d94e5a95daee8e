"""The same pipeline on the local executor (2 workers) and on Spark `local[2]`: time per stage.

Builds the demo corpus (cached under .cache/bench-spark), a tiny tokenizer and a quality model, then
runs `curate run` once per executor in a subprocess (so Spark's JVM start counts, as it does for a
user) with the full stage list: normalize, langid, exact_dedup, heuristics, domain_classifier,
near_dedup, tokenize, quality_classifier, mix, shard (Parquet, JSONL.zst, Megatron). Checks that the
shards are byte-identical, prints one line per stage, and as its last line one JSON object:
{"sizes": [{"docs", "local_s", "spark_s", "spark_startup_s", "per_stage", ...}], "fit",
 "slope_ratio_spark_vs_local", "shards_identical"}. Spark's session starts inside the first stage
(ingest); `spark_startup_s` says how much of it that was.

With two or more `--sizes` it fits `stage seconds = fixed + per_doc * docs` for each executor (the Spark
session start excluded) and prints the ratio of the per-document slopes.

Usage: python bench/spark.py [--sizes 10000,40000] [--seed 0] [--partition-rows 2000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import yaml  # noqa: E402

from pipeline.demo.corpus import demo_inputs  # noqa: E402

CACHE = REPO / ".cache" / "bench-spark"
DOMAINS = [{"source": "web", "domain": "web"}, {"source": "forum", "domain": "web"},
           {"source": "encyclopedia", "domain": "wiki"}, {"source": "code", "domain": "code"},
           {"source": "math", "domain": "math"}]


def build_models(out: Path) -> dict[str, str]:
    """A byte-level BPE tokenizer (vocab 1000) and a small fastText quality model."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from filters.fasttext_classifier import TrainParams, train_classifier

    out.mkdir(parents=True, exist_ok=True)
    if not (out / "tokenizer.json").exists():
        rng = random.Random(0)
        words = ("the of and to in is was for on that with as by at from river market theory data model "
                 "function return value 的 是 在 了 和 有 数据 模型").split()
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=1000, special_tokens=["<|endoftext|>"],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator([" ".join(rng.choice(words) for _ in range(200)) for _ in range(200)], trainer)
        tok.save(str(out / "tokenizer.json"))
        (out / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
    if not (out / "quality.bin").exists():
        rng = random.Random(1)
        good = "the study explains how results were measured and why the method works in practice".split()
        bad = "buy cheap click now free offer best price deal win bonus casino".split()
        examples = [(" ".join(rng.choice(good if i % 2 else bad) for _ in range(40)), "hq" if i % 2 else "lq")
                    for i in range(400)]
        train_classifier(examples, out / "quality.bin", TrainParams(dim=16, epoch=3), "hq")
    return {"tokenizer": str(out), "quality": str(out / "quality.bin")}


def config(data: Path, models: dict[str, str], output: Path, executor: str, partition_rows: int,
           budget: int, spark_conf: dict[str, str] | None = None) -> dict[str, Any]:
    stages = [
        {"name": "normalize"},
        {"name": "langid", "keep": ["en", "zh"]},
        {"name": "exact_dedup", "url": True},
        {"name": "heuristics"},
        {"name": "domain", "kind": "domain_classifier", "rules": DOMAINS},
        {"name": "near_dedup", "threshold": 0.8},
        {"name": "tokenize", "tokenizer": models["tokenizer"]},
        {"name": "quality", "kind": "quality_classifier", "model": models["quality"], "keep_top": 0.9, "buckets": 5},
        {"name": "mix", "weighting": "unimax", "budget_tokens": budget, "max_epochs": 2},
        {"name": "shard", "formats": ["parquet", "jsonl.zst", "megatron"], "tokenizer": models["tokenizer"],
         "max_shard_bytes": 1_000_000},
    ]
    return {"name": "bench-spark", "output": str(output), "executor": executor, "workers": 2, "seed": 0,
            "partition_rows": partition_rows, "inputs": demo_inputs(data),
            "stages": stages, "spark": {"master": "local[2]", "conf": {"spark.sql.shuffle.partitions": "8",
                                                                       "spark.ui.enabled": "false",
                                                                       **(spark_conf or {})}}}


def run(cfg: dict[str, Any], workdir: Path) -> tuple[float, dict[str, float], float]:
    """One `curate run`: wall seconds, per-stage seconds and the Spark session's start. Wall time only: the
    CPU time of Spark's process tree (the JVM, its Python workers) cannot be read reliably from here, and
    on a shared machine the wall figures of both executors are inflated alike, but not evenly over time."""
    out = Path(cfg["output"])
    shutil.rmtree(out, ignore_errors=True)
    path = workdir / f"{cfg['executor']}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pipeline", "run", str(path)], cwd=workdir, text=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{cfg['executor']} run failed:\n{proc.stderr[-3000:]}")
    stages = ["ingest", *[s["name"] for s in cfg["stages"]]]
    per = {s: json.loads((out / s / "_manifest.json").read_text())["seconds"] for s in stages}
    found = re.search(r"spark: session ready in ([0-9.]+)s", proc.stderr)
    return wall, per, float(found.group(1)) if found else 0.0


def shard_bytes(out: Path) -> dict[str, bytes]:
    root = out / "shards"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "README.md"}


def run_size(docs: int, seed: int, partition_rows: int, spark_conf: dict[str, str],
             executors: tuple[str, ...] = ("local", "spark")) -> dict[str, Any]:
    """Both executors on one demo corpus of `docs` documents; per-stage seconds and shard equality."""
    from pipeline.demo.corpus import write_demo_corpus

    data = CACHE / f"demo-{docs}-{seed}"
    if not (data / "truth.jsonl").exists():
        shutil.rmtree(data, ignore_errors=True)
        write_demo_corpus(data, docs, seed)
    models = build_models(CACHE / "models")
    work = CACHE / f"run-{docs}-{seed}-{partition_rows}"
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, tuple[float, dict[str, float], float]] = {}
    for executor in executors:
        cfg = config(data, models, work / executor, executor, partition_rows, docs * 150, spark_conf)
        results[executor] = run(cfg, work)
        print(f"{docs} docs, {executor}: {results[executor][0]:.1f} s wall", flush=True)
    identical = shard_bytes(work / "local") == shard_bytes(work / "spark")
    (local_s, local_per, _), (spark_s, spark_per, startup) = results["local"], results["spark"]
    print(f"{'stage':<12} {'local s':>8} {'spark s':>8} {'ratio':>6}")
    for stage in local_per:
        ratio = spark_per[stage] / local_per[stage] if local_per[stage] else float("nan")
        print(f"{stage:<12} {local_per[stage]:8.2f} {spark_per[stage]:8.2f} {ratio:6.1f}")
    print(f"spark session start (inside ingest): {startup:.1f} s; shards identical: {identical}", flush=True)
    return {"docs": docs, "local_s": round(local_s, 2), "spark_s": round(spark_s, 2),
            "spark_startup_s": round(startup, 2),
            # stage time without the session start: what grows with the corpus
            "local_stages_s": round(sum(local_per.values()), 2),
            "spark_stages_s": round(sum(spark_per.values()) - startup, 2),
            "per_stage": {s: {"local_s": local_per[s], "spark_s": spark_per[s]} for s in local_per},
            "shards_identical": identical}


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares (intercept, slope) of ys against xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum((x - mx) ** 2 for x in xs)
    return my - slope * mx, slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000", help="comma-separated corpus sizes; two or more give a fit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--partition-rows", type=int, default=2000, help="the config default unless set")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="extra Spark setting")
    parser.add_argument("--only", choices=["local", "spark"], help="run one executor (no comparison)")
    args = parser.parse_args()
    spark_conf = dict(item.split("=", 1) for item in args.conf)
    if args.only:
        for n in [int(x) for x in args.sizes.split(",")]:
            cfg = config(CACHE / f"demo-{n}-{args.seed}", build_models(CACHE / "models"),
                         CACHE / f"only-{n}" / args.only, args.only, args.partition_rows, n * 150, spark_conf)
            wall, per, startup = run(cfg, CACHE / f"only-{n}")
            print(json.dumps({"docs": n, "executor": args.only, "wall_s": round(wall, 1),
                              "startup_s": startup, "per_stage": per}))
        return
    sizes = [int(x) for x in args.sizes.split(",")]
    rows = [run_size(n, args.seed, args.partition_rows, spark_conf) for n in sizes]
    summary: dict[str, Any] = {"sizes": rows, "partition_rows": args.partition_rows,
                               "shards_identical": all(r["shards_identical"] for r in rows),
                               "docs_per_s": {ex: round(rows[-1]["docs"] / rows[-1][f"{ex}_s"], 1)
                                              for ex in ("local", "spark")},
                               "ratio_vs_local": round(rows[-1]["spark_s"] / rows[-1]["local_s"], 3)}
    if len(sizes) >= 2:
        fits = {}
        docs = [r["docs"] for r in rows]
        for ex in ("local", "spark"):
            fixed, per_doc = linear_fit(docs, [r[f"{ex}_stages_s"] for r in rows])
            fits[ex] = {"fixed_s": round(fixed, 2), "ms_per_doc": round(per_doc * 1000, 4)}
            print(f"{ex:<6} stage wall = {fixed:7.1f} s + {per_doc * 1000:.3f} ms x docs", flush=True)
        summary["fit"] = fits
        summary["slope_ratio_spark_vs_local"] = round(fits["spark"]["ms_per_doc"] / fits["local"]["ms_per_doc"], 3)
        summary["ratio_vs_local_per_doc"] = summary["slope_ratio_spark_vs_local"]
        print(f"Spark per-document cost / local: {summary['slope_ratio_spark_vs_local']}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
