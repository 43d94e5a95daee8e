"""fastText text classifiers: training (the DCLM recipe by default), loading with clear errors,
and batched scoring.

Training and scoring share `prepare_lines`, so a model sees the same text form at both times:
one line per document, whitespace folded, lower-cased, Han characters split into single-character
tokens (fastText splits on spaces only; with word bigrams this gives character bigrams for Chinese),
and, with `split_punct` (the default for new models), punctuation marks split from words as the
fastText papers preprocess ("end." is "end ."; otherwise "end." and "end" are different words).
Training records its preprocessing in the model's report (`MODEL.bin.report.json`, "preprocess");
scoring reads it from there (`model_preprocessing`), so a model is always scored as it was trained.
A model without that record (older, or downloaded) is scored without the punctuation split.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import random
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import ConfigError
from pipeline.io import atomic_path, sha256_file, write_json

LABEL_PREFIX = "__label__"


class ModelError(ConfigError):
    """A model file that is missing, unreadable or of the wrong kind: one line naming the file."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__([f"{path}: {problem}"])


def prepare_lines(texts: pa.Array | pa.ChunkedArray, max_chars: int | None = None, split_punct: bool = False
                  ) -> list[str]:
    """Documents -> fastText input lines (vectorized with Arrow compute)."""
    if isinstance(texts, pa.ChunkedArray):
        texts = texts.combine_chunks()
    texts = pc.fill_null(texts, "")
    if max_chars:
        texts = pc.utf8_slice_codeunits(texts, 0, max_chars)
    texts = pc.utf8_lower(texts)
    texts = pc.replace_substring_regex(texts, r"([\x{3400}-\x{4dbf}\x{4e00}-\x{9fff}\x{f900}-\x{faff}])", r" \1 ")
    if split_punct:
        texts = pc.replace_substring_regex(texts, r"(\p{P})", r" \1 ")
    texts = pc.replace_substring_regex(texts, r"\s+", " ")
    return pc.utf8_trim_whitespace(texts).to_pylist()


@dataclass
class TrainParams:
    """fastText supervised settings; defaults are the DCLM quality-classifier recipe."""

    lr: float = 0.1
    dim: int = 100
    epoch: int = 5
    word_ngrams: int = 2
    min_count: int = 1
    ws: int = 5
    max_chars: int | None = 20000
    holdout: float = 0.1
    balance: bool = True
    seed: int = 0
    split_punct: bool = True  # punctuation split from words (recorded in the report; scoring follows it)


@dataclass
class TrainResult:
    model_path: Path
    report: dict[str, Any] = field(default_factory=dict)


def load_model(path: str | Path) -> Any:
    """Load a fastText model; a missing or corrupt file raises ModelError naming it."""
    import fasttext

    p = Path(path)
    if not p.is_file():
        raise ModelError(p, "model file not found (train one with `curate train`)")
    try:
        model = fasttext.load_model(str(p))
    except (ValueError, RuntimeError, MemoryError) as exc:
        raise ModelError(p, f"not a readable fastText model ({str(exc).strip() or type(exc).__name__})") from None
    if not model.is_quantized() and model.get_dimension() <= 0:
        raise ModelError(p, "fastText model has no dimensions")
    return model


def model_preprocessing(path: str | Path) -> dict[str, bool]:
    """`prepare_lines` options the model was trained with, from its report (none recorded: no punctuation split)."""
    report = Path(str(path) + ".report.json")
    recorded: dict[str, Any] = {}
    if report.is_file():
        try:
            recorded = json.loads(report.read_text(encoding="utf-8")).get("preprocess") or {}
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
            raise ModelError(report, f"unreadable model report ({exc})") from None
    return {"split_punct": bool(recorded.get("split_punct", False))}


def model_labels(model: Any) -> list[str]:
    return [label.removeprefix(LABEL_PREFIX) for label in model.get_labels()]


def check_quality_model(path: str | Path, positive_label: str) -> Any:
    model = load_model(path)
    labels = model_labels(model)
    if positive_label not in labels:
        shown = ", ".join(labels[:6]) + (", ..." if len(labels) > 6 else "")
        raise ModelError(path, f"labels ({shown}) do not include the positive label '{positive_label}': "
                               "not a quality classifier, or set positive_label")
    return model


