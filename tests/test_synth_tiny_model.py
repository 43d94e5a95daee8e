"""The tiny Ling checkpoint: deterministic, Ling's layout, loadable by transformers' tokenizer and by vLLM,
and read by vLLM exactly as the plain-torch reference forward reads it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from test_synth_support import require

# Registers the shared session fixtures once (module-level imports of fixtures would load vLLM per module).
pytest_plugins = ["test_synth_support"]


def _digests(d: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(d.iterdir()) if f.is_file()}


def test_build_is_deterministic_and_small(tmp_path: Path, tiny_model_dir: Path) -> None:
    from synth.tiny_model import build_tiny_model

    again = build_tiny_model(tmp_path / "again", seed=0)
    other = build_tiny_model(tmp_path / "other", seed=1)
    assert _digests(again) == _digests(tiny_model_dir)
    assert _digests(other)["model.safetensors"] != _digests(again)["model.safetensors"]
    assert sum(f.stat().st_size for f in again.iterdir()) < 8 << 20


def test_layout_matches_a_ling_checkpoint(tiny_model_dir: Path) -> None:
    safetensors = require("safetensors")
    names = {f.name for f in tiny_model_dir.iterdir()}
    assert {
        "config.json", "configuration_bailing_moe.py", "modeling_bailing_moe.py", "model.safetensors",
        "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
    } <= names  # fmt: skip
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    assert cfg["architectures"] == ["BailingMoeForCausalLM"]
    assert cfg["model_type"] == "bailing_moe"
    assert cfg["auto_map"]["AutoConfig"] == "configuration_bailing_moe.BailingMoeConfig"
    assert (cfg["num_experts"], cfg["num_experts_per_tok"], cfg["num_shared_experts"]) == (8, 2, 1)
    with safetensors.safe_open(str(tiny_model_dir / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    # HF-layout names that vLLM's bailing_moe.py maps (word_embeddings, fused query_key_value, experts).
    assert "model.word_embeddings.weight" in keys and "lm_head.weight" in keys
    assert "model.layers.0.attention.query_key_value.weight" in keys
    assert "model.layers.0.mlp.gate_proj.weight" in keys  # first_k_dense_replace=1: layer 0 is dense
    assert "model.layers.1.mlp.gate.weight" in keys
    assert {f"model.layers.1.mlp.experts.{e}.down_proj.weight" for e in range(8)} <= keys
    assert "model.layers.1.mlp.shared_experts.up_proj.weight" in keys


def test_tokenizer_loads_with_transformers(tiny_model_dir: Path) -> None:
    transformers = require("transformers")
    tok = transformers.AutoTokenizer.from_pretrained(str(tiny_model_dir), trust_remote_code=True)
    cfg = json.loads((tiny_model_dir / "config.json").read_text())
    assert len(tok) == cfg["vocab_size"]
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id == cfg["eos_token_id"]
    text = "The capital of France is Paris. 北京是中国的首都。"
    ids = tok(text)["input_ids"]
    assert tok.eos_token_id not in ids  # Ling tokenizers add no BOS/EOS: the pipeline appends it itself
    assert tok.decode(ids) == text  # byte-level BPE round-trips any text
    chat = tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert chat == "<role>HUMAN</role>hi<|role_end|><role>ASSISTANT</role>"


def test_vllm_loads_it_and_agrees_with_reference_forward(tiny_model_dir: Path, vllm_engine: Any) -> None:
    """vLLM refuses checkpoints with missing/unexpected tensors, so loading proves the names; equal
    prompt logprobs against the shipped plain-torch forward prove it reads the tensors the same way
    (qkv split, rotary, routing, shared expert, norms)."""
    torch = require("torch")
    transformers = require("transformers")
    from vllm import SamplingParams, TokensPrompt

    ids = vllm_engine.tokenize(["The quick brown fox jumps over the lazy dog. 机器学习"])[0]
    out = vllm_engine._llm.generate(
        [TokensPrompt(prompt_token_ids=ids)], SamplingParams(max_tokens=1, prompt_logprobs=0), use_tqdm=False
    )[0]
    got = [next(iter(lp.values())).logprob for lp in out.prompt_logprobs[1:]]

    model = transformers.AutoModelForCausalLM.from_pretrained(
        str(tiny_model_dir), trust_remote_code=True, dtype=torch.float32
    )
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits[0].log_softmax(-1)
    want = [logp[i - 1, ids[i]].item() for i in range(1, len(ids))]
    assert len(got) == len(want) > 5
    assert max(abs(a - b) for a, b in zip(got, want, strict=True)) < 1e-3


def test_cli_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for module in ("torch", "tokenizers", "safetensors"):
        require(module)
    from synth.tiny_model import main

    assert main([str(tmp_path / "m"), "--seed", "3", "--dtype", "float32"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert json.loads((tmp_path / "m" / "config.json").read_text())["torch_dtype"] == "float32"
