"""Deterministic demo corpus: five sources in five formats, with planted problems and ground truth.

`write_demo_corpus(out_dir, n_docs, seed)` writes (paths relative to `out_dir`):

* `web/part-NNNN.jsonl.gz`    fields `text`, `url` (no id: ids derive from source `web`, file, line)
* `forum/part-NNNN.jsonl.zst` fields `doc_id`, `body`, `link`
* `encyclopedia/part-NNNN.parquet` columns `id`, `text`, `url`, `title`
* `code/part-NNNN.jsonl`      fields `id`, `text`, `url`
* `math/`                     a Hugging Face dataset (`save_to_disk`), columns `id`, `text`
* `truth.jsonl`               one line per record written (see `TRUTH_FIELDS`)

truth.jsonl is in write order (sources as in `SOURCES`, then file, then line). Fields:
`source`, `file` (path relative to the source folder; "math" for the HF dataset, as ingest names it),
`line` (1-based line, Parquet row, or row over the whole HF dataset), `id` (what ingest assigns: the
record's own id, else `derived_doc_id`; for lines whose id cannot be parsed, the derived id),
`malformed` (None or bad_json / invalid_utf8 / missing_text / non_string_text / empty_text) and
`malformed_detail`, `lang`, `domain`, `quality`, `subtype` (low/spam style, encyclopedia kind,
code language), `exact_dup_of` / `near_dup_of` (id of the original), `dup_variant` (identical /
whitespace / case, or accidental for template-made pages that coincide by chance), `jaccard`
(measured `shingle_jaccard` to the original), `near_target`, `near_edits`, `n_chars`, and for math
`shard` / `shard_row` (the Arrow file and its row), and `plants` for pages that got planted test
material (pipeline/demo/plants.py): the eval set, item, variant (verbatim/edited) and position of a
planted evaluation item, and the indices of the boilerplate paragraphs.

`eval/demo_qa.jsonl` is the evaluation set those pages contaminate (id, question, answer).

Documents are English and Chinese news, encyclopedia articles, forum posts, code and math, at four
quality levels (high, low, spam, short). Planted problems: malformed records (JSONL files only),
exact duplicates (some differing only in whitespace or case) and near duplicates edited to target
Jaccard levels, measured with `shingle_jaccard`. Every document's text is a function of
(seed, position), so duplicates regenerate their original instead of keeping texts in memory:
generation streams file by file and scales to millions of documents.
"""

from __future__ import annotations

import bisect
import gzip
import hashlib
import json
import math
import shutil
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

from pipeline.demo import plants as planting
from pipeline.demo.text import (
    exact_variant,
    generate,
    generate_units,
    make_near_dup,
    make_url,
    normalize_for_exact,
    normalize_for_shingles,
    shingle_jaccard,
)
from pipeline.demo.web_pages import write_crawl
from pipeline.ids import derived_doc_id

__all__ = [
    "SOURCES",
    "TRUTH_FIELDS",
    "load_truth",
    "normalize_for_exact",
    "normalize_for_shingles",
    "shingle_jaccard",
    "write_demo_corpus",
]

SOURCES = ("web", "forum", "encyclopedia", "code", "math")
SOURCE_SHARE = {"web": 0.40, "forum": 0.20, "encyclopedia": 0.20, "code": 0.10, "math": 0.10}
FILE_SUFFIX = {"web": ".jsonl.gz", "forum": ".jsonl.zst", "encyclopedia": ".parquet", "code": ".jsonl"}
# JSON field names per source: (id, text, url); None = the source has no such field
FIELDS = {"web": (None, "text", "url"), "forum": ("doc_id", "body", "link"), "code": ("id", "text", "url")}
ID_PREFIX = {"forum": "forum-", "encyclopedia": "enc-", "code": "code-", "math": "math-"}
MAX_PER_FILE = 1000

