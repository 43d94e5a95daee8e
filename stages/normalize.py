"""`normalize`: repair Unicode (ftfy), normalize form, drop control characters, tidy whitespace.

Later stages hash, shingle and score the text, so it should be in one canonical form first. The
whitespace and control-character rules are regexes over whole Arrow arrays; only the ftfy repair
runs per document, and only on documents that look like they need it.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import StageConfig
from pipeline.schema import REASON
from stages.base import Column, MapStage

# Mojibake and odd characters ftfy can repair; documents without any are passed through untouched.
_SUSPECT = re.compile("[\u0080-\u00ff\u0100-\u017f\u2018-\u201e\u2020-\u2026\ufffd\u00c2\u00c3]")
_CONTROL = r"[\x{0}-\x{8}\x{b}\x{c}\x{e}-\x{1f}\x{7f}-\x{9f}\x{200b}\x{feff}]"


UnicodeForm = Literal["NFC", "NFKC", "none"]


class NormalizeConfig(StageConfig):
    fix_unicode: bool = True  # ftfy: mojibake, HTML entities left in text, bad quotes
    unicode_form: UnicodeForm = "NFC"
    strip_control: bool = True  # control characters except newline and tab; zero-width spaces
    collapse_spaces: bool = True  # runs of spaces/tabs -> one space, no trailing spaces on lines
    max_newlines: int = 2  # at most this many consecutive newlines (2 = one blank line)
    strip: bool = True
    skip_sources: list[str] = []  # e.g. source code from `format: repo`: indentation and blank lines are syntax


def fix_unicode(texts: list[str | None], form: UnicodeForm) -> list[str | None]:
    import ftfy

    out: list[str | None] = []
    config = ftfy.TextFixerConfig(normalization=None if form == "none" else form, unescape_html=False,
                                  uncurl_quotes=False, explain=False)
    for text in texts:
        if text is not None and _SUSPECT.search(text):
            text = ftfy.fix_text(text, config=config)
        elif text is not None and form != "none" and not text.isascii():
            text = unicodedata.normalize(form, text)
        out.append(text)
    return out


def normalize_texts(texts: pa.Array, cfg: NormalizeConfig) -> pa.Array:
    """The stage's text transform on one Arrow array (pure; used by tests and other stages)."""
    if cfg.fix_unicode or cfg.unicode_form != "none":
        if cfg.fix_unicode:
            texts = pa.array(fix_unicode(texts.to_pylist(), cfg.unicode_form), pa.string())
        else:
            texts = pc.utf8_normalize(texts, cfg.unicode_form)
    texts = pc.replace_substring_regex(texts, r"\r\n?", "\n")
    if cfg.strip_control:
        texts = pc.replace_substring_regex(texts, _CONTROL, "")
    if cfg.collapse_spaces:
        texts = pc.replace_substring_regex(texts, r"[ \t\x{a0}\x{3000}]+", " ")
        texts = pc.replace_substring_regex(texts, r" ?\n ?", "\n")
    if cfg.max_newlines >= 1:
        texts = pc.replace_substring_regex(texts, f"\n{{{cfg.max_newlines + 1},}}", "\n" * cfg.max_newlines)
    if cfg.strip:
        texts = pc.utf8_trim_whitespace(texts)
    return texts


class Stage(MapStage):
    Config = NormalizeConfig
    config: NormalizeConfig

    def adds(self) -> tuple[Column, ...]:
        return (Column("normalize_changed", pa.bool_()),)

    def apply(self, table: pa.Table) -> pa.Table:
        before = table.column("text").combine_chunks()
        after = normalize_texts(before, self.config)
        if self.config.skip_sources:
            skipped = pc.fill_null(pc.is_in(table.column("source"), pa.array(self.config.skip_sources, pa.string())),
                                   False)
            after = pc.if_else(skipped, before, after)
        changed = pc.fill_null(pc.not_equal(before, after), False)
        empty = pc.equal(pc.utf8_length(after), 0)
        reason = pc.if_else(empty, pa.scalar("normalize:empty_after_cleaning"), pa.scalar(None, pa.string()))
        table = table.set_column(table.schema.get_field_index("text"), "text", after)
        return table.append_column("normalize_changed", changed).append_column(REASON, reason)

    def counters(self, result: pa.Table) -> dict[str, int]:
        return {"changed": int(pc.sum(result.column("normalize_changed")).as_py() or 0)}
