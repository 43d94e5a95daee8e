"""`url_filter`: remove documents by URL: blocked domains, blocked URL substrings, banned words.

Reasons, checked in this order: `url_filter:domain` (the host is a listed domain or under one),
`url_filter:substring` (a listed substring occurs in the lowercased URL), `url_filter:word`
(FineWeb's rule: a banned word is a whole word of the URL, or `soft_word_threshold` soft-banned
words are, or a banned subword occurs in the normalized URL). A host on the allow list is never
removed. `url_filter_match` says which entry matched. Documents without a URL are kept.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field

from filters import url as urls_lib
from pipeline.config import ReadPath, StageConfig
from pipeline.schema import REASON
from stages.base import Column, MapStage

ReadFiles = Annotated[list[str], ReadPath()]  # files or directories, resolved on the driver and checked at load


class UrlFilterConfig(StageConfig):
    block_domains: ReadFiles = []  # files (one domain per line) or UT1-style blacklist directories
    block_substrings: ReadFiles = []  # files: one URL substring per line (UT1 directories: their `urls`)
    categories: list[str] = []  # UT1 directories: only these categories (default: all)
    allow_domains: ReadFiles = []  # files: these domains and their subdomains are always kept
    banned_words: ReadFiles = []  # files: FineWeb hard-banned words (one hit removes)
    soft_banned_words: ReadFiles = []  # files: FineWeb soft-banned words
    soft_word_threshold: int = Field(default=2, ge=1)
    banned_subwords: ReadFiles = []  # files: substrings of the normalized URL (alphanumerics only)


class Lists:
    """The loaded lists of one configuration (built once per worker)."""

    def __init__(self, cfg: UrlFilterConfig):
        cats = cfg.categories
        self.block = urls_lib.load_domains(urls_lib.list_files(cfg.block_domains, "domains", cats))
        sub_files = urls_lib.list_files(cfg.block_substrings, "urls", cats)
        sub_files += [f for f in urls_lib.list_files([p for p in cfg.block_domains if os.path.isdir(p)], "urls", cats)]
        self.substrings = urls_lib.load_lower(sub_files)
        self.allow = urls_lib.load_domains(urls_lib.list_files(cfg.allow_domains, "domains", cats))
        self.words = set(urls_lib.load_words(map(Path, cfg.banned_words)))
        self.soft = set(urls_lib.load_words(map(Path, cfg.soft_banned_words)))
        self.subwords = urls_lib.load_words(map(Path, cfg.banned_subwords))


def word_match(url: str, lists: Lists, threshold: int) -> str | None:
    """FineWeb's whole-word rules: a banned word, or `threshold` soft-banned words (joined by '+')."""
    words = urls_lib.url_words(url)
    hard = sorted(words & lists.words)
    if hard:
        return hard[0]
    soft = sorted(words & lists.soft)
    return "+".join(soft) if len(soft) >= threshold else None


def filter_urls(url_column: pa.Array, lists: Lists, threshold: int) -> tuple[list[str | None], list[str | None]]:
    """(reason, matched entry) per URL."""
    values = url_column.to_pylist()
    n = len(values)
    filled = pc.fill_null(url_column, "")
    lower = pc.utf8_lower(filled)
    substring = urls_lib.first_match(lower, lists.substrings) if lists.substrings else [None] * n
    subword = (urls_lib.first_match(urls_lib.normalized_urls(filled), lists.subwords) if lists.subwords
               else [None] * n)
    reasons: list[str | None] = []
    matches: list[str | None] = []
    for i, url in enumerate(values):
        reason = match = None
        name = urls_lib.host(url)
        allowed = urls_lib.domain_match(name, lists.allow)
        if url and allowed is None:
            if (match := urls_lib.domain_match(name, lists.block)) is not None:
                reason = "url_filter:domain"
            elif (match := substring[i]) is not None:
                reason = "url_filter:substring"
            elif (match := word_match(url, lists, threshold) or subword[i]) is not None:
                reason = "url_filter:word"
        elif allowed is not None:
            match = f"allow:{allowed}"
        reasons.append(reason)
        matches.append(match)
    return reasons, matches


class Stage(MapStage):
    Config = UrlFilterConfig
    config: UrlFilterConfig
    _lists: Lists | None = None

    def setup(self) -> None:
        self._lists = Lists(self.config)

    def fingerprint(self) -> dict[str, Any]:
        c = self.config
        paths = [*c.block_domains, *c.block_substrings, *c.allow_domains, *c.banned_words, *c.soft_banned_words,
                 *c.banned_subwords]
        return {"lists": urls_lib.files_digest(urls_lib.fingerprint_paths(paths))}

    def reads(self) -> tuple[Column, ...]:
        return (Column("url", pa.string()),)

    def adds(self) -> tuple[Column, ...]:
        return (Column("url_filter_match", pa.string()),)

    def apply(self, table: pa.Table) -> pa.Table:
        if self._lists is None:
            self.setup()
        assert self._lists is not None
        reasons, matches = filter_urls(table.column("url").combine_chunks(), self._lists,
                                       self.config.soft_word_threshold)
        out = table.append_column("url_filter_match", pa.array(matches, pa.string()))
        out = out.drop_columns([REASON]) if REASON in out.column_names else out
        return out.append_column(REASON, pa.array(reasons, pa.string()))
