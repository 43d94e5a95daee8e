"""Build a tiny random-weight Ling (``BailingMoeForCausalLM``) checkpoint for tests and the demo.

Why: tests and the CPU demo need a model that vLLM loads through exactly the code path a real Ling
checkpoint (e.g. inclusionAI/Ling-lite) takes -- same architecture name, config field names, remote-code
config class, tensor names and tokenizer files -- while being a few MB and never downloaded.

Layout written to ``out_dir``::

    config.json                   architectures, model_type bailing_moe, auto_map, Bailing field names
    configuration_bailing_moe.py  config class (needed: transformers has no built-in bailing_moe)
    modeling_bailing_moe.py       plain-torch reference forward (transformers AutoModelForCausalLM)
    model.safetensors             exactly the tensor names vLLM's bailing_moe.py loads
    generation_config.json
    tokenizer.json                byte-level BPE trained here with `tokenizers`
    tokenizer_config.json         eos <|endoftext|>, chat template; no BOS/EOS added (like Ling)
    special_tokens_map.json

Everything is deterministic given ``seed`` (same bytes for the same seed and library versions).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

EOS_TOKEN = "<|endoftext|>"
# Ling chat markup: roles are written as <role>HUMAN</role> ... ; kept as single special tokens.
SPECIAL_TOKENS = [EOS_TOKEN, "<role>", "</role>", "<|role_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% set r = 'HUMAN' if m['role'] == 'user' else m['role'] | upper %}"
    "<role>{{ r }}</role>{{ m['content'] }}<|role_end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<role>ASSISTANT</role>{% endif %}"
)

# Shape of the tiny model. Field names are Ling's (configuration_bailing_moe.py), which vLLM reads.
TINY_SHAPE: dict[str, Any] = {
    "hidden_size": 128,
    "intermediate_size": 256,  # dense MLP (layers < first_k_dense_replace)
    "moe_intermediate_size": 64,  # per routed expert
    "num_hidden_layers": 2,
    "num_attention_heads": 4,  # head_dim 32: smallest head size vLLM's CPU attention supports
    "num_key_value_heads": 2,
    "num_experts": 8,
    "num_experts_per_tok": 2,
    "num_shared_experts": 1,
    "first_k_dense_replace": 1,  # layer 0 dense, layer 1 MoE: both code paths exercised
    "max_position_embeddings": 2048,
}
TOKENIZER_VOCAB = 2048
# provenance the synth stage records and the report / dataset card print (synth/fate.py)
TINY_MODEL_INFO = {"name": "tiny random-weight Ling (BailingMoeForCausalLM)", "test_model": True, "kind": "random",
                   "note": "random weights: meaningless text, for architecture and pipeline tests only"}
EOS_CARRIER = 4.0  # constant on hidden dimension 0 of every token embedding (see _random_weights)
EOS_BIAS = 1.3  # weight of that dimension in the EOS row of lm_head

CONFIGURATION_SOURCE = '''\
"""BailingMoe (Ling) configuration, written by ling-curate's tiny-model builder.

