"""What the Spark test modules share: the pyspark check, the test settings, the one `local[2]`
SparkSession of a test session (the `spark` fixture in conftest.py) and the Spark test pipeline with
its session fixtures (registered in conftest.py). Nothing here imports pyspark at
import time, so the fast tier never pays for it."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

CI = os.environ.get("CI") == "true"
# Small data, short-lived JVMs: the C1 JIT alone and a serial GC halve warm-up on two shared cores.
TEST_CONF = {"spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2", "spark.ui.enabled": "false",
             "spark.log.level": "ERROR", "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}


def require_pyspark() -> None:
    """Skip the calling test module when pyspark is missing (a failure under CI=true). Call it at module
    level, before importing anything that needs pyspark."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if CI:
            raise
        pytest.skip("pyspark is not installed (pip install -e '.[spark]')", allow_module_level=True)


def start_spark() -> tuple[Any, bool]:
    """The local[2] test session (getOrCreate) and whether we created it. No Java: a skip, or a
    failure under CI."""
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        if CI:
            pytest.fail("no Java runtime for Spark")
        pytest.skip("no Java runtime for Spark")
    from pipeline.config import SparkConfig
    from pipeline.executors.spark import get_session

    return get_session(SparkConfig(master="local[2]", conf=TEST_CONF))


# ----------------------------------------------------------------------------------------------
# The Spark test pipeline: every stage kind that has a Spark plan, on a small demo corpus. Its local
# run (`spark_local_run`) is computed once per session and is what test_spark's and test_spark_cluster's
# Spark runs (local[2], a standalone cluster, Spark Connect) must reproduce byte for byte.

DOMAINS = [{"source": "web", "domain": "web"}, {"source": "forum", "domain": "web"},
           {"source": "encyclopedia", "domain": "wiki"}, {"source": "code", "domain": "code"},
           {"source": "repos", "domain": "code"}, {"source": "math", "domain": "math"}]


@pytest.fixture(scope="session")
def spark_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.demo.corpus import write_demo_corpus
    from pipeline.demo.repos import write_demo_repos

    root = tmp_path_factory.mktemp("spark_demo") / "demo"
    write_demo_corpus(root, 300, seed=3)
    write_demo_repos(root / "repos", seed=3)  # code_filter and secrets on both executors
    return root


@pytest.fixture(scope="session")
def spark_models(tmp_path_factory: pytest.TempPathFactory, spark_demo: Path) -> dict[str, str]:
    """A tiny byte-level BPE tokenizer and a fastText quality model (unigrams: 5 KB, where word bigrams
    would allocate 128 MB of hash buckets for every Spark worker to load), both trained on the demo truth."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from filters.fasttext_classifier import TrainParams, train_classifier
    from pipeline.demo.corpus import load_truth

    out = tmp_path_factory.mktemp("spark_models")
    truth = [t for t in load_truth(spark_demo) if not t.get("malformed")]
    texts = [f"{t['source']} {t['domain']} {t['subtype']} {t['lang']}" for t in truth]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts * 3, trainer)
    tok.save(str(out / "tokenizer.json"))
    (out / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>"}))
    rng = random.Random(0)
    good = "the study explains how results were measured and why the method works in practice".split()
    bad = "buy cheap click now free offer best price deal win bonus casino".split()
    examples = [(" ".join(rng.choice(good if i % 2 else bad) for _ in range(40)), "hq" if i % 2 else "lq")
                for i in range(300)]
    train_classifier(examples, out / "quality.bin", TrainParams(dim=16, epoch=3, word_ngrams=1), "hq")
    return {"tokenizer": str(out), "quality": str(out / "quality.bin")}


def full_config(demo: Path, models: dict[str, str], output: Path, executor: str) -> dict[str, Any]:
    from pipeline.demo.corpus import demo_inputs
    from pipeline.demo.repos import demo_repo_input

    inputs = [*demo_inputs(demo), demo_repo_input(demo)]
    stages = [
        {"name": "code_filter", "sources": ["repos"]},
        {"name": "secrets"},
        {"name": "normalize", "skip_sources": ["repos"]},
        {"name": "math_detect", "skip_sources": ["repos", "code"]},
        {"name": "langid", "keep": ["en", "zh"]},
        {"name": "exact_dedup", "url": True},
        {"name": "heuristics", "filters": ["gopher_repetition", "c4"]},
        {"name": "domain", "kind": "domain_classifier",
         "rules": [{"where": "is_math", "domain": "math"}, *DOMAINS]},
        {"name": "near_dedup", "threshold": 0.8},
        {"name": "tokenize", "tokenizer": models["tokenizer"]},
        {"name": "quality", "kind": "quality_classifier", "model": models["quality"], "keep_top": 0.9, "buckets": 4},
        {"name": "mix", "weights": {"web": 0.4, "wiki": 0.3, "code": 0.2, "math": 0.1}, "budget_tokens": 120_000},
        {"name": "shard", "formats": ["parquet", "jsonl.zst", "megatron"], "tokenizer": models["tokenizer"],
         "max_shard_bytes": 60_000},
    ]
    return {"name": "spark-test", "output": str(output), "executor": executor, "workers": 1, "seed": 5,
            "partition_rows": 100, "inputs": inputs, "stages": stages,
            "spark": {"master": "local[2]", "conf": TEST_CONF}}


@pytest.fixture(scope="session")
def spark_local_run(tmp_path_factory: pytest.TempPathFactory, spark_demo: Path, spark_models: dict[str, str]
                    ) -> Path:
    """`full_config` on the local executor, run once per session (no JVM): the output directory."""
    from pipeline.config import validate
    from pipeline.runner import Runner

    out = tmp_path_factory.mktemp("spark_local") / "local"
    Runner(validate(full_config(spark_demo, spark_models, out, "local"))).run()
    return out
