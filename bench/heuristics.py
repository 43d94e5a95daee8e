"""Throughput of the heuristic filters (each alone and the whole `heuristics` stage), langid and pii.

Runs on the demo corpus (`pipeline.demo.corpus.write_demo_corpus`, >= 50k documents by default,
cached under `.cache/bench/`), in one process on Arrow batches of `--batch` rows (the size of a
partition), so the figures are per CPU core: rates are per CPU-second of this process (the
machines are shared; wall seconds are printed too). Baseline: a per-document pure-Python computation of
the Gopher quality statistics (regex words, loops), the way a straightforward filter is written;
the REFERENCE figure for a spaCy-tokenizing implementation (~140 docs per CPU-second per filter)
is reported as well.

Side by side with datatrove 0.10 (where the `oracle` extra is installed): its four filters and ours in
`compat: datatrove` on the same first `--datatrove-docs` documents, every document through all four
filters (datatrove: one document at a time through the four, as its pipeline does, so its word
tokenization is shared by the filters through its cache; ours: the four on each batch), plus each
filter alone. Ours runs here with the default profile for every document (no Chinese profile), as
datatrove does, and the decisions are compared too.

`--input PATH` (a JSONL of `id`, `text`, e.g. from bench/real_corpus.py) replaces the demo corpus with
real text (every document `source: web`). The four filters in FineWeb's order are timed as one stage in
both `signals` modes (`decisive`, the default, and `all`), with the same decisions checked.

Usage: python bench/heuristics.py [--docs 50000] [--seed 0] [--batch 2000] [--data DIR] [--datatrove-docs 2000]
       [--input real.jsonl]
The last line printed is one JSON object with every figure (`ratio_vs_datatrove`: ours / datatrove,
documents per CPU-second, all four filters).
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
import numpy as np  # noqa: E402
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
    from filters.en_tokens import lexicon

    docs = sum(p.num_rows for p in parts)
    fn(parts[0].slice(0, 10))  # warm-up: imports, jieba dictionary, regex compilation
    clear_segment_cache()  # no measurement profits from lines another one segmented
    lexicon().clear()  # ... or from chunks another one tokenized (compat: datatrove)
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


def datatrove_side(table: pa.Table, n_docs: int, batch: int) -> dict[str, Any] | None:
    """datatrove's four filters vs ours (`compat: datatrove`, default profile) on the same documents."""
    try:
        from datatrove.data import Document
        from datatrove.pipeline.filters import (
            C4QualityFilter,
            FineWebQualityFilter,
            GopherQualityFilter,
            GopherRepetitionFilter,
        )
    except ImportError:
        print("datatrove is not installed (pip install -e '.[oracle]'): no side-by-side column")
        return None
    from stages.heuristics import FILTERS, HeuristicsConfig, Stage

    sub = table.slice(0, n_docs)
    texts = sub.column("text").to_pylist()
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    made = {"gopher_quality": GopherQualityFilter, "gopher_repetition": GopherRepetitionFilter, "c4": C4QualityFilter,
            "fineweb": FineWebQualityFilter}

    def run_datatrove(names: list[str]) -> Callable[[pa.Table], list[list[bool]]]:
        filters = [made[name]() for name in names]

        def fn(part: pa.Table) -> list[list[bool]]:
            out = []
            for i, text in enumerate(part.column("text").to_pylist()):
                row = []
                for f in filters:
                    r = f.filter(Document(text=text, id=str(i)))
                    row.append(r if isinstance(r, bool) else r[0])
                out.append(row)
            return out
        return fn

    def ours(names: list[str]) -> Callable[[pa.Table], pa.Table]:
        stage = Stage(HeuristicsConfig(name="h", kind="heuristics", filters=names, builtin_lang_defaults=False,
                                       detect_script=False), None)
        stage.setup()
        return stage.apply

    parts = batches(sub.select(["id", "text"]), batch)
    one_by_one = batches(sub.select(["id", "text"]), 1)
    print(f"\nside by side with datatrove on the first {len(texts)} documents ({mb:.1f} MB):")
    figures: dict[str, Any] = {"docs": len(texts), "filters": {}}
    names = list(FILTERS)
    for name in names:
        theirs, _ = timed(f"datatrove {name}", run_datatrove([name]), one_by_one, mb)
        mine, _ = timed(f"ours {name}", ours([name]), parts, mb)
        figures["filters"][name] = {"datatrove_docs_per_s": theirs["docs_per_s"], "docs_per_s": mine["docs_per_s"],
                                    "ratio": round(mine["docs_per_s"] / theirs["docs_per_s"], 1)}
    theirs, decided = timed("datatrove four filters", run_datatrove(names), one_by_one, mb)
    mine, results = timed("ours four filters", lambda p: run_filters_only(p, names), parts, mb)
    agree = {}
    kept_theirs = np.array([row for part in decided for row in part], bool)
    kept_ours = np.concatenate([r for r in results], axis=0)
    for j, name in enumerate(names):
        agree[name] = round(float(np.mean(kept_theirs[:, j] == kept_ours[:, j])), 4)
    figures.update({"datatrove_docs_per_s": theirs["docs_per_s"], "docs_per_s": mine["docs_per_s"],
                    "ratio_vs_datatrove": round(mine["docs_per_s"] / theirs["docs_per_s"], 1), "agreement": agree})
    print(f"ours / datatrove, four filters: {figures['ratio_vs_datatrove']}x documents per CPU-second; "
          f"decisions agree per filter: {agree}")
    return figures


