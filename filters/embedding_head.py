"""A quality head on sentence embeddings: L2-regularized logistic regression, fitted with Newton steps.

The FineWeb-Edu recipe: an LLM scores a sample, a small model on sentence embeddings learns the
score for the whole corpus. fastText sees bags of words; a head on embeddings sees meaning. The head
is 385 numbers (weights + bias) in a JSON file that also names the embedding model and its settings
(checkpoint, weights hash, window, quantization), so `quality_classifier` embeds exactly as the
training did and refuses a file whose model weights differ.

Fitting: Newton's method on the (dim+1)-parameter log-likelihood with an L2 penalty (the Hessian is
385 x 385: a few exact steps converge), classes weighted equally (no documents dropped, unlike
downsampling). The held-out split is fastText training's own (`filters.fasttext_classifier`), so the
two models are compared on the same documents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.io import write_json

HEAD_FORMAT = "ling-curate/embedding-head/1"


@dataclass
class EmbeddingHead:
    weights: np.ndarray  # (dim,)
    bias: float
    positive_label: str
    embedding: dict[str, Any]  # model (path or null = the wheel's), weights digest, max_tokens, quantize

    def predict_proba(self, vectors: np.ndarray) -> np.ndarray:
        return _sigmoid(vectors.astype(np.float64) @ self.weights + self.bias).astype(np.float32)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iterations: int = 25) -> tuple[np.ndarray, float]:
    """Weights and bias minimizing class-balanced log loss + l2/2 |w|^2 (bias not penalized)."""
    n, d = x.shape
    pos = max(1, int(y.sum()))
    neg = max(1, n - pos)
    sample_w = np.where(y, n / (2.0 * pos), n / (2.0 * neg))
    xb = np.hstack([x.astype(np.float64), np.ones((n, 1))])
    theta = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = _sigmoid(xb @ theta)
        grad = xb.T @ (sample_w * (p - y)) + penalty * theta
        hess = (xb * (sample_w * p * (1 - p))[:, None]).T @ xb + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def save_head(head: EmbeddingHead, path: str | Path, report: dict[str, Any]) -> None:
    write_json({"format": HEAD_FORMAT, "kind": "logistic", "positive_label": head.positive_label,
                "embedding": head.embedding, "bias": head.bias, "weights": [float(w) for w in head.weights],
                "report": report}, path)


def is_head_file(path: str | Path) -> bool:
    p = Path(path)
    if p.suffix != ".json" or not p.is_file():
        return False
    try:
        return json.loads(p.read_text()).get("format") == HEAD_FORMAT
    except (ValueError, AttributeError):
        return False


def load_head(path: str | Path) -> EmbeddingHead:
    data = json.loads(Path(path).read_text())
    if data.get("format") != HEAD_FORMAT:
        raise ValueError(f"{path}: not an embedding head file (format {data.get('format')!r})")
    return EmbeddingHead(np.asarray(data["weights"], dtype=np.float64), float(data["bias"]),
                         str(data["positive_label"]), dict(data["embedding"]))


def head_embedder(head: EmbeddingHead, threads: int | None = None) -> Any:
    """The embedder the head was trained with; a checkpoint whose weights changed is refused."""
    from filters.embedding import Embedder

    e = head.embedding
    emb = Embedder(e.get("model"), max_tokens=int(e["max_tokens"]), quantize=bool(e["quantize"]), threads=threads)
    digest = emb.describe()["weights"]
    if e.get("weights") and digest != e["weights"]:
        raise ValueError(f"embedding model {emb.checkpoint} has other weights ({digest}) than the head was trained "
                         f"with ({e['weights']})")
    return emb


def train_head(examples: list[tuple[str, str]], output: str | Path, params: Any, positive: str,
               model: str | None = None, max_tokens: int = 256, quantize: bool = True,
               compare_fasttext: bool = True) -> dict[str, Any]:
    """Embed, fit, evaluate on fastText's held-out split (beside a constant predictor and, when asked, the
    fastText model trained on the same split), write the head file; returns its report."""
    import tempfile

    from filters.embedding import Embedder
    from filters.fasttext_classifier import _split, binary_metrics, train_classifier

    train, hold = _split(examples, params)
    emb = Embedder(model, max_tokens=max_tokens, quantize=quantize)
    x = emb.encode([t for t, _ in train])
    y = np.array([lab == positive for _, lab in train], dtype=bool)
    if y.all() or not y.any():
        raise ValueError(f"the training split has one class only ({int(y.sum())} positive of {len(y)})")
    weights, bias = fit_logistic(x, y.astype(np.float64))
    desc = emb.describe()
    head = EmbeddingHead(weights, bias, positive, {"model": model, "name": desc["model"], "weights": desc["weights"],
                                                   "max_tokens": max_tokens, "quantize": quantize,
                                                   "dim": desc["dim"]})
    report: dict[str, Any] = {"train_examples": len(train), "holdout_examples": len(hold),
                              "train_positives": int(y.sum())}
    if hold:
        truth = np.array([lab == positive for _, lab in hold], dtype=bool)
        report["holdout"] = binary_metrics(truth, head.predict_proba(emb.encode([t for t, _ in hold])))
        majority = bool(truth.mean() >= 0.5)
        report["constant_predictor"] = {"predicts": positive if majority else "negative",
                                        "accuracy": round(float(np.mean(truth == majority)), 4), "auc": 0.5}
        if compare_fasttext:
            with tempfile.TemporaryDirectory() as tmp:
                ft = train_classifier(examples, Path(tmp) / "fasttext.bin", params, positive)
                report["fasttext_holdout"] = ft.report.get("holdout", {})
    save_head(head, output, report)
    return report
