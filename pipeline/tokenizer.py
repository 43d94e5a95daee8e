"""Loading a Hugging Face tokenizer (Rust `tokenizers` backend) and its end-of-document token.

Ling's tokenizers add no BOS/EOS, so training shards append an end-of-document token per document
themselves: it is named by the setting `eod_token`, else the tokenizer's own `eos_token`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import ConfigError

FALLBACK_EOD = ("<|endoftext|>", "</s>", "<eos>", "<|end_of_text|>")


@dataclass
class LoadedTokenizer:
    tokenizer: Any
    eod_id: int
    vocab_size: int
    path: Path

    def encode(self, texts: list[str], append_eod: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Batch-encode; returns (flat int64 token ids, per-document lengths)."""
        encodings = self.tokenizer.encode_batch_fast(texts, add_special_tokens=False) \
            if hasattr(self.tokenizer, "encode_batch_fast") else \
            self.tokenizer.encode_batch(texts, add_special_tokens=False)
        pieces = [np.asarray(e.ids, dtype=np.int64) for e in encodings]
        if append_eod:
            eod = np.array([self.eod_id], dtype=np.int64)
            pieces = [np.concatenate([p, eod]) for p in pieces]
        lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
        flat = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
        return flat, lengths


def _tokenizer_file(path: Path) -> Path:
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise ConfigError([f"{path}: tokenizer.json not found"])
    return path


def load_tokenizer(path: str | Path, eod_token: str | None = None) -> LoadedTokenizer:
    from tokenizers import Tokenizer

    file = _tokenizer_file(Path(path))
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as exc:  # the Rust side raises plain Exception
        raise ConfigError([f"{file}: not a readable tokenizer ({exc})"]) from None
    candidates: list[str] = [eod_token] if eod_token else []
    config_file = file.parent / "tokenizer_config.json"
    if not eod_token and config_file.is_file():
        eos = json.loads(config_file.read_text(encoding="utf-8")).get("eos_token")
        if isinstance(eos, dict):
            eos = eos.get("content")
        if isinstance(eos, str):
            candidates.append(eos)
    if not eod_token:
        candidates.extend(FALLBACK_EOD)
    for token in candidates:
        token_id = tok.token_to_id(token)
        if token_id is not None:
            return LoadedTokenizer(tok, int(token_id), int(tok.get_vocab_size(with_added_tokens=True)), file)
    raise ConfigError([f"{file}: end-of-document token {candidates[0]!r} is not in the vocabulary; set eod_token"])


def tokenizer_fingerprint(path: str | Path) -> dict[str, Any]:
    from pipeline.io import sha256_file

    file = _tokenizer_file(Path(path))
    return {"tokenizer_sha256": sha256_file(file)}