def run_filters_only(part: pa.Table, names: list[str]) -> np.ndarray:
    """Ours, default profile, `compat: datatrove`: kept (True) per document and filter."""
    from filters.base import first_failure
    from filters.text import TextBatch
    from stages.heuristics import DEFAULT_PROFILE, FILTERS, HeuristicsConfig, build_profiles

    cfg = HeuristicsConfig(name="h", kind="heuristics", builtin_lang_defaults=False)
    profile = build_profiles(cfg)[DEFAULT_PROFILE]
    batch = TextBatch(part.column("text"), profile.segmenter)
    cols = [first_failure(FILTERS[n].measure(batch, profile.settings[n]).fails, batch.n) == None  # noqa: E711
            for n in names]
    return np.stack(cols, axis=1).astype(bool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--datatrove-docs", type=int, default=2000)
    parser.add_argument("--input", type=Path, default=None, help="JSONL of id, text (real text)")
    args = parser.parse_args()
    data = args.data or REPO / ".cache" / "bench" / f"demo-{args.docs}-{args.seed}"

    from stages.heuristics import FILTERS, HeuristicsConfig, Stage
    from stages.langid import LangIdConfig
    from stages.langid import Stage as LangId
    from stages.pii import PiiConfig
    from stages.pii import Stage as Pii

    if args.input:
        rows = [json.loads(line) for line in args.input.read_text(encoding="utf-8").splitlines() if line.strip()]
        table = pa.table({"id": [r["id"] for r in rows], "text": [r["text"] for r in rows],
                          "source": ["web"] * len(rows)})
    else:
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
    order = ["gopher_repetition", "gopher_quality", "c4", "fineweb"]  # FineWeb's order
    modes: dict[str, Any] = {}
    decisions = {}
    for mode in ("decisive", "all"):
        stage = Stage(HeuristicsConfig(name="heuristics", kind="heuristics", filters=order, signals=mode), None)
        stage.setup()
        modes[mode], out = timed(f"heuristics (FineWeb order, signals: {mode})", stage.apply, parts, mb)
        decisions[mode] = [r for t in out for r in t.column("reason").to_pylist()]
    modes["same_decisions"] = decisions["decisive"] == decisions["all"]
    print(f"signals decisive vs all: same reasons for every document: {modes['same_decisions']}")
    all_filters = Stage(HeuristicsConfig(name="heuristics", kind="heuristics"), None)
    all_fig, _ = timed("heuristics (all docs)", all_filters.apply, parts, mb)
    pii = Pii(PiiConfig(name="pii", kind="pii"), None)
    pii_fig, _ = timed("pii", pii.apply, parts, mb)
    baseline_fig, _ = timed("python gopher_quality", python_gopher_quality, parts, mb)

    side = datatrove_side(table, args.datatrove_docs, args.batch) if args.datatrove_docs else None

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
        "signals_modes": modes,
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
    if side is not None:
        report["datatrove"] = side
        report["ratio_vs_datatrove"] = side["ratio_vs_datatrove"]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
