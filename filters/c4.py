"""C4 rules (Raffel et al. 2020): line cleaning, then document rules on what the cleaning keeps.

Line rules, in this order (a removed line is counted under the first that applies): a word longer
than `max_word_length`; no terminal punctuation (or an ellipsis) when `require_terminal_punct`; fewer
than `min_words_per_line` words; mentions "javascript"; a cookie/terms/privacy boilerplate phrase.
Citation markers (`[1]`, `[edit]`, `[citation needed]`) are stripped before the line rules.

Document rules: "lorem ipsum" anywhere, a curly bracket anywhere (code and templates), more than
`max_bad_words` bad-word hits, fewer than `min_sentences` sentences in the kept lines.

Text: with `rewrite` the text of a kept document becomes its kept lines (citation markers removed),
as C4 itself does, and the filters after c4 judge that text; without it the filter only measures
(how many lines C4 would drop, and the sentences left). The default follows the compat mode:
`compat: datatrove` rewrites (datatrove's C4QualityFilter always does, and FineWeb's filter after it
judges the rewritten text, so reproducing its kept set needs it); `compat: paper` only measures.
`tag_only` never changes a document. The sentence rule is decided on the kept lines either way, so
c4's own decision does not depend on `rewrite`.
FineWeb's variant is `require_terminal_punct: false`.

`compat: datatrove` (datatrove 0.10's C4QualityFilter): lines are `str.splitlines()`, stripped; a
line's words are `line.split()` before the citations `[N]`, `[]`, `[edit]`, `[citation needed]` are
removed (case-sensitive, spaces around them kept); the terminal-punctuation rule looks at the line
after that removal and excludes only `...`; "lorem ipsum" and `{` drop the document only when they
sit in a line that passed the earlier line rules (lorem ipsum before the javascript rule, `{` after
it), and the reason is whichever comes first in the text; sentences are spaCy's sentencizer's, per
kept line (`filters/en_tokens.py`). With `rewrite`, the kept lines are joined by one newline.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from filters import en_tokens
from filters.base import FilterSettings, Measurement, above, below
from filters.cjk import LATIN_TERMINAL_PUNCT
from filters.compat import Compat, any_suffix, lengths, per_line_first, py_strip
from filters.text import TextBatch, per_doc

NAME = "c4"
DATATROVE_CITATION = r"\[\p{Nd}*\]|\[edit\]|\[citation needed\]"
CITATION = r"(?i)[ \t]*\[(?:\d+(?:\s*[,–-]\s*\d+)*|edit|citation needed)\]"
# a sentence ends at . ! ? (then optional closing quotes/brackets, then a space or the line end),
# or at Chinese full-width 。！？ (no space follows in Chinese)
SENTENCE_END = r"[.!?]+[\"'”’)\]]*(?:\s|$)|[。！？]+[”」』）]*"
POLICY_PHRASES = ["terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies"]
LINE_RULES = ("long_word", "no_terminal_punct", "too_few_words", "javascript", "policy")


class Settings(FilterSettings):
    compat: Compat | None = None  # None: the stage's `compat`
    rewrite: bool | None = None  # replace the text by its kept lines; None: yes under compat datatrove
    require_terminal_punct: bool = True
    terminal_punct: list[str] = LATIN_TERMINAL_PUNCT
    min_words_per_line: int = 3  # the C4 paper used 5
    max_word_length: int = 1000
    remove_javascript_lines: bool = True
    policy_phrases: list[str] = POLICY_PHRASES
    remove_citations: bool = True
    drop_lorem_ipsum: bool = True
    drop_curly_bracket: bool = True
    min_sentences: int | None = 5  # the C4 paper used 3
    bad_words: list[str] = []  # whole words for Latin script, substrings for CJK phrases
    max_bad_words: int = 0  # drop when the document has more hits than this


SIGNALS: dict[str, pa.DataType] = {
    "c4_lines": pa.int64(),
    "c4_lines_removed": pa.int64(),
    **{f"c4_lines_{rule}": pa.int64() for rule in LINE_RULES},
    "c4_citations": pa.int64(),
    "c4_sentences": pa.int64(),
    "c4_lorem_ipsum": pa.bool_(),
    "c4_curly_bracket": pa.bool_(),
    "c4_bad_words": pa.int64(),
}
RULES = ("lorem_ipsum", "curly_bracket", "bad_words", "too_few_sentences")


def rewrites(s: Settings) -> bool:
    """Whether c4 replaces texts: `rewrite` if set, else the compat mode's default (datatrove: yes)."""
    return s.rewrite if s.rewrite is not None else s.compat != "paper"


