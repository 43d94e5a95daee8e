"""Acceptance on the demo corpus: classifiers trained on the demo's labelled sets, scored held out."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from filters.fasttext_classifier import binary_metrics
from pipeline.demo.corpus import load_truth
from tests.conftest import DEMO_INPUTS, curate, write_config


def test_demo_classifiers_reach_acceptance(demo_root: Path, demo_quality_model: Path, tmp_path: Path) -> None:
    labels = demo_root / "demo" / "labels"
    curate("train", "domain", "--input", str(labels / "domain.jsonl"), "--label-field", "label",
           "--output", str(tmp_path / "d.bin"), cwd=tmp_path, check=True)
    cfg = {"name": "demo-classify", "output": str(tmp_path / "out"), "workers": 2, "inputs": DEMO_INPUTS,
           "stages": [{"name": "quality", "kind": "quality_classifier", "model": str(demo_quality_model)},
                      {"name": "domain", "kind": "domain_classifier", "model": str(tmp_path / "d.bin")}]}
    write_config(tmp_path / "p.yaml", cfg)
    curate("run", str(tmp_path / "p.yaml"), cwd=demo_root, check=True)
    docs = pq.read_table(tmp_path / "out" / "domain" / "data", columns=["id", "quality_score", "domain"]).to_pylist()
    truth = {t["id"]: t for t in load_truth(demo_root / "demo") if not t["malformed"]}
    assert len(docs) == len(truth) == 1500

    graded = [(truth[d["id"]]["quality"], d["quality_score"]) for d in docs
              if truth[d["id"]]["quality"] in ("high", "low") and truth[d["id"]]["domain"] in
              ("news", "forum", "encyclopedia")]
    is_high = np.array([q == "high" for q, _ in graded])
    metrics = binary_metrics(is_high, np.array([s for _, s in graded]))
    assert metrics["f1"] >= 0.9, metrics

    high = [d for d in docs if truth[d["id"]]["quality"] == "high"]
    accuracy = sum(d["domain"] == truth[d["id"]]["domain"] for d in high) / len(high)
    assert accuracy >= 0.9, accuracy
    report = json.loads((tmp_path / "d.bin.report.json").read_text())
    assert report["holdout"]["accuracy"] >= 0.9
