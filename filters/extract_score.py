"""Shingle precision/recall of extracted text against human-made main text.

The scoring of the Zyte article-extraction benchmark (described in
`../shared/data/article-extraction/README.md`; written here from that description): both texts are
split into word tokens, every run of 4 consecutive tokens is a shingle, and per page the shared,
extra and missing shingle counts are normalized by their sum, so a long page weighs no more than a
short one. Precision and recall are averaged over pages; F1 is taken of the two averages.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

_WORD = re.compile(r"\w+", re.UNICODE)
SHINGLE = 4


class PageScore(NamedTuple):
    precision: float
    recall: float


def shingles(text: str, n: int = SHINGLE) -> Counter[tuple[str, ...]]:
    """Counts of every run of `n` consecutive lowercased word tokens (a shorter text: one shingle of all)."""
    tokens = _WORD.findall((text or "").lower())
    if len(tokens) < n:
        return Counter([tuple(tokens)]) if tokens else Counter()
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def page_score(truth: str, predicted: str) -> PageScore:
    """Precision and recall of one page; nothing predicted and nothing true counts as perfect."""
    t, p = shingles(truth), shingles(predicted)
    tp = sum((t & p).values())
    fp = sum(p.values()) - tp
    fn = sum(t.values()) - tp
    total = tp + fp + fn
    if total == 0:
        return PageScore(1.0, 1.0)
    tp, fp, fn = tp / total, fp / total, fn / total
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else 1.0
    return PageScore(precision, recall)


def corpus_score(pairs: Iterable[tuple[str, str]]) -> dict[str, float]:
    """Mean precision and recall over (truth, predicted) pages and the F1 of the two means."""
    scores = [page_score(t, p) for t, p in pairs]
    if not scores:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "pages": 0}
    precision = sum(s.precision for s in scores) / len(scores)
    recall = sum(s.recall for s in scores) / len(scores)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4), "pages": len(scores)}


_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def snippet_counts(with_: list[str], without: list[str], predicted: str | None) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of one page annotated with snippets its main text must and must not contain.

    The scoring of Trafilatura's evaluation set (whitespace-normalized substring tests): a `with`
    snippet found is a true positive, a `without` snippet found a false positive."""
    text = _norm(predicted or "")
    tp = sum(1 for s in with_ if _norm(s) in text)
    fp = sum(1 for s in without if _norm(s) in text)
    return tp, fp, len(with_) - tp, len(without) - fp


def snippet_score(counts: Iterable[tuple[int, int, int, int]]) -> dict[str, float]:
    """Precision, recall and F over all snippets of all pages."""
    tp = fp = fn = tn = pages = 0
    for a, b, c, d in counts:
        tp, fp, fn, tn, pages = tp + a, fp + b, fn + c, tn + d, pages + 1
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f, 4), "pages": pages}
