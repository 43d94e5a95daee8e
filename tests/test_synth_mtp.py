"""MTP speculative decoding on vLLM's CPU build: the synth stage on a tiny Ling 2.5 checkpoint with one MTP
layer, run with and without ``speculative_config``.

Speculative decoding must not change greedy outputs (every drafted token is verified by the target model),
so the two runs' raw generations are compared token for token; the MTP run's manifest must carry vLLM's
draft/accept counts. The tiny model's drafts are accepted about a third of the time, so both the accept and
the reject path of the verifier run.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from test_synth_support import MAX_MODEL_LEN, require

from tests.conftest import pipeline_config

pytest_plugins = ["test_synth_support"]

MTP = {"method": "mtp", "num_speculative_tokens": 1}


@pytest.fixture(scope="module")
def mtp_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require("torch")
    require("safetensors")
    from synth.tiny_model import build_tiny_mtp_model

    return build_tiny_mtp_model(tmp_path_factory.mktemp("tiny-mtp") / "tiny-mtp", seed=0)


def mtp_pipeline(model: Path, out: str, speculative: dict[str, Any] | None) -> dict[str, Any]:
    cfg = pipeline_config(output=out)
    recipe = {"name": "continue", "prompt": "Continue this text.\n{{ text }}", "select": "source == 'd'",
              "max_input_tokens": 200, "min_input_tokens": 10, "max_output_tokens": 32, "min_output_tokens": 0,
              "temperature": 0.0, "drop_truncated": False}  # fmt: skip
    stage = {"name": "synth", "model": str(model), "trust_remote_code": True, "max_model_len": MAX_MODEL_LEN,
             "kv_cache_gb": 1, "recipes": [recipe], "max_docs_per_recipe": 6, "speculative_config": speculative}
    cfg["stages"] = [{"name": "normalize"}, stage]
    return cfg


def run(workdir: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    from pipeline.config import validate
    from pipeline.runner import Runner

    Runner(validate(cfg)).run()
    return json.loads((workdir / cfg["output"] / "synth" / "_manifest.json").read_text())


def generations(workdir: Path, out: str) -> dict[str, dict[str, Any]]:
    """Raw responses by cache key (prompt and sampling settings): before any clean-up."""
    with sqlite3.connect(workdir / out / "_cache" / "synth.sqlite") as db:
        return {k: json.loads(blob) for k, blob in db.execute("SELECT key, result FROM responses")}


def test_mtp_speculative_decoding_keeps_greedy_outputs_and_reports_acceptance(
    workdir: Path, mtp_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("vllm")
    require("transformers")
    monkeypatch.chdir(workdir)

    with_mtp = run(workdir, mtp_pipeline(mtp_model_dir, "out-mtp", MTP))
    s = with_mtp["stats"]
    n = s["prompts"]
    assert n >= 6 and s["failed"] == 0 and s["generated"] == n, s  # every prompt answered
    spec = s["speculative"]
    assert spec["method"] == "mtp" and spec["num_speculative_tokens"] == 1
    assert spec["draft_tokens"] > 0 and spec["drafts"] > 0
    assert 0 <= spec["accepted_tokens"] <= spec["draft_tokens"]
    assert 0.0 <= spec["acceptance_rate"] <= 1.0
    assert spec["acceptance_rate"] == round(spec["accepted_tokens"] / spec["draft_tokens"], 4)
    print(f"MTP: {spec['accepted_tokens']} of {spec['draft_tokens']} draft tokens accepted over {n} prompts")
    from pipeline.report import write_report

    report = write_report(workdir / "out-mtp").read_text()
    assert 'data-synth="acceptance_rate"' in report and f"of {spec['draft_tokens']} draft tokens" in report

    plain = run(workdir, mtp_pipeline(mtp_model_dir, "out-plain", None))
    assert plain["stats"]["speculative"] is None and plain["stats"]["generated"] == n

    spec_out, plain_out = generations(workdir, "out-mtp"), generations(workdir, "out-plain")
    assert len(spec_out) == n and spec_out.keys() == plain_out.keys()
    for key, res in plain_out.items():
        assert res["completion_tokens"] > 0, res
        # greedy decoding: the same text and length, whether tokens were drafted by the MTP layer or not
        assert (spec_out[key]["text"], spec_out[key]["completion_tokens"]) == (res["text"], res["completion_tokens"])


def test_mtp_checkpoint_is_deterministic_and_has_the_mtp_layer(tmp_path: Path, mtp_model_dir: Path) -> None:
    safetensors = require("safetensors")
    from synth.tiny_model import build_tiny_mtp_model

    again = build_tiny_mtp_model(tmp_path / "again", seed=0)
    assert (again / "model.safetensors").read_bytes() == (mtp_model_dir / "model.safetensors").read_bytes()
    cfg = json.loads((mtp_model_dir / "config.json").read_text())
    assert cfg["architectures"] == ["BailingMoeV2_5ForCausalLM"] and cfg["model_type"] == "bailing_hybrid"
    n = cfg["num_hidden_layers"]
    assert cfg["num_nextn_predict_layers"] == 1 and cfg["layer_types"] == ["full_attention"] * n
    with safetensors.safe_open(str(mtp_model_dir / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    # the MTP layer sits after the last decoder layer, with the names vLLM's bailing_moe_mtp.py loads
    assert {f"model.layers.{n}.{k}.weight" for k in ("enorm", "hnorm", "eh_proj", "final_layernorm")} <= keys
    assert f"model.layers.{n}.attention.kv_b_proj.weight" in keys and f"model.layers.{n}.mlp.gate.weight" in keys


def test_speculative_stats_and_cpu_rotary_setting() -> None:
    from stages.synth import speculative_stats
    from synth.engine_vllm import _native_rotary

    assert speculative_stats(None, {}) is None
    s = speculative_stats(MTP, {"drafts": 40, "draft_tokens": 40, "accepted_tokens": 10})
    assert s == {"method": "mtp", "num_speculative_tokens": 1, "drafts": 40, "draft_tokens": 40,
                 "accepted_tokens": 10, "acceptance_rate": 0.25, "mean_acceptance_length": 1.25}
    assert speculative_stats(MTP, {})["acceptance_rate"] is None  # all cached: nothing drafted, not 0
    kw: dict[str, Any] = {}
    _native_rotary(kw)
    assert kw == {"compilation_config": {"custom_ops": ["all", "-rotary_embedding"]}}
    kw = {"compilation_config": {"custom_ops": ["all", "+rotary_embedding"]}}
    _native_rotary(kw)  # the caller asked for the kernel: kept
    assert kw["compilation_config"]["custom_ops"] == ["all", "+rotary_embedding"]