def long_word_pattern(max_len: int, non_space: str = r"\S") -> str:
    """RE2 for 'a run of more than max_len non-space characters' (RE2 caps repeats at 1000)."""
    need = max_len + 1
    chunks = [f"{non_space}{{1000}}"] * (need // 1000) + ([f"{non_space}{{{need % 1000}}}"] if need % 1000 else [])
    return "".join(chunks)


def bad_words_pattern(words: list[str]) -> str | None:
    latin = [re.escape(w) for w in words if w.isascii()]
    other = [re.escape(w) for w in words if not w.isascii()]
    parts = ([rf"\b(?:{'|'.join(latin)})\b"] if latin else []) + (["|".join(other)] if other else [])
    return f"(?i){'|'.join(parts)}" if parts else None


def _contains_any(values: pa.Array, phrases: list[str]) -> np.ndarray:
    if not phrases or len(values) == 0:
        return np.zeros(len(values), bool)
    pattern = "(?i)" + "|".join(re.escape(p) for p in phrases)
    return pc.match_substring_regex(values, pattern).to_numpy(zero_copy_only=False)


def join_lines(batch: TextBatch, keep: np.ndarray) -> pa.Array:
    """Each document's kept lines; a blank line between kept lines from different paragraphs."""
    idx = np.flatnonzero(keep)
    doc = batch.line_doc[idx]
    para = batch.line_para[idx]
    same_doc = np.zeros(len(idx), bool)
    same_doc[1:] = doc[1:] == doc[:-1]
    new_para = np.zeros(len(idx), bool)
    new_para[1:] = para[1:] != para[:-1]
    seps = np.where(~same_doc, "", np.where(new_para, "\n\n", "\n"))
    pieces = pc.binary_join_element_wise(pa.array(seps, pa.string()), batch.lines.take(pa.array(idx)), "")
    offsets = np.searchsorted(doc, np.arange(batch.n + 1)).astype(np.int32)
    return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), pieces), "")


def measure(batch: TextBatch, s: Settings) -> Measurement:
    if s.compat != "paper":
        return measure_datatrove(batch, s)
    n = batch.n
    citations = batch.count(CITATION) if s.remove_citations else np.zeros(n, np.int64)
    lined = batch
    if citations.any():  # measure lines as they are once the markers are gone
        lined = TextBatch(pc.replace_substring_regex(batch.texts, CITATION, ""), batch.segmenter)
    lines = lined.lines
    n_lines = len(lines)
    line_fail: dict[str, np.ndarray] = {
        "long_word": pc.match_substring_regex(lines, long_word_pattern(s.max_word_length)).to_numpy(
            zero_copy_only=False) if n_lines else np.zeros(0, bool),
        "no_terminal_punct": ~lined.line_ends_with(s.terminal_punct, exclude_ellipsis=True)
        if s.require_terminal_punct else np.zeros(n_lines, bool),
        "too_few_words": lined.line_words < s.min_words_per_line,
        "javascript": _contains_any(lines, ["javascript"]) if s.remove_javascript_lines else np.zeros(n_lines, bool),
        "policy": _contains_any(lines, s.policy_phrases),
    }
    removed = np.zeros(n_lines, bool)
    signals: dict[str, np.ndarray] = {"c4_lines": lined.n_lines}
    for rule in LINE_RULES:  # attribute each removed line to its first failing rule
        first = line_fail[rule] & ~removed
        signals[f"c4_lines_{rule}"] = per_doc(lined.line_doc, n, first).astype(np.int64)
        removed |= line_fail[rule]
    keep = ~removed
    sentences = pc.count_substring_regex(lines, SENTENCE_END).to_numpy().astype(np.int64) if n_lines else \
        np.zeros(0, np.int64)
    pattern = bad_words_pattern(s.bad_words)
    bad = batch.count(pattern) if pattern else np.zeros(n, np.int64)
    signals.update({
        "c4_lines_removed": per_doc(lined.line_doc, n, removed).astype(np.int64),
        "c4_citations": citations,
        "c4_sentences": per_doc(lined.line_doc, n, sentences * keep).astype(np.int64),
        "c4_lorem_ipsum": batch.contains(r"(?i)lorem ipsum"),
        "c4_curly_bracket": batch.count("{", regex=False) > 0,
        "c4_bad_words": bad,
    })
    signals = {name: signals[name] for name in SIGNALS}
    fails = {
        "lorem_ipsum": signals["c4_lorem_ipsum"] & s.drop_lorem_ipsum,
        "curly_bracket": signals["c4_curly_bracket"] & s.drop_curly_bracket,
        "bad_words": above(bad, s.max_bad_words) if pattern else np.zeros(n, bool),
        "too_few_sentences": below(signals["c4_sentences"], s.min_sentences),
    }
    texts = join_lines(lined, keep) if rewrites(s) else None
    return Measurement(signals, fails, texts=texts)


