"""`extract`: the page's main text from its raw HTML (the `html` column web ingest writes) into `text`.

Row-wise, one page at a time: a page whose extractor raises is removed with `extract:error` (the
message in `extract_error`), never the batch; a page with nothing left is removed with
`extract:empty`; a page over the size limits (`max_html_chars`, `max_tags`: checked before parsing,
so the decision never depends on the machine) is removed with `extract:too_large`, and one whose
extraction runs past `timeout_s` (a safety net for pathological HTML) with `extract:timeout`.
Formulas come out as TeX and code blocks fenced (docs/extraction.md); `math_formulas` counts the
formulas per page. Rows without HTML (documents from text inputs) pass through unchanged. The `html`
column is dropped afterwards unless `keep_html`, so later stages and shards carry text only.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from filters.html_extract import extract_page
from filters.time_limit import TimeLimitExceeded, time_limit
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
    # blocks: a learned block classifier over an lxml parse; on real pages with human main text it is about as
    # accurate as Trafilatura at 4x its extraction speed (docs/extraction.md has every method's figures)
    method: Literal["blocks", "trafilatura", "resiliparse", "plain"] = "blocks"
    keep_html: bool = False
    math_and_code: bool = True  # other methods: formulas to TeX and code fenced first (blocks always does)
    max_html_chars: int = 5_000_000  # larger pages: extract:too_large
    max_tags: int = 250_000  # pages with more '<' than this: extract:too_large
    timeout_s: float = 10.0  # wall time per page; over it: extract:timeout (0: no limit)
    trafilatura: TrafilaturaOptions = TrafilaturaOptions()
    resiliparse: ResiliparseOptions = ResiliparseOptions()


def method_options(cfg: ExtractConfig) -> dict[str, Any]:
    """Keyword arguments of the chosen method's extractor."""
    if cfg.method == "blocks":
        return {}
    if cfg.method == "trafilatura":
        opts = cfg.trafilatura.model_dump()
    else:
        opts = cfg.resiliparse.model_dump()
        opts["skip_elements"] = opts["skip_elements"] or None
    return {**opts, "math_and_code": cfg.math_and_code}


def size_problem(chars: int, tags: int, cfg: ExtractConfig) -> str | None:
    """Why a page is too large to parse, or None (counted on the column: no parse needed)."""
    if chars > cfg.max_html_chars:
        return f"{chars:,} characters of HTML (max_html_chars {cfg.max_html_chars:,})"
    if tags > cfg.max_tags:
        return f"{tags:,} tags (max_tags {cfg.max_tags:,})"
    return None


class PageResult(NamedTuple):
    text: str
    reason: str | None
    error: str | None
    formulas: int | None


def extract_one(page: bytes | None, chars: int, tags: int, url: str | None, text: str, cfg: ExtractConfig,
                options: dict[str, Any]) -> PageResult:
    """One row: rows without HTML keep their text; every removal carries its reason."""
    if page is None:
        return PageResult(text, None, None, None)
    problem = size_problem(chars, tags, cfg)
    if problem:
        return PageResult("", "extract:too_large", problem, None)
    try:
        with time_limit(cfg.timeout_s):
            result = extract_page(cfg.method, page, url, options)
    except TimeLimitExceeded:
        return PageResult("", "extract:timeout", f"extraction took over {cfg.timeout_s:g} s", None)
    except Exception as exc:  # one page's failure removes that page, not the batch
        return PageResult("", "extract:error", f"{type(exc).__name__}: {exc}"[:1000], None)
    return PageResult(result.text, None if result.text else "extract:empty", None, result.formulas)


class PageColumns(NamedTuple):
    """The `html` column as the extractors take it: UTF-8 bytes (Arrow strings are UTF-8 already, so the
    pages never become Python strings only to be encoded again for the parser), with each page's
    characters and '<' counted by Arrow kernels for the size limits."""

    pages: list[bytes | None]
    chars: list[int | None]
    tags: list[int | None]
    html_chars: pa.Array | pa.ChunkedArray  # int64, the `html_chars` column


def page_columns(table: pa.Table) -> PageColumns:
    n = table.num_rows
    if "html" not in table.column_names:
        return PageColumns([None] * n, [None] * n, [None] * n, pa.nulls(n, pa.int64()))
    html = table.column("html")
    chars = pc.utf8_length(html).cast(pa.int64())
    binary = pa.large_binary() if pa.types.is_large_string(html.type) else pa.binary()
    return PageColumns(html.cast(binary).to_pylist(), chars.to_pylist(), pc.count_substring(html, "<").to_pylist(),
                       chars)


def extract_pages(html: PageColumns, urls: list[str | None], texts: list[str], cfg: ExtractConfig
                  ) -> list[PageResult]:
    options = method_options(cfg)
    return [extract_one(page, chars or 0, tags or 0, url, text, cfg, options)
            for page, chars, tags, url, text in zip(html.pages, html.chars, html.tags, urls, texts, strict=True)]


class Stage(MapStage):
    Config = ExtractConfig
    config: ExtractConfig

    def reads(self) -> tuple[Column, ...]:
        return (Column("text", pa.string()), Column("html", pa.string(), optional=True),
                Column("url", pa.string(), optional=True))

    def adds(self) -> tuple[Column, ...]:
        html = (Column("html", pa.string()),) if self.config.keep_html else ()
        return (*html, Column("html_chars", pa.int64()), Column("math_formulas", pa.int32()),
                Column("extract_error", pa.string()))

    def apply(self, table: pa.Table) -> pa.Table:
        n = table.num_rows
        html = page_columns(table)
        urls = table.column("url").to_pylist() if "url" in table.column_names else [None] * n
        results = extract_pages(html, urls, table.column("text").to_pylist(), self.config)
        texts = [r.text for r in results]
        field = table.schema.field("text")
        out = table.set_column(table.schema.get_field_index("text"), field, pa.array(texts, field.type))
        if "html" in out.column_names and not self.config.keep_html:
            out = out.drop_columns(["html"])
        elif "html" not in out.column_names and self.config.keep_html:
            out = out.append_column("html", pa.nulls(n, pa.string()))
        out = out.append_column("html_chars", html.html_chars)
        out = out.append_column("math_formulas", pa.array([r.formulas for r in results], pa.int32()))
        out = out.append_column("extract_error", pa.array([r.error for r in results], pa.string()))
        out = out.drop_columns([REASON]) if REASON in out.column_names else out
        return out.append_column(REASON, pa.array([r.reason for r in results], pa.string()))

    def counters(self, result: pa.Table) -> dict[str, int]:
        """Pages extracted (rows that had HTML), beside the documents passed through."""
        return {"pages": result.num_rows - result.column("html_chars").null_count}
