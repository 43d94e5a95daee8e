"""Gopher repetition rules (Rae et al. 2021, table A1): boilerplate and generated spam repeat.

Definitions (the paper leaves some open; these are ours, stated so numbers can be compared):
* lines are non-empty stripped lines; paragraphs are split on two or more newlines; an element is a
  duplicate when an equal one came earlier in the document; duplicate characters are the lengths of
  those later copies, over the document's characters (`len(text)`);
* n-gram statistics use word n-grams and count word characters (spaces and punctuation excluded);
  the top n-gram's share is its occurrences x its characters (0 if no n-gram repeats); duplicated
  n-grams cover every word of each later occurrence of a repeated n-gram, each word counted once.

`compat: datatrove` (datatrove 0.10's GopherRepetitionFilter): paragraphs are `re.split("\\n{2,}",
text.strip())` and lines `re.split("\\n+", text)`, unstripped, empty pieces included; n-grams are over
spaCy English tokens, punctuation included; every character ratio divides by `len(text)`; the top
n-gram's characters are its space-joined length times its count, for the first most frequent
n-gram even when nothing repeats; duplicated n-grams are counted by datatrove's greedy scan (a
repeated n-gram's characters, joined without spaces, then a jump past it). An empty text fails
(`empty`). The rules are checked in datatrove's order (paragraphs, lines, top, duplicated).

Repeated n-grams are found for the whole batch at once with hash-table passes over 64-bit n-gram keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters.base import FilterSettings, Measurement, above, ratio
from filters.compat import Compat, DatatroveText, lengths, pieces, py_strip
from filters.text import TextBatch, dup_flags, first_seen, key_counts, per_doc, repeated_keys

NAME = "gopher_repetition"
TOP_NS = (2, 3, 4)
DUP_NS = (5, 6, 7, 8, 9, 10)


class Settings(FilterSettings):
    compat: Compat | None = None  # None: the stage's `compat`
    max_dup_line_ratio: float | None = 0.30
    max_dup_line_char_ratio: float | None = 0.20
    max_dup_para_ratio: float | None = 0.30
    max_dup_para_char_ratio: float | None = 0.20
    max_top_2gram_ratio: float | None = 0.20
    max_top_3gram_ratio: float | None = 0.18
    max_top_4gram_ratio: float | None = 0.16
    max_dup_5gram_ratio: float | None = 0.15
    max_dup_6gram_ratio: float | None = 0.14
    max_dup_7gram_ratio: float | None = 0.13
    max_dup_8gram_ratio: float | None = 0.12
    max_dup_9gram_ratio: float | None = 0.11
    max_dup_10gram_ratio: float | None = 0.10


SIGNALS: dict[str, pa.DataType] = {
    "gopher_dup_line_ratio": pa.float64(),
    "gopher_dup_line_char_ratio": pa.float64(),
    "gopher_dup_para_ratio": pa.float64(),
    "gopher_dup_para_char_ratio": pa.float64(),
    **{f"gopher_top_{n}gram_ratio": pa.float64() for n in TOP_NS},
    **{f"gopher_dup_{n}gram_ratio": pa.float64() for n in DUP_NS},
}
RULES = ("empty", "dup_line_ratio", "dup_line_char_ratio", "dup_para_ratio", "dup_para_char_ratio",
         *(f"top_{n}gram" for n in TOP_NS), *(f"dup_{n}gram" for n in DUP_NS))


def _window_chars(batch: TextBatch, pos: np.ndarray, n: int) -> np.ndarray:
    cum = np.concatenate([[0], np.cumsum(batch.word_chars)])
    return cum[pos + n] - cum[pos]


def _top_ratio(batch: TextBatch, pos: np.ndarray, keys: np.ndarray, n: int) -> np.ndarray:
    """Per document: characters covered by the most frequent (repeated) n-gram, over word characters."""
    out = np.zeros(batch.n)
    if len(keys) == 0:
        return out
    count = key_counts(keys)
    doc = batch.word_doc[pos]
    top = np.zeros(batch.n, np.int64)
    np.maximum.at(top, doc, count)
    # among the n-grams with the top count, the one covering most characters
    cover = np.where(count == top[doc], count * _window_chars(batch, pos, n), 0)
    best = np.zeros(batch.n, np.int64)
    np.maximum.at(best, doc, cover)
    return ratio(best, batch.doc_word_chars)


def _dup_ratio(batch: TextBatch, pos: np.ndarray, keys: np.ndarray, n: int) -> np.ndarray:
    """Per document: word characters inside later occurrences of repeated n-grams, over word characters."""
    repeat = pos[first_seen(keys)]
    w = len(batch.word_ids)
    edges = np.bincount(repeat, minlength=w + 1)[: w + 1] - np.bincount(repeat + n, minlength=w + 1)[: w + 1]
    covered = np.cumsum(edges)[:w] > 0
    return ratio(per_doc(batch.word_doc, batch.n, batch.word_chars * covered), batch.doc_word_chars)


def repeated_ngrams(ngrams: Callable[[int], tuple[np.ndarray, np.ndarray]], n_words: int,
                    ns: range) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For each n in `ns`: (n, positions, keys) of the n-grams that occur twice or more in their batch.

    Only repeated n-grams matter, and an (n+1)-gram can repeat only where its leading n-gram
    does, so each step looks at the previous step's repeated positions only (few, in clean text).
    """
    import pandas as pd  # local: stage modules load at `curate validate`, pandas costs ~0.6 s to import

    candidates: np.ndarray | None = None  # per word position: the n-gram starting here repeats
    for n in ns:
        pos, keys = ngrams(n)
        if candidates is not None:
            keep = candidates[pos]
            pos, keys = pos[keep], keys[keep]
        repeated = pd.Series(keys, copy=False).duplicated(keep=False).to_numpy()
        pos, keys = pos[repeated], keys[repeated]
        candidates = np.zeros(n_words, bool)
        candidates[pos] = True
        yield n, pos, keys


