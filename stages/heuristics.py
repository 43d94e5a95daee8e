"""`heuristics`: Gopher quality/repetition, C4 and FineWeb rules as signals, then decisions.

Every statistic a selected filter computes becomes a column (`gopher_word_count`, `c4_sentences`,
`fineweb_line_punct_ratio`, ...), so thresholds can be studied and changed without re-measuring.
`signals: decisive` (the default) evaluates a document only up to its first failing rule, as datatrove
does, and leaves the columns of the rules never evaluated null; `signals: all` (the default with
`tag_only`) measures everything. Decisions and reasons are the same in both (docs/heuristics.md).
A document fails with the first failing rule of the first failing filter, in the order of
`filters` and of each filter's `RULES` (`gopher_quality:mean_word_length`); `tag_only` writes the
signals and removes nothing (and rewrites nothing).

Scope: `sources`/`skip_sources`, `langs`/`skip_langs` and `where` (a filter expression over columns,
e.g. `where: "is_math or source == 'math'"`) choose the documents the filters apply to
(e.g. `skip_sources: [code]`: code has braces and short lines by nature). Out-of-scope documents are
kept untouched with null signals (null = not measured); if an earlier heuristics stage wrote the
same columns, their values are kept for those rows, so two stages with different scopes compose.

Compatibility: `compat: datatrove` (the default) reproduces datatrove 0.10's decisions (its word
tokens, line and paragraph splitting, sentence counts; `filters/compat.py`), `compat: paper` keeps
this project's reading of the papers. Set per stage, per language (`lang_overrides.<lang>.compat`)
or per filter (`c4: {compat: paper}`, which wins); the built-in Chinese profile uses `paper`.

Languages: the language is the `lang` column (the langid stage) or, without one, a cheap script
check (Han without kana = zh). Each language may have a profile: settings layered as published
defaults < this stage's settings < built-in language defaults (Chinese: jieba words, a Chinese
stop-word list, full-width terminal punctuation; see `filters/cjk.py`) < `lang_overrides`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from filters import c4, fineweb, gopher_quality, gopher_repetition
from filters.base import FilterSettings, first_failure, merged, partial_model
from filters.cjk import BUILTIN_LANG_DEFAULTS, LANG_ALIASES, guess_cjk_lang
from filters.compat import Compat
from filters.text import TextBatch, as_string_array, in_sources, scatter
from pipeline.config import StageConfig, Strict
from pipeline.schema import REASON
from stages.base import Column, MapStage
from synth.filter_expr import FilterError, FilterExpr, valid_expression

FILTERS: dict[str, ModuleType] = {m.NAME: m for m in (gopher_quality, gopher_repetition, c4, fineweb)}
FilterName = Literal["gopher_quality", "gopher_repetition", "c4", "fineweb"]
Segmenter = Literal["regex", "jieba"]
PROFILE_COLUMN = "heuristics_profile"
DEFAULT_PROFILE = "default"

GopherQualitySettings = gopher_quality.Settings
GopherRepetitionSettings = gopher_repetition.Settings
C4Settings = c4.Settings
FineWebSettings = fineweb.Settings
GopherQualityOverride = partial_model(gopher_quality.Settings)
GopherRepetitionOverride = partial_model(gopher_repetition.Settings)
C4Override = partial_model(c4.Settings)
FineWebOverride = partial_model(fineweb.Settings)


class LangOverride(Strict):
    """Per-language changes: only the keys given replace the stage's (and built-in) settings."""

    compat: Compat | None = None
    segmenter: Segmenter | None = None
    gopher_quality: GopherQualityOverride | None = None  # type: ignore[valid-type]
    gopher_repetition: GopherRepetitionOverride | None = None  # type: ignore[valid-type]
    c4: C4Override | None = None  # type: ignore[valid-type]
    fineweb: FineWebOverride | None = None  # type: ignore[valid-type]


class HeuristicsConfig(StageConfig):
    filters: list[FilterName] = ["gopher_quality", "gopher_repetition", "c4", "fineweb"]
    compat: Compat = "datatrove"  # datatrove 0.10's decisions, or `paper`
    tag_only: bool = False
    # decisive: stop at a document's first failing rule (datatrove's order; columns of rules never
    # evaluated are null); all: every statistic for every document. Default: decisive, or all with tag_only
    signals: Literal["all", "decisive"] | None = None
    gopher_quality: GopherQualitySettings = Field(default_factory=GopherQualitySettings)
    gopher_repetition: GopherRepetitionSettings = Field(default_factory=GopherRepetitionSettings)
    c4: C4Settings = Field(default_factory=C4Settings)
    fineweb: FineWebSettings = Field(default_factory=FineWebSettings)
    segmenter: Segmenter = "regex"  # for documents without a language profile
    sources: list[str] | None = None  # apply only to these sources (default: all)
    skip_sources: list[str] = []
    langs: list[str] | None = None  # apply only to these languages (default: all)
    skip_langs: list[str] = []
    where: str | None = None  # apply only where this filter expression holds, e.g. "is_math or source == 'math'"
    lang_overrides: dict[str, LangOverride] = {}
    builtin_lang_defaults: bool = True  # built-in zh profile (filters/cjk.py)
    detect_script: bool = True  # without a `lang` column, tell zh/ja/ko apart by script

    def signals_mode(self) -> str:
        return self.signals or ("all" if self.tag_only else "decisive")

    @field_validator("where")
    @classmethod
    def _expression(cls, value: str | None) -> str | None:
        return valid_expression(value)

    @field_validator("filters")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("each filter may be listed once")
        return value


