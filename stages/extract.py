"""`extract`: the page's main text from its raw HTML (the `html` column web ingest writes) into `text`.

Row-wise, one page at a time: a page whose extractor raises is removed with `extract:error` (the
message in `extract_error`), never the batch; a page with nothing left is removed with
`extract:empty`. Rows without HTML (documents from text inputs) pass through unchanged. The `html`
column is dropped afterwards unless `keep_html`, so later stages and shards carry text only.
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa

from filters.html_extract import extract
from pipeline.config import StageConfig, Strict
from pipeline.schema import REASON
from stages.base import Column, MapStage


class TrafilaturaOptions(Strict):
    favor_precision: bool = False  # drop more borderline text
    favor_recall: bool = False  # keep more borderline text
    include_tables: bool = True
    include_comments: bool = False  # reader comments below an article
    fast: bool = False  # skip the fallback extractors (readability, jusText)
    deduplicate: bool = False


class ResiliparseOptions(Strict):
    list_bullets: bool = True  # "•" / numbers before list items
    alt_texts: bool = True  # image alt text
    links: bool = False  # link targets in the text
    form_fields: bool = False
    noscript: bool = False
    comments: bool = False  # treat reader comment sections as main content
    post_meta: bool = False  # keep bylines and post dates
    skip_elements: list[str] = []  # CSS selectors to drop before extracting


class ExtractConfig(StageConfig):
    # resiliparse: the fastest method that recovers >= 95% of the demo's article sentences with <= 5% of its
    # boilerplate (docs/web-input.md has every method's figures)
    method: Literal["trafilatura", "resiliparse", "plain"] = "resiliparse"
    keep_html: bool = False
    trafilatura: TrafilaturaOptions = TrafilaturaOptions()
    resiliparse: ResiliparseOptions = ResiliparseOptions()


def method_options(cfg: ExtractConfig) -> dict[str, Any]:
    """Keyword arguments of the chosen method's extractor."""
    if cfg.method == "trafilatura":
        return cfg.trafilatura.model_dump()
    opts = cfg.resiliparse.model_dump()
    opts["skip_elements"] = opts["skip_elements"] or None
    return opts


def extract_pages(html: list[str | None], urls: list[str | None], texts: list[str], cfg: ExtractConfig
                  ) -> tuple[list[str], list[str | None], list[str | None]]:
    """(text, reason, error) per row; rows without HTML keep their text."""
    options = method_options(cfg)
    out_text: list[str] = []
    reasons: list[str | None] = []
    errors: list[str | None] = []
    for page, url, text in zip(html, urls, texts, strict=True):
        if page is None:
            out_text.append(text)
            reasons.append(None)
            errors.append(None)
            continue
        try:
            result = extract(cfg.method, page, url, options)
        except Exception as exc:  # one page's failure removes that page, not the batch
            out_text.append("")
            reasons.append("extract:error")
            errors.append(f"{type(exc).__name__}: {exc}"[:1000])
            continue
        out_text.append(result)
        reasons.append(None if result else "extract:empty")
        errors.append(None)
    return out_text, reasons, errors


class Stage(MapStage):
    Config = ExtractConfig
    config: ExtractConfig

    def reads(self) -> tuple[Column, ...]:
        return (Column("text", pa.string()), Column("html", pa.string(), optional=True),
                Column("url", pa.string(), optional=True))

    def adds(self) -> tuple[Column, ...]:
        html = (Column("html", pa.string()),) if self.config.keep_html else ()
        return (*html, Column("html_chars", pa.int64()), Column("extract_error", pa.string()))

    def apply(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        if "html" in table.column_names:
            html = table.column("html").to_pylist()
        else:
            html = [None] * n
        urls = table.column("url").to_pylist() if "url" in table.column_names else [None] * n
        texts, reasons, errors = extract_pages(html, urls, table.column("text").to_pylist(), self.config)
        field = table.schema.field("text")
        out = table.set_column(table.schema.get_field_index("text"), field, pa.array(texts, field.type))
        if "html" in out.column_names and not self.config.keep_html:
            out = out.drop_columns(["html"])
        elif "html" not in out.column_names and self.config.keep_html:
            out = out.append_column("html", pa.nulls(n, pa.string()))
        out = out.append_column("html_chars", pa.array([None if h is None else len(h) for h in html], pa.int64()))
        out = out.append_column("extract_error", pa.array(errors, pa.string()))
        out = out.drop_columns([REASON]) if REASON in out.column_names else out
        return out.append_column(REASON, pa.array(reasons, pa.string()))

    def counters(self, result: pa.Table) -> dict[str, int]:
        """Pages extracted (rows that had HTML), beside the documents passed through."""
        return {"pages": result.num_rows - result.column("html_chars").null_count}
