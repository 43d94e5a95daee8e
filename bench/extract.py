"""Web ingest + `extract`, per method, against datatrove's WARC reader + Trafilatura on the same WARC files.

`--corpus real` (default): real pages with human ground truth, written as `--files` gzipped WARC
files (the page bytes as crawled, one response record each): the article-extraction set
(`--articles`, 181 news/blog pages with human article bodies; shingle precision/recall/F1 by
`filters.extract_score`, the benchmark's scoring) and, with `--snippets DIR`, Trafilatura's
evaluation set (its repository's tests/ folder: evaldata.json + eval/ pages; snippet P/R/F, a
disjoint set of diverse pages the model never trained on). `--corpus demo`: the demo generator's
crawl (pipeline/demo/web_pages.py), `--pages` pages scored by planted sentences. No truncated
record in either: datatrove's warcio reader fails its whole task on one, losing the rest of the
file. Ours: `curate run` with the warc input and one `extract` stage (ingest
parses the WARC with FastWARC, extract runs per partition on `--workers` processes). datatrove:
`WarcReader -> Trafilatura -> JsonlWriter` on a LocalPipelineExecutor with one task per file and the
same number of workers (its defaults: favour_precision, deduplicate, a 1 s timeout per page); its
column says "not installed" when datatrove (with warcio, faust-cchardet, python-magic, orjson) is missing.

Reported per system: pages/s and MB/s of WARC (wall clock, everything from the WARC file to written
documents), CPU seconds of the process tree, peak RSS of the process tree, and extraction accuracy on
the planted pages (sentence recall, boilerplate kept; see `score_extraction`).

Usage: python bench/extract.py [--corpus real|demo] [--articles DIR] [--snippets DIR] [--repeat 1]
       [--pages 2000] [--files 4] [--workers 2] [--methods blocks,resiliparse,trafilatura,plain]
The last printed line is one JSON object: the default method's docs_per_s, peak_rss_mb and
ratio_vs_datatrove (docs/s).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import near_dedup as nd  # noqa: E402  (run_measured: wall, CPU and RSS of a process tree)
import pyarrow.parquet as pq  # noqa: E402

from filters.extract_score import corpus_score, snippet_counts, snippet_score  # noqa: E402
from pipeline.demo.web_pages import (  # noqa: E402
    WARC_NAME,
    _http,
    _record,
    load_crawl_truth,
    score_extraction,
    write_crawl,
)
from stages.extract import ExtractConfig  # noqa: E402

WORK = REPO / ".cache" / "bench-extract"

DATATROVE_SCRIPT = r'''
"""datatrove: WarcReader -> Trafilatura -> JsonlWriter; prints one JSON line with the document count."""
import json, sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.extractors import Trafilatura
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.writers.jsonl import JsonlWriter


def main():
    args = json.loads(sys.argv[1])
    ex = LocalPipelineExecutor(pipeline=[WarcReader(args["input"], glob_pattern="*.warc.gz"), Trafilatura(),
                                         JsonlWriter(args["output"], compression=None)],
                               tasks=args["tasks"], workers=args["workers"], logging_dir=args["logs"],
                               skip_completed=False)
    ex.run()


if __name__ == "__main__":  # datatrove's worker pool re-imports this module
    main()
'''


def build_crawl(pages: int, files: int) -> tuple[Path, list[dict[str, Any]]]:
    """`files` WARC files (the demo generator, seeds 0..files-1) in one folder, and their truth rows."""
    root = WORK / f"crawl-{pages}-{files}"
    warcs = root / "warc"
    if not (root / "truth.jsonl").exists():
        shutil.rmtree(root, ignore_errors=True)
        warcs.mkdir(parents=True)
        truth = []
        for k in range(files):
            gen = root / f"gen-{k}"
            write_crawl(gen, pages // files, seed=k, truncated=False)  # warcio (datatrove) stops at a cut record
            shutil.move(gen / "crawl" / WARC_NAME, warcs / f"crawl-{k:05d}.warc.gz")
            truth += load_crawl_truth(gen)
            shutil.rmtree(gen)
        (root / "truth.jsonl").write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in truth))
    truth = [json.loads(line) for line in (root / "truth.jsonl").read_text().splitlines()]
    return warcs, truth


def build_real(articles: Path, snippets: Path | None, files: int, repeat: int) -> tuple[Path, list[dict[str, Any]]]:
    """The real pages as `files` WARC files (each page `repeat` times, for a longer timed run), and the
    truth row of every record id: the article body, or the with/without snippets."""
    import gzip
    import uuid
    from datetime import UTC, datetime
    from random import Random

    pages: list[dict[str, Any]] = []
    gt = json.loads((articles / "ground-truth.json").read_text(encoding="utf-8"))
    for key in sorted(gt):
        pages.append({"url": gt[key]["url"], "body": gzip.decompress((articles / "html" / f"{key}.html.gz")
                                                                     .read_bytes()), "truth": gt[key]["articleBody"]})
    if snippets is not None:
        ev = json.loads((snippets / "evaldata.json").read_text(encoding="utf-8"))
        for url in sorted(ev):
            item = ev[url]
            path = next((snippets / d / item["file"] for d in ("cache", "eval")
                         if (snippets / d / item["file"]).is_file()), None)
            if path is not None:
                pages.append({"url": url, "body": path.read_bytes(), "with": item["with"],
                              "without": item["without"]})
    root = WORK / f"real-{len(pages)}-{files}-{repeat}"
    warcs = root / "warc"
    if not (root / "truth.jsonl").exists():
        shutil.rmtree(root, ignore_errors=True)
        warcs.mkdir(parents=True)
        rng = Random("bench-extract-real")
        date = datetime(2024, 5, 1, tzinfo=UTC)
        truth = []
        outs = [open(warcs / f"real-{k:05d}.warc.gz", "wb") for k in range(files)]
        for i, page in enumerate(pages * repeat):
            data, rid = _record("response", page["url"], date, _http(200, "text/html", page["body"]), page["body"],
                                "text/html", uuid.UUID(int=rng.getrandbits(128), version=4))
            outs[i % files].write(data)
            truth.append({"id": rid, **{k: v for k, v in page.items() if k != "body"}})
        for f in outs:
            f.close()
        (root / "truth.jsonl").write_text("".join(json.dumps(t, ensure_ascii=False) + "\n" for t in truth))
    truth = [json.loads(line) for line in (root / "truth.jsonl").read_text().splitlines()]
    return warcs, truth


def score_real(texts: dict[str, str], truth: list[dict[str, Any]]) -> dict[str, Any]:
    """Article shingle scores and snippet scores of the documents written (a page not written scores empty)."""
    art = [(t["truth"], texts.get(t["id"], "")) for t in truth if "truth" in t]
    snip = [snippet_counts(t["with"], t["without"], texts.get(t["id"], "")) for t in truth if "with" in t]
    out: dict[str, Any] = {"articles": corpus_score(art)}
    if snip:
        out["snippets"] = snippet_score(snip)
    return out


def score(texts: dict[str, str], truth: list[dict[str, Any]]) -> dict[str, Any]:
    return score_real(texts, truth) if truth and "kind" not in truth[0] else score_extraction(texts, truth)


def run_ours(warcs: Path, method: str, workers: int, truth: list[dict[str, Any]]) -> dict[str, Any]:
    run_dir = WORK / f"ours-{method}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    cfg = {"name": "bench-extract", "output": str(run_dir / "out"), "workers": workers, "partition_rows": 200,
           "inputs": [{"name": "crawl", "path": str(warcs / "*.warc.gz"), "format": "warc"}],
           "stages": [{"name": "extract", "method": method}]}
    (run_dir / "pipeline.yaml").write_text(json.dumps(cfg))
    r = nd.run_measured([sys.executable, "-m", "pipeline", "run", str(run_dir / "pipeline.yaml")], cwd=REPO,
                        env={"PYTHONPATH": str(REPO)})
    out = run_dir / "out" / "extract"
    texts = {row["id"]: row["text"] for p in sorted((out / "data").glob("*.parquet"))
             for row in pq.read_table(p, columns=["id", "text"]).to_pylist()}
    pages = json.loads((out / "_manifest.json").read_text())["counts"]["in"]
    return {"pages": pages, "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_mb": r["peak_rss_mb"],
            "accuracy": score(texts, truth)}


def datatrove_available() -> bool:
    try:
        import cchardet  # noqa: F401
        import datatrove  # noqa: F401
        import magic  # noqa: F401
        import orjson  # noqa: F401
        import warcio  # noqa: F401
    except ImportError:
        return False
    return True


def run_datatrove(warcs: Path, workers: int, files: int, truth: list[dict[str, Any]]) -> dict[str, Any]:
    run_dir = WORK / "datatrove"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    script = run_dir / "run_datatrove.py"
    script.write_text(DATATROVE_SCRIPT)
    args = {"input": str(warcs), "output": str(run_dir / "out"), "logs": str(run_dir / "logs"), "tasks": files,
            "workers": workers}
    r = nd.run_measured([sys.executable, str(script), json.dumps(args)], cwd=run_dir)
    docs = [json.loads(line) for p in sorted((run_dir / "out").glob("*.jsonl")) for line in p.open()]
    texts = {d["id"]: d["text"] for d in docs}
    return {"pages": len(docs), "wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_mb": r["peak_rss_mb"],
            "accuracy": score(texts, truth)}


def accuracy_cells(acc: dict[str, Any]) -> str:
    if "articles" in acc:
        a = acc["articles"]
        cells = f"{a['f1']:>8.3f}{a['precision']:>7.3f}{a['recall']:>7.3f}"
        sn = acc.get("snippets")
        return cells + (f"{sn['f1']:>9.3f}{sn['precision']:>7.3f}{sn['recall']:>7.3f}" if sn else "")
    return f"{acc['sentence_recall']:>8.3f}{acc['boilerplate_kept']:>13.3f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", choices=["real", "demo"], default="real")
    ap.add_argument("--articles", type=Path, default=REPO.parent / "shared" / "data" / "article-extraction")
    ap.add_argument("--snippets", type=Path, default=None, help="Trafilatura's tests/ folder (evaldata.json, eval/)")
    ap.add_argument("--repeat", type=int, default=1, help="real corpus: each page this many times")
    ap.add_argument("--pages", type=int, default=2000, help="demo corpus: pages")
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--methods", default="blocks,resiliparse,trafilatura,plain")
    args = ap.parse_args(argv)
    if args.corpus == "real":
        warcs, truth = build_real(args.articles, args.snippets, args.files, args.repeat)
        n_pages = len(truth)
        head = f"{'art F1':>8}{'P':>7}{'R':>7}" + (f"{'snip F':>9}{'P':>7}{'R':>7}" if args.snippets else "")
    else:
        warcs, truth = build_crawl(args.pages, args.files)
        n_pages = sum(1 for t in truth if t["kind"] == "page")
        head = f"{'recall':>8}{'boilerplate':>13}"
    mb = sum(p.stat().st_size for p in warcs.glob("*.warc.gz")) / 2**20
    print(f"{args.corpus} corpus: {args.files} WARC files, {mb:.1f} MB gzipped, {n_pages} HTML pages; "
          f"{args.workers} workers")
    results: dict[str, dict[str, Any]] = {}
    for method in args.methods.split(","):
        results[method] = run_ours(warcs, method, args.workers, truth)
    results["datatrove"] = run_datatrove(warcs, args.workers, args.files, truth) if datatrove_available() else {}
    print(f"{'system':<26}{'pages':>7}{'pages/s':>10}{'MB/s':>8}{'CPU s':>8}{'RSS MB':>8}{head}")
    for name, r in results.items():
        label = f"ours: {name}" if name != "datatrove" else "datatrove + trafilatura"
        if not r:
            print(f"{label:<26}{'not installed':>24}")
            continue
        r["docs_per_s"] = round(r["pages"] / r["wall_s"], 1)
        r["mb_per_s"] = round(mb / r["wall_s"], 2)
        print(f"{label:<26}{r['pages']:>7}{r['docs_per_s']:>10.1f}{r['mb_per_s']:>8.2f}{r['cpu_s']:>8.1f}"
              f"{r['peak_rss_mb']:>8.0f}{accuracy_cells(r['accuracy'])}")
    default = ExtractConfig.model_fields["method"].default
    ours = results.get(default) or next(iter(results.values()))
    dt = results["datatrove"]
    summary = {"bench": "extract", "corpus": args.corpus, "pages": n_pages, "warc_mb": round(mb, 2),
               "workers": args.workers, "default_method": default, "docs_per_s": ours["docs_per_s"],
               "mb_per_s": ours["mb_per_s"], "peak_rss_mb": round(ours["peak_rss_mb"], 1),
               "methods": {m: {k: r[k] for k in ("docs_per_s", "mb_per_s", "peak_rss_mb", "accuracy")}
                           for m, r in results.items() if r and m != "datatrove"},
               "datatrove_docs_per_s": dt.get("docs_per_s", "not installed"),
               "ratio_vs_datatrove": round(ours["docs_per_s"] / dt["docs_per_s"], 2) if dt else None,
               "ratio_vs_datatrove_per_cpu_s": round((ours["pages"] / ours["cpu_s"]) / (dt["pages"] / dt["cpu_s"]), 2)
               if dt else None}
    if dt:
        summary["datatrove_accuracy"] = dt["accuracy"]
        summary["datatrove_peak_rss_mb"] = round(dt["peak_rss_mb"], 1)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