def ngram_ratios(batch: TextBatch) -> dict[str, np.ndarray]:
    """Top n-gram shares (n = 2..4) and duplicated n-gram shares (n = 5..10) for a batch."""
    out: dict[str, np.ndarray] = {}
    for n, pos, keys in repeated_ngrams(batch.ngrams, len(batch.word_ids), range(2, max(DUP_NS) + 1)):
        if n in TOP_NS:
            out[f"gopher_top_{n}gram_ratio"] = _top_ratio(batch, pos, keys, n)
        if n in DUP_NS:
            out[f"gopher_dup_{n}gram_ratio"] = _dup_ratio(batch, pos, keys, n)
    return out


def _ngram_fails(signals: dict[str, np.ndarray], s: Settings) -> dict[str, np.ndarray]:
    """The top and duplicated n-gram rules, in rule order (both compat modes check them last)."""
    fails = {f"top_{k}gram": above(signals[f"gopher_top_{k}gram_ratio"], getattr(s, f"max_top_{k}gram_ratio"))
             for k in TOP_NS}
    for k in DUP_NS:
        fails[f"dup_{k}gram"] = above(signals[f"gopher_dup_{k}gram_ratio"], getattr(s, f"max_dup_{k}gram_ratio"))
    return fails


def precheck(batch: TextBatch, s: Settings) -> Measurement:
    """The line and paragraph rules alone (no word tokens): every rule `measure` checks before the
    n-gram ones, with the same values."""
    return _lines_datatrove(batch, s) if s.compat != "paper" else _lines_paper(batch, s)


def precheck_top(batch: TextBatch, s: Settings) -> Measurement:
    """The line, paragraph and top n-gram rules (`compat: datatrove`; `paper` finds top and duplicated
    n-grams in one pass, so there it is `precheck`)."""
    if s.compat == "paper":
        return precheck(batch, s)
    lines = _lines_datatrove(batch, s)
    d = batch.datatrove
    signals = dict(lines.signals)
    for k in TOP_NS:
        signals[f"gopher_top_{k}gram_ratio"] = ratio(_top_datatrove(d, k), d.doc_chars)
    fails = {**lines.fails, **{f"top_{k}gram": above(signals[f"gopher_top_{k}gram_ratio"],
                                                      getattr(s, f"max_top_{k}gram_ratio")) for k in TOP_NS}}
    return Measurement(signals, fails)


