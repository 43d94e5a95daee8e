"""Embedding throughput and agreement: the `embed` stage's model path against plain PyTorch.

Texts: real article bodies (`../shared/data/article-extraction`, 181 pages, MIT) repeated to
`--docs`, or any JSONL with a `text` field (`--jsonl`). Variants, measured in interleaved rounds so
machine load hits them alike (the medians count):

* `torch_fp32_256`: the baseline, what sentence-transformers runs: transformers' BertModel in
  float32, first 256 tokens, length-sorted batches of 32, mean pooling, torch threads = cores.
* `onnx_fp32_256`, `onnx_int8_256`, `onnx_int8_128`, `onnx_int8_64`: `filters.embedding.Embedder`
  (ONNX Runtime, one call per document on `cores` threads).

Also documents per CPU-second (all threads of the process): on a busy machine the rate a process would get
alone on its cores is about cores × that.

Agreement: mean and 5th-percentile cosine of each variant's vectors with the baseline's (the float
model on the 256-token window). Prints human lines, then one JSON line (docs_per_s is the stage's
default: onnx_int8_128).

    python bench/embed.py [--docs 400] [--rounds 3] [--jsonl FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from filters.embedding import Embedder, default_threads

ARTICLES = Path(__file__).resolve().parents[2] / "shared" / "data" / "article-extraction" / "ground-truth.json"


def load_texts(args: argparse.Namespace) -> list[str]:
    if args.jsonl:
        texts = [json.loads(line)["text"] for line in open(args.jsonl) if line.strip()]
    else:
        texts = [v["articleBody"] for v in json.loads(ARTICLES.read_text()).values()]
    out = []
    while len(out) < args.docs:
        out.extend(texts)
    return out[:args.docs]


class TorchBaseline:
    """sentence-transformers' computation without the package: BertModel fp32, batches of 32 sorted by length."""

    def __init__(self, checkpoint: Path, max_tokens: int, threads: int):
        import torch
        from tokenizers import Tokenizer
        from transformers import AutoModel

        torch.set_num_threads(threads)
        self.torch = torch
        self.model = AutoModel.from_pretrained(str(checkpoint)).eval()
        self.tok = Tokenizer.from_file(str(checkpoint / "tokenizer.json"))
        self.tok.enable_truncation(max_length=max_tokens)

    def encode(self, texts: list[str]) -> np.ndarray:
        torch = self.torch
        ids = [e.ids for e in self.tok.encode_batch(texts)]
        order = np.argsort([len(x) for x in ids])
        out = np.zeros((len(texts), self.model.config.hidden_size), np.float32)
        with torch.inference_mode():
            for s in range(0, len(order), 32):
                rows = order[s:s + 32]
                width = max(len(ids[i]) for i in rows)
                x = torch.zeros((len(rows), width), dtype=torch.long)
                m = torch.zeros_like(x)
                for j, i in enumerate(rows):
                    x[j, :len(ids[i])] = torch.tensor(ids[i])
                    m[j, :len(ids[i])] = 1
                h = self.model(input_ids=x, attention_mask=m).last_hidden_state
                v = (h * m[..., None]).sum(1) / m.sum(1, keepdim=True)
                out[rows] = torch.nn.functional.normalize(v, dim=1).numpy()
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jsonl", default=None)
    args = ap.parse_args()
    texts = load_texts(args)
    threads = default_threads()
    print(f"{len(texts)} documents, {threads} cores, load average {os.getloadavg()[0]:.2f}")
    variants = {
        "onnx_int8_128": Embedder(max_tokens=128, quantize=True, threads=threads),
        "onnx_int8_64": Embedder(max_tokens=64, quantize=True, threads=threads),
        "onnx_int8_256": Embedder(max_tokens=256, quantize=True, threads=threads),
        "onnx_fp32_256": Embedder(max_tokens=256, quantize=False, threads=threads),
    }
    baseline = TorchBaseline(variants["onnx_int8_128"].checkpoint, 256, threads)
    runs: dict[str, list[float]] = {name: [] for name in ["torch_fp32_256", *variants]}
    cpu: dict[str, list[float]] = {name: [] for name in runs}  # documents per CPU-second (all threads)
    vectors: dict[str, np.ndarray] = {}
    for r in range(args.rounds):
        for name in runs:
            enc = baseline.encode if name == "torch_fp32_256" else variants[name].encode
            t, c = time.perf_counter(), time.process_time()
            vectors[name] = enc(texts)
            runs[name].append(len(texts) / (time.perf_counter() - t))
            cpu[name].append(len(texts) / (time.process_time() - c))
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in runs.items()), flush=True)
    ref = vectors["torch_fp32_256"]
    result: dict[str, float | int | str] = {}
    for name, rates in runs.items():
        cos = (vectors[name] * ref).sum(axis=1)
        med = float(np.median(rates))
        ratio = med / float(np.median(runs["torch_fp32_256"]))
        per_cpu = float(np.median(cpu[name]))
        print(f"{name:16s} {med:7.1f} docs/s  {per_cpu:7.1f} docs/CPU-s  {ratio:4.2f}x baseline  "
              f"cosine to baseline mean {cos.mean():.4f} p5 {np.percentile(cos, 5):.4f}")
        result[f"{name}_docs_per_s"] = round(med, 1)
        result[f"{name}_docs_per_cpu_s"] = round(per_cpu, 1)
        result[f"ratio_vs_torch_fp32_256_{name}"] = round(ratio, 2)
        result[f"cosine_mean_{name}"] = round(float(cos.mean()), 4)
    result["docs_per_s"] = result["onnx_int8_128_docs_per_s"]
    result["ratio_vs_torch_fp32_256"] = result["ratio_vs_torch_fp32_256_onnx_int8_128"]
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["load_average"] = round(os.getloadavg()[0], 2)
    result["cores"] = threads
    print(json.dumps(result))


if __name__ == "__main__":
    main()