def _lower_contains(lowered: pa.Array, phrases: list[str]) -> np.ndarray:
    out = np.zeros(len(lowered), bool)
    for p in phrases if len(lowered) else []:
        out |= pc.match_substring(lowered, p).to_numpy(zero_copy_only=False)
    return out


def measure_datatrove(batch: TextBatch, s: Settings) -> Measurement:
    n = batch.n
    d = batch.datatrove
    raw, doc = d.splitlines
    lines = py_strip(raw)
    n_lines = len(lines)
    chunks, chunk_line = en_tokens.split_chunks(lines)
    words = np.bincount(chunk_line, minlength=n_lines)[:n_lines]
    if s.max_word_length != -1 and len(chunks):
        too_long = np.zeros(n_lines, bool)
        too_long[chunk_line[lengths(chunks) > s.max_word_length]] = True
    else:
        too_long = np.zeros(n_lines, bool)
    citations = pc.count_substring_regex(lines, DATATROVE_CITATION).to_numpy().astype(np.int64) if n_lines \
        else np.zeros(0, np.int64)
    if s.remove_citations and citations.any():
        lines = pc.replace_substring_regex(lines, DATATROVE_CITATION, "")
    lowered = pc.utf8_lower(lines) if n_lines else lines
    no_punct = ~(any_suffix(lines, s.terminal_punct) & ~any_suffix(lines, ["..."])) if s.require_terminal_punct \
        else np.zeros(n_lines, bool)
    few = words < s.min_words_per_line
    passed = ~too_long & ~no_punct & ~few
    lorem = passed & _lower_contains(lowered, ["lorem ipsum"]) if s.drop_lorem_ipsum else np.zeros(n_lines, bool)
    js = _lower_contains(lowered, ["javascript"]) if s.remove_javascript_lines else np.zeros(n_lines, bool)
    passed_js = passed & ~lorem & ~js
    curly = passed_js & _lower_contains(lines, ["{"]) if s.drop_curly_bracket else np.zeros(n_lines, bool)
    policy = _lower_contains(lowered, s.policy_phrases)
    keep = passed_js & ~curly & ~policy
    signals: dict[str, np.ndarray] = {"c4_lines": per_doc(doc, n).astype(np.int64)}
    removed = np.zeros(n_lines, bool)
    for rule, fail in (("long_word", too_long), ("no_terminal_punct", no_punct), ("too_few_words", few),
                       ("javascript", js), ("policy", policy)):
        signals[f"c4_lines_{rule}"] = per_doc(doc, n, fail & ~removed).astype(np.int64)
        removed |= fail
    sentences = np.zeros(n_lines, np.int64)
    if s.min_sentences is not None and keep.any():
        idx = np.flatnonzero(keep)
        sentences[idx] = en_tokens.sentence_counts(lines.take(pa.array(idx)), d.lex)
    line_no = np.arange(n_lines)
    first_lorem = per_line_first(line_no[lorem], doc[lorem], n)
    first_curly = per_line_first(line_no[curly], doc[curly], n)
    pattern = bad_words_pattern(s.bad_words)
    bad = batch.count(pattern) if pattern else np.zeros(n, np.int64)
    signals.update({
        "c4_lines_removed": per_doc(doc, n, ~keep).astype(np.int64),
        "c4_citations": per_doc(doc, n, citations).astype(np.int64),
        "c4_sentences": per_doc(doc, n, sentences).astype(np.int64),
        "c4_lorem_ipsum": per_doc(doc, n, lorem) > 0,
        "c4_curly_bracket": per_doc(doc, n, curly) > 0,
        "c4_bad_words": bad,
    })
    signals = {name: signals[name] for name in SIGNALS}
    has_lorem, has_curly = signals["c4_lorem_ipsum"], signals["c4_curly_bracket"]
    fails = {
        "lorem_ipsum": has_lorem & (first_lorem <= first_curly),
        "curly_bracket": has_curly & (first_curly < first_lorem),
        "bad_words": above(bad, s.max_bad_words) if pattern else np.zeros(n, bool),
        "too_few_sentences": below(signals["c4_sentences"], s.min_sentences),
    }
    texts = _join_kept(lines, doc, keep, n) if rewrites(s) else None
    return Measurement(signals, fails, texts=texts)


def _join_kept(lines: pa.Array, doc: np.ndarray, keep: np.ndarray, n: int) -> pa.Array:
    """datatrove's rewrite: `"\\n".join(kept_lines).strip()`."""
    idx = np.flatnonzero(keep)
    offsets = np.searchsorted(doc[idx], np.arange(n + 1)).astype(np.int32)
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), lines.take(pa.array(idx))), "\n")
    return py_strip(joined)
