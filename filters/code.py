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


def line_stats(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per text: (max line length, mean line length, number of lines), as `str.splitlines()` sees lines.

    ASCII texts whose only line break is `\n` (most code) are measured on their bytes with numpy;
    the others are split by RE2 on every break `str.splitlines()` knows."""
    texts = _large(texts)
    simple = (pc.string_is_ascii(texts).to_numpy(zero_copy_only=False)
              & ~pc.match_substring_regex(texts, r"[\r\x0b\x0c\x1c\x1d\x1e]").to_numpy(zero_copy_only=False))
    if simple.all():
        return _line_stats_newlines(texts)
    maxima, mean, lines = (np.zeros(len(texts), np.int64), np.zeros(len(texts)), np.zeros(len(texts), np.int64))
    for rows, fn in ((np.flatnonzero(simple), _line_stats_newlines), (np.flatnonzero(~simple), _line_stats_re2)):
        if len(rows):
            maxima[rows], mean[rows], lines[rows] = fn(texts.take(pa.array(rows)))
    return maxima, mean, lines


def _line_stats_newlines(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`line_stats` for ASCII texts broken by `\n` only: every line ends at a newline or at the text's end."""
    raw, offsets = _bytes(texts)
    n = len(texts)
    newline = np.flatnonzero(raw == 10)
    newline_row = np.searchsorted(offsets, newline, side="right") - 1
    sizes = np.diff(offsets)
    tail = sizes > 0
    tail[tail] = raw[offsets[1:][tail] - 1] != 10  # a last line without a newline
    # a row's last line ends at the row's end, after its newlines and before the next row's: merge by insertion
    tail_rows = np.flatnonzero(tail)
    at = np.searchsorted(newline, offsets[1:][tail_rows], side="left")
    ends = np.insert(newline, at, offsets[1:][tail_rows])
    rows = np.insert(newline_row, at, tail_rows)
    same_row = np.zeros(len(rows), bool)
    same_row[1:] = rows[1:] == rows[:-1]
    previous_end = np.concatenate([[0], ends[:-1]])
    length = ends - np.where(same_row, previous_end + 1, offsets[:-1][rows])
    lines = np.bincount(rows, minlength=n).astype(np.int64)
    totals = np.bincount(rows, weights=length, minlength=n)
    maxima = np.zeros(n, np.int64)
    first = np.flatnonzero(~same_row)
    if len(first):
        maxima[rows[first]] = np.maximum.reduceat(length, first)
    mean = np.divide(totals, lines, out=np.zeros(n, np.float64), where=lines > 0)
    return maxima, mean, lines


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


_ASCII_ALPHA = np.zeros(256, bool)
_ASCII_ALPHA[[*range(65, 91), *range(97, 123)]] = True
_ASCII_DIGIT = np.zeros(256, bool)
_ASCII_DIGIT[48:58] = True


def _row_sums(flags: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Number of true `flags[offsets[i]:offsets[i+1]]` per row. A loop over rows of `count_nonzero` (SIMD over
    each row's bytes) beats any prefix sum or index list here: the flags are dense and rows are few."""
    bounds = offsets.tolist()
    return np.fromiter((np.count_nonzero(flags[bounds[i]:bounds[i + 1]]) for i in range(len(bounds) - 1)),
                       np.int64, len(bounds) - 1)


def char_fractions(texts: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per text: (characters, alphanumeric fraction, alphabetic fraction); 0 for an empty text.

    ASCII bytes are classified by table over the Arrow data buffer; only the non-ASCII characters of
    the texts that have any go through Python's `str.isalpha`/`str.isnumeric`."""
    texts = _large(texts)
    n = len(texts)
    chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False).astype(np.int64)
    raw, offsets = _bytes(texts)
    alpha = _row_sums(_ASCII_ALPHA[raw], offsets)
    digit = _row_sums(_ASCII_DIGIT[raw], offsets)
    # non-ASCII characters: decode each from its lead byte (few in code) and ask Python
    lead = np.flatnonzero(raw >= 0xC0)
    if len(lead):
        rows = np.searchsorted(offsets, lead, side="right") - 1
        width = np.where(raw[lead] >= 0xF0, 4, np.where(raw[lead] >= 0xE0, 3, 2))
        for pos, row, size in zip(lead.tolist(), rows.tolist(), width.tolist(), strict=True):
            ch = raw[pos: pos + size].tobytes().decode("utf-8", "replace")
            if ch.isalpha():
                alpha[row] += 1
            elif ch.isnumeric():
                digit[row] += 1
    zeros = np.zeros(n, np.float64)
    alnum_frac = np.divide(alpha + digit, chars, out=zeros.copy(), where=chars > 0)
    alpha_frac = np.divide(alpha, chars, out=zeros.copy(), where=chars > 0)
    return chars, alnum_frac, alpha_frac


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
    longest = np.zeros(len(texts), np.int64)
    covered = np.zeros(len(texts), np.int64)
    for pattern in rules.encoded:
        run, chars = match_lengths(texts, pattern.pattern)
        np.maximum(longest, run, out=longest)
        covered += chars
    return longest, covered


# a leading comment block: an optional shebang / encoding line, then line comments or one block comment
_HEADER = re.compile(
    r"\A(?:\ufeff)?(?:#![^\n]*\n)?(?:[ \t]*#[^\n]*coding[:=][^\n]*\n)?\s*"
    r"(?P<block>(?:[ \t]*(?:#|//|--|;|%|!|')[^\n]*(?:\n|\Z)(?:[ \t]*\n)?)+"
    r"|/\*.*?\*/[ \t]*(?:\n|\Z)|<!--.*?-->[ \t]*(?:\n|\Z)|\(\*.*?\*\)[ \t]*(?:\n|\Z)|\{-.*?-\}[ \t]*(?:\n|\Z)"
    r"|(?:\"\"\"|''').*?(?:\"\"\"|''')[ \t]*(?:\n|\Z))",
    re.DOTALL)
HEADER_SCAN_CHARS = 20_000


def license_header_end(text: str, rules: Rules) -> int | None:
    """End offset (in characters) of a leading comment block that names a licence, else None."""
    m = _HEADER.match(text[:HEADER_SCAN_CHARS])
    if m is None or not rules.license_words.search(m.group("block")):
        return None
    return m.end()


def head_lines(text: str, start: int, lines: int) -> str:
    end = start
    for _ in range(lines):
        nxt = text.find("\n", end)
        if nxt < 0:
            return text[start:]
        end = nxt + 1
    return text[start:end]
