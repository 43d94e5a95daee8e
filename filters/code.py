"""Source-code signals and rules: StarCoder's basic filters, generated/minified/data/encoded files, licences.

Line statistics follow The Stack's metadata (what bigcode's StarCoder filters read): lines are
Python's `str.splitlines()` (every Unicode line break, no trailing empty line), `max_line_length`
and `avg_line_length` count characters without the break (0 for no lines), `alphanum_fraction`
counts `isalpha() or isnumeric()` characters over all characters, and the alphabetic rule counts
`isalpha()`. All of them are computed on whole Arrow arrays (RE2 splits and counts, numpy
reductions); only the few rules needing lookarounds or a parser run per document, on the
documents a vectorized pre-filter flags.

The per-(language, extension) thresholds are StarCoder's table (`code_data/starcoder_thresholds.csv`);
the other rules' patterns are data (`code_data/code_rules.yaml`), each group with its source.
"""

from __future__ import annotations

import csv
import fnmatch
import re
from dataclasses import dataclass
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

DATA = Path(__file__).with_name("code_data")
# str.splitlines() boundaries: \r\n first, then every single-character break
LINE_BREAK = r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x{85}\x{2028}\x{2029}]"


# -- StarCoder table --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Thresholds:
    """One row of the StarCoder table; None = that rule does not apply."""

    include: bool
    long_line: int | None
    mean_line: int | None  # 100 wherever a long-line threshold is set (bigcode's reading of the table)
    alphanum: float | None
    alpha: float | None
    xml: bool


def _number(value: str, kind: type) -> Any:
    try:
        return kind(value)
    except ValueError:
        return None


def load_thresholds(path: str | Path | None = None) -> dict[tuple[str, str], Thresholds]:
    """(table language, extension) -> Thresholds. Lines starting with `#` are comments."""
    path = Path(path) if path else DATA / "starcoder_thresholds.csv"
    with open(path, newline="") as fh:
        rows = csv.DictReader(line for line in fh if not line.startswith("#"))
        out = {}
        for row in rows:
            long_line = _number(row["long_line_threshold"], int)
            out[(row["language"], row["extension"])] = Thresholds(
                include=row["include"] == "1", long_line=long_line, mean_line=100 if long_line else None,
                alphanum=_number(row["alphanum_threshold"], float), alpha=_number(row["alpha_threshold"], float),
                xml=row.get("xml_filter", "1") == "1")
    return out


def table_language(language: str) -> str:
    """The Stack's language name -> the table's key (`C#` -> `c-sharp`, `Emacs Lisp` -> `emacs-lisp`)."""
    special = {"C#": "c-sharp", "F#": "f-sharp"}
    return special.get(language, language.lower().replace(" ", "-"))


# -- line and character statistics ------------------------------------------------------------------
def _large(texts: pa.Array) -> pa.Array:
    """Nulls as "" and 64-bit offsets (no copy when the array already is so)."""
    if texts.null_count:
        texts = pc.fill_null(texts, "")
    return texts if texts.type == pa.large_string() else texts.cast(pa.large_string())