@dataclass(frozen=True)
class Profile:
    """Resolved settings for one language (or the default)."""

    segmenter: str
    settings: dict[str, FilterSettings]


def signal_schema(filters: Sequence[str]) -> dict[str, pa.DataType]:
    out: dict[str, pa.DataType] = {}
    for name in filters:
        out.update(FILTERS[name].SIGNALS)
    return out


def with_compat(settings: dict[str, FilterSettings], compat: str) -> dict[str, FilterSettings]:
    """Each filter's own `compat` if set, else the profile's."""
    return {name: s if s.compat is not None else s.model_copy(update={"compat": compat})  # type: ignore[attr-defined]
            for name, s in settings.items()}


def build_profiles(cfg: HeuristicsConfig) -> dict[str, Profile]:
    base = {name: getattr(cfg, name) for name in FILTERS}
    profiles = {DEFAULT_PROFILE: Profile(cfg.segmenter, with_compat(base, cfg.compat))}
    langs = set(cfg.lang_overrides) | (set(BUILTIN_LANG_DEFAULTS) if cfg.builtin_lang_defaults else set())
    for lang in sorted(langs):
        builtin: dict[str, Any] = BUILTIN_LANG_DEFAULTS.get(lang, {}) if cfg.builtin_lang_defaults else {}
        user = cfg.lang_overrides.get(lang)
        segmenter = (user.segmenter if user else None) or builtin.get("segmenter") or cfg.segmenter
        settings = {name: merged(base[name], builtin.get(name), getattr(user, name) if user else None)
                    for name in FILTERS}
        compat = (user.compat if user else None) or builtin.get("compat") or cfg.compat
        profiles[lang] = Profile(segmenter, with_compat(settings, compat))  # type: ignore[arg-type]
    return profiles


@dataclass
class FilterRun:
    """The filters' output for one batch: signal values, where each was measured, reasons, new texts."""

    signals: dict[str, np.ndarray]
    measured: dict[str, np.ndarray]  # column -> bool per document (False: not evaluated, null)
    reasons: np.ndarray
    texts: pa.Array | None


@dataclass
class Measured:
    """One filter on one batch: signals, where each was measured, the first failing rule per document,
    the rewritten texts; and the last batch it measured (`reached`, the documents at `reached_idx` of the
    batch, with the word tokens and statistics cut for them), from which the next filter takes its own."""

    signals: dict[str, np.ndarray]
    measured: dict[str, np.ndarray]
    rule: np.ndarray
    texts: pa.Array | None
    reached: TextBatch
    reached_idx: np.ndarray


def _measure(module: ModuleType, batch: TextBatch, settings: FilterSettings, decisive: bool) -> Measured:
    """One filter on one batch.

    Decisive, a filter's `PRECHECKS` (functions measuring its first rules, each more than the one
    before, cheaper than `measure`) run in turn on the documents that passed the previous one, and
    `measure` on those that pass them all; the columns a document never reached stay unmeasured.
    """
    n = batch.n
    steps = [*getattr(module, "PRECHECKS", ()), module.measure] if decisive else [module.measure]
    signals = {name: np.zeros(n, dtype=t.to_pandas_dtype()) for name, t in module.SIGNALS.items()}
    measured = {name: np.zeros(n, bool) for name in module.SIGNALS}
    rule = np.full(n, None, dtype=object)
    idx = np.arange(n)  # the documents of `batch` that `current` holds
    current, texts = batch, None
    for step in steps:
        result = step(current, settings)
        for name, values in result.signals.items():
            signals[name][idx], measured[name][idx] = values, True
        rule[idx] = first_failure(result.fails, current.n)
        if step is module.measure:
            if result.texts is not None:
                texts = result.texts if len(idx) == n else scatter(batch.texts, idx, result.texts)
            break
        passed = np.flatnonzero(rule[idx] == None)  # noqa: E711 - elementwise on object arrays
        if len(passed) == 0:
            break
        if len(passed) < current.n:  # the documents still in, their word tokens kept
            current, idx = current.take(passed), idx[passed]
    return Measured(signals, measured, rule, texts, current, idx)