# `signals: decisive` runs these in turn, each on the documents that passed the one before, then
# `measure` on the rest, as datatrove returns at the first failing rule (before tokenizing, for the
# line rules; before the duplicated n-grams, for the top ones)
PRECHECKS = (precheck, precheck_top)


def _lines_paper(batch: TextBatch, s: Settings) -> Measurement:
    n = batch.n
    line_dup = batch.line_dup
    para_dup = dup_flags(batch.paragraphs, batch.paragraph_doc)
    para_chars = pc.utf8_length(batch.paragraphs).to_numpy().astype(np.int64)
    n_paras = per_doc(batch.paragraph_doc, n)
    signals: dict[str, np.ndarray] = {
        "gopher_dup_line_ratio": ratio(per_doc(batch.line_doc, n, line_dup), batch.n_lines),
        "gopher_dup_line_char_ratio": ratio(per_doc(batch.line_doc, n, batch.line_chars * line_dup), batch.doc_chars),
        "gopher_dup_para_ratio": ratio(per_doc(batch.paragraph_doc, n, para_dup), n_paras),
        "gopher_dup_para_char_ratio": ratio(per_doc(batch.paragraph_doc, n, para_chars * para_dup), batch.doc_chars),
    }
    fails = {
        "dup_line_ratio": above(signals["gopher_dup_line_ratio"], s.max_dup_line_ratio),
        "dup_line_char_ratio": above(signals["gopher_dup_line_char_ratio"], s.max_dup_line_char_ratio),
        "dup_para_ratio": above(signals["gopher_dup_para_ratio"], s.max_dup_para_ratio),
        "dup_para_char_ratio": above(signals["gopher_dup_para_char_ratio"], s.max_dup_para_char_ratio),
    }
    return Measurement(signals, fails)


def measure(batch: TextBatch, s: Settings) -> Measurement:
    if s.compat != "paper":
        return measure_datatrove(batch, s)
    lines = _lines_paper(batch, s)
    signals = {**lines.signals, **ngram_ratios(batch)}
    return Measurement(signals, {**lines.fails, **_ngram_fails(signals, s)})


