"""Chunk documents by tokens for prompting: split on newlines, pack consecutive segments up to a budget.

Why this way (Nemotron-CC's recipe): a model rewrites a passage best when the passage is a coherent run of
the source and fits the prompt's input budget, so documents are cut at line boundaries and consecutive
lines are packed greedily; a line longer than the budget is cut at sentence ends, then at the whitespace
nearest its middle (recursively), so no chunk ever exceeds the budget. Packs below a minimum carry too
little to rewrite and are dropped.

Token counts come from a caller-supplied ``count`` function (the generating model's tokenizer), so the
budget means the same thing the engine will measure. Packing adds piece counts; every pack is then
recounted exactly and split again if the sum underestimated it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Count = Callable[[Sequence[str]], list[int]]

_SENTENCE_END = re.compile(r"(?<=[.!?;:。！？；])\s+")
_MAX_DEPTH = 40


@dataclass(frozen=True)
class Chunk:
    """One pack of a document: its text, its token count and its position among the document's packs."""

    index: int
    text: str
    tokens: int


def _halve(piece: str) -> tuple[str, str]:
    """Cut at the whitespace nearest the middle (or the middle itself); ``a + b == piece``."""
    mid = len(piece) // 2
    spaces = [m.end() for m in re.finditer(r"\s+", piece) if 0 < m.end() < len(piece)]
    cut = min(spaces, key=lambda i: abs(i - mid)) if spaces else max(1, mid)
    return piece[:cut], piece[cut:]


def _fit(piece: str, budget: int, count: Count, depth: int = 0) -> list[tuple[str, int]]:
    """``piece`` cut into parts of at most ``budget`` tokens, with their counts; concatenation is lossless."""
    n = count([piece])[0]
    if n <= budget or depth >= _MAX_DEPTH or len(piece) < 2:
        return [(piece, n)]
    a, b = _halve(piece)
    return _fit(a, budget, count, depth + 1) + _fit(b, budget, count, depth + 1)


def _pieces(text: str, budget: int, count: Count) -> list[tuple[str, str, int]]:
    """(separator before, text, tokens) for every line, lines over budget cut into sentences and halves."""
    lines = text.split("\n")
    counts = count(lines)
    out: list[tuple[str, str, int]] = []
    for line, n in zip(lines, counts, strict=True):
        if n <= budget:
            out.append(("\n", line, n))
            continue
        sentences = [s for s in _split_keep(line) if s]
        sep = "\n"
        for sentence, m in zip(sentences, count(sentences), strict=True):
            parts = [(sentence, m)] if m <= budget else _fit(sentence, budget, count)
            for part, k in parts:
                out.append((sep, part, k))
                sep = ""
    return out


def _split_keep(line: str) -> list[str]:
    """Sentences with their trailing whitespace attached, so ``"".join`` gives the line back."""
    parts, start = [], 0
    for m in _SENTENCE_END.finditer(line):
        parts.append(line[start : m.end()])
        start = m.end()
    parts.append(line[start:])
    return parts


def chunk_text(text: str, budget: int, count: Count, min_tokens: int = 0) -> list[Chunk]:
    """Packs of consecutive lines of ``text``, each at most ``budget`` tokens, dropping packs below
    ``min_tokens``. ``index`` numbers the packs kept, in document order."""
    if budget < 1:
        raise ValueError(f"chunk budget must be >= 1 token, got {budget}")
    if not text or not text.strip():
        return []
    pieces = _pieces(text, budget, count)
    packs: list[str] = []
    cur: list[str] = []
    cur_tokens = 0
    for sep, piece, n in pieces:
        join = 1 if (cur and sep) else 0  # a newline is (about) one token
        if cur and cur_tokens + join + n > budget:
            packs.append("".join(cur))
            cur, cur_tokens, join = [], 0, 0
        if not cur and not piece.strip():
            continue  # a pack never starts with blank lines
        cur.append((sep if cur else "") + piece)
        cur_tokens += join + n
    if cur:
        packs.append("".join(cur))
    packs = [p.strip() for p in packs if p.strip()]
    exact = _recount(packs, budget, count)
    kept = [(p, n) for p, n in exact if n >= max(1, min_tokens)]
    return [Chunk(i, p, n) for i, (p, n) in enumerate(kept)]


def _recount(packs: list[str], budget: int, count: Count) -> list[tuple[str, int]]:
    """Exact counts; a pack whose sum of parts underestimated it is split again."""
    out: list[tuple[str, int]] = []
    for pack, n in zip(packs, count(packs), strict=True):
        if n <= budget:
            out.append((pack, n))
        else:
            out.extend((p.strip(), k) for p, k in _fit(pack, budget, count) if p.strip())
    return out
