"""The `blocks` extraction method: keep the text blocks a small learned model calls main content.

`filters.html_blocks` splits a page into blocks and describes each one. Two logistic regressions
(weights in `extract_blocks_model.json`, trained by `bench/train_extract_blocks.py` on real pages
with human-made main text; how and on what is written in the file) score every block: the first
from the block's own description, the second adds what the first said about its neighbours and its
container (main text comes in runs; a lone "article-like" line among menus rarely is). Blocks whose
second score reaches the model's threshold are the page's text, one block per paragraph.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from filters.html_blocks import FEATURE_NAMES, FORMULA_CLOSE, FORMULA_OPEN, Blocks, features, segment

MODEL_PATH = Path(__file__).with_name("extract_blocks_model.json")
CONTEXT_NAMES = ["p1", "p1_prev", "p1_next", "p1_window_mean", "p1_window_max", "p1_container_mean",
                 "p1_page_mean", "p1_of_page_max", "p1_page_rank"]
WINDOW = 3


def logistic(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """One regression on standardized inputs, as trained (`BlockModel` folds the standardization in)."""
    return _sigmoid(((x - mean) / scale) @ weights)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def context_features(blocks: Blocks, p1: np.ndarray) -> np.ndarray:
    """What the first pass said around each block: neighbours, a +-WINDOW run, its container, the page."""
    n = len(p1)
    if n == 0:
        return np.zeros((0, len(CONTEXT_NAMES)), dtype=np.float32)
    pad = np.concatenate([np.zeros(WINDOW), p1, np.zeros(WINDOW)])
    windows = np.lib.stride_tricks.sliding_window_view(pad, 2 * WINDOW + 1)
    cont = blocks.container
    container = np.bincount(cont, weights=p1)[cont] / np.bincount(cont)[cont]
    prev = np.concatenate([[0.0], p1[:-1]])
    nxt = np.concatenate([p1[1:], [0.0]])
    rank = np.empty(n)
    rank[np.argsort(-p1, kind="stable")] = np.arange(n) / max(n - 1, 1)
    return np.column_stack([p1, prev, nxt, windows.mean(axis=1), windows.max(axis=1), container,
                            np.full(n, p1.mean()), p1 / max(float(p1.max()), 1e-6), rank]).astype(np.float32)


class BlockModel:
    """Two logistic regressions (standardized inputs) and the keep threshold on the second."""

    def __init__(self, spec: dict[str, Any]) -> None:
        if list(spec["features"]) != FEATURE_NAMES or list(spec["context_features"]) != CONTEXT_NAMES:
            raise ValueError(f"{MODEL_PATH.name}: feature list differs from the code (retrain the model)")
        self.stages = [tuple(np.asarray(s[k], dtype=np.float32) for k in ("mean", "scale", "weights"))
                       for s in spec["stages"]]
        self.threshold = float(spec["threshold"])
        self.spec = spec
        # the standardization folded into each regression: z = x @ coef + intercept (one product, no copies)
        self.linear = [((w / sd).astype(np.float32), float(-(mu / sd) @ w)) for mu, sd, w in self.stages]

    def probabilities(self, blocks: Blocks, x: np.ndarray) -> np.ndarray:
        (c1, b1), (c2, b2) = self.linear
        p1 = _sigmoid(x @ c1 + b1)
        k = x.shape[1]
        return _sigmoid(x @ c2[:k] + context_features(blocks, p1) @ c2[k:] + b2)


@cache
def default_model() -> BlockModel:
    return BlockModel(json.loads(MODEL_PATH.read_text(encoding="utf-8")))


def select(blocks: Blocks, model: BlockModel) -> list[str]:
    """The texts of the blocks the model keeps, in page order."""
    if not len(blocks):
        return []
    keep = model.probabilities(blocks, features(blocks)) >= model.threshold
    attach_to_neighbours(blocks, keep)
    return [t for t, k in zip(blocks.texts, keep.tolist(), strict=True) if k]


def attached(blocks: Blocks) -> np.ndarray:
    """Code blocks and formula-only blocks: short or unlike prose, they belong to the text around them."""
    return blocks.code | np.array([t[0] == FORMULA_OPEN and t[-1] == FORMULA_CLOSE for t in blocks.texts], dtype=bool)


def attach_to_neighbours(blocks: Blocks, keep: np.ndarray) -> None:
    """Keep a code or formula block (and runs of them) when the prose just before or after it is kept."""
    att = attached(blocks)
    if not att.any():
        return
    n = len(att)
    for i, j in _runs(att):
        if (i > 0 and keep[i - 1]) or (j < n and keep[j]):
            keep[i:j] = True


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of every run of True in `mask`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def blocks_text(html: str | bytes, model: BlockModel | None = None) -> str:
    """The page's main text, formulas still inside FORMULA_OPEN/FORMULA_CLOSE marks (see `strip_marks`)."""
    return "\n".join(select(segment(html), model or default_model()))


def strip_marks(text: str) -> str:
    return text.replace(FORMULA_OPEN, "").replace(FORMULA_CLOSE, "")