def _bytes(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The UTF-8 bytes of a large_string array and its row offsets into them (zero-copy)."""
    n = len(texts)
    offsets = np.frombuffer(texts.buffers()[1], np.int64)[texts.offset: texts.offset + n + 1]
    data = texts.buffers()[2]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    return raw[offsets[0]: offsets[-1]], offsets - offsets[0]


@dataclass(frozen=True)
class TextStats:
    """Per-text statistics of one Arrow array, The Stack's definitions (see the module docstring)."""

    chars: np.ndarray  # characters (code points)
    lines: np.ndarray  # len(text.splitlines())
    max_line: np.ndarray  # longest line in characters, 0 without lines
    mean_line: np.ndarray  # characters per line without the breaks, 0 without lines
    alpha: np.ndarray  # characters with str.isalpha()
    alnum: np.ndarray  # characters with str.isalpha() or str.isnumeric()

    def fractions(self) -> tuple[np.ndarray, np.ndarray]:
        """(alphanumeric fraction, alphabetic fraction); 0 for an empty text."""
        zeros = np.zeros(len(self.chars), np.float64)
        return (np.divide(self.alnum, self.chars, out=zeros.copy(), where=self.chars > 0),
                np.divide(self.alpha, self.chars, out=zeros.copy(), where=self.chars > 0))


def _rows_of(positions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The row holding each byte position (empty rows share their offset with the next row: never chosen)."""
    return np.searchsorted(offsets, positions, side="right") - 1


SCAN_BYTES = 1 << 18  # bytes of whole rows classified together, so that the temporaries stay in the CPU cache
LOOP_MIN_ROW_BYTES = 1024  # rows longer than this on average are counted one `count_nonzero` each


def _row_groups(offsets: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive rows [r0, r1) of about SCAN_BYTES bytes (a longer row alone)."""
    n, groups, r0 = len(offsets) - 1, [], 0
    while r0 < n:
        r1 = int(np.searchsorted(offsets, offsets[r0] + SCAN_BYTES, side="right")) - 1
        r1 = min(max(r1, r0 + 1), n)
        groups.append((r0, r1))
        r0 = r1
    return groups


def _row_counts(flags: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Number of true `flags[bounds[i]:bounds[i+1]]` per row: one SIMD `count_nonzero` per row for long rows,
    one `np.add.reduceat` for many short ones (its per-byte cost is higher, its per-row cost far lower)."""
    rows = len(bounds) - 1
    if rows == 1 or len(flags) >= LOOP_MIN_ROW_BYTES * rows:
        edges = bounds.tolist()
        return np.fromiter((np.count_nonzero(flags[edges[i]:edges[i + 1]]) for i in range(rows)), np.int64, rows)
    out = np.zeros(rows, np.int64)
    filled = np.flatnonzero(bounds[1:] > bounds[:-1])
    if len(filled):
        out[filled] = np.add.reduceat(flags, bounds[:-1][filled], dtype=np.int64)
    return out


@dataclass
class _ByteScan:
    """What one pass over a batch's UTF-8 bytes finds: per-row counts and the positions of rare bytes."""

    letters: np.ndarray  # ASCII letters per row
    alnum: np.ndarray  # ASCII letters and digits per row
    newlines: np.ndarray  # `\n` per row
    newline: np.ndarray  # byte positions of `\n`
    high: np.ndarray  # byte positions of non-ASCII bytes (lead and continuation)
    control: np.ndarray  # byte positions of \x0b-\x1e (candidates for the other line breaks)


def _scan_bytes(raw: np.ndarray, offsets: np.ndarray) -> _ByteScan:
    """Classify every byte by uint8 arithmetic (5x faster than a 256-entry table lookup): `(b | 0x20) - 97 < 26`
    is an ASCII letter, `b - 48 < 10` a digit, in wrapping uint8. Row groups of SCAN_BYTES reuse the same
    buffers, so a batch costs one read of its bytes from memory, whatever the machine's other load."""
    n = len(offsets) - 1
    letters, alnum, newlines = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    newline: list[np.ndarray] = []
    high: list[np.ndarray] = []
    control: list[np.ndarray] = []
    size = -1
    for r0, r1 in _row_groups(offsets):
        start, end = int(offsets[r0]), int(offsets[r1])
        chunk, m = raw[start:end], end - start
        if m > size:
            size = max(m, SCAN_BYTES)
            work, flag, other = np.empty(size, np.uint8), np.empty(size, bool), np.empty(size, bool)
        bounds = offsets[r0:r1 + 1] - start
        shifted = np.bitwise_or(chunk, 0x20, out=work[:m])
        shifted -= np.uint8(97)
        letter = np.less(shifted, 26, out=flag[:m])
        letters[r0:r1] = _row_counts(letter, bounds)
        digit = np.less(np.subtract(chunk, np.uint8(48), out=work[:m]), 10, out=other[:m])
        alnum[r0:r1] = _row_counts(np.logical_or(letter, digit, out=other[:m]), bounds)
        is_newline = np.equal(chunk, 10, out=flag[:m])
        newlines[r0:r1] = _row_counts(is_newline, bounds)
        newline.append(np.flatnonzero(is_newline) + start)
        non_ascii = np.greater_equal(chunk, 0x80, out=flag[:m])
        if non_ascii.any():
            high.append(np.flatnonzero(non_ascii) + start)
        rare = np.less(np.subtract(chunk, np.uint8(11), out=work[:m]), 20, out=flag[:m])
        if rare.any():
            control.append(np.flatnonzero(rare) + start)
    empty = np.zeros(0, np.int64)

    def joined(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else empty

    return _ByteScan(letters, alnum, newlines, joined(newline), joined(high), joined(control))


def _code_points(raw: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """The code point of each UTF-8 sequence starting at `lead` (the arrays are valid UTF-8)."""
    last = len(raw) - 1
    b0 = raw[lead].astype(np.int64)
    b1, b2, b3 = ((raw[np.minimum(lead + k, last)].astype(np.int64) & 0x3F) for k in (1, 2, 3))
    return np.where(b0 >= 0xF0, ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3,
                    np.where(b0 >= 0xE0, ((b0 & 0x0F) << 12) | (b1 << 6) | b2, ((b0 & 0x1F) << 6) | b1))


def _non_ascii_class_counts(raw: np.ndarray, offsets: np.ndarray, lead: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (letters, letters and numerics) among non-ASCII characters, Python deciding once per
    distinct code point."""
    n = len(offsets) - 1
    if len(lead) == 0:
        return np.zeros(n, np.int64), np.zeros(n, np.int64)
    distinct, inverse = np.unique(_code_points(raw, lead), return_inverse=True)
    letter = np.array([chr(c).isalpha() for c in distinct.tolist()], bool)[inverse]
    numeric = np.array([chr(c).isnumeric() for c in distinct.tolist()], bool)[inverse]
    rows = _rows_of(lead, offsets)
    return (np.bincount(rows[letter], minlength=n).astype(np.int64),
            np.bincount(rows[letter | numeric], minlength=n).astype(np.int64))


def _other_break_rows(raw: np.ndarray, offsets: np.ndarray, control: np.ndarray, lead: np.ndarray) -> np.ndarray:
    """Rows holding a line break other than `\\n` (`\\r`, `\\x0b`, `\\x0c`, `\\x1c`-`\\x1e`, U+0085, U+2028/9)."""
    candidates = control
    value = raw[candidates]
    ascii_breaks = candidates[(value <= 13) | (value >= 28)]
    last = len(raw) - 1
    b0, b1, b2 = (raw[np.minimum(lead + k, last)] for k in (0, 1, 2))
    unicode_breaks = lead[((b0 == 0xC2) & (b1 == 0x85)) | ((b0 == 0xE2) & (b1 == 0x80) & ((b2 == 0xA8) | (b2 == 0xA9)))]
    return np.unique(_rows_of(np.concatenate([ascii_breaks, unicode_breaks]), offsets))


def _newline_lines(offsets: np.ndarray, newline: np.ndarray, per_row: np.ndarray, cont: np.ndarray,
                   chars: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lines, longest line, mean line) of texts whose only break is `\\n`: lines end at a newline or at the
    text's end. Newlines are placed in characters from their text's start: their byte offset there, less the
    continuation bytes before them (only texts holding non-ASCII characters have any)."""
    n = len(offsets) - 1
    rows = np.repeat(np.arange(n), per_row)
    local = newline - offsets[:-1][rows]
    if len(cont):
        moved = (np.bincount(_rows_of(cont, offsets), minlength=n) > 0)[rows]
        before_row = np.searchsorted(cont, offsets[:-1])
        local[moved] -= np.searchsorted(cont, newline[moved]) - before_row[rows[moved]]
    same_row = np.zeros(len(rows), bool)
    same_row[1:] = rows[1:] == rows[:-1]
    line_start = np.where(same_row, np.concatenate([[0], local[:-1] + 1]), 0)
    length = local - line_start
    has = per_row > 0
    last = np.cumsum(per_row) - 1  # index of each row's last newline, where it has one
    tail = chars - np.where(has, local[np.maximum(last, 0)] + 1 if len(local) else 0, 0)
    longest = tail.copy()
    if len(local):
        first = (last - per_row + 1)[has]
        longest[has] = np.maximum(np.maximum.reduceat(length, first), tail[has])
    lines = per_row + (tail > 0)
    mean = np.divide(chars - per_row, lines, out=np.zeros(n, np.float64), where=lines > 0)
    return lines, longest, mean


def text_stats(texts: pa.Array) -> TextStats:
    """All of a batch's line and character statistics from one pass over its UTF-8 bytes (`_scan_bytes`).

    Non-ASCII characters (sparse in code) are decoded from their lead bytes and classified once per
    distinct code point; only the texts holding a line break other than `\\n` are split by RE2
    (`_line_stats_re2`)."""
    texts = _large(texts)
    raw, offsets = _bytes(texts)
    scan = _scan_bytes(raw, offsets)
    high_bytes = raw[scan.high]
    cont = scan.high[high_bytes < 0xC0]
    lead = scan.high[high_bytes >= 0xC0]
    chars = np.diff(offsets) - np.bincount(_rows_of(cont, offsets), minlength=len(texts))
    lines, longest, mean = _newline_lines(offsets, scan.newline, scan.newlines, cont, chars)
    other = _other_break_rows(raw, offsets, scan.control, lead)
    if len(other):
        longest[other], mean[other], lines[other] = _line_stats_re2(texts.take(pa.array(other)))
    extra_alpha, extra_alnum = _non_ascii_class_counts(raw, offsets, lead)
    return TextStats(chars=chars, lines=lines, max_line=longest, mean_line=mean, alpha=scan.letters + extra_alpha,
                     alnum=scan.alnum + extra_alnum)


def line_stats(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per text: (max line length, mean line length, number of lines), as `str.splitlines()` sees lines."""
    stats = text_stats(texts)
    return stats.max_line, stats.mean_line, stats.lines


def char_fractions(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per text: (characters, alphanumeric fraction, alphabetic fraction); 0 for an empty text."""
    stats = text_stats(texts)
    return (stats.chars, *stats.fractions())


def _line_stats_re2(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(texts)
    pieces = pc.split_pattern_regex(texts, LINE_BREAK)
    counts = pc.list_value_length(pieces).to_numpy(zero_copy_only=False).astype(np.int64)
    lengths = pc.utf8_length(pc.list_flatten(pieces)).to_numpy(zero_copy_only=False).astype(np.int64)
    # splitlines drops the empty piece after a final break, and gives no line at all for ""
    ends_with_break = pc.match_substring_regex(texts, f"(?:{LINE_BREAK})$").to_numpy(zero_copy_only=False)
    empty = pc.equal(pc.utf8_length(texts), 0).to_numpy(zero_copy_only=False)
    lines = counts - (ends_with_break | empty)
    starts = np.zeros(n, np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    csum = np.concatenate([[0], np.cumsum(lengths)])
    totals = csum[starts + lines] - csum[starts]
    maxima = np.zeros(n, np.int64)
    has = lines > 0
    if has.any() and len(lengths):
        # running maximum restarted at every text's first piece; empty pieces past `lines` are length 0
        row_max = np.maximum.reduceat(lengths, starts[has]) if len(lengths) else np.zeros(0, np.int64)
        maxima[has] = row_max
    mean = np.divide(totals, lines, out=np.zeros(n, np.float64), where=lines > 0)
    return maxima, mean, lines


class _VisibleText(HTMLParser):
    """Text outside <script> and <style>, entities decoded: what BeautifulSoup's get_text() returns
    after StarCoder removes those elements (comments, doctype and processing instructions excluded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chars = 0
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self.hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self.hidden:
            self.hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.chars += len(data)


def html_visible_chars(html: str) -> int:
    parser = _VisibleText()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):
        return 0
    return parser.chars


# markup the visible text leaves out: script/style elements, comments, declarations, processing
# instructions and tags; entities count as one character each
_HTML_HIDDEN = (r"(?is)<script\b[^>]*>.*?</script\s*>|<style\b[^>]*>.*?</style\s*>|<!--.*?-->|<![^>]*>"
                r"|<\?[^>]*>|</?[a-zA-Z][^>]*>")
_HTML_ENTITY = r"&(?:[a-zA-Z][a-zA-Z0-9]*|#[0-9]+|#[xX][0-9a-fA-F]+);"


def html_visible_estimate(texts: pa.Array) -> np.ndarray:
    """Visible characters of each HTML text by RE2 (vectorized). Close to `html_visible_chars` but not
    equal on malformed markup: callers use it to settle clear cases and parse the ones near a threshold."""
    stripped = pc.replace_substring_regex(pc.fill_null(texts, ""), _HTML_HIDDEN, "")
    entities = pc.count_substring_regex(stripped, _HTML_ENTITY).to_numpy(zero_copy_only=False).astype(np.int64)
    _, entity_chars = match_lengths(stripped, _HTML_ENTITY)
    return pc.utf8_length(stripped).to_numpy(zero_copy_only=False).astype(np.int64) - entity_chars + entities


# -- rules from code_rules.yaml ---------------------------------------------------------------------
def glob_regex(patterns: list[str]) -> re.Pattern[str] | None:
    """One regex for path globs: a pattern without '/' matches the base name, one with '/' the path
    (`**/` = zero or more directories)."""
    parts = []
    for pattern in patterns:
        if "/" not in pattern:
            parts.append(r"(?:.*/)?" + fnmatch.translate(pattern).removeprefix("(?s:").removesuffix(r")\Z"))
        else:
            body = re.escape(pattern).replace(r"\*\*/", "\0").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
            parts.append(body.replace("\0", "(?:.*/)?"))
    return re.compile("(?s:" + "|".join(f"(?:{p})" for p in parts) + r")\Z") if parts else None


@dataclass(frozen=True)
class Rules:
    generated_markers: re.Pattern[str]
    generated_paths: re.Pattern[str] | None
    minified_paths: re.Pattern[str] | None
    minified_markers: re.Pattern[str]
    minified_languages: frozenset[str]
    data_paths: re.Pattern[str] | None
    data_markers: re.Pattern[str]
    data_languages: frozenset[str]
    license_file: re.Pattern[str]
    license_words: re.Pattern[str]
    encoded: tuple[re.Pattern[str], ...]
    encoded_candidates: tuple[str | None, ...]  # RE2 pre-filter of each encoded pattern (None: the pattern)
    generated_candidates: str | None  # RE2 superset of generated_markers (None: Python on every text)
    minified_candidates: str | None


def re2_superset(pattern: re.Pattern[str]) -> str | None:
    """An RE2 pattern that matches wherever the Python one can, to pick the texts worth Python's regex; None
    when no safe one is derived. Word boundaries are dropped (RE2's are ASCII-only, Python's Unicode: kept,
    they could miss a match), IGNORECASE becomes `(?i)`; patterns with Python's Unicode classes (`\\d`,
    `\\w`, `\\s`), `$` (Python's also matches before a final newline), other flags or syntax RE2 lacks get None."""
    if pattern.flags & ~(re.IGNORECASE | re.UNICODE):
        return None
    out, i, text, in_class = [], 0, pattern.pattern, False
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            escape = text[i + 1]
            if escape in "dDwWsSZAz":
                return None
            if escape not in "bB" or in_class:
                out.append(text[i:i + 2])
            i += 2
            continue
        if char == "$" and not in_class:
            return None
        in_class = (in_class and char != "]") or (not in_class and char == "[")
        out.append(char)
        i += 1
    result = ("(?i)" if pattern.flags & re.IGNORECASE else "") + "".join(out)
    try:
        pc.match_substring_regex(pa.array([""]), result)
    except pa.ArrowInvalid:
        return None
    return result


def python_search(texts: list[str], pattern: re.Pattern[str], candidates: str | None) -> np.ndarray:
    """`pattern.search` of each text, run only on the texts the RE2 `candidates` pattern flags."""
    if candidates is None:
        return np.array([pattern.search(t) is not None for t in texts], bool)
    flagged = pc.match_substring_regex(pa.array(texts, pa.large_string()), candidates).to_numpy(zero_copy_only=False)
    hits = np.zeros(len(texts), bool)
    for i in np.flatnonzero(flagged).tolist():
        hits[i] = pattern.search(texts[i]) is not None
    return hits


@lru_cache(maxsize=4)
def load_rules(path: str | None = None) -> Rules:
    data = yaml.safe_load(Path(path or DATA / "code_rules.yaml").read_text())

    def alternation(patterns: list[str], flags: int = 0) -> re.Pattern[str]:
        return re.compile("|".join(f"(?:{p})" for p in patterns), flags)

    lic = data["license_files"]
    names = "|".join(re.escape(n) for n in lic["names"])
    exts = "|".join(re.escape(e) for e in lic["extensions"] if e)
    enc = data["encoded"]
    return Rules(
        generated_markers=alternation(data["generated"]["markers"], re.IGNORECASE),
        generated_paths=glob_regex(data["generated"]["paths"]),
        minified_paths=glob_regex(data["minified"]["paths"]),
        minified_markers=alternation(data["minified"]["markers"]),
        minified_languages=frozenset(data["minified"]["languages"]),
        data_paths=glob_regex(data["data"]["paths"]),
        data_markers=alternation(data["data"]["markers"]),
        data_languages=frozenset(data["data"]["languages"]),
        license_file=re.compile(rf"(?i)(?:.*/)?(?:{names})(?:{exts})?"),
        license_words=alternation([re.escape(w) for w in data["license_header"]["words"]], re.IGNORECASE),
        encoded=tuple(re.compile(enc[k]) for k in ("base64", "hex", "unicode")),
        encoded_candidates=tuple(data.get("encoded_candidates", {}).get(k) for k in ("base64", "hex", "unicode")),
        generated_candidates=re2_superset(alternation(data["generated"]["markers"], re.IGNORECASE)),
        minified_candidates=re2_superset(alternation(data["minified"]["markers"])),
    )


def path_matches(pattern: re.Pattern[str] | None, paths: list[str | None]) -> np.ndarray:
    if pattern is None:
        return np.zeros(len(paths), bool)
    return np.array([p is not None and pattern.match(p) is not None for p in paths], bool)


def match_lengths(texts: pa.Array, pattern: str) -> tuple[np.ndarray, np.ndarray]:
    """Per text: (longest match, characters in all matches) of an RE2 pattern, without a Python loop.

    Each match is wrapped in NUL marks and the text split on them: the odd pieces are the matches.
    Texts holding a NUL themselves are measured with Python's `re` instead."""
    texts = pc.fill_null(texts, "")
    longest = np.zeros(len(texts), np.int64)
    total = np.zeros(len(texts), np.int64)
    hit = np.flatnonzero(pc.match_substring_regex(texts, pattern).to_numpy(zero_copy_only=False))
    if len(hit) == 0:
        return longest, total
    if len(hit) < len(texts):
        run, chars = match_lengths(texts.take(pa.array(hit)), pattern)
        longest[hit], total[hit] = run, chars
        return longest, total
    n = len(texts)
    has_nul = pc.match_substring(texts, "\0").to_numpy(zero_copy_only=False)
    marked = pc.replace_substring_regex(texts, pattern, "\0\\0\0")
    pieces = pc.split_pattern(marked, "\0")
    counts = pc.list_value_length(pieces).to_numpy(zero_copy_only=False).astype(np.int64)
    lengths = pc.utf8_length(pc.list_flatten(pieces)).to_numpy(zero_copy_only=False).astype(np.int64)
    row = np.repeat(np.arange(n), counts)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    odd = ((np.arange(len(lengths)) - starts[row]) % 2 == 1) & ~has_nul[row]
    np.add.at(total, row[odd], lengths[odd])
    np.maximum.at(longest, row[odd], lengths[odd])
    for i in np.flatnonzero(has_nul):
        for m in re.finditer(pattern, texts[int(i)].as_py()):
            total[i] += m.end() - m.start()
            longest[i] = max(longest[i], m.end() - m.start())
    return longest, total


def encoded_runs(texts: pa.Array, rules: Rules) -> tuple[np.ndarray, np.ndarray]:
    """Per text: (longest encoded-data match, characters in encoded-data matches), The Stack v2's patterns."""
    texts = pc.fill_null(texts, "")
    longest = np.zeros(len(texts), np.int64)
    covered = np.zeros(len(texts), np.int64)
    for pattern, candidates in zip(rules.encoded, rules.encoded_candidates, strict=True):
        if candidates is not None:
            flagged = np.flatnonzero(pc.match_substring_regex(texts, candidates).to_numpy(zero_copy_only=False))
            if len(flagged):
                run, chars = match_lengths(texts.take(pa.array(flagged, pa.int64())), pattern.pattern)
                np.maximum.at(longest, flagged, run)
                np.add.at(covered, flagged, chars)
            continue
        run, chars = match_lengths(texts, pattern.pattern)
        np.maximum(longest, run, out=longest)
        covered += chars
    return longest, covered


# a leading comment block: an optional shebang / encoding line, then line comments or one block comment
_HEADER_PATTERN = (
    r"\A(?:\ufeff)?(?:#![^\n]*\n)?(?:[ \t]*#[^\n]*coding[:=][^\n]*\n)?\s*"
    r"(?P<block>(?:[ \t]*(?:#|//|--|;|%|!|')[^\n]*(?:\n|\Z)(?:[ \t]*\n)?)+"
    r"|/\*.*?\*/[ \t]*(?:\n|\Z)|<!--.*?-->[ \t]*(?:\n|\Z)|\(\*.*?\*\)[ \t]*(?:\n|\Z)|\{-.*?-\}[ \t]*(?:\n|\Z)"
    r"|(?:\"\"\"|''').*?(?:\"\"\"|''')[ \t]*(?:\n|\Z))")
_HEADER = re.compile(_HEADER_PATTERN, re.DOTALL)
_PY_SPACE = r"[\t-\r\x1c-\x1f\x{85}\p{Z}]"  # Python's str `\s` (str.isspace) as an RE2 class
HEADER_SCAN_CHARS = 20_000


def license_header_end(text: str, rules: Rules) -> int | None:
    """End offset (in characters) of a leading comment block that names a licence, else None."""
    m = _HEADER.match(text[:HEADER_SCAN_CHARS])
    if m is None or not rules.license_words.search(m.group("block")):
        return None
    return m.end()


# what `_HEADER` can start with, after an optional BOM and Python's `\s`: a comment opener; `$` keeps heads
# that are whitespace to their end (the opener may lie beyond them)
_HEADER_OPENER = rf"^\x{{feff}}?{_PY_SPACE}*(?:#|//|--|;|%|!|'|/\*|<!--|\(\*|\{{-|\"\"\"|$)"
OPENER_SCAN_CHARS = 256


def license_header_ends(texts: pa.Array, rules: Rules) -> np.ndarray:
    """`license_header_end` of every text, -1 for none. One RE2 pass over each text's first characters finds
    the texts opening with a comment; only those go through Python's regex."""
    texts = pc.fill_null(texts, "")
    ends = np.full(len(texts), -1, np.int64)
    heads = pc.utf8_slice_codeunits(texts, 0, OPENER_SCAN_CHARS)
    opens = np.flatnonzero(pc.match_substring_regex(heads, _HEADER_OPENER).to_numpy(zero_copy_only=False))
    for i, text in zip(opens.tolist(), texts.take(pa.array(opens, pa.int64())).to_pylist(), strict=True):
        end = license_header_end(text, rules)
        if end is not None:
            ends[i] = end
    return ends


def head_lines(text: str, start: int, lines: int) -> str:
    end = start
    for _ in range(lines):
        nxt = text.find("\n", end)
        if nxt < 0:
            return text[start:]
        end = nxt + 1
    return text[start:end]