def _dups(values: pa.Array, doc: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per document: elements, later copies of an earlier element, and those copies' characters."""
    dup = dup_flags(values, doc)
    return per_doc(doc, n), per_doc(doc, n, dup), per_doc(doc, n, lengths(values) * dup)


def _top_datatrove(d: DatatroveText, n: int) -> np.ndarray:
    """Per document: count x space-joined length of the first most frequent n-gram (0 without n-grams)."""
    if f"top_{n}gram_chars" not in d.memo:
        d.memo.update({f"top_{k}gram_chars": chars for k, chars in _tops_datatrove(d).items()})
    return d.memo[f"top_{n}gram_chars"]


def _firsts(doc: np.ndarray) -> np.ndarray:
    """Indices where a new document starts in a non-decreasing document index."""
    return np.flatnonzero(np.concatenate([[True], doc[1:] != doc[:-1]])) if len(doc) else np.zeros(0, np.int64)


def _tops_datatrove(d: DatatroveText) -> dict[int, np.ndarray]:
    """`_top_datatrove` for every n of TOP_NS, counting only n-grams that can repeat.

    A document whose n-grams are all distinct has count 1 for its first n-gram; an n-gram repeats only
    where its leading (n-1)-gram does (tokens hold no spaces, so space-joined n-grams are equal exactly
    when their tokens are), so n = 3, 4 look only at the positions where the shorter n-gram repeated,
    and each repeated n-gram's count is its count in the whole document.
    """
    out: dict[int, np.ndarray] = {}
    candidates: np.ndarray | None = None  # per token position: the (n-1)-gram starting here repeats
    for n in TOP_NS:
        pos, keys = d.ngram_keys(n)
        chars = np.zeros(d.n)
        doc = d.tokens.doc[pos]
        first = _firsts(doc)
        top = np.zeros(d.n, np.int64)
        best = np.zeros(d.n, np.int64)
        top[doc[first]], best[doc[first]] = 1, pos[first]
        sel = np.arange(len(pos)) if candidates is None else np.flatnonzero(candidates[pos])
        count = key_counts(keys[sel]) if len(sel) else np.zeros(0, np.int64)
        sel, count = sel[count > 1], count[count > 1]
        if len(sel):
            rdoc = doc[sel]
            np.maximum.at(top, rdoc, count)
            is_top = count == top[rdoc]
            at = _firsts(rdoc[is_top])
            best[rdoc[is_top][at]] = pos[sel[is_top][at]]
        candidates = np.zeros(len(d.tokens.ids), bool)
        candidates[pos[sel]] = True
        has = np.flatnonzero(top > 0)
        chars[has] = (d.window_chars(best[has], n) + n - 1) * top[has]
        out[n] = chars
    return out


def _dup_datatrove(d: DatatroveText, n: int, pos: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """datatrove's greedy duplicated n-gram characters, visiting only n-grams that occur twice or more.

    An n-gram seen once never counts, so skipping it changes nothing; the scan's jumps depend only
    on the repeated ones, which are few in prose.
    """
    out = np.zeros(d.n)
    if len(pos) == 0:
        return out
    chars = d.window_chars(pos, n).tolist()
    docs = d.tokens.doc[pos].tolist()
    current, seen, resume = -1, set(), -1
    for p, k, doc, c in zip(pos.tolist(), keys.tolist(), docs, chars, strict=True):
        if doc != current:
            current, seen, resume = doc, set(), -1
        if p < resume:
            continue
        if k in seen:
            out[doc] += c
            resume = p + n
        else:
            seen.add(k)
    return out


def _line_signals_datatrove(d: DatatroveText) -> dict[str, np.ndarray]:
    n = d.n
    chars = d.doc_chars
    paras, para_doc = pieces(py_strip(d.texts), "\n{2,}")
    n_paras, para_dups, para_dup_chars = _dups(paras, para_doc, n)
    lines, line_doc = pieces(d.texts, "\n+")
    n_lines, line_dups, line_dup_chars = _dups(lines, line_doc, n)
    return {
        "gopher_dup_line_ratio": ratio(line_dups, n_lines),
        "gopher_dup_line_char_ratio": ratio(line_dup_chars, chars),
        "gopher_dup_para_ratio": ratio(para_dups, n_paras),
        "gopher_dup_para_char_ratio": ratio(para_dup_chars, chars),
    }


def _lines_datatrove(batch: TextBatch, s: Settings) -> Measurement:
    d = batch.datatrove
    if "gopher_dup_line_ratio" not in d.memo:  # measured once per batch (prechecks, then measure)
        d.memo.update(_line_signals_datatrove(d))
    signals = {name: d.memo[name] for name in ("gopher_dup_line_ratio", "gopher_dup_line_char_ratio",
                                               "gopher_dup_para_ratio", "gopher_dup_para_char_ratio")}
    fails = {
        "empty": d.doc_chars == 0,
        "dup_para_ratio": above(signals["gopher_dup_para_ratio"], s.max_dup_para_ratio or None),
        "dup_para_char_ratio": above(signals["gopher_dup_para_char_ratio"], s.max_dup_para_char_ratio or None),
        "dup_line_ratio": above(signals["gopher_dup_line_ratio"], s.max_dup_line_ratio or None),
        "dup_line_char_ratio": above(signals["gopher_dup_line_char_ratio"], s.max_dup_line_char_ratio or None),
    }
    return Measurement(signals, fails)


def measure_datatrove(batch: TextBatch, s: Settings) -> Measurement:
    d = batch.datatrove
    chars = d.doc_chars
    lines = _lines_datatrove(batch, s)
    signals = dict(lines.signals)
    for k in TOP_NS:
        signals[f"gopher_top_{k}gram_ratio"] = ratio(_top_datatrove(d, k), chars)
    for k in DUP_NS:  # datatrove joins a duplicated n-gram's tokens without spaces: keys of the joined text
        pos, keys = d.tokens.joined_ngram_keys(k)
        repeated = repeated_keys(keys)
        signals[f"gopher_dup_{k}gram_ratio"] = ratio(_dup_datatrove(d, k, pos[repeated], keys[repeated]), chars)
    return Measurement({name: signals[name] for name in SIGNALS}, {**lines.fails, **_ngram_fails(signals, s)})