LANGS = ("en", "zh")
DOMAINS = ("news", "encyclopedia", "code", "forum", "math")
QUALITIES = ("high", "low", "spam", "short")
MALFORMED_KINDS = ("bad_json", "invalid_utf8", "missing_text", "non_string_text", "empty_text")
MALFORMED_SOURCES = ("web", "forum", "code")  # the JSONL-family files
MALFORMED_WEIGHT = {"web": 4, "forum": 2, "code": 1}

# (lang, domain, quality, weight) of original documents per source
MIX: dict[str, tuple[tuple[str, str, str, float], ...]] = {
    "web": (("en", "news", "high", 0.40), ("zh", "news", "high", 0.13), ("en", "news", "low", 0.17),
            ("zh", "news", "low", 0.04), ("en", "news", "spam", 0.09), ("zh", "news", "spam", 0.05),
            ("en", "news", "short", 0.08), ("zh", "news", "short", 0.04)),
    "forum": (("en", "forum", "high", 0.62), ("zh", "forum", "high", 0.12), ("en", "forum", "low", 0.16),
              ("zh", "forum", "low", 0.03), ("en", "forum", "spam", 0.03), ("zh", "forum", "spam", 0.01),
              ("en", "forum", "short", 0.02), ("zh", "forum", "short", 0.01)),
    "encyclopedia": (("en", "encyclopedia", "high", 0.72), ("zh", "encyclopedia", "high", 0.20),
                     ("en", "encyclopedia", "low", 0.06), ("zh", "encyclopedia", "low", 0.02)),
    "code": (("en", "code", "high", 1.0),),
    "math": (("en", "math", "high", 1.0),),
}
EXACT_DUP_RATE = 0.03
NEAR_DUP_RATE = 0.05
NEAR_TARGETS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98)
EXACT_VARIANTS = (("identical", 0.5), ("whitespace", 0.3), ("case", 0.2))
# where a duplicate placed in a source may copy from (own source first), and how often from elsewhere
DUP_FROM = {"web": ("web",), "forum": ("forum", "web"), "encyclopedia": ("encyclopedia",),
            "code": ("code",), "math": ("math",)}
CROSS_SOURCE_RATE = 0.25

TRUTH_FIELDS = ("source", "file", "line", "id", "malformed", "malformed_detail", "lang", "domain", "quality",
                "subtype", "exact_dup_of", "dup_variant", "near_dup_of", "jaccard", "near_target", "near_edits",
                "n_chars", "shard", "shard_row", "plants")

_ROLE_ORIG, _ROLE_EXACT, _ROLE_NEAR, _ROLE_BAD = 0, 1, 2, 3
_M64 = (1 << 64) - 1


