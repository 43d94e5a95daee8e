"""Throughput of the heuristic filters (each alone and the whole `heuristics` stage), langid and pii.

Runs on the demo corpus (`pipeline.demo.corpus.write_demo_corpus`, >= 50k documents by default,
cached under `.cache/bench/`), in one process on Arrow batches of `--batch` rows (the size of a
partition), so the figures are per CPU core: rates are per CPU-second of this process (the
machines are shared; wall seconds are printed too). Baseline: a per-document pure-Python computation of
the Gopher quality statistics (regex words, loops), the way a straightforward filter is written;
the REFERENCE figure for a spaCy-tokenizing implementation (~140 docs per CPU-second per filter)
is reported as well.

Usage: python bench/heuristics.py [--docs 50000] [--seed 0] [--batch 2000] [--data DIR]
The last line printed is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from pipeline.demo.corpus import demo_inputs  # noqa: E402

SPACY_REFERENCE_DOCS_PER_S = 140.0  # REFERENCE.md: ~130-150 documents per CPU-second per filter


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def corpus(data: Path, n_docs: int, seed: int) -> Path:
    """The demo corpus under `data`, generated once (reused when its summary matches)."""
    from pipeline.demo.corpus import write_demo_corpus

    summary = data / "_bench_summary.json"
    if summary.exists() and json.loads(summary.read_text()).get("key") == [n_docs, seed]:
        return data
    t0 = time.perf_counter()
    write_demo_corpus(data, n_docs, seed)
    summary.write_text(json.dumps({"key": [n_docs, seed]}))
    print(f"generated {n_docs} demo documents in {time.perf_counter() - t0:.1f}s -> {data}", flush=True)
    return data


def load(root: Path) -> pa.Table:
    """Documents as ingest reads them, normalized (the stage's usual input)."""
    from pipeline.config import InputConfig
    from pipeline.ingest import list_input_files, read_jsonl, read_table_rows
    from stages.normalize import NormalizeConfig, normalize_texts

    docs = []
    for f in list_input_files([InputConfig(**i) for i in demo_inputs(root)]):
        reader = read_jsonl if f.input.format.startswith("jsonl") else read_table_rows
        docs += [doc for _, doc, _ in reader(f) if doc is not None]
    t = pa.Table.from_pylist(docs)
    text = normalize_texts(t.column("text").combine_chunks(), NormalizeConfig(name="normalize"))
    return t.set_column(t.schema.get_field_index("text"), "text", text)


def batches(table: pa.Table, size: int) -> list[pa.Table]:
    return [table.slice(i, size) for i in range(0, table.num_rows, size)]


def timed(name: str, fn: Callable[[pa.Table], Any], parts: list[pa.Table], mb: float) -> tuple[dict[str, float], list]:
    from filters.cjk import clear_segment_cache

    docs = sum(p.num_rows for p in parts)
    fn(parts[0].slice(0, 10))  # warm-up: imports, jieba dictionary, regex compilation
    clear_segment_cache()  # no measurement profits from lines another one segmented
    wall, cpu = time.perf_counter(), time.process_time()
    out = [fn(p) for p in parts]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    figures = {"cpu_seconds": round(cpu, 3), "wall_seconds": round(wall, 3), "docs_per_s": round(docs / cpu, 1),
               "mb_per_s": round(mb / cpu, 2)}
    print(f"{name:24s} {docs:7d} docs {cpu:8.2f} CPU-s ({wall:6.2f} wall) {figures['docs_per_s']:9.1f} docs/s "
          f"{figures['mb_per_s']:7.2f} MB/s  peak RSS {peak_rss_mb():.0f} MB", flush=True)
    return figures, out


_WORD = re.compile(r"[^\W_]+")


def python_gopher_quality(table: pa.Table) -> list[dict[str, float]]:
    """Baseline: the Gopher quality statistics one document at a time in plain Python (regex words;
    jieba words for Chinese documents, as the stage does, so both pay the same segmentation)."""
    from filters.cjk import jieba_tokenizer

    jieba = jieba_tokenizer()
    stop = {"the", "be", "to", "of", "and", "that", "have", "with"}
    out = []
    langs = table.column("lang").to_pylist() if "lang" in table.column_names else [None] * table.num_rows
    for text, lang in zip(table.column("text").to_pylist(), langs, strict=True):
        if lang == "zh":
            words = [w for w in jieba.lcut(text, HMM=False) if _WORD.search(w)]
        else:
            words = _WORD.findall(text)
        lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
        n = len(words) or 1
        out.append({
            "words": len(words),
            "mean_len": sum(map(len, words)) / n,
            "hash": text.count("#") / n,
            "ellipsis": (text.count("...") + text.count("…")) / n,
            "bullets": sum(ln.startswith(("•", "-", "*")) for ln in lines) / (len(lines) or 1),
            "ell_lines": sum(ln.endswith(("...", "…")) for ln in lines) / (len(lines) or 1),
            "alpha": sum(any(c.isalpha() for c in w) for w in words) / n,
            "stop": sum(w.lower() in stop for w in words),
        })
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    data = args.data or REPO / ".cache" / "bench" / f"demo-{args.docs}-{args.seed}"

    from stages.heuristics import FILTERS, HeuristicsConfig, Stage
    from stages.langid import LangIdConfig
    from stages.langid import Stage as LangId
    from stages.pii import PiiConfig
    from stages.pii import Stage as Pii

    table = load(corpus(data, args.docs, args.seed))
    mb = sum(len(t.encode("utf-8")) for t in table.column("text").to_pylist()) / 1e6
    print(f"corpus: {table.num_rows} documents, {mb:.1f} MB of text, batches of {args.batch}, one process")
    parts = batches(table, args.batch)

    langid = LangId(LangIdConfig(name="langid", kind="langid", keep=["en", "zh"], skip_sources=["code"]), None)
    langid.setup()
    langid_fig, tagged = timed("langid", langid.apply, parts, mb)
    parts = [t.drop_columns(["reason"]) for t in tagged]  # later stages see `lang`, as in a pipeline

    figures: dict[str, Any] = {"filters": {}}
    for name in FILTERS:
        stage = Stage(HeuristicsConfig(name="heuristics", kind="heuristics", filters=[name]), None)
        stage.setup()
        figures["filters"][name], _ = timed(f"heuristics[{name}]", stage.apply, parts, mb)
    full = Stage(HeuristicsConfig(name="heuristics", kind="heuristics", skip_sources=["code"]), None)
    full.setup()
    full_fig, results = timed("heuristics (stage)", full.apply, parts, mb)
    by_lang = {}
    for lang in ("en", "zh"):
        subset = [p.filter(pc.fill_null(pc.equal(p.column("lang"), lang), False)) for p in parts]
        lang_mb = sum(len(t.encode("utf-8")) for p in subset for t in p.column("text").to_pylist()) / 1e6
        by_lang[lang], _ = timed(f"heuristics (stage, {lang})", full.apply, subset, lang_mb)
    all_filters = Stage(HeuristicsConfig(name="heuristics", kind="heuristics"), None)
    all_fig, _ = timed("heuristics (all docs)", all_filters.apply, parts, mb)
    pii = Pii(PiiConfig(name="pii", kind="pii"), None)
    pii_fig, _ = timed("pii", pii.apply, parts, mb)
    baseline_fig, _ = timed("python gopher_quality", python_gopher_quality, parts, mb)

    kept_share = sum(r.column("reason").null_count for r in results) / table.num_rows
    print(f"heuristics stage keeps {kept_share:.1%} of {table.num_rows} documents (code skipped)")
    report = {
        "bench": "heuristics",
        "docs": table.num_rows,
        "mb": round(mb, 2),
        "batch_rows": args.batch,
        "docs_per_s": full_fig["docs_per_s"],
        "mb_per_s": full_fig["mb_per_s"],
        "cpu_seconds": full_fig["cpu_seconds"],
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "kept_share": round(kept_share, 4),
        "all_docs_stage": all_fig,
        "filters": figures["filters"],
        "by_lang": by_lang,
        "langid": langid_fig,
        "pii": pii_fig,
        "python_gopher_quality": baseline_fig,
        "ratio_vs_python_loop": round(figures["filters"]["gopher_quality"]["docs_per_s"]
                                      / baseline_fig["docs_per_s"], 2),
        "ratio_vs_spacy_reference": round(min(f["docs_per_s"] for f in figures["filters"].values())
                                          / SPACY_REFERENCE_DOCS_PER_S, 1),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
