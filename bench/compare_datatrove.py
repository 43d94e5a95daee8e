"""`near_dedup` against datatrove's MinHash dedup on the same demo corpus, side by side.

datatrove is installed into its own venv (`.cache/bench-datatrove-venv`, `pip install
"datatrove[io,processing]" spacy`: its English word tokenizer is spaCy's) on first use. Both systems
get the ingested documents (id, text): ours from the ingest stage's Parquet partitions, datatrove
from the same documents exported as plain JSONL. Same settings on both sides: word 5-grams, 14 bands
× 8 rows, the same number of worker processes; datatrove runs its four stages (signatures, buckets,
clusters, filter with uncompressed JSONL output), we run the `near_dedup` stage.

Reported per system: wall docs/s, docs per CPU-second of the process tree (the machines are shared:
CPU time is the steadier figure), peak RSS of the process tree, and removal precision/recall/F1
against the planted pairs and against exact Jaccard (see bench/near_dedup.py). The runs alternate
(ours, datatrove, ours, datatrove for `--repeat 2`) and the best of each is kept.

Usage: python bench/compare_datatrove.py [--sizes 10000] [--workers 2] [--repeat 1]
(`--sizes 10000,100000` for the full comparison: datatrove needs ~15 minutes for 100k documents here.)
The last printed line is one JSON object with `ratio_vs_datatrove` (wall docs/s) for the largest size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import near_dedup as nd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

VENV = REPO / ".cache" / "bench-datatrove-venv"
PACKAGES = ["datatrove[io,processing]", "spacy"]

DATATROVE_SCRIPT = r'''
"""Runs datatrove's four MinHash stages; prints one JSON line with per-stage seconds."""
import json, sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupFilter)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter


def main():
    args = json.loads(sys.argv[1])
    inp, work, tasks, workers = args["input"], args["work"], args["tasks"], args["workers"]
    config = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    common = {"workers": workers, "skip_completed": False}
    stages = [
        ("signatures", LocalPipelineExecutor(pipeline=[JsonlReader(inp), MinhashDedupSignature(
            output_folder=f"{work}/signatures", config=config)], tasks=tasks, logging_dir=f"{work}/logs/1", **common)),
        ("buckets", LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(
            input_folder=f"{work}/signatures", output_folder=f"{work}/buckets", config=config)],
            tasks=config.num_buckets, logging_dir=f"{work}/logs/2", **common)),
        ("clusters", LocalPipelineExecutor(pipeline=[MinhashDedupCluster(
            input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids", config=config)],
            tasks=1, logging_dir=f"{work}/logs/3", **common)),
        ("filter", LocalPipelineExecutor(pipeline=[JsonlReader(inp), MinhashDedupFilter(
            input_folder=f"{work}/remove_ids",
            exclusion_writer=JsonlWriter(f"{work}/removed", compression=None)),
            JsonlWriter(f"{work}/kept", compression=None)], tasks=tasks, logging_dir=f"{work}/logs/4", **common)),
    ]
    seconds = {}
    for name, ex in stages:
        t0 = time.perf_counter()
        ex.run()
        seconds[name] = round(time.perf_counter() - t0, 3)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":  # datatrove's worker pool re-imports this module
    main()
'''


def ensure_venv() -> Path:
    """datatrove's own venv (created once; pip output goes to a log file)."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".bench-installed"
    if stamp.exists():
        return python
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    log = VENV.parent / "bench-datatrove-pip.log"
    print(f"installing {' '.join(PACKAGES)} into {VENV} (log: {log})", flush=True)
    with open(log, "w") as fh:
        subprocess.run([str(python), "-m", "pip", "install", *PACKAGES], check=True, stdout=fh, stderr=fh)
    version = subprocess.run([str(python), "-c", "import datatrove, importlib.metadata as m; "
                              "print(m.version('datatrove'))"], check=True, capture_output=True, text=True)
    stamp.write_text(version.stdout.strip())
    return python


def export_jsonl(run_dir: Path, dest: Path, files: int) -> int:
    """The ingested documents (id, text) as `files` plain JSONL files, in partition order."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    parts = sorted((run_dir / "out" / "ingest" / "data").glob("*.parquet"))
    handles = [open(dest / f"part-{i:03d}.jsonl", "w", encoding="utf-8") for i in range(files)]
    n = 0
    try:
        for p in parts:
            for row in pq.read_table(p, columns=["id", "text"]).to_pylist():
                handles[n % files].write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    finally:
        for h in handles:
            h.close()
    return n


def run_datatrove(n_docs: int, workers: int) -> dict[str, Any]:
    python = ensure_venv()
    run_dir = nd.ingested(n_docs, workers)
    base = nd.CACHE / f"datatrove-run-{n_docs}"
    inp = base / "input"
    tasks = max(2, 2 * workers)
    if not (inp / "_done").exists():
        export_jsonl(run_dir, inp, tasks)
        (inp / "_done").write_text("")
    work = base / "work"
    shutil.rmtree(work, ignore_errors=True)
    script = base / "run_datatrove.py"
    script.write_text(DATATROVE_SCRIPT)
    args = json.dumps({"input": str(inp), "work": str(work), "tasks": tasks, "workers": workers})
    r = nd.run_measured([str(python), str(script), args], base, env={"TQDM_DISABLE": "1"})
    stages = json.loads(r["output"].strip().splitlines()[-1])["seconds"]
    removed: set[str] = set()
    for f in sorted((work / "removed").glob("*.jsonl*")):
        with open(f, encoding="utf-8") as fh:
            removed.update(json.loads(line)["id"] for line in fh if line.strip())
    total = sum(stages.values())
    return {"docs": n_docs, "stage_seconds": stages, "seconds": round(total, 2), "wall_s": round(r["wall_s"], 2),
            "docs_per_s": round(n_docs / total, 1), "docs_per_cpu_s": round(n_docs / r["cpu_s"], 1),
            "cpu_seconds": round(r["cpu_s"], 2), "peak_rss_mb": round(r["peak_rss_mb"], 1),
            "peak_rss_single_mb": round(r["peak_rss_single_mb"], 1), "removed_ids": removed}


def run_ours(n_docs: int, workers: int, threshold: float) -> dict[str, Any]:
    r = nd.run_ours(n_docs, workers, threshold)
    m = r["manifest"]
    return {"docs": n_docs, "seconds": m["seconds"], "wall_s": round(r["wall_s"], 2),
            "docs_per_s": round(n_docs / m["seconds"], 1), "docs_per_cpu_s": round(n_docs / r["cpu_s"], 1),
            "cpu_seconds": round(r["cpu_s"], 2), "peak_rss_mb": round(r["peak_rss_mb"], 1),
            "peak_rss_single_mb": round(r["peak_rss_single_mb"], 1),
            "removed_ids": nd.removed_ids(r["run_dir"] / "out" / "near_dedup"),
            "steps": {k: v for k, v in m["stats"].items() if k.startswith("seconds")}}


def compare(n: int, workers: int, threshold: float, repeat: int) -> dict[str, Any]:
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for _ in range(repeat):
        ours.append(run_ours(n, workers, threshold))
        theirs.append(run_datatrove(n, workers))
    best_o = max(ours, key=lambda r: r["docs_per_s"])
    best_t = max(theirs, key=lambda r: r["docs_per_s"])
    docs = nd.documents(nd.ingested(n, workers))
    acc_o, gold = nd.accuracy(best_o.pop("removed_ids"), docs, nd.corpus(n), threshold)
    acc_t, _ = nd.accuracy(best_t.pop("removed_ids"), docs, nd.corpus(n), threshold, gold)
    for r in ours + theirs:
        r.pop("removed_ids", None)
    best_o["accuracy"], best_t["accuracy"] = acc_o, acc_t
    # per-CPU rate: best of the repeats as well
    best_o["docs_per_cpu_s"] = max(r["docs_per_cpu_s"] for r in ours)
    best_t["docs_per_cpu_s"] = max(r["docs_per_cpu_s"] for r in theirs)
    (nd.CACHE / f"datatrove-{n}.json").write_text(json.dumps(best_t, indent=1))
    return {"docs": n, "workers": workers, "ours": best_o, "datatrove": best_t, "gold": gold["info"],
            "ratio_vs_datatrove": round(best_o["docs_per_s"] / best_t["docs_per_s"], 2),
            "ratio_vs_datatrove_cpu": round(best_o["docs_per_cpu_s"] / best_t["docs_per_cpu_s"], 2),
            "all_runs": {"ours": [r["docs_per_s"] for r in ours], "datatrove": [r["docs_per_s"] for r in theirs]}}


def print_comparison(c: dict[str, Any]) -> None:
    o, t = c["ours"], c["datatrove"]
    print(f"\n== {c['docs']} documents, {c['workers']} workers ==")
    print(f"{'':28s}{'near_dedup':>14s}{'datatrove':>14s}")
    rows = [("docs/s (wall)", "docs_per_s", "{:.0f}"), ("docs per CPU-second", "docs_per_cpu_s", "{:.0f}"),
            ("seconds (stages)", "seconds", "{:.1f}"), ("CPU seconds (process tree)", "cpu_seconds", "{:.1f}"),
            ("peak RSS MB (tree)", "peak_rss_mb", "{:.0f}"), ("peak RSS MB (largest proc)", "peak_rss_single_mb",
                                                               "{:.0f}")]
    for label, key, fmt in rows:
        print(f"{label:28s}{fmt.format(o[key]):>14s}{fmt.format(t[key]):>14s}")
    for gold in ("planted", "exact"):
        for k in ("precision", "recall", "f1"):
            print(f"{gold + ' ' + k:28s}{o['accuracy'][gold][k]:>14.4f}{t['accuracy'][gold][k]:>14.4f}")
        for k, label in (("justified", "removals justified"), ("pairs_handled", "gold pairs handled")):
            total = "removed" if k == "justified" else "gold_pairs"
            print(f"{gold + ' ' + label:28s}{o['accuracy'][gold][k]:>7d} / {o['accuracy'][gold][total]:<6d}"
                  f"{t['accuracy'][gold][k]:>7d} / {t['accuracy'][gold][total]:<6d}")
    print("gold pairs handled/all by lang/quality (exact gold):")
    for g, (done, due) in o["accuracy"]["exact"]["by_group"].items():
        t_done = t["accuracy"]["exact"]["by_group"].get(g, [0, due])[0]
        print(f"  {g:26s}{done:>9d} / {due:<4d}{t_done:>9d} / {due:<4d}")
    print(f"datatrove stages: {t['stage_seconds']}; ours: {o['steps']}")
    print(f"all runs docs/s: {c['all_runs']}")
    print(f"ratio vs datatrove: {c['ratio_vs_datatrove']}x (wall), {c['ratio_vs_datatrove_cpu']}x (per CPU-second)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args(argv)
    ensure_venv()
    results = []
    for n in (int(x) for x in args.sizes.split(",") if x):
        c = compare(n, args.workers, args.threshold, args.repeat)
        print_comparison(c)
        results.append(c)
    last = results[-1]
    summary = {"bench": "compare_datatrove", "docs": last["docs"], "docs_per_s": last["ours"]["docs_per_s"],
               "datatrove_docs_per_s": last["datatrove"]["docs_per_s"], "peak_rss_mb": last["ours"]["peak_rss_mb"],
               "datatrove_peak_rss_mb": last["datatrove"]["peak_rss_mb"],
               "ratio_vs_datatrove": last["ratio_vs_datatrove"],
               "ratio_vs_datatrove_cpu": last["ratio_vs_datatrove_cpu"],
               "f1_exact": last["ours"]["accuracy"]["exact"]["f1"],
               "datatrove_f1_exact": last["datatrove"]["accuracy"]["exact"]["f1"],
               "sizes": {str(c["docs"]): {"ratio_vs_datatrove": c["ratio_vs_datatrove"],
                                          "ratio_vs_datatrove_cpu": c["ratio_vs_datatrove_cpu"]} for c in results}}
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
