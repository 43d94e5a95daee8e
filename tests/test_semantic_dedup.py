"""`semantic_dedup`: k-means + within-cluster cosine pairs over `embed`'s vectors.

Unit tests of the pure functions need no model. The pipeline tests embed real text with the real
all-MiniLM-L6-v2 (a skip without it, a failure under CI=true): 181 real news/blog articles
(`../shared/data/article-extraction`, MIT) plus hand-written paraphrase pairs (`tests/data`)."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from filters.vectors import fixed_point
from stages.semantic_dedup import dedup_cluster, kmeans
from tests.conftest import REPO, curate, require_embedding_model, write_config

CI = os.environ.get("CI") == "true"
ARTICLES = REPO.parent / "shared" / "data" / "article-extraction" / "ground-truth.json"
PAIRS = REPO / "tests" / "data" / "paraphrase_pairs.jsonl"
SAME_STORY = REPO / "tests" / "data" / "article_same_story.json"


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, dim))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_dedup_cluster_keeps_the_first_and_never_chains() -> None:
    a = np.array([1.0, 0.0, 0.0])
    b = np.array([0.96, 0.28, 0.0])  # cos(a, b) = 0.96
    c = np.array([0.85, 0.53, 0.0])  # cos(b, c) ~ 0.96, cos(a, c) ~ 0.85
    d = np.array([0.0, 0.0, 1.0])
    vecs = fixed_point(np.stack([v / np.linalg.norm(v) for v in (a, b, c, d)]))
    dup, of, best = dedup_cluster(vecs, 0.9)
    assert dup.tolist() == [False, True, False, False]  # c's only close neighbour (b) was removed: c stays
    assert of[1] == 0 and np.isnan(best[0]) and best[2] > 0.9
    for block in (1, 2, 3):  # the same for any block size
        d2, o2, b2 = dedup_cluster(vecs, 0.9, block_rows=block)
        assert (d2 == dup).all() and (o2 == of).all() and np.allclose(b2, best, equal_nan=True)


def test_kmeans_is_exact_and_order_free() -> None:
    rng = np.random.default_rng(0)
    centers = _unit(rng, 4)
    vecs = fixed_point(np.concatenate([centers[i] + 0.05 * rng.normal(size=(50, 16)) for i in range(4)]) / 1.01)
    ids = [f"d{i}" for i in range(len(vecs))]
    c1, r1 = kmeans(vecs, ids, 4, seed=1, iterations=20)
    perm = rng.permutation(len(vecs))
    c2, r2 = kmeans(vecs[perm], [ids[i] for i in perm], 4, seed=1, iterations=20)
    assert np.array_equal(c1, c2) and r1 == r2 < 20  # converged, same bits
    labels = np.argmax(vecs @ c1.T, axis=1)
    truth = np.repeat(np.arange(4), 50)
    # clusters are unions of true groups (random seeds may put two seeds in one group: then one group
    # is split, never mixed with another beyond that)
    mixed = sum(len(set(truth[labels == c].tolist())) > 1 for c in set(labels.tolist()))
    assert mixed <= 1


# ----------------------------------------------------------------------------------------------
# pipeline runs on real text


def _require() -> None:
    require_embedding_model()
    if not ARTICLES.exists():
        if CI:
            raise FileNotFoundError(ARTICLES)
        pytest.skip(f"{ARTICLES} missing")


def write_corpus(root: Path) -> dict[str, Any]:
    articles = json.loads(ARTICLES.read_text())
    docs = [{"id": f"art-{k[:12]}", "text": v["articleBody"]} for k, v in sorted(articles.items())]
    pairs = [json.loads(line) for line in PAIRS.read_text().splitlines() if line.strip()]
    for i, p in enumerate(pairs):
        docs.append({"id": f"para-{i}-a", "text": p["a"]})
        docs.append({"id": f"para-{i}-b", "text": p["b"]})
    docs.sort(key=lambda d: hashlib.sha1(d["id"].encode()).hexdigest())  # pairs spread over partitions
    (root / "in").mkdir(parents=True, exist_ok=True)
    (root / "in" / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    return {"pairs": len(pairs), "articles": len(articles)}


def config(workers: int, partition_rows: int, executor: str = "local") -> dict[str, Any]:
    return {"name": "sem", "output": "out", "workers": workers, "seed": 3, "partition_rows": partition_rows,
            "executor": executor,
            "inputs": [{"name": "docs", "path": "in/docs.jsonl", "format": "jsonl", "id_field": "id"}],
            "stages": [{"name": "langid", "min_score": 0.0}, {"name": "embed", "threads": 1},
                       {"name": "semantic_dedup", "cluster_size": 40, "languages": ["en"]}]}


def run(root: Path, workers: int, partition_rows: int, executor: str = "local") -> Path:
    write_config(root / "pipeline.yaml", config(workers, partition_rows, executor))
    curate("run", "pipeline.yaml", cwd=root, check=True, timeout=900)
    return root / "out"


def outcome(out: Path) -> dict[str, Any]:
    kept = pq.read_table(out / "semantic_dedup" / "data").sort_by("id")
    removed = pq.read_table(out / "semantic_dedup" / "removed").sort_by("id")
    return {"kept": kept.select(["id", "semantic_cluster", "semantic_sim", "embedding"]).to_pylist(),
            "removed": removed.select(["id", "dup_of", "reason", "semantic_sim"]).to_pylist()}


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    _require()
    root = tmp_path_factory.mktemp("semdedup")
    planted = write_corpus(root)
    return run(root, workers=1, partition_rows=64), planted


def test_planted_paraphrases_found_and_articles_kept(reference: tuple[Path, dict[str, Any]]) -> None:
    out, planted = reference
    removed = {r["id"]: r for r in outcome(out)["removed"]}
    found = [i for i in range(planted["pairs"])
             if (f"para-{i}-a" in removed) != (f"para-{i}-b" in removed)
             and (removed.get(f"para-{i}-a") or removed.get(f"para-{i}-b"))["dup_of"].startswith(f"para-{i}-")]
    assert len(found) >= 0.85 * planted["pairs"], removed
    # articles: only pages covering the same story as another (tests/data/article_same_story.json) may go;
    # Russian pages (outside `languages`) are never compared
    groups = json.loads(SAME_STORY.read_text())["groups"]
    group_of = {f"art-{k}": i for i, g in enumerate(groups) for k in g}
    false = [r for r in removed if r.startswith("art-") and group_of.get(r, -1) != group_of.get(
        removed[r]["dup_of"], -2)]
    assert len(false) <= 0.01 * planted["articles"], false
    same_story = [r for r in removed if r in group_of]
    print(f"same-story articles removed: {len(same_story)} of {len(group_of)}")
    kept = {r["id"]: r for r in outcome(out)["kept"]}
    assert kept["art-3c6d3381ef52"]["semantic_cluster"] == -1  # Russian: not compared
    for r in removed.values():
        assert r["reason"] == f"semantic_dup:of={r['dup_of']}" and r["semantic_sim"] >= 0.7 - 1e-6
    manifest = json.loads((out / "semantic_dedup" / "_manifest.json").read_text())
    c = manifest["counts"]
    assert c["in"] == c["kept"] + c["removed"] and manifest["stats"]["clusters"] >= 2


def test_same_result_for_any_workers_and_partitioning(reference: tuple[Path, dict[str, Any]],
                                                      tmp_path: Path) -> None:
    out, _ = reference
    write_corpus(tmp_path)
    other = run(tmp_path, workers=2, partition_rows=23)
    assert outcome(other) == outcome(out)


@pytest.mark.spark
def test_spark_gives_the_local_result(reference: tuple[Path, dict[str, Any]], tmp_path: Path, spark: Any) -> None:
    from pipeline.config import validate
    from pipeline.runner import Runner
    from tests.spark_util import TEST_CONF

    out, _ = reference
    write_corpus(tmp_path)
    cfg = config(workers=1, partition_rows=40, executor="spark")
    cfg["output"] = str(tmp_path / "out")
    cfg["inputs"][0]["path"] = str(tmp_path / "in" / "docs.jsonl")
    cfg["spark"] = {"master": "local[2]", "conf": TEST_CONF}
    Runner(validate(cfg)).run()
    assert outcome(tmp_path / "out") == outcome(out)


def test_semdedup_params_shows_counts_and_examples(reference: tuple[Path, dict[str, Any]]) -> None:
    out, _ = reference
    proc = curate("semdedup-params", str(out), "--eps", "0.05,0.3,0.5", "--cluster-size", "40", cwd=out.parent,
                  check=True, timeout=300)
    rows = {float(m[0]): int(m[1]) for m in re.findall(r"^\s*([\d.]+)\s+[\d.]+\s+(\d+)\s+[\d.]+%$", proc.stdout, re.M)}
    assert set(rows) == {0.05, 0.3, 0.5}
    assert rows[0.05] <= rows[0.3] <= rows[0.5] and rows[0.3] >= 8  # more go as eps grows; the planted pairs
    assert re.search(r"cosine 0\.[3-9]\d*\n  removed  \S+: .+\n  survivor \S+: ", proc.stdout)
    bad = curate("semdedup-params", str(out), "--stage", "langid", cwd=out.parent)
    assert bad.returncode == 2 and "no 'embedding' column" in bad.stderr
