"""The synth stage with REAL vLLM (CPU build) on the tiny Ling model, end to end.

One `curate run` subprocess is SIGKILLed mid-generation (the cache commits every `chunk_size` requests);
the run is then resumed and rerun in this process with the session's shared engine (loading vLLM costs a
minute on 2 cores, so the killed run's load overlaps the shared engine's). Checks: finished rows are not
regenerated, a prompt longer than the context fails alone with its reason, synthetic documents with
provenance reach the following stage, and a rerun generates nothing and gives identical outputs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from test_synth_support import MAX_MODEL_LEN, cache_rows, require

from tests.conftest import pipeline_config, write_config

pytest_plugins = ["test_synth_support"]


def e2e_config(model: Path, **synth: Any) -> dict[str, Any]:
    """Short prompts and outputs (the shared engine has a 256-token context): a rephrase recipe on ten
    documents, and one recipe whose prompt repeats its document three times, too long for the context."""
    cfg = pipeline_config()
    recipes = [
        {"recipe": "wiki_rephrase", "name": "rephrase", "prompt": "Rewrite this text clearly.\n{{ text }}",
         "select": "source == 'd'", "max_input_tokens": 90, "min_input_tokens": 10, "max_output_tokens": 12,
         "min_output_tokens": 1, "drop_truncated": False},
        {"name": "echo_thrice", "prompt": "Repeat:\n{{ text }}\n{{ text }}\n{{ text }}", "select": "id == 'pq-1'",
         "max_input_tokens": 2000, "min_input_tokens": 10, "max_output_tokens": 8, "min_output_tokens": 1},
    ]  # fmt: skip
    stage = {"name": "synth", "model": str(model), "trust_remote_code": True, "max_model_len": MAX_MODEL_LEN,
             "kv_cache_gb": 1, "recipes": recipes, "max_docs_per_recipe": 10, "chunk_size": 2, **synth}
    cfg["stages"] = [{"name": "normalize"}, stage, {"name": "exact_dedup"}]
    return cfg


def run_in_process(workdir: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    from pipeline.config import validate
    from pipeline.runner import Runner

    Runner(validate(cfg)).run()
    return json.loads((workdir / cfg["output"] / "synth" / "_manifest.json").read_text())


def synthetic(out: Path, stage: str) -> pa.Table:
    table = pa.concat_tables([pq.read_table(p) for p in sorted((out / stage / "data").glob("*.parquet"))])
    return table.filter(pc.is_valid(table.column("parent_id"))).sort_by("id")


def test_real_vllm_kill_resume_rerun(
    workdir: Path, tiny_model_dir: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("vllm")
    require("transformers")
    import stages.synth

    monkeypatch.chdir(workdir)
    cfg = e2e_config(tiny_model_dir)
    write_config(workdir / "pipeline.yaml", cfg)
    cache = workdir / "out" / "_cache" / "synth.sqlite"
    log_path = workdir / "killed-run.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "pipeline.yaml"], cwd=workdir, env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    killed_at: list[int] = []

    def kill_after_first_chunk() -> None:
        deadline = time.monotonic() + 480
        while proc.poll() is None and time.monotonic() < deadline:
            n = cache_rows(cache)
            if n >= 2:  # at least one chunk of 2 committed
                os.killpg(proc.pid, signal.SIGKILL)
                killed_at.append(n)
                return
            time.sleep(0.1)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_after_first_chunk, daemon=True)
    killer.start()
    engine = request.getfixturevalue("vllm_engine")  # the shared engine loads while the subprocess runs
    killer.join(timeout=500)
    proc.wait(timeout=60)
    tail = log_path.read_text(errors="replace")[-3000:]
    assert killed_at and proc.returncode == -signal.SIGKILL, f"not killed mid-generation ({proc.returncode}):\n{tail}"
    assert not (workdir / "out" / "synth" / "_manifest.json").exists()
    committed = cache_rows(cache)
    assert committed >= 2

    # resume: the same pipeline, finished rows come from the cache
    monkeypatch.setattr(stages.synth, "ENGINE_OVERRIDE", engine)
    m = run_in_process(workdir, cfg)
    s = m["stats"]
    assert s["prompts"] > committed + 2
    assert s["cache_hits"] == committed, s
    assert s["generated"] == s["prompts"] - committed - s["failed"] and s["generated_tokens"] > 0
    assert s["failed"] == 1 and s["failures_by_cause"] == {"prompt_too_long": 1}
    failed = pq.read_table(workdir / "out" / "synth" / "failed" / "part-0000.parquet").to_pylist()
    assert [(f["parent_id"], f["recipe"], f["stage"], f["cause"]) for f in failed] == [
        ("pq-1", "echo_thrice", "generation", "prompt_too_long")]
    assert "prompt too long" in failed[0]["reason"] and failed[0]["request_id"] == "echo_thrice:pq-1:0"
    assert s["tokens_per_s"] > 0 and s["per_recipe"]["rephrase"]["selected"] == 10
    prefix = s["prefix_cache"]  # vLLM's prefix-cache lookups over this run's generations
    assert prefix["queried_tokens"] >= prefix["hit_tokens"] >= 0 and prefix["queried_tokens"] > 0
    assert prefix["hit_rate"] == round(prefix["hit_tokens"] / prefix["queried_tokens"], 4)
    from pipeline.report import write_report

    report = write_report(workdir / "out").read_text()
    assert 'data-synth="prefix_cache_hit_rate"' in report and f"of {prefix['queried_tokens']} prompt tokens" in report

    docs = synthetic(workdir / "out", "synth")
    c = m["counts"]
    assert docs.num_rows == c["added"] == s["synthetic_docs"] > 0 and c["kept"] == c["in"] + c["added"]
    for d in docs.to_pylist():
        assert d["recipe"] == "rephrase" and d["source"] == "synth/rephrase" and d["parent_id"].startswith("pq-")
        assert d["model"].startswith("tiny-moe@") and d["text"]
        assert d["synth_completion_tokens"] > 0 and d["synth_prompt_tokens"] > 0
    after = synthetic(workdir / "out", "exact_dedup")  # the following stage has them
    assert set(after.column("id").to_pylist()) <= set(docs.column("id").to_pylist())
    assert after.num_rows >= 1

    # rerun after a change to the stage's settings: every response from the cache, identical output
    again = e2e_config(tiny_model_dir, chunk_size=5)
    m2 = run_in_process(workdir, again)
    s2 = m2["stats"]
    assert s2["generated"] == 0 and s2["generated_tokens"] == 0 and s2["cache_hits"] == s["prompts"] - 1
    assert s2["prefix_cache"] is None  # nothing reached vLLM: the rest cached, the long row refused before it
    assert s2["failed"] == 1  # failures are not cached: retried, and still too long
    assert synthetic(workdir / "out", "synth").equals(docs)
