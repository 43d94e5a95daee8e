"""The same pipeline on the local executor (2 workers) and on Spark `local[2]`: time per stage.

Builds the demo corpus (cached under .cache/bench-spark), a tiny tokenizer and a quality model, then
runs `curate run` once per executor in a subprocess (so Spark's JVM start counts, as it does for a
user) with the full stage list: normalize, langid, exact_dedup, heuristics, domain_classifier,
near_dedup, tokenize, quality_classifier, mix, shard (Parquet, JSONL.zst, Megatron). Checks that the
shards are byte-identical, prints one line per stage, and as its last line one JSON object:
{"docs", "local_s", "spark_s", "spark_startup_s", "per_stage": {stage: {"local_s", "spark_s"}},
 "ratio_vs_local", "docs_per_s", "shards_identical"}. Spark's session starts inside the first stage
(ingest); `spark_startup_s` says how much of it that was.

Usage: python bench/spark.py [--docs 2000] [--seed 0] [--partition-rows 500]
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
           budget: int) -> dict[str, Any]:
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
                                                                       "spark.ui.enabled": "false"}}}


def run(cfg: dict[str, Any], workdir: Path) -> tuple[float, dict[str, float], float]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--partition-rows", type=int, default=500)
    args = parser.parse_args()

    from pipeline.demo.corpus import write_demo_corpus

    data = CACHE / f"demo-{args.docs}-{args.seed}"
    if not (data / "truth.jsonl").exists():
        shutil.rmtree(data, ignore_errors=True)
        write_demo_corpus(data, args.docs, args.seed)
    models = build_models(CACHE / "models")
    work = CACHE / f"run-{args.docs}-{args.seed}"
    work.mkdir(parents=True, exist_ok=True)
    budget = args.docs * 150
    results: dict[str, tuple[float, dict[str, float], float]] = {}
    for executor in ("local", "spark"):
        cfg = config(data, models, work / executor, executor, args.partition_rows, budget)
        results[executor] = run(cfg, work)
        print(f"{executor}: {results[executor][0]:.1f} s wall", flush=True)
    identical = shard_bytes(work / "local") == shard_bytes(work / "spark")
    (local_s, local_per, _), (spark_s, spark_per, startup) = results["local"], results["spark"]
    outside = spark_s - sum(spark_per.values())
    print(f"{'stage':<12} {'local s':>8} {'spark s':>8} {'ratio':>6}")
    for stage in local_per:
        ratio = spark_per[stage] / local_per[stage] if local_per[stage] else float("nan")
        print(f"{stage:<12} {local_per[stage]:8.2f} {spark_per[stage]:8.2f} {ratio:6.1f}")
    print(f"spark session start (inside ingest, the first stage to use it): {startup:.1f} s; "
          f"interpreter start and planning outside stages: {outside:.1f} s; shards identical: {identical}")
    print(json.dumps({
        "docs": args.docs, "local_s": round(local_s, 2), "spark_s": round(spark_s, 2),
        "spark_startup_s": round(startup, 2),
        "per_stage": {s: {"local_s": local_per[s], "spark_s": spark_per[s]} for s in local_per},
        "ratio_vs_local": round(spark_s / local_s, 3),
        "docs_per_s": {"local": round(args.docs / local_s, 1), "spark": round(args.docs / spark_s, 1)},
        "shards_identical": identical,
    }))


if __name__ == "__main__":
    main()