def kept_rewrites(old: pa.Array, new: pa.Array, kept: np.ndarray) -> pa.Array:
    """The rewritten text where the document is still kept, its text as it was where it is removed."""
    if kept.all():
        return new
    return pc.if_else(pa.array(kept), new, old.cast(new.type))


def run_filters(texts: pa.Array, profile: Profile, filters: Sequence[str], rewrite: bool = True,
                decisive: bool = False) -> FilterRun:
    """Apply `filters` in order to one batch.

    A filter that rewrites text (c4 with `rewrite`) hands its text to the filters after it; a document
    removed by it or before it keeps its text (as in datatrove, whose filter rewrites only what it keeps).
    `decisive`: a document meets only the filters (and rules, see `_measure`) up to its first failing
    one, as in datatrove; its reason is the same either way, since every statistic of a document
    depends on that document alone.
    """
    n = len(texts)
    batch = TextBatch(texts, profile.segmenter)
    signals: dict[str, np.ndarray] = {}
    measured: dict[str, np.ndarray] = {}
    reasons = np.full(n, None, dtype=object)
    current, rewritten = batch.texts, False  # the texts as the next filter sees them
    covered = np.arange(n)  # the documents `batch` holds
    for name in filters:
        module = FILTERS[name]
        alive = np.flatnonzero(reasons == None) if decisive else covered  # noqa: E711
        if len(alive) != len(covered):  # a smaller batch of the documents still in
            batch, covered = batch.take(np.flatnonzero(np.isin(covered, alive))), alive
        full = {col: np.zeros(n, dtype=t.to_pandas_dtype()) for col, t in module.SIGNALS.items()}
        seen = {col: np.zeros(n, bool) for col in module.SIGNALS}
        if len(alive):
            m = _measure(module, batch, profile.settings[name], decisive)
            for col in module.SIGNALS:
                full[col][alive], seen[col][alive] = m.signals[col], m.measured[col]
            failed = (m.rule != None) & (reasons[alive] == None)  # noqa: E711
            reasons[alive[failed]] = [f"{name}:{r}" for r in m.rule[failed]]
            if m.texts is not None and rewrite:
                batch_texts = kept_rewrites(batch.texts, m.texts, reasons[alive] == None)  # noqa: E711
                current = batch_texts if len(alive) == n else scatter(current, alive, batch_texts)
                batch, rewritten = TextBatch(batch_texts, profile.segmenter), True
            elif decisive:
                # the documents still in passed every precheck, so the batch the filter last measured holds
                # them all, with the word tokens it cut: the next filter takes from it (not from `batch`,
                # which would cut them again)
                batch, covered = m.reached, covered[m.reached_idx]
        signals.update(full)
        measured.update(seen)
    return FilterRun(signals, measured, reasons, current if rewritten else None)