Field names follow the Ling checkpoints so that vLLM's bailing_moe implementation reads them unchanged.
"""

from transformers import PretrainedConfig


class BailingMoeConfig(PretrainedConfig):
    model_type = "bailing_moe"

    def __init__(
        self,
        vocab_size=126464,
        hidden_size=2048,
        intermediate_size=5632,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=4,
        hidden_act="silu",
        use_qkv_bias=False,
        use_bias=False,
        rms_norm_eps=1e-06,
        norm_head=False,
        tie_word_embeddings=False,
        embedding_dropout=0.0,
        attention_dropout=0.0,
        output_dropout=0.0,
        initializer_range=0.02,
        max_position_embeddings=16384,
        rope_theta=600000.0,
        use_cache=True,
        rope_scaling=None,
        pad_token_id=126081,
        eos_token_id=126081,
        num_experts=64,
        num_shared_experts=2,
        num_experts_per_tok=6,
        norm_topk_prob=True,
        moe_intermediate_size=1408,
        first_k_dense_replace=0,
        head_dim=None,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads
        self.hidden_act = hidden_act
        self.use_qkv_bias = use_qkv_bias
        self.use_bias = use_bias
        self.rms_norm_eps = rms_norm_eps
        self.norm_head = norm_head
        self.embedding_dropout = embedding_dropout
        self.attention_dropout = attention_dropout
        self.output_dropout = output_dropout
        self.initializer_range = initializer_range
        self.max_position_embeddings = max_position_embeddings
        self.rope_theta = rope_theta
        self.rope_scaling = rope_scaling
        self.use_cache = use_cache
        self.head_dim = head_dim if head_dim is not None else hidden_size // num_attention_heads
        self.num_experts = num_experts
        self.num_shared_experts = num_shared_experts
        self.num_experts_per_tok = num_experts_per_tok
        self.norm_topk_prob = norm_topk_prob
        self.moe_intermediate_size = moe_intermediate_size
        self.first_k_dense_replace = first_k_dense_replace
        super().__init__(
            pad_token_id=pad_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
'''

MODELING_SOURCE = '''\
"""Minimal plain-torch BailingMoe forward, written by ling-curate's tiny-model builder.

A reference implementation (no KV cache, no dropout) so tests can check that vLLM interprets the tensors
the same way: logits from here and vLLM's prompt logprobs must agree.
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

from .configuration_bailing_moe import BailingMoeConfig


class BailingRMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (x32 * self.weight.float()).to(x.dtype)


class BailingMLP(nn.Module):
    def __init__(self, config, intermediate_size):
        super().__init__()
        h = config.hidden_size
        self.gate_proj = nn.Linear(h, intermediate_size, bias=config.use_bias)
        self.up_proj = nn.Linear(h, intermediate_size, bias=config.use_bias)
        self.down_proj = nn.Linear(intermediate_size, h, bias=config.use_bias)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class BailingMoeGate(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(config.num_experts, config.hidden_size))