def _doc_seed(seed: int, gidx: int) -> int:
    """splitmix64 of (seed, global position): independent, reproducible per-document seeds."""
    z = (seed * 0x9E3779B97F4A7C15 + (gidx + 1) * 0xD1B54A32D192ED03) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def _largest_remainder(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Integer counts summing exactly to `total`, proportional to `weights` (ties by key order)."""
    s = sum(weights.values())
    raw = {k: total * w / s for k, w in weights.items()}
    out = {k: int(v) for k, v in raw.items()}
    rest = total - sum(out.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - out[k]), list(weights).index(k)))[:rest]:
        out[k] += 1
    return out


def _file_ranges(total: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) ranges of at most ~MAX_PER_FILE records; at least two files once
    there are 20 records, so every source has several files. Same split as `Dataset.shard(contiguous=True)`."""
    k = max(1, math.ceil(total / MAX_PER_FILE))
    if k < 2 and total >= 20:
        k = 2
    div, mod = divmod(total, k)
    ranges = []
    for i in range(k):
        start = i * div + min(i, mod)
        ranges.append((start, start + div + (1 if i < mod else 0)))
    return ranges


def _relpath(source: str, file_idx: int, n_files: int) -> str:
    if source == "math":
        return f"data-{file_idx:05d}-of-{n_files:05d}.arrow"
    return f"part-{file_idx:04d}{FILE_SUFFIX[source]}"


@dataclass
class _SourcePlan:
    name: str
    offset: int  # global index of the source's first record
    total: int  # records including malformed
    malformed: dict[int, str]  # local index -> kind
    ranges: list[tuple[int, int]]

    def __post_init__(self) -> None:
        self.starts = [r[0] for r in self.ranges]

    def locate(self, local: int) -> tuple[int, int]:
        """(file index, 1-based line) of a local record index."""
        f = bisect.bisect_right(self.starts, local) - 1
        return f, local - self.starts[f] + 1


class _Corpus:
    """Plan and state shared while writing: per-record metadata kept compactly in arrays."""

    def __init__(self, n_docs: int, seed: int) -> None:
        self.seed = seed
        self.rng = Random(seed)
        valid = _largest_remainder(n_docs, SOURCE_SHARE)
        n_bad = max(10, round(0.01 * n_docs)) if n_docs > 0 else 0
        bad_per_source = _largest_remainder(n_bad, {s: MALFORMED_WEIGHT[s] for s in MALFORMED_SOURCES})
        kinds = [MALFORMED_KINDS[i % len(MALFORMED_KINDS)] for i in range(n_bad)]
        self.rng.shuffle(kinds)
        self.plans: dict[str, _SourcePlan] = {}
        offset = 0
        for s in SOURCES:
            m = bad_per_source.get(s, 0)
            total = valid[s] + m
            pos = sorted(self.rng.sample(range(total), m)) if m else []
            malformed = {p: kinds.pop() for p in pos}
            self.plans[s] = _SourcePlan(s, offset, total, malformed, _file_ranges(total))
            offset += total
        n = offset
        self.n_records = n
        self.role = bytearray(n)
        self.lang = bytearray(n)
        self.domain = bytearray(n)
        self.quality = bytearray(n)
        # originals that duplicates may copy: exact dups take high or low, near dups high only
        self.exact_pool: dict[str, array] = {s: array("q") for s in SOURCES}
        self.near_pool: dict[str, array] = {s: array("q") for s in SOURCES}
        self.seen_exact: dict[bytes, str] = {}  # accidental exact duplicates among low/spam/short pages
        self.seen_short: dict[bytes, str] = {}  # short pages equal after shingle normalization
        self.counts: Counter[str] = Counter()
        self.jaccards: list[float] = []
        self.plants: dict[int, planting.Plants] = {}  # pages that get planted material (never copied)
        self.eval_items = planting.eval_items(seed)

    # -- ids ---------------------------------------------------------------------------------
    def record_id(self, source: str, local: int) -> str:
        if source in ID_PREFIX:
            return f"{ID_PREFIX[source]}{local + 1:07d}"
        plan = self.plans[source]
        f, line = plan.locate(local)
        return derived_doc_id(source, _relpath(source, f, len(plan.ranges)), line)

    def id_of(self, gidx: int) -> str:
        for s in SOURCES:
            p = self.plans[s]
            if p.offset <= gidx < p.offset + p.total:
                return self.record_id(s, gidx - p.offset)
        raise IndexError(gidx)

    def source_of(self, gidx: int) -> str:
        for s in SOURCES:
            p = self.plans[s]
            if p.offset <= gidx < p.offset + p.total:
                return s
        raise IndexError(gidx)

    # -- planning one valid record -----------------------------------------------------------
    def decide(self, source: str, gidx: int, dup_role: int) -> int | None:
        """Fill lang/domain/quality for `gidx`; return the original's index for a duplicate."""
        rng = self.rng
        if dup_role != _ROLE_ORIG:
            pools = self.exact_pool if dup_role == _ROLE_EXACT else self.near_pool
            choices = DUP_FROM[source]
            src = choices[0]
            if len(choices) > 1 and rng.random() < CROSS_SOURCE_RATE:
                src = choices[1 + int(rng.random() * (len(choices) - 1))]
            pool = pools[src] if len(pools[src]) else pools[choices[0]]
            if len(pool):
                orig = pool[int(rng.random() * len(pool))]
                self.role[gidx] = dup_role
                self.lang[gidx] = self.lang[orig]
                self.domain[gidx] = self.domain[orig]
                self.quality[gidx] = self.quality[orig]
                return orig
        mix = MIX[source]
        cum = _CUM[source]
        lang, domain, quality, _ = mix[bisect.bisect_right(cum, rng.random() * cum[-1])]
        self.role[gidx] = _ROLE_ORIG
        self.lang[gidx] = LANGS.index(lang)
        self.domain[gidx] = DOMAINS.index(domain)
        self.quality[gidx] = QUALITIES.index(quality)
        if source == "web" and lang == "en" and quality == "high":
            chosen = planting.choose(self.seed, gidx)
            if chosen is not None:
                self.plants[gidx] = chosen
                return None
        if quality in ("high", "low"):
            self.exact_pool[source].append(gidx)
        if quality == "high":
            self.near_pool[source].append(gidx)
        return None

    def labels(self, gidx: int) -> tuple[str, str, str]:
        return LANGS[self.lang[gidx]], DOMAINS[self.domain[gidx]], QUALITIES[self.quality[gidx]]


_CUM: dict[str, list[float]] = {}
for _s, _mix in MIX.items():
    _acc, _cum = 0.0, []
    for *_x, _w in _mix:
        _acc += _w
        _cum.append(_acc)
    _CUM[_s] = _cum


def _pick_weighted(rng: Random, items: tuple[tuple[str, float], ...]) -> str:
    r = rng.random() * sum(w for _, w in items)
    for name, w in items:
        r -= w
        if r < 0:
            return name
    return items[-1][0]


# ----------------------------------------------------------------------------------------------
# malformed lines

def _malformed_line(kind: str, source: str, own_id: str | None, rng: Random) -> tuple[bytes, str]:
    """One bad JSONL line of the given kind (bytes, detail)."""
    id_f, text_f, url_f = FIELDS[source]
    base: dict[str, Any] = {}
    if id_f:
        base[id_f] = own_id
    url = f"https://example.com/broken/{int(rng.random() * 1e6)}"
    r = int(rng.random() * 4)
    if kind == "bad_json":
        rec = {**base, text_f: "A record that was cut off in the middle of a sentence", url_f: url}
        good = json.dumps(rec)
        variants = (("truncated", good[: len(good) // 2]), ("trailing_comma", good[:-1] + ",}"),
                    ("single_quotes", good.replace('"', "'")), ("not_json", "text: this line is not JSON at all"))
        detail, line = variants[r]
        return line.encode(), detail
    if kind == "invalid_utf8":
        rec = {**base, text_f: "Caf\u00e9 menus and prices for the weekend market in town", url_f: url}
        raw = json.dumps(rec, ensure_ascii=False).encode()
        if r == 0:
            return raw.replace("\u00e9".encode(), b"\xe9"), "latin1_byte"
        if r == 1:
            return raw.replace(b"menus", b"men\xff\xfeus"), "invalid_bytes"
        if r == 2:
            return raw.replace(b"prices", b"pri\xc3ces"), "truncated_sequence"
        return json.dumps(rec).replace("\\u00e9", "\\ud83d").encode(), "lone_surrogate"
    if kind == "missing_text":
        rec = {**base, url_f: url, "title": "Untitled page"} if r % 2 else {**base, "content": "text", url_f: url}
        return json.dumps(rec).encode(), "no_text_field"
    if kind == "non_string_text":
        values: tuple[tuple[str, Any], ...] = (("number", 12345), ("list", ["a", "list", "of", "words"]),
                                               ("null", None), ("object", {"p": "nested text"}))
        detail, value = values[r]
        return json.dumps({**base, text_f: value, url_f: url}).encode(), detail
    if kind == "empty_text":
        detail, value = (("empty", ""), ("spaces", "   "), ("whitespace", " \n\t "), ("empty", ""))[r]
        return json.dumps({**base, text_f: value, url_f: url}).encode(), detail
    raise ValueError(kind)


# ----------------------------------------------------------------------------------------------
# writers


class _Writer:
    """Collects one file's records and writes it deterministically when the file is complete."""

    def __init__(self, source: str, path: Path) -> None:
        self.source = source
        self.path = path
        self.lines: list[bytes] = []
        self.rows: dict[str, list[Any]] = {"id": [], "text": [], "url": [], "title": []}

    def add_json(self, rec: dict[str, Any]) -> None:
        self.lines.append(json.dumps(rec, ensure_ascii=False).encode("utf-8", "surrogatepass"))

    def add_raw(self, line: bytes) -> None:
        self.lines.append(line)

    def add_row(self, doc_id: str, text: str, url: str | None, title: str | None) -> None:
        self.rows["id"].append(doc_id)
        self.rows["text"].append(text)
        self.rows["url"].append(url)
        self.rows["title"].append(title)

    def close(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = b"".join(line + b"\n" for line in self.lines)
        if self.source == "web":
            with open(self.path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0,
                                                            compresslevel=4) as gz:
                gz.write(data)
        elif self.source == "forum":
            import zstandard

            self.path.write_bytes(zstandard.ZstdCompressor(level=3).compress(data))
        elif self.source == "code":
            self.path.write_bytes(data)
        elif self.source == "encyclopedia":
            import pyarrow as pa
            import pyarrow.parquet as pq

            schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("url", pa.string()),
                                ("title", pa.string())])
            pq.write_table(pa.table(self.rows, schema=schema), self.path, compression="zstd")


class _MathWriter:
    """Streams math rows to a temporary Arrow file, then saves a sharded Hugging Face dataset."""

    def __init__(self, out_dir: Path, n_shards: int, seed: int, n_docs: int) -> None:
        import pyarrow as pa

        self.pa = pa
        self.out_dir = out_dir
        self.n_shards = n_shards
        self.fingerprint = f"ling-curate-demo-math-{n_docs}-{seed}"
        self.tmp = out_dir / ".math-tmp.arrow"
        self.schema = pa.schema([("id", pa.string()), ("text", pa.string())])
        self.sink = pa.OSFile(str(self.tmp), "wb")
        self.writer = pa.ipc.new_stream(self.sink, self.schema)
        self.ids: list[str] = []
        self.texts: list[str] = []

    def add(self, doc_id: str, text: str) -> None:
        self.ids.append(doc_id)
        self.texts.append(text)
        if len(self.ids) >= MAX_PER_FILE:
            self._flush()

    def _flush(self) -> None:
        if self.ids:
            self.writer.write_table(self.pa.table({"id": self.ids, "text": self.texts}, schema=self.schema))
            self.ids, self.texts = [], []

    def close(self) -> None:
        import datasets
        from datasets.table import MemoryMappedTable

        self._flush()
        self.writer.close()
        self.sink.close()
        table = MemoryMappedTable.from_file(str(self.tmp))
        ds = datasets.Dataset(table, fingerprint=self.fingerprint)
        bars = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        try:
            ds.save_to_disk(str(self.out_dir / "math"), num_shards=self.n_shards)
        finally:
            if bars:
                datasets.enable_progress_bars()
            del ds, table
            self.tmp.unlink()


# ----------------------------------------------------------------------------------------------
# the corpus


def _digest(s: str) -> bytes:
    return hashlib.blake2b(s.encode("utf-8", "surrogatepass"), digest_size=12).digest()


def write_demo_corpus(out_dir: str | Path, n_docs: int = 3000, seed: int = 0) -> dict:
    """Writes the corpus and truth.jsonl; returns a summary dict (counts per source/lang/domain/quality/etc).

    `n_docs` valid documents exactly (planted duplicates included); malformed records come on top
    (about 1% of n_docs, at least 10). The same (n_docs, seed) always gives byte-identical files.
    Previous output of this function under `out_dir` (the five source folders, truth.jsonl) is
    replaced.
    """
    if n_docs < 0:
        raise ValueError("n_docs must be >= 0")
    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for s in (*SOURCES, "eval"):
        if (out / s).exists():
            shutil.rmtree(out / s)
    corpus = _Corpus(n_docs, seed)
    (out / "eval").mkdir()
    with open(out / "eval" / f"{planting.EVAL_SET}.jsonl", "w", encoding="utf-8") as fh:
        for item in corpus.eval_items:
            fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    counts = corpus.counts
    by: dict[str, Counter[str]] = {k: Counter() for k in ("source", "lang", "domain", "quality", "malformed",
                                                           "dup_variant", "near_target", "source_quality",
                                                           "subtype")}
    files: dict[str, list[str]] = {s: [] for s in SOURCES}
    with open(out / "truth.jsonl", "w", encoding="utf-8") as truth:
        for s in SOURCES:
            plan = corpus.plans[s]
            n_files = len(plan.ranges)
            math_writer = _MathWriter(out, n_files, seed, n_docs) if s == "math" else None
            # duplicates: fixed counts at random valid positions of the source
            valid_local = [i for i in range(plan.total) if i not in plan.malformed]
            n_exact = round(EXACT_DUP_RATE * len(valid_local))
            n_near = round(NEAR_DUP_RATE * len(valid_local))
            dup_pos = corpus.rng.sample(valid_local, n_exact + n_near)
            dup_role = dict.fromkeys(dup_pos[:n_exact], _ROLE_EXACT)
            dup_role.update(dict.fromkeys(dup_pos[n_exact:], _ROLE_NEAR))
            for f, (start, end) in enumerate(plan.ranges):
                rel = _relpath(s, f, n_files)
                files[s].append(rel)
                writer = None if s == "math" else _Writer(s, out / s / rel)
                for local in range(start, end):
                    gidx = plan.offset + local
                    line = local - start + 1
                    kind, doc_id, text, url, title, tr = _make_record(corpus, s, local, gidx,
                                                                      dup_role.get(local, _ROLE_ORIG))
                    if kind == "bad":
                        assert writer is not None
                        writer.add_raw(text)
                    elif math_writer is not None:
                        math_writer.add(doc_id, text)
                    elif s == "encyclopedia":
                        assert writer is not None
                        writer.add_row(doc_id, text, url, title)
                    else:
                        assert writer is not None
                        id_f, text_f, url_f = FIELDS[s]
                        obj: dict[str, Any] = {id_f: doc_id} if id_f else {}
                        obj[text_f] = text
                        obj[url_f] = url
                        writer.add_json(obj)
                    row = {"source": s, "file": "math" if s == "math" else rel,
                           "line": local + 1 if s == "math" else line, "id": doc_id}
                    row.update(tr)
                    if s == "math":
                        row["shard"], row["shard_row"] = rel, line
                    truth.write(json.dumps(row, ensure_ascii=False) + "\n")
                    _count(by, row)
                if writer is not None:
                    writer.close()
            if math_writer is not None:
                math_writer.close()
    crawl = write_crawl(out, max(20, n_docs // 10), seed)  # crawl/: a WARC of HTML pages (see web_pages.py)
    secs = time.perf_counter() - t0
    n_valid = sum(by["source"].values())
    return {
        "out_dir": str(out),
        "crawl": crawl,
        "seed": seed,
        "n_docs": n_valid,
        "n_records": corpus.n_records,
        "n_malformed": sum(by["malformed"].values()),
        "files": files,
        "by_source": dict(by["source"]),
        "by_lang": dict(by["lang"]),
        "by_domain": dict(by["domain"]),
        "by_quality": dict(by["quality"]),
        "by_source_quality": dict(by["source_quality"]),
        "by_subtype": dict(by["subtype"]),
        "malformed": dict(by["malformed"]),
        "exact_dups": counts["exact_dup"],
        "exact_dup_variants": dict(by["dup_variant"]),
        "accidental_exact_dups": counts["accidental_exact"],
        "near_dups": counts["near_dup"],
        "accidental_near_dups": counts["accidental_near"],
        "near_dup_targets": dict(sorted(by["near_target"].items())),
        "near_dup_jaccard": _stats(corpus.jaccards),
        "cross_source_dups": counts["cross_source"],
        "eval_items": len(corpus.eval_items),
        "planted_eval": counts["planted_eval"],
        "planted_boilerplate": counts["planted_boilerplate"],
        "seconds": round(secs, 3),
        "docs_per_s": round(n_valid / secs, 1) if secs > 0 else None,
    }


def _stats(xs: list[float]) -> dict[str, float] | None:
    if not xs:
        return None
    return {"min": round(min(xs), 4), "mean": round(sum(xs) / len(xs), 4), "max": round(max(xs), 4)}


def _count(by: dict[str, Counter[str]], row: dict[str, Any]) -> None:
    if row["malformed"]:
        by["malformed"][row["malformed"]] += 1
        return
    by["source"][row["source"]] += 1
    by["lang"][row["lang"]] += 1
    by["domain"][row["domain"]] += 1
    by["quality"][row["quality"]] += 1
    by["source_quality"][f"{row['source']}/{row['quality']}"] += 1
    if row.get("subtype"):
        by["subtype"][f"{row['quality']}/{row['subtype']}"] += 1
    if row.get("dup_variant"):
        by["dup_variant"][row["dup_variant"]] += 1
    if row.get("near_target") is not None:
        by["near_target"][str(row["near_target"])] += 1


_Record = tuple[str, str, Any, str | None, str | None, dict[str, Any]]


def _empty_truth() -> dict[str, Any]:
    return {"malformed": None, "malformed_detail": None, "lang": None, "domain": None, "quality": None,
            "subtype": None, "exact_dup_of": None, "dup_variant": None, "near_dup_of": None, "jaccard": None,
            "near_target": None, "near_edits": None, "n_chars": None, "plants": None}


def _make_record(corpus: _Corpus, source: str, local: int, gidx: int, dup_role: int) -> _Record:
    """The record at one position: (kind, id, text-or-raw-line, url, title, truth fields)."""
    plan = corpus.plans[source]
    doc_id = corpus.record_id(source, local)
    tr = _empty_truth()
    bad = plan.malformed.get(local)
    if bad is not None:
        rng = Random(_doc_seed(corpus.seed, gidx))
        own = doc_id if FIELDS[source][0] else None
        line, detail = _malformed_line(bad, source, own, rng)
        if bad in ("bad_json", "invalid_utf8"):  # no id can be read from the line
            plan_f, plan_line = plan.locate(local)
            doc_id = derived_doc_id(source, _relpath(source, plan_f, len(plan.ranges)), plan_line)
        corpus.role[gidx] = _ROLE_BAD
        tr["malformed"], tr["malformed_detail"] = bad, detail
        return "bad", doc_id, line, None, None, tr
    seed = _doc_seed(corpus.seed, gidx)
    orig = corpus.decide(source, gidx, dup_role)
    lang, domain, quality = corpus.labels(gidx)
    tr.update(lang=lang, domain=domain, quality=quality)
    if orig is None:
        rng = Random(seed)
        doc = generate(lang, domain, quality, seed, rng)  # rng goes on to draw the URL
        text, title, subtype = doc.text, doc.title, doc.subtype
        if quality in ("low", "spam", "short"):
            _mark_accidental(corpus, text, quality, doc_id, tr)
        chosen = corpus.plants.get(gidx)
        if chosen is not None:
            text, tr["plants"] = planting.apply(text, chosen, corpus.eval_items, corpus.seed, gidx)
            corpus.counts["planted_eval"] += chosen.item is not None
            corpus.counts["planted_boilerplate"] += len(chosen.boilerplate)
    else:
        rng = Random(seed)
        o_seed = _doc_seed(corpus.seed, orig)
        orig_id = corpus.id_of(orig)
        if corpus.source_of(orig) != source:
            corpus.counts["cross_source"] += 1
        if corpus.role[gidx] == _ROLE_EXACT:
            o = generate(lang, domain, quality, o_seed)
            text, used = exact_variant(o.text, _pick_weighted(rng, EXACT_VARIANTS), rng)
            title, subtype = o.title, o.subtype
            tr.update(exact_dup_of=orig_id, dup_variant=used)
            corpus.counts["exact_dup"] += 1
        else:
            units = generate_units(lang, domain, quality, o_seed)
            target = NEAR_TARGETS[int(rng.random() * len(NEAR_TARGETS))]
            nd = make_near_dup(units, target, rng)
            text, title, subtype = nd.text, units.title, units.subtype
            tr.update(near_dup_of=orig_id, jaccard=round(nd.jaccard, 6), near_target=target,
                      near_edits={k: v for k, v in nd.ops.items() if v})
            corpus.counts["near_dup"] += 1
            corpus.jaccards.append(nd.jaccard)
    tr["subtype"] = subtype
    tr["n_chars"] = len(text)
    url = None if source == "math" else make_url(source, lang, domain, quality, title, rng)
    return "doc", doc_id, text, url, title, tr


def _mark_accidental(corpus: _Corpus, text: str, quality: str, doc_id: str, tr: dict[str, Any]) -> None:
    """Template-made pages (short ones above all) can coincide by chance: record those as duplicates
    of their first occurrence, so the truth matches what exact and near dedup will find."""
    key = _digest(normalize_for_exact(text))
    first = corpus.seen_exact.get(key)
    if first is not None:
        tr.update(exact_dup_of=first, dup_variant="accidental")
        corpus.counts["exact_dup"] += 1
        corpus.counts["accidental_exact"] += 1
        return
    corpus.seen_exact[key] = doc_id
    if quality != "short":
        return
    skey = _digest(" ".join(normalize_for_shingles(text)))
    first = corpus.seen_short.get(skey)
    if first is not None:
        tr.update(near_dup_of=first, jaccard=1.0, dup_variant="accidental")
        corpus.counts["near_dup"] += 1
        corpus.counts["accidental_near"] += 1
        return
    corpus.seen_short[skey] = doc_id


def load_truth(out_dir: str | Path) -> list[dict[str, Any]]:
    """truth.jsonl of a demo corpus as a list of dicts (small corpora; stream the file for big ones)."""
    with open(Path(out_dir) / "truth.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def demo_inputs(root: str | Path | None = None) -> list[dict[str, Any]]:
    """The corpus's `inputs:` entries (as pipeline.yaml reads them), paths under `root` if given."""
    entries = [
        {"name": "web", "path": "web/*.jsonl.gz", "format": "jsonl.gz", "url_field": "url"},
        {"name": "forum", "path": "forum/*.jsonl.zst", "format": "jsonl.zst", "id_field": "doc_id",
         "text_field": "body", "url_field": "link"},
        {"name": "encyclopedia", "path": "encyclopedia/*.parquet", "format": "parquet", "id_field": "id",
         "url_field": "url"},
        {"name": "code", "path": "code/*.jsonl", "format": "jsonl", "id_field": "id", "url_field": "url"},
        {"name": "math", "path": "math", "format": "hf", "id_field": "id"},
    ]
    if root is not None:
        for entry in entries:
            entry["path"] = str(Path(root) / entry["path"])
    return entries