class Stage(MapStage):
    Config = HeuristicsConfig
    config: HeuristicsConfig

    def __init__(self, config: HeuristicsConfig, pipeline: Any):
        super().__init__(config, pipeline)
        self.profiles = build_profiles(config)
        self.schema = signal_schema(config.filters)
        self.decisive = config.signals_mode() == "decisive"

    def fingerprint(self) -> dict[str, Any]:
        """What decides word boundaries beyond the settings: jieba's version (Chinese profile) and the
        recorded spaCy/datatrove rules (`compat: datatrove`)."""
        out: dict[str, Any] = {}
        if any(s.compat == "datatrove" for p in self.profiles.values() for s in p.settings.values()):  # type: ignore[attr-defined]
            from filters.en_tokens import rules

            out["datatrove_en"] = rules()["versions"]
        if not any(p.segmenter == "jieba" for p in self.profiles.values()):
            return out
        from importlib.metadata import PackageNotFoundError, version

        try:
            out["jieba"] = version("jieba")
        except PackageNotFoundError:
            out["jieba"] = None
        return out

    def setup(self) -> None:
        if any(p.segmenter == "jieba" for p in self.profiles.values()):
            from filters.cjk import jieba_tokenizer

            jieba_tokenizer()  # build jieba's dictionary once per worker, not inside a batch

    def languages(self, table: pa.Table, texts: pa.Array) -> np.ndarray:
        """Per document: the `lang` column, or else the script guess (object array, None = unknown)."""
        n = table.num_rows
        langs = np.full(n, None, dtype=object)
        if "lang" in table.column_names:
            langs[:] = table.column("lang").to_pylist()
        missing = np.array([v is None for v in langs], bool)
        if self.config.detect_script and missing.any():
            idx = np.flatnonzero(missing)
            langs[idx] = guess_cjk_lang(texts.take(pa.array(idx)))
        return langs

    def scope(self, table: pa.Table, langs: np.ndarray) -> np.ndarray:
        cfg = self.config
        keep = in_sources(table.column("source"), cfg.sources, cfg.skip_sources)
        if cfg.langs is not None:
            keep &= np.array([lang in cfg.langs for lang in langs], bool)
        if cfg.skip_langs:
            keep &= np.array([lang not in cfg.skip_langs for lang in langs], bool)
        if cfg.where is not None:
            keep &= FilterExpr(cfg.where).mask(table)  # a null value does not select its row
        return keep

    def profile_key(self, lang: str | None) -> str:
        if lang in self.profiles:
            return lang
        alias = LANG_ALIASES.get(lang) if lang else None
        return alias if alias in self.profiles else DEFAULT_PROFILE

    def reads(self) -> tuple[Column, ...]:
        where = FilterExpr(self.config.where).columns if self.config.where else []
        return (Column("text", pa.string()), Column("source", pa.string()),
                Column("lang", pa.string(), optional=True),
                *(Column(c, setting="where") for c in where if c not in ("text", "source")))

    def input_problems(self, key: str, schema: pa.Schema) -> list[str]:
        """A `where` expression whose columns exist but whose comparisons do not fit their types."""
        if self.config.where is None:
            return []
        expr = FilterExpr(self.config.where)
        if not all(c in schema.names for c in expr.columns):
            return []  # reported by reads()
        try:
            expr.check(schema, f"{key}.where")
        except FilterError as exc:
            return [str(exc)]
        return []

    def adds(self) -> tuple[Column, ...]:
        return (*(Column(name, t) for name, t in self.schema.items()), Column(PROFILE_COLUMN, pa.string()))

    def apply(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        texts = as_string_array(table.column("text"))
        langs = self.languages(table, texts)
        in_scope = self.scope(table, langs)
        keys = np.array([self.profile_key(lang) for lang in langs], dtype=object)
        keys[~in_scope] = None
        values = {name: np.zeros(n, dtype=t.to_pandas_dtype()) for name, t in self.schema.items()}
        measured = {name: np.zeros(n, bool) for name in self.schema}
        reasons = np.full(n, None, dtype=object)
        text_take = np.arange(n)
        rewritten: list[pa.Array] = [texts]
        offset = n
        for key in sorted({k for k in keys if k is not None}):
            idx = np.flatnonzero(keys == key)
            run = run_filters(texts.take(pa.array(idx)), self.profiles[key], self.config.filters,
                              rewrite=not self.config.tag_only, decisive=self.decisive)
            for name, arr in run.signals.items():
                values[name][idx] = arr
                measured[name][idx] = run.measured[name]
            reasons[idx] = run.reasons
            if run.texts is not None:
                new_texts = run.texts
                rewritten.append(new_texts)
                text_take[idx] = offset + np.arange(len(idx))
                offset += len(idx)
        out = table
        if len(rewritten) > 1:
            new_text = pa.concat_arrays(rewritten).take(pa.array(text_take)).cast(table.schema.field("text").type)
            out = out.set_column(out.schema.get_field_index("text"), table.schema.field("text"), new_text)
        for name, dtype in self.schema.items():
            out = _put_column(out, name, pa.array(values[name], dtype, mask=~measured[name]), in_scope)
        out = _put_column(out, PROFILE_COLUMN, pa.array(keys, pa.string()), in_scope)
        if self.config.tag_only:
            reasons[:] = None
        out = out.drop_columns([REASON]) if REASON in out.column_names else out
        return out.append_column(REASON, pa.array(reasons, pa.string()))

    def counters(self, result: pa.Table) -> dict[str, int]:
        profiles = result.column(PROFILE_COLUMN)
        out = {"heuristics_skipped": int(profiles.null_count)}
        for item in pc.value_counts(profiles.drop_null()).to_pylist():
            out[f"heuristics_profile_{item['values']}"] = int(item["counts"])
        if "c4_lines_removed" in result.column_names:
            out["c4_lines_removed"] = int(pc.sum(result.column("c4_lines_removed")).as_py() or 0)
        return out


def _put_column(table: pa.Table, name: str, values: pa.Array, in_scope: np.ndarray) -> pa.Table:
    """Add or replace a column; where a column already exists, out-of-scope rows keep their value."""
    if name not in table.column_names:
        return table.append_column(name, values)
    i = table.schema.get_field_index(name)
    old = table.column(name).combine_chunks()
    if old.type != values.type:
        old = old.cast(values.type)
    return table.set_column(i, name, pc.if_else(pa.array(in_scope), values, old))
