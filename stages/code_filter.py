"""`code_filter`: StarCoder's basic code filters, plus generated, minified, data-like and encoded files.

Every statistic is a column on the document; every removal a reason (`code_filter:<rule>`), the
first rule that fails in this order:

1. `license_file` (LICENSE, COPYING, ...; `drop_license_files`), `data_file` (lock files, `go.sum`,
   certificates and keys, source maps; JSON/XML/CSV/YAML over `max_data_chars`), `generated`
   (generator file names such as `*_pb2.py`; marker phrases in the first `generated_lines` lines
   after a licence header), `minified` (`*.min.js`, `dist/` bundles, bundler boilerplate, or a mean
   line over `minified_mean_line` in a JavaScript/CSS/HTML/JSON/... file of at least `minified_min_chars`),
   `encoded_data` (The
   Stack v2: a base64/hex/`\\uXXXX` run over `encoded_max_run` characters, or runs covering over
   `encoded_max_fraction` of the file). Each group can be switched off; patterns are data
   (`filters/code_data/code_rules.yaml`).
2. `compat: starcoder` (default), bigcode's StarCoderData decisions per (language, extension) from
   the table NeMo Curator ships as `code_meta.csv`: `not_selected` (pair missing from the table or
   not included; `unlisted: keep` keeps pairs missing from it), `long_lines`, `mean_line_length`
   (only where a long-line threshold is set), `alphanumeric`, `alphabetic` (where the table sets it),
   `xml_header` (`<?xml version=` in the first 100 characters, where the table's XML flag is set),
   `html_visible_text` (HTML: text outside script/style must be > 20% and > 100 characters),
   `size` (JSON and YAML: 100 to 5000 characters). `compat: none` runs only the rules of step 1.

A leading licence comment is found in every in-scope file (`license_header`: its end offset, null
if none) and cut off when `strip_license_header` is set. Documents are in scope when they have a
`path` or `language` (code inputs: see docs/code.md) and pass `sources`/`skip_sources`; others are
kept untouched with null signals.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field

from filters.code import (
    Rules,
    Thresholds,
    char_fractions,
    encoded_runs,
    head_lines,
    html_visible_chars,
    html_visible_estimate,
    license_header_end,
    line_stats,
    load_rules,
    load_thresholds,
    path_matches,
    table_language,
)
from filters.code_language import detect_language, file_extensions
from filters.text import as_string_array, in_sources
from pipeline.config import ReadFile, StageConfig
from pipeline.io import sha256_file
from pipeline.schema import REASON
from stages.base import MapStage

Fraction = Annotated[float, Field(ge=0.0, le=1.0)]
HTML_MARGIN = 0.1  # HTML files whose estimated visible share is within this of a threshold are parsed,
HTML_NEAR_CHARS = 50  # and those whose estimated visible characters are this close to the minimum
PREFIX = "code_filter:"
SIGNALS: dict[str, pa.DataType] = {
    "code_lines": pa.int64(),
    "code_max_line_length": pa.int64(),
    "code_avg_line_length": pa.float64(),
    "code_alphanum_fraction": pa.float64(),
    "code_alpha_fraction": pa.float64(),
    "code_encoded_max_run": pa.int64(),
    "code_encoded_fraction": pa.float64(),
    "license_header": pa.int64(),
}


class CodeFilterConfig(StageConfig):
    compat: Literal["starcoder", "none"] = "starcoder"
    thresholds: ReadFile | None = None  # a table in the shipped format instead of StarCoder's
    unlisted: Literal["drop", "keep"] = "drop"  # a (language, extension) missing from the table (StarCoder: drop)
    xml_prefix_chars: int = Field(default=100, ge=1)
    html_min_visible_fraction: Fraction = 0.2
    html_min_visible_chars: int = Field(default=100, ge=0)
    size_languages: list[str] = ["json", "yaml"]  # table languages with StarCoder's size window
    min_chars: int = Field(default=100, ge=0)
    max_chars: int = Field(default=5000, ge=1)
    drop_license_files: bool = True
    data_files: bool = True
    max_data_chars: int = Field(default=50_000, ge=1)
    generated: bool = True
    generated_lines: int = Field(default=5, ge=1)  # The Stack v2: markers in the first 5 lines
    minified: bool = True
    minified_mean_line: int = Field(default=200, ge=1)
    minified_min_chars: int = Field(default=1000, ge=0)
    encoded: bool = True
    encoded_max_run: int = Field(default=1024, ge=1)
    encoded_max_fraction: Fraction = 0.5
    strip_license_header: bool = False
    rules: ReadFile | None = None  # a rules file in the shipped format instead of filters/code_data/code_rules.yaml
    sources: list[str] | None = None
    skip_sources: list[str] = []
    tag_only: bool = False  # signals and `code_reason` only; nothing removed


def _column(table: pa.Table, name: str) -> list[Any]:
    return table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows


class Stage(MapStage):
    Config = CodeFilterConfig
    config: CodeFilterConfig

    def __init__(self, config: CodeFilterConfig, pipeline: Any):
        super().__init__(config, pipeline)
        self.table: dict[tuple[str, str], Thresholds] | None = None
        self.rules: Rules | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {name: sha256_file(path) for name, path in (("thresholds", self.config.thresholds),
                                                            ("rules", self.config.rules)) if path}

    def setup(self) -> None:
        if self.table is None:
            self.table = load_thresholds(self.config.thresholds)
            self.rules = load_rules(self.config.rules)

    def scope(self, table: pa.Table, paths: list[str | None], languages: list[str | None]) -> np.ndarray:
        cfg = self.config
        keep = np.array([p is not None or lang is not None for p, lang in zip(paths, languages, strict=True)], bool)
        return keep & in_sources(table.column("source"), cfg.sources, cfg.skip_sources)

    def apply(self, table: pa.Table) -> pa.Table:
        self.setup()
        n = table.num_rows
        paths = _column(table, "path")
        languages = [lang if lang is not None or p is None else detect_language(p)
                     for p, lang in zip(paths, _column(table, "language"), strict=True)]
        in_scope = self.scope(table, paths, languages)
        idx = np.flatnonzero(in_scope)
        all_texts = as_string_array(table.column("text"))
        texts = (all_texts if len(idx) == n else all_texts.take(pa.array(idx, pa.int64()))).cast(pa.large_string())
        sub_paths = [paths[i] for i in idx]
        sub_langs = [languages[i] for i in idx]
        reasons, values, stripped = self.decide(texts, sub_paths, sub_langs)
        out = table
        if stripped is not None:
            take = np.arange(n)
            take[idx] = n + np.arange(len(idx))
            field = table.schema.field("text")
            new_text = pa.concat_arrays([all_texts, stripped]).take(pa.array(take)).cast(field.type)
            out = out.set_column(out.schema.get_field_index("text"), field, new_text)
        for name, dtype in SIGNALS.items():
            full = np.zeros(n, values[name].dtype)
            full[idx] = values[name]
            nullable = name in ("license_header", "code_encoded_max_run", "code_encoded_fraction")
            mask = ~in_scope | (full < 0) if nullable else ~in_scope
            out = out.drop_columns([name]) if name in out.column_names else out
            out = out.append_column(name, pa.array(full, dtype, mask=mask))
        all_reasons = np.full(n, None, dtype=object)
        all_reasons[idx] = reasons
        if self.config.tag_only:
            out = out.drop_columns(["code_reason"]) if "code_reason" in out.column_names else out
            out = out.append_column("code_reason", pa.array(all_reasons, pa.string()))
            all_reasons[:] = None
        out = out.drop_columns([REASON]) if REASON in out.column_names else out
        return out.append_column(REASON, pa.array(all_reasons, pa.string()))

    def decide(self, texts: pa.Array, paths: list[str | None], languages: list[str | None]
               ) -> tuple[np.ndarray, dict[str, np.ndarray], pa.Array | None]:
        """Reasons (None = keep), signal arrays and the licence-stripped texts (None = unchanged)."""
        cfg, rules, thresholds = self.config, self.rules, self.table
        assert rules is not None and thresholds is not None
        n = len(texts)
        reasons = np.full(n, None, dtype=object)

        def mark(mask: np.ndarray, rule: str) -> None:
            reasons[(reasons == None) & mask] = PREFIX + rule  # noqa: E711 - elementwise on an object array

        max_len, mean_len, lines = line_stats(texts)
        chars, alnum, alpha = char_fractions(texts)
        values: dict[str, np.ndarray] = {
            "code_lines": lines, "code_max_line_length": max_len, "code_avg_line_length": mean_len,
            "code_alphanum_fraction": alnum, "code_alpha_fraction": alpha}
        py_texts: list[str] = texts.to_pylist()
        headers = np.array([e if (e := license_header_end(t, rules)) is not None else -1 for t in py_texts], np.int64)
        values["license_header"] = headers
        if cfg.drop_license_files:
            mark(path_matches(rules.license_file, paths), "license_file")
        if cfg.data_files:
            mark(self._data_file(py_texts, paths, languages, chars), "data_file")
        if cfg.generated:
            mark(self._generated(py_texts, paths, headers), "generated")
        if cfg.minified:
            mark(self._minified(py_texts, paths, languages, chars, mean_len), "minified")
        values.update(self._encoded(texts, chars, mark))
        if cfg.compat == "starcoder":
            self.starcoder(reasons, mark, py_texts, paths, languages, max_len, mean_len, alnum, alpha, chars)
        stripped = None
        if cfg.strip_license_header and (headers > 0).any():
            stripped = pa.array([t[h:] if h > 0 else t for t, h in zip(py_texts, headers, strict=True)], pa.string())
        return reasons, values, stripped

    def _data_file(self, texts: list[str], paths: list[str | None], languages: list[str | None],
                   chars: np.ndarray) -> np.ndarray:
        """Lock files, certificates, source maps (by path or opening marker) and large data-language files."""
        rules = self.rules
        assert rules is not None
        big = chars > self.config.max_data_chars
        data_lang = np.array([lang in rules.data_languages for lang in languages], bool)
        marker = np.array([rules.data_markers.search(t[:200]) is not None for t in texts], bool)
        return path_matches(rules.data_paths, paths) | (data_lang & big) | marker

    def _generated(self, texts: list[str], paths: list[str | None], headers: np.ndarray) -> np.ndarray:
        """A generator's file name, or a generator's marker in the first lines after the licence header."""
        rules, lines = self.rules, self.config.generated_lines
        assert rules is not None
        marker = np.array([rules.generated_markers.search(head_lines(t, max(h, 0), lines)) is not None
                           for t, h in zip(texts, headers, strict=True)], bool)
        return path_matches(rules.generated_paths, paths) | marker

    def _minified(self, texts: list[str], paths: list[str | None], languages: list[str | None],
                  chars: np.ndarray, mean_len: np.ndarray) -> np.ndarray:
        """A minified file name, a bundle marker, or long lines in a long file of a minifiable language."""
        cfg, rules = self.config, self.rules
        assert rules is not None
        minifiable = np.array([lang in rules.minified_languages for lang in languages], bool)
        content = minifiable & (chars >= cfg.minified_min_chars) & (mean_len > cfg.minified_mean_line)
        marker = np.array([rules.minified_markers.search(t[:2000]) is not None for t in texts], bool)
        return path_matches(rules.minified_paths, paths) | content | marker

    def _encoded(self, texts: pa.Array, chars: np.ndarray, mark: Any) -> dict[str, np.ndarray]:
        """The encoded-data signals, marking their rule; a rule that is off leaves them null (-1 here)."""
        cfg, n = self.config, len(texts)
        if not cfg.encoded:
            return {"code_encoded_max_run": np.full(n, -1, np.int64), "code_encoded_fraction": np.full(n, -1.0)}
        assert self.rules is not None
        longest, covered = encoded_runs(texts, self.rules)
        fraction = np.divide(covered, chars, out=np.zeros(n), where=chars > 0).clip(0, 1)
        mark((longest > cfg.encoded_max_run) | (fraction > cfg.encoded_max_fraction), "encoded_data")
        return {"code_encoded_max_run": longest, "code_encoded_fraction": fraction}

    def starcoder(self, reasons: np.ndarray, mark: Any, texts: list[str], paths: list[str | None],
                  languages: list[str | None], max_len: np.ndarray, mean_len: np.ndarray, alnum: np.ndarray,
                  alpha: np.ndarray, chars: np.ndarray) -> None:
        """bigcode's basic_per_extension, xml, html and large_and_small_files filters, in that order."""
        cfg, table = self.config, self.table
        assert table is not None
        n = len(texts)
        nan = np.full(n, np.nan)
        long_line, mean_line, alnum_min, alpha_min = nan.copy(), nan.copy(), nan.copy(), nan.copy()
        selected = np.zeros(n, bool)
        xml = np.zeros(n, bool)
        keys = []
        extensions = file_extensions(paths)
        for i, (ext, lang) in enumerate(zip(extensions, languages, strict=True)):
            key = (table_language(lang) if lang else "", ext)
            keys.append(key[0])
            row = table.get(key)
            if row is None:
                selected[i] = cfg.unlisted == "keep"
                continue
            selected[i] = row.include
            xml[i] = row.xml
            for arr, value in ((long_line, row.long_line), (mean_line, row.mean_line), (alnum_min, row.alphanum),
                               (alpha_min, row.alpha)):
                arr[i] = np.nan if value is None else value
        mark(~selected, "not_selected")
        with np.errstate(invalid="ignore"):
            mark(max_len > long_line, "long_lines")
            mark(mean_len > mean_line, "mean_line_length")
            mark(alnum < alnum_min, "alphanumeric")
            mark(alpha < alpha_min, "alphabetic")
        prefix = cfg.xml_prefix_chars
        mark(xml & np.array(["<?xml version=" in t[:prefix] for t in texts], bool), "xml_header")
        html = np.flatnonzero((np.array(keys, dtype=object) == "html") & (reasons == None))  # noqa: E711
        if len(html):
            # the RE2 estimate settles clear cases; files near a threshold get the HTML parser's count
            visible = html_visible_estimate(pa.array([texts[i] for i in html], pa.string()))
            ratio = np.divide(visible, chars[html], out=np.zeros(len(html)), where=chars[html] > 0)
            near = ((np.abs(ratio - cfg.html_min_visible_fraction) < HTML_MARGIN)
                    | (np.abs(visible - cfg.html_min_visible_chars) < HTML_NEAR_CHARS))
            for j in np.flatnonzero(near):
                visible[j] = html_visible_chars(texts[html[j]])
            ratio = np.divide(visible, chars[html], out=np.zeros(len(html)), where=chars[html] > 0)
            bad = (ratio <= cfg.html_min_visible_fraction) | (visible <= cfg.html_min_visible_chars)
            mask = np.zeros(n, bool)
            mask[html[bad]] = True
            mark(mask, "html_visible_text")
        sized = np.isin(np.array(keys, dtype=object), cfg.size_languages)
        mark(sized & ((chars < cfg.min_chars) | (chars > cfg.max_chars)), "size")

    def counters(self, result: pa.Table) -> dict[str, int]:
        headers = result.column("license_header")
        scored = result.column("code_lines")
        return {"code_filter_scored": len(scored) - scored.null_count,
                "code_filter_license_headers": len(headers) - headers.null_count}