class BailingMoeSparse(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.norm_topk_prob = config.norm_topk_prob
        self.gate = BailingMoeGate(config)
        self.experts = nn.ModuleList(
            [BailingMLP(config, config.moe_intermediate_size) for _ in range(config.num_experts)]
        )
        self.shared_experts = None
        if config.num_shared_experts:
            self.shared_experts = BailingMLP(
                config, config.moe_intermediate_size * config.num_shared_experts
            )

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        probs = torch.softmax(F.linear(x, self.gate.weight).float(), dim=-1)
        weights, idx = probs.topk(self.top_k, dim=-1)
        if self.norm_topk_prob:
            weights = weights / weights.sum(-1, keepdim=True)
        out = torch.zeros_like(x, dtype=torch.float32)
        for e, expert in enumerate(self.experts):
            rows, slot = (idx == e).nonzero(as_tuple=True)
            if rows.numel():
                out[rows] += weights[rows, slot, None] * expert(x[rows]).float()
        out = out.to(x.dtype)
        if self.shared_experts is not None:
            out = out + self.shared_experts(x)
        return out.reshape(shape)


def _rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat((-b, a), dim=-1)


class BailingAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_heads = config.num_attention_heads
        self.n_kv = config.num_key_value_heads
        self.head_dim = config.head_dim
        self.rope_theta = config.rope_theta
        q_out = (self.n_heads + 2 * self.n_kv) * self.head_dim
        self.query_key_value = nn.Linear(
            config.hidden_size, q_out, bias=config.use_bias or config.use_qkv_bias
        )
        self.dense = nn.Linear(self.n_heads * self.head_dim, config.hidden_size, bias=config.use_bias)

    def forward(self, x):
        b, t, _ = x.shape
        qkv = self.query_key_value(x)
        q, k, v = qkv.split(
            [self.n_heads * self.head_dim, self.n_kv * self.head_dim, self.n_kv * self.head_dim], dim=-1
        )
        q = q.view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = k.view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        v = v.view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        dims = torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim
        inv = 1.0 / (self.rope_theta**dims)
        freqs = torch.outer(torch.arange(t, dtype=torch.float32), inv)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(q.dtype), emb.sin().to(q.dtype)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        rep = self.n_heads // self.n_kv
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.dense(o.transpose(1, 2).reshape(b, t, -1))


class BailingMoeBlock(nn.Module):
    def __init__(self, config, layer_idx):
        super().__init__()
        self.input_layernorm = BailingRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.attention = BailingAttention(config)
        self.post_attention_layernorm = BailingRMSNorm(config.hidden_size, config.rms_norm_eps)
        if layer_idx < config.first_k_dense_replace:
            self.mlp = BailingMLP(config, config.intermediate_size)
        else:
            self.mlp = BailingMoeSparse(config)

    def forward(self, x):
        x = x + self.attention(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class BailingMoePreTrainedModel(PreTrainedModel):
    config_class = BailingMoeConfig
    base_model_prefix = "model"
    _no_split_modules = ["BailingMoeBlock"]

    def _init_weights(self, module):
        pass


class BailingMoeModel(BailingMoePreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([BailingMoeBlock(config, i) for i in range(config.num_hidden_layers)])
        self.norm = BailingRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_init()

    def forward(self, input_ids, **kwargs):
        x = self.word_embeddings(input_ids)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class BailingMoeForCausalLM(BailingMoePreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.model = BailingMoeModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def forward(self, input_ids, labels=None, **kwargs):
        h = self.model(input_ids)
        w = self.lm_head.weight
        if self.config.norm_head:
            w = F.normalize(w, dim=0, p=2, eps=1e-7)
        return CausalLMOutput(logits=F.linear(h, w).float())
'''

# A small bilingual text for training the BPE; recombined with a seeded RNG so merges cover common words.
_TOKENIZER_TEXT = """\
The quick brown fox jumps over the lazy dog. A language model reads text and predicts the next token.
Pretraining data is collected from the web, cleaned, deduplicated, filtered for quality and mixed.
Wikipedia articles describe history, science, geography, mathematics, music, art and sport.
Question: What is the capital of France? Answer: The capital of France is Paris.
Question: How many legs does a spider have? Answer: A spider has eight legs.
Photosynthesis converts light energy into chemical energy stored in sugar molecules.
The mitochondria produce energy for the cell through respiration and oxidation.
In 1969 astronauts landed on the Moon; the mission was watched by millions of people.
Water boils at 100 degrees Celsius at sea level and freezes at 0 degrees Celsius.
def add(a, b):\n    return a + b\n\nfor i in range(10):\n    print(i * i)
import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)\nprint(x.shape)
Rephrase the following text in a clear, Wikipedia-like style. Here is the paraphrased text:
Generate questions and answers about the passage. Use yes/no, open, multiple choice questions.
Summarize the key facts as a bulleted list of knowledge with figures and dates.
机器学习是人工智能的一个分支。语言模型通过预测下一个词来学习语言。
北京是中国的首都，上海是中国最大的城市。长江是亚洲最长的河流。
数据清洗包括去重、过滤低质量文本和平衡不同领域的数据。
"""


def train_tokenizer(vocab_size: int = TOKENIZER_VOCAB, seed: int = 0) -> Any:
    """Train a byte-level BPE (GPT-2 style) on the built-in text; no files, no network."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    rng = random.Random(seed)
    lines = [ln for ln in _TOKENIZER_TEXT.splitlines() if ln.strip()]
    words = _TOKENIZER_TEXT.split()
    corpus = list(lines)
    # Seeded recombinations plus pseudo-words built from syllables give the trainer enough distinct pairs
    # to reach vocab_size (the built-in text alone saturates near 1k tokens).
    syllables = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"] + ["th", "ing", "er", "tion", "st"]
    for _ in range(600):
        corpus.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 20))))
        pseudo = ("".join(rng.choice(syllables) for _ in range(rng.randint(1, 4))) for _ in range(12))
        corpus.append(" ".join(pseudo) + f" {rng.randint(0, 9999)}.")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return tok


def _random_weights(cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    """Tensor names exactly as vLLM's ``BailingMoeForCausalLM.load_weights`` expects (HF layout)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    h, v = cfg["hidden_size"], cfg["vocab_size"]
    hd = cfg["head_dim"]
    nq, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]

    def lin(out_f: int, in_f: int) -> torch.Tensor:
        # Kaiming-like scale keeps activations O(1), so logits are far from uniform and a reference
        # comparison of logprobs is meaningful.
        return torch.randn(out_f, in_f, generator=g) / in_f**0.5

    def norm(dim: int) -> torch.Tensor:
        return 1.0 + 0.1 * torch.randn(dim, generator=g)  # not all-ones: a swapped norm would show

    def mlp(prefix: str, inter: int) -> dict[str, torch.Tensor]:
        return {
            f"{prefix}.gate_proj.weight": lin(inter, h),
            f"{prefix}.up_proj.weight": lin(inter, h),
            f"{prefix}.down_proj.weight": lin(h, inter),
        }

    w: dict[str, torch.Tensor] = {"model.word_embeddings.weight": torch.randn(v, h, generator=g)}
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}"
        w[f"{p}.input_layernorm.weight"] = norm(h)
        w[f"{p}.attention.query_key_value.weight"] = lin((nq + 2 * nkv) * hd, h)
        w[f"{p}.attention.dense.weight"] = lin(h, nq * hd)
        w[f"{p}.post_attention_layernorm.weight"] = norm(h)
        if i < cfg["first_k_dense_replace"]:
            w.update(mlp(f"{p}.mlp", cfg["intermediate_size"]))
            continue
        w[f"{p}.mlp.gate.weight"] = lin(cfg["num_experts"], h) * 4.0  # peaked routing
        for e in range(cfg["num_experts"]):
            w.update(mlp(f"{p}.mlp.experts.{e}", cfg["moe_intermediate_size"]))
        if cfg["num_shared_experts"]:
            w.update(mlp(f"{p}.mlp.shared_experts", cfg["moe_intermediate_size"] * cfg["num_shared_experts"]))
    w["model.norm.weight"] = norm(h)
    w["lm_head.weight"] = lin(v, h) * 3.0
    # Text that ends: every embedding carries a constant on hidden dimension 0 and the EOS row of the head
    # reads it, so EOS gets a steady logit bonus. Sampled at T=0.5/top-p 0.9 about 9 in 10 outputs then stop
    # on their own (median ~100 tokens) instead of all running to max_tokens, like a real model's would.
    w["model.word_embeddings.weight"][:, 0] = EOS_CARRIER
    w["lm_head.weight"][cfg["eos_token_id"], 0] = EOS_BIAS
    return w


def tiny_config(vocab_size: int, eos_id: int, dtype: str = "bfloat16") -> dict[str, Any]:
    """config.json contents: Ling-lite's keys with the tiny shape."""
    shape = TINY_SHAPE
    return {
        "architectures": ["BailingMoeForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_bailing_moe.BailingMoeConfig",
            "AutoModel": "modeling_bailing_moe.BailingMoeModel",
            "AutoModelForCausalLM": "modeling_bailing_moe.BailingMoeForCausalLM",
        },
        "model_type": "bailing_moe",
        "vocab_size": vocab_size,
        **shape,
        "head_dim": shape["hidden_size"] // shape["num_attention_heads"],
        "hidden_act": "silu",
        "norm_topk_prob": True,
        "use_bias": False,
        "use_qkv_bias": False,
        "norm_head": False,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "embedding_dropout": 0.0,
        "attention_dropout": 0.0,
        "output_dropout": 0.0,
        "initializer_range": 0.02,
        "use_cache": True,
        "eos_token_id": eos_id,
        "pad_token_id": eos_id,
        "torch_dtype": dtype,
    }


def build_tiny_model(out_dir: str | Path, seed: int = 0, dtype: str = "bfloat16") -> Path:
    """Write the tiny Ling checkpoint into ``out_dir`` and return its path.

    ``dtype`` is the stored precision (``bfloat16`` like real Ling checkpoints, or ``float32``).
    """
    out, cfg = _write_common_files(out_dir, seed, dtype, tiny_config, TINY_MODEL_INFO)
    (out / "configuration_bailing_moe.py").write_text(CONFIGURATION_SOURCE)
    (out / "modeling_bailing_moe.py").write_text(MODELING_SOURCE)
    _save_weights(out, _random_weights(cfg, seed), dtype)
    return out


def _write_common_files(out_dir: str | Path, seed: int, dtype: str,
                        make_config: Callable[[int, int, str], dict[str, Any]],
                        info: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """What every tiny checkpoint has: the tokenizer, config.json, the generation config, the model info."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab_size, eos_id = _write_tokenizer(out, seed)
    cfg = make_config(vocab_size, eos_id, dtype)
    _write_json(out / "config.json", cfg)
    _write_generation_config(out, eos_id)
    _write_json(out / "ling_curate_model.json", info)
    return out, cfg


def _write_tokenizer(out: Path, seed: int) -> tuple[int, int]:
    """The byte-level BPE and Ling's tokenizer files; returns (vocab size, EOS id)."""
    tok = train_tokenizer(seed=seed)
    vocab_size = tok.get_vocab_size(with_added_tokens=True)
    eos_id = tok.token_to_id(EOS_TOKEN)
    tok.save(str(out / "tokenizer.json"))
    special_map = {"eos_token": EOS_TOKEN, "pad_token": EOS_TOKEN, "unk_token": EOS_TOKEN}
    _write_json(out / "special_tokens_map.json", special_map)
    _write_json(
        out / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **special_map,
            "bos_token": None,
            "add_bos_token": False,
            "add_eos_token": False,
            "model_max_length": TINY_SHAPE["max_position_embeddings"],
            "clean_up_tokenization_spaces": False,
            "chat_template": CHAT_TEMPLATE,
            "additional_special_tokens": SPECIAL_TOKENS[1:],
        },
    )
    return vocab_size, eos_id


def _write_generation_config(out: Path, eos_id: int) -> None:
    _write_json(
        out / "generation_config.json",
        {"eos_token_id": eos_id, "pad_token_id": eos_id, "do_sample": True, "temperature": 0.5, "top_p": 0.9},
    )


def _save_weights(out: Path, weights: dict[str, Any], dtype: str) -> None:
    import torch
    from safetensors.torch import save_file

    torch_dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32, "float16": torch.float16}[dtype]
    save_file({k: t.to(torch_dtype).contiguous() for k, t in weights.items()}, str(out / "model.safetensors"),
              metadata={"format": "pt"})
    (out / "model.safetensors").chmod(0o644)


# -- Ling 2.5 with an MTP layer (speculative decoding) -----------------------------------------------------

# Shape of the tiny ``BailingMoeV2_5ForCausalLM`` with one multi-token-prediction layer (vLLM's
# ``BailingMoeV25MTPModel`` drafts with it). Why these values on vLLM's CPU build:
# * layer_group_size 1 and layer_types all "full_attention": every layer is MLA attention (Ling 2.5 puts
#   linear attention in the others, which needs a state backend the CPU build lacks), and vLLM then treats
#   the model as non-hybrid; as a hybrid, MLA forces a 128-token KV block that CPU_MLA rejects (16 only).
# * kv_lora_rank 512 + qk_rope_head_dim 64: the CPU MLA decode kernel only supports a 576-wide latent.
# vLLM's CPU rotary kernel mis-rotates MLA's strided q/k views; the vLLM engine runs MLA models with the
# torch rotary instead (synth/engine_vllm.py, _native_rotary).
MTP_SHAPE: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "moe_intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "num_experts": 4,
    "num_experts_per_tok": 2,
    "num_shared_experts": 1,
    "first_k_dense_replace": 1,
    "layer_group_size": 1,
    "q_lora_rank": None,
    "kv_lora_rank": 512,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 64,
    "v_head_dim": 32,
    "num_nextn_predict_layers": 1,
    "max_position_embeddings": 2048,
}
MTP_MODEL_INFO = {"name": "tiny random-weight Ling 2.5 with MTP (BailingMoeV2_5ForCausalLM)", "test_model": True,
                  "kind": "random", "note": "random weights: meaningless text, for speculative decoding tests only"}
# Layer outputs are scaled down so the residual stream is mostly the token embedding: the next token is then
# mostly a function of the current one, which the MTP layer (fed the next token's embedding) also computes.
# Its drafts are then often, not always, accepted, so a test exercises both the accept and the reject path.
MTP_LAYER_SCALE = 0.25

MTP_CONFIGURATION_SOURCE = '''\
"""Bailing hybrid (Ling 2.5) configuration, written by ling-curate's tiny-model builder.

transformers has no built-in ``bailing_hybrid``; vLLM reads the fields below by their Ling names.
"""

from transformers import PretrainedConfig


class BailingHybridConfig(PretrainedConfig):
    model_type = "bailing_hybrid"

    def __init__(self, tie_word_embeddings=False, **kwargs):
        super().__init__(tie_word_embeddings=tie_word_embeddings, **kwargs)
'''


def mtp_config(vocab_size: int, eos_id: int, dtype: str = "bfloat16") -> dict[str, Any]:
    """config.json of the MTP model: Ling 2.5's keys (MLA, MoE, MTP layer count) with the tiny shape."""
    return {
        "architectures": ["BailingMoeV2_5ForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_bailing_hybrid.BailingHybridConfig"},
        "model_type": "bailing_hybrid",
        "vocab_size": vocab_size,
        **MTP_SHAPE,
        "layer_types": ["full_attention"] * MTP_SHAPE["num_hidden_layers"],
        "hidden_act": "silu",
        "norm_topk_prob": True,
        "use_bias": False,
        "use_qkv_bias": False,
        "rms_norm_eps": 1e-06,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "eos_token_id": eos_id,
        "pad_token_id": eos_id,
        "torch_dtype": dtype,
    }


def _mtp_weights(cfg: dict[str, Any], seed: int) -> dict[str, Any]:
    """HF-layout tensor names that vLLM's ``bailing_moe_linear.py`` (layers 0..n-1) and
    ``bailing_moe_mtp.py`` (layer n: enorm, hnorm, eh_proj, final_layernorm) load."""
    import torch

    g = torch.Generator().manual_seed(seed)
    h, v, n = cfg["hidden_size"], cfg["vocab_size"], cfg["num_hidden_layers"]
    heads, vd = cfg["num_attention_heads"], cfg["v_head_dim"]
    nope, rope = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"]
    rank, experts = cfg["kv_lora_rank"], cfg["num_experts"]

    def lin(out_f: int, in_f: int, scale: float = 1.0) -> torch.Tensor:
        return torch.randn(out_f, in_f, generator=g) * (scale / in_f**0.5)

    def norm(dim: int) -> torch.Tensor:
        return 1.0 + 0.1 * torch.randn(dim, generator=g)

    def mlp(prefix: str, inter: int) -> dict[str, torch.Tensor]:
        return {f"{prefix}.gate_proj.weight": lin(inter, h), f"{prefix}.up_proj.weight": lin(inter, h),
                f"{prefix}.down_proj.weight": lin(h, inter, MTP_LAYER_SCALE)}

    def block(i: int, moe: bool) -> dict[str, torch.Tensor]:
        p = f"model.layers.{i}"
        w = {f"{p}.input_layernorm.weight": norm(h), f"{p}.post_attention_layernorm.weight": norm(h),
             f"{p}.attention.q_proj.weight": lin(heads * (nope + rope), h),
             f"{p}.attention.kv_a_proj_with_mqa.weight": lin(rank + rope, h),
             f"{p}.attention.kv_a_layernorm.weight": norm(rank),
             f"{p}.attention.kv_b_proj.weight": lin(heads * (nope + vd), rank),
             f"{p}.attention.dense.weight": lin(h, heads * vd, MTP_LAYER_SCALE)}
        if not moe:
            w.update(mlp(f"{p}.mlp", cfg["intermediate_size"]))
            return w
        w[f"{p}.mlp.gate.weight"] = lin(experts, h) * 4.0  # peaked routing
        for e in range(experts):
            w.update(mlp(f"{p}.mlp.experts.{e}", cfg["moe_intermediate_size"]))
        w.update(mlp(f"{p}.mlp.shared_experts", cfg["moe_intermediate_size"] * cfg["num_shared_experts"]))
        return w

    w: dict[str, torch.Tensor] = {"model.word_embeddings.weight": torch.randn(v, h, generator=g)}
    for i in range(n):
        w.update(block(i, i >= cfg["first_k_dense_replace"]))
    w["model.norm.weight"] = norm(h)
    w["lm_head.weight"] = lin(v, h) * 3.0
    # the MTP layer (always MoE): its eh_proj passes the next token's normed embedding through and adds a
    # little of the main model's hidden state; it shares the main lm_head (loaded from lm_head.weight)
    p = f"model.layers.{n}"
    w.update(block(n, True))
    eh = torch.zeros(h, 2 * h)
    eh[:, :h] = torch.eye(h)
    eh[:, h:] = lin(h, h, MTP_LAYER_SCALE)
    w[f"{p}.eh_proj.weight"] = eh
    w[f"{p}.enorm.weight"], w[f"{p}.hnorm.weight"], w[f"{p}.final_layernorm.weight"] = norm(h), norm(h), norm(h)
    w["model.word_embeddings.weight"][:, 0] = EOS_CARRIER  # outputs end on their own (see _random_weights)
    w["lm_head.weight"][cfg["eos_token_id"], 0] = EOS_BIAS
    return w


def build_tiny_mtp_model(out_dir: str | Path, seed: int = 0, dtype: str = "bfloat16") -> Path:
    """Write a tiny Ling 2.5 (``BailingMoeV2_5ForCausalLM``) checkpoint with one MTP layer into ``out_dir``.

    Same tokenizer as `build_tiny_model`. vLLM runs it with
    ``speculative_config={"method": "mtp", "num_speculative_tokens": k}`` (and ``trust_remote_code``).
    """
    out, cfg = _write_common_files(out_dir, seed, dtype, mtp_config, MTP_MODEL_INFO)
    (out / "configuration_bailing_hybrid.py").write_text(MTP_CONFIGURATION_SOURCE)
    _save_weights(out, _mtp_weights(cfg, seed), dtype)
    return out


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    """``python -m synth.tiny_model DIR [--seed S] [--dtype D]`` (the CLI's ``curate tiny-model``)."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32", "float16"])
    ap.add_argument("--mtp", action="store_true", help="Ling 2.5 with an MTP layer (speculative decoding)")
    args = ap.parse_args(argv)
    build = build_tiny_mtp_model if args.mtp else build_tiny_model
    path = build(args.out_dir, seed=args.seed, dtype=args.dtype)
    size = sum(f.stat().st_size for f in path.iterdir())
    print(f"wrote {path} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