def check_domain_model(path: str | Path) -> Any:
    model = load_model(path)
    if len(model_labels(model)) < 2:
        raise ModelError(path, "a domain classifier needs at least two labels")
    return model


def predict_proba(model: Any, lines: Sequence[str], label: str) -> np.ndarray:
    """P(label) per line, one fastText call for the whole batch."""
    if not lines:
        return np.zeros(0, dtype=np.float32)
    labels, probs = model.predict(list(lines), k=-1, threshold=0.0)
    target = LABEL_PREFIX + label
    out = np.zeros(len(lines), dtype=np.float32)
    for i, (ls, ps) in enumerate(zip(labels, probs, strict=True)):
        for lab, prob in zip(ls, ps, strict=True):
            if lab == target:
                out[i] = min(float(prob), 1.0)
                break
    return out


def predict_top(model: Any, lines: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Top label and its probability per line, one fastText call for the whole batch."""
    if not lines:
        return [], np.zeros(0, dtype=np.float32)
    labels, probs = model.predict(list(lines), k=1)
    names = [ls[0].removeprefix(LABEL_PREFIX) if len(ls) else "" for ls in labels]
    scores = np.array([min(float(ps[0]), 1.0) if len(ps) else 0.0 for ps in probs], dtype=np.float32)
    return names, scores


# -- training ------------------------------------------------------------------------------------
def _split(examples: list[tuple[str, str]], params: TrainParams) -> tuple[list, list]:
    rng = random.Random(params.seed)
    order = list(range(len(examples)))
    rng.shuffle(order)
    n_hold = int(round(len(examples) * params.holdout)) if params.holdout > 0 else 0
    hold = [examples[i] for i in order[:n_hold]]
    train = [examples[i] for i in order[n_hold:]]
    return train, hold


def _balance(examples: list[tuple[str, str]], seed: int) -> list[tuple[str, str]]:
    """Downsample every class to the smallest class's size (DCLM trains on balanced classes)."""
    by_label: dict[str, list[tuple[str, str]]] = {}
    for ex in examples:
        by_label.setdefault(ex[1], []).append(ex)
    n = min(len(v) for v in by_label.values())
    rng = random.Random(seed)
    out = []
    for label in sorted(by_label):
        items = by_label[label]
        out.extend(items if len(items) == n else rng.sample(items, n))
    rng.shuffle(out)
    return out


M_PERTURB = -6  # glibc mallopt parameter


@contextmanager
def zero_filled_allocations() -> Iterator[None]:
    """Have glibc hand out zero-filled memory while fastText trains.

    fasttext-numpy2-wheel stores matrices in a `posix_memalign` buffer that is never cleared, and
    fastText's initialisation with one thread randomises only the first tenth of the input matrix
    (upstream relies on `std::vector` zeroing the rest). Small models (unigrams: no hash buckets)
    then start from whatever the heap held before: NaN, or a model that depends on what ran
    earlier in the process. glibc's M_PERTURB fills each allocation with the complement of the
    byte given, so 0xFF gives upstream's zeros and the model depends on its inputs only. Without
    glibc this does nothing (large matrices come from fresh, zeroed pages either way).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        yield
        return
    mallopt(M_PERTURB, 0xFF)
    try:
        yield
    finally:
        mallopt(M_PERTURB, 0)


def train_classifier(examples: list[tuple[str, str]], output: str | Path, params: TrainParams,
                     positive_label: str | None = None) -> TrainResult:
    """Train on (text, label) pairs; evaluate on a held-out split; write model + report atomically."""
    import fasttext

    labels = sorted({label for _, label in examples})
    if len(labels) < 2:
        raise ConfigError([f"training data has {len(labels)} label(s) ({', '.join(labels)}): need at least two"])
    train, hold = _split(examples, params)
    if params.balance:
        train = _balance(train, params.seed)
    lines = prepare_lines(pa.array([t for t, _ in train], pa.string()), params.max_chars, params.split_punct)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output.parent) as tmp:
        train_file = Path(tmp) / "train.txt"
        with open(train_file, "w", encoding="utf-8") as fh:
            for line, (_, label) in zip(lines, train, strict=True):
                fh.write(f"{LABEL_PREFIX}{label} {line}\n")
        lr = params.lr
        for attempt in range(4):  # a too-high lr can make fastText's SGD diverge: halve it, retry
            try:
                with zero_filled_allocations():
                    model = fasttext.train_supervised(
                        input=str(train_file), lr=lr, dim=params.dim, epoch=params.epoch,
                        wordNgrams=params.word_ngrams, minCount=params.min_count, ws=params.ws, thread=1,
                        seed=params.seed, verbose=0)
                break
            except RuntimeError as exc:
                if "NaN" not in str(exc) or attempt == 3:
                    raise
                lr /= 2
    with atomic_path(output) as tmp_model:
        model.save_model(str(tmp_model))
    report: dict[str, Any] = {"model": str(output), "labels": labels, "train_examples": len(train),
                              "holdout_examples": len(hold), "params": params.__dict__, "lr_used": lr,
                              "preprocess": {"lowercase": True, "split_punct": params.split_punct},
                              "sha256": sha256_file(output)}
    if hold:
        hold_lines = prepare_lines(pa.array([t for t, _ in hold], pa.string()), params.max_chars, params.split_punct)
        truth = [label for _, label in hold]
        if positive_label is not None:
            scores = predict_proba(model, hold_lines, positive_label)
            report["holdout"] = binary_metrics(np.array([t == positive_label for t in truth]), scores)
            report["positive_label"] = positive_label
        else:
            predicted, _ = predict_top(model, hold_lines)
            report["holdout"] = multiclass_metrics(truth, predicted, labels)
    write_json(report, Path(str(output) + ".report.json"))
    return TrainResult(output, report)


def binary_metrics(truth: np.ndarray, scores: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    pred = scores >= threshold
    tp = int(np.sum(pred & truth))
    fp = int(np.sum(pred & ~truth))
    fn = int(np.sum(~pred & truth))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = float(np.mean(pred == truth)) if len(truth) else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "accuracy": round(accuracy, 4), "auc": round(auc(truth, scores), 4), "n": int(len(truth)),
            "positives": int(truth.sum())}


def auc(truth: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney statistic (ties count half)."""
    import pandas as pd

    pos, neg = scores[truth], scores[~truth]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = pd.Series(np.concatenate([pos, neg])).rank(method="average").to_numpy()
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def multiclass_metrics(truth: list[str], predicted: list[str], labels: list[str]) -> dict[str, Any]:
    per_class = {}
    f1s = []
    for label in labels:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted, strict=True))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted, strict=True))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class[label] = {"precision": round(prec, 4), "recall": round(rec, 4), "f1": round(f1, 4)}
        f1s.append(f1)
    accuracy = sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(truth)
    return {"accuracy": round(accuracy, 4), "macro_f1": round(float(np.mean(f1s)), 4), "n": len(truth),
            "per_class": per_class}


def read_examples(path: str | Path, text_field: str, label_field: str | None, label: str | None = None
                  ) -> list[tuple[str, str]]:
    """(text, label) pairs from JSONL; bad lines are errors naming file, line and field."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError([f"{p}: training file not found"])
    out: list[tuple[str, str]] = []
    problems: list[str] = []
    with open(p, "rb") as fh:
        for n, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                problems.append(f"{p}:{n}: invalid JSON ({exc})")
                continue
            text = record.get(text_field) if isinstance(record, dict) else None
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{p}:{n}: field '{text_field}' missing or not a non-empty string")
                continue
            value = label if label is not None else (record.get(label_field) if label_field else None)
            if value is None or (isinstance(value, str) and not value.strip()):
                problems.append(f"{p}:{n}: field '{label_field}' missing")
                continue
            out.append((text, str(value).strip().replace(" ", "_")))
    if problems:
        raise ConfigError(problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else []))
    return out


def file_fingerprint(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    st = os.stat(p)
    return {"path": str(p), "size": st.st_size, "sha256": sha256_file(p)}
