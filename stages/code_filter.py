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
import pyarrow.compute as pc
from pydantic import Field

from filters.code import (
    Rules,
    TextStats,
    Thresholds,
    encoded_runs,
    head_lines,
    html_visible_chars,
    html_visible_estimate,
    license_header_ends,
    load_rules,
    load_thresholds,
    path_matches,
    python_search,
    table_language,
    text_stats,
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

        stats = text_stats(texts)
        alnum, alpha = stats.fractions()
        values: dict[str, np.ndarray] = {
            "code_lines": stats.lines, "code_max_line_length": stats.max_line, "code_avg_line_length": stats.mean_line,
            "code_alphanum_fraction": alnum, "code_alpha_fraction": alpha}
        headers = license_header_ends(texts, rules)
        values["license_header"] = headers
        if cfg.drop_license_files:
            mark(path_matches(rules.license_file, paths), "license_file")
        py_texts: list[str] = texts.to_pylist() if self.extras_on() else []
        if cfg.data_files:
            mark(self._data_file(py_texts, paths, languages, stats.chars), "data_file")
        if cfg.generated:
            mark(self._generated(py_texts, paths, headers), "generated")
        if cfg.minified:
            mark(self._minified(py_texts, paths, languages, stats.chars, stats.mean_line), "minified")
        values.update(self._encoded(texts, stats.chars, mark))
        if cfg.compat == "starcoder":
            self.starcoder(reasons, mark, texts, paths, languages, stats)
        stripped = None
        if cfg.strip_license_header and (headers > 0).any():
            stripped = pa.array([t[h:] if h > 0 else t for t, h in zip(texts.to_pylist(), headers, strict=True)],
                                pa.string())
        return reasons, values, stripped

    def extras_on(self) -> bool:
        """Whether a rule reading the texts' openings in Python is on (then the texts are converted once)."""
        cfg = self.config
        return cfg.data_files or cfg.generated or cfg.minified

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
        heads = [head_lines(t, max(h, 0), lines) for t, h in zip(texts, headers, strict=True)]
        marker = python_search(heads, rules.generated_markers, rules.generated_candidates)
        return path_matches(rules.generated_paths, paths) | marker

    def _minified(self, texts: list[str], paths: list[str | None], languages: list[str | None],
                  chars: np.ndarray, mean_len: np.ndarray) -> np.ndarray:
        """A minified file name, a bundle marker, or long lines in a long file of a minifiable language."""
        cfg, rules = self.config, self.rules
        assert rules is not None
        minifiable = np.array([lang in rules.minified_languages for lang in languages], bool)
        content = minifiable & (chars >= cfg.minified_min_chars) & (mean_len > cfg.minified_mean_line)
        marker = python_search([t[:2000] for t in texts], rules.minified_markers, rules.minified_candidates)
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

    def table_rows(self, paths: list[str | None], languages: list[str | None]) -> dict[str, np.ndarray]:
        """Per document, its StarCoder table row as arrays (NaN = no threshold): looked up once per distinct
        (language, extension) pair, as a batch of code holds few."""
        cfg, table = self.config, self.table
        assert table is not None
        keys = [(table_language(lang) if lang else "", ext)
                for lang, ext in zip(languages, file_extensions(paths), strict=True)]
        distinct = list(dict.fromkeys(keys))
        index = {key: i for i, key in enumerate(distinct)}
        which = np.fromiter((index[k] for k in keys), np.int64, len(keys))
        found = [table.get(key) for key in distinct]

        def column(get: Any, default: Any, dtype: type) -> np.ndarray:
            values = [default if row is None else get(row) for row in found]
            return np.array([default if v is None else v for v in values], dtype)[which]

        return {"selected": column(lambda r: r.include, cfg.unlisted == "keep", bool),
                "xml": column(lambda r: r.xml, False, bool),
                "long_line": column(lambda r: r.long_line, np.nan, float),
                "mean_line": column(lambda r: r.mean_line, np.nan, float),
                "alphanum": column(lambda r: r.alphanum, np.nan, float),
                "alpha": column(lambda r: r.alpha, np.nan, float),
                "html": np.array([lang == "html" for lang, _ in distinct], bool)[which],
                "sized": np.array([lang in cfg.size_languages for lang, _ in distinct], bool)[which]}

    def starcoder(self, reasons: np.ndarray, mark: Any, texts: pa.Array, paths: list[str | None],
                  languages: list[str | None], stats: TextStats) -> None:
        """bigcode's basic_per_extension, xml, html and large_and_small_files filters, in that order."""
        cfg = self.config
        row = self.table_rows(paths, languages)
        alnum, alpha = stats.fractions()
        mark(~row["selected"], "not_selected")
        with np.errstate(invalid="ignore"):
            mark(stats.max_line > row["long_line"], "long_lines")
            mark(stats.mean_line > row["mean_line"], "mean_line_length")
            mark(alnum < row["alphanum"], "alphanumeric")
            mark(alpha < row["alpha"], "alphabetic")
        xml = np.flatnonzero(row["xml"] & (reasons == None))  # noqa: E711 - elementwise on an object array
        if len(xml):
            heads = pc.utf8_slice_codeunits(texts.take(pa.array(xml)), 0, cfg.xml_prefix_chars)
            mask = np.zeros(len(texts), bool)
            mask[xml] = pc.match_substring(heads, "<?xml version=").to_numpy(zero_copy_only=False)
            mark(mask, "xml_header")
        html = np.flatnonzero(row["html"] & (reasons == None))  # noqa: E711
        if len(html):
            mask = np.zeros(len(texts), bool)
            mask[html] = self.too_little_text(texts.take(pa.array(html)), stats.chars[html])
            mark(mask, "html_visible_text")
        mark(row["sized"] & ((stats.chars < cfg.min_chars) | (stats.chars > cfg.max_chars)), "size")

    def too_little_text(self, html: pa.Array, chars: np.ndarray) -> np.ndarray:
        """bigcode's HTML rule: visible text <= 20% of the file or <= 100 characters. The RE2 estimate
        settles clear cases; files near a threshold get the HTML parser's exact count."""
        cfg = self.config
        visible = html_visible_estimate(html)
        ratio = np.divide(visible, chars, out=np.zeros(len(html)), where=chars > 0)
        near = np.flatnonzero((np.abs(ratio - cfg.html_min_visible_fraction) < HTML_MARGIN)
                              | (np.abs(visible - cfg.html_min_visible_chars) < HTML_NEAR_CHARS))
        for j, text in zip(near.tolist(), html.take(pa.array(near, pa.int64())).to_pylist(), strict=True):
            visible[j] = html_visible_chars(text)
        ratio = np.divide(visible, chars, out=np.zeros(len(html)), where=chars > 0)
        return (ratio <= cfg.html_min_visible_fraction) | (visible <= cfg.html_min_visible_chars)

    def counters(self, result: pa.Table) -> dict[str, int]:
        headers = result.column("license_header")
        scored = result.column("code_lines")
        return {"code_filter_scored": len(scored) - scored.null_count,
                "code_filter_license_headers": len(headers) - headers.null_count}
