"""The end-to-end job beside datatrove, per stage; and how our CPU pipeline scales with input size.

Default (no `--scales`): the job of issue 31 on real text, ours and datatrove 0.10 (the venv's `oracle`
extra) side by side, taking turns: Gopher repetition, Gopher quality, C4 and FineWeb heuristics (in
FineWeb's order, published defaults), MinHash near-dedup (word 5-grams, 14 bands x 8 rows), Parquet out,
`--workers` processes each. Both read the same `--files` plain JSONL files cut from `--input` (one JSONL
of `id`, `text`; `bench/real_corpus.py` builds the real corpus; without `--input`, the demo generator's
web documents). Ours runs as `curate run` in a fresh process, datatrove as its executor script in a fresh
process, so both pay their start-up. Printed: per stage seconds, start-up, docs per second and per
CPU-second, peak RSS of the process tree, whether the kept ids after the heuristics are identical (overall
and per filter) and the ratio of wall times. Last line: one JSON object (`ratio_vs_datatrove`,
`docs_per_s`, `peak_rss_mb`, ...).

    python bench/pipeline.py --input /work/data-real/real.jsonl [--workers 2] [--repeat 2] [--signals decisive]

`--scales 1,4,16 --docs 8000`: the demo pipeline's CPU stages (normalize, langid, exact_dedup,
heuristics, pii, shard) on demo corpora of N, 4N and 16N documents: per stage docs/s and MB/s, peak RSS,
time ratios between sizes and a linear fit `time = fixed + per_doc * docs` (`make bench` runs this).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STAGES = [
    {"name": "normalize"},
    {"name": "langid", "keep": ["en", "zh"], "skip_sources": ["code"]},
    {"name": "exact_dedup"},
    {"name": "heuristics", "filters": ["gopher_quality", "gopher_repetition", "c4", "fineweb"],
     "skip_sources": ["code"]},
    {"name": "pii"},
    {"name": "shard", "formats": ["parquet", "jsonl.zst"]},
]


def corpus(root: Path, n: int) -> Path:
    from pipeline.demo.corpus import write_demo_corpus

    path = root / f"demo-{n}"
    if not (path / "truth.jsonl").exists():
        write_demo_corpus(path, n_docs=n, seed=0)
    return path


class RssSampler:
    """Peak resident memory of this process and all its workers while each stage runs, sampled every
    50 ms (a stage is 'running' from its `_stage.json` until its `_manifest.json` appears)."""

    def __init__(self, out: Path, names: list[str]):
        import threading

        self.out, self.names, self.peak = out, names, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _current(self) -> str | None:
        for name in self.names:
            if not (self.out / name / "_manifest.json").exists():
                return name if (self.out / name / "_stage.json").exists() else None
        return None

    def _loop(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.05):
            stage = self._current()
            if stage is None:
                continue
            rss = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    rss += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak[stage] = max(self.peak.get(stage, 0.0), rss / 2**20)


def text_mb(data_dir: Path) -> float:
    """UTF-8 megabytes of `text` in a stage's kept documents (the next stage's input)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    total = 0
    for f in sorted(data_dir.glob("part-*.parquet")):
        total += int(pc.sum(pc.binary_length(pq.read_table(f, columns=["text"]).column("text"))).as_py() or 0)
    return total / 1e6


def run_once(data: Path, out: Path, workers: int) -> dict:
    import shutil

    from pipeline.config import validate
    from pipeline.runner import Runner

    inputs = [
        {"name": "web", "path": f"{data}/web/*.jsonl.gz", "format": "jsonl.gz", "url_field": "url"},
        {"name": "forum", "path": f"{data}/forum/*.jsonl.zst", "format": "jsonl.zst", "id_field": "doc_id",
         "text_field": "body", "url_field": "link"},
        {"name": "encyclopedia", "path": f"{data}/encyclopedia/*.parquet", "format": "parquet", "id_field": "id"},
        {"name": "code", "path": f"{data}/code/*.jsonl", "format": "jsonl", "id_field": "id"},
        {"name": "math", "path": f"{data}/math", "format": "hf", "id_field": "id"},
    ]
    shutil.rmtree(out, ignore_errors=True)
    cfg = validate({"name": "bench", "output": str(out), "workers": workers, "partition_rows": 2000,
                    "inputs": inputs, "stages": STAGES})
    names = ["ingest"] + [s["name"] for s in STAGES]
    sampler = RssSampler(out, names)
    started = time.monotonic()
    with sampler:
        Runner(cfg).run()
    total = time.monotonic() - started
    mb = sum(p.stat().st_size for p in data.rglob("*") if p.is_file() and p.name != "truth.jsonl") / 1e6
    stages = {}
    previous = None
    for name in names:
        manifest = json.loads((out / name / "_manifest.json").read_text())
        stages[name] = {"docs_in": manifest["counts"]["in"], "seconds": manifest["seconds"],
                        "mb_in": text_mb(out / previous / "data") if previous else mb,  # ingest: files read
                        "peak_rss_mb": round(sampler.peak.get(name, 0.0), 1)}
        previous = name
    return {"seconds": total, "input_mb": mb, "stages": stages}


# -- the end-to-end job beside datatrove ----------------------------------------------------------
FILTER_ORDER = ["gopher_repetition", "gopher_quality", "c4", "fineweb"]  # FineWeb's pipeline order

DATATROVE_JOB = r"""
# Issue 31's job in datatrove 0.10: filters (FineWeb's order), MinHash dedup, Parquet out; one JSON line out.
import json, sys, time
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                       GopherRepetitionFilter)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
import datatrove.utils.hashes.xxhash as dt_xxhash
import xxhash

# datatrove 0.10.1 hands xxhash a str; xxhash 4 (in this venv) takes bytes only: encode, as xxhash 3 did
dt_xxhash.xxhash64 = lambda data: xxhash.xxh64_intdigest(data.encode("utf-8"))
dt_xxhash.xxhash32 = lambda data: xxhash.xxh32_intdigest(data.encode("utf-8"))


def main():
    a = json.loads(sys.argv[1])
    inp, work, tasks, workers = a["input"], a["work"], a["tasks"], a["workers"]
    config = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8)
    common = {"workers": workers, "skip_completed": False}
    excl = lambda name: JsonlWriter(f"{work}/removed/{name}", compression=None)
    filters = [GopherRepetitionFilter(exclusion_writer=excl("gopher_repetition")),
               GopherQualityFilter(exclusion_writer=excl("gopher_quality")),
               C4QualityFilter(exclusion_writer=excl("c4")),
               FineWebQualityFilter(exclusion_writer=excl("fineweb"))]
    stages = [
        ("heuristics+signatures", LocalPipelineExecutor(pipeline=[
            JsonlReader(inp, glob_pattern="*.jsonl"), *filters, JsonlWriter(f"{work}/filtered", compression=None),
            MinhashDedupSignature(output_folder=f"{work}/signatures", config=config)],
            tasks=tasks, logging_dir=f"{work}/logs/1", **common)),
        ("buckets", LocalPipelineExecutor(pipeline=[MinhashDedupBuckets(
            input_folder=f"{work}/signatures", output_folder=f"{work}/buckets", config=config)],
            tasks=config.num_buckets, logging_dir=f"{work}/logs/2", **common)),
        ("clusters", LocalPipelineExecutor(pipeline=[MinhashDedupCluster(
            input_folder=f"{work}/buckets", output_folder=f"{work}/remove_ids", config=config)],
            tasks=1, logging_dir=f"{work}/logs/3", **common)),
        ("dedup+parquet", LocalPipelineExecutor(pipeline=[
            JsonlReader(f"{work}/filtered"), MinhashDedupFilter(input_folder=f"{work}/remove_ids"),
            ParquetWriter(f"{work}/out")], tasks=tasks, logging_dir=f"{work}/logs/4", **common)),
    ]
    seconds = {}
    for name, ex in stages:
        t0 = time.perf_counter()
        ex.run()
        seconds[name] = round(time.perf_counter() - t0, 3)
    print(json.dumps({"seconds": seconds}))


if __name__ == "__main__":  # datatrove's worker pool re-imports this module
    main()
"""


def job_input(args: argparse.Namespace, work: Path) -> Path:
    """`--files` plain JSONL files (`id`, `text`), documents dealt round-robin; both systems read these."""
    import gzip

    if args.input:
        source = Path(args.input)
        lines = source.read_text(encoding="utf-8").splitlines()
        name = source.stem
    else:
        data = corpus(work, args.docs)
        lines = []
        for f in sorted((data / "web").glob("*.jsonl.gz")):
            with gzip.open(f, "rb") as fh:
                for line in fh:
                    try:
                        row = json.loads(line.decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError):
                        continue  # the demo's planted malformed records
                    if isinstance(row, dict) and isinstance(row.get("text"), str):
                        doc_id = f"{f.name}:{len(lines)}"  # unique (planted copies share urls)
                        lines.append(json.dumps({"id": str(doc_id), "text": row["text"]}, ensure_ascii=False))
        name = f"demo-web-{args.docs}"
    dest = work / f"job-input-{name}-{args.files}"
    if not (dest / "_done").exists():
        dest.mkdir(parents=True, exist_ok=True)
        for k in range(args.files):
            (dest / f"part-{k:03d}.jsonl").write_text("".join(line + "\n" for line in lines[k::args.files]),
                                                      encoding="utf-8")
        (dest / "_done").write_text(str(len(lines)))
    return dest


def run_ours_job(inp: Path, work: Path, workers: int, signals: str) -> dict:
    import shutil

    import near_dedup as nd
    import yaml

    out = work / "ours-out"
    shutil.rmtree(out, ignore_errors=True)
    cfg = {"name": "e2e", "output": str(out), "workers": workers, "partition_rows": 2000,
           "inputs": [{"name": "real", "path": f"{inp}/*.jsonl", "format": "jsonl", "id_field": "id"}],
           # published defaults (compat datatrove: c4 rewrites the text FineWeb judges, as datatrove), and
           # English rules for every document, as datatrove (no built-in Chinese profile)
           "stages": [{"name": "heuristics", "filters": FILTER_ORDER, "signals": signals,
                       "builtin_lang_defaults": False},
                      {"name": "near_dedup"}, {"name": "shard", "formats": ["parquet"]}]}
    path = work / "ours-job.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    r = nd.run_measured([sys.executable, "-m", "pipeline", "run", str(path)], REPO, env={"PYTHONPATH": str(REPO)})
    stages = {}
    for name in ("ingest", "heuristics", "near_dedup", "shard"):
        m = json.loads((out / name / "_manifest.json").read_text())
        stages[name] = {"seconds": m["seconds"], "in": m["counts"]["in"], "kept": m["counts"]["kept"]}
    # `curate run` rewrites OUT/report.html after the stages (plots): timed again on its own to say how
    # much of the time outside the stages it is
    report = nd.run_measured([sys.executable, "-c", f"from pipeline.report import write_report; "
                              f"write_report({str(out)!r})"], REPO, env={"PYTHONPATH": str(REPO)})
    return {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_mb": r["peak_rss_mb"], "stages": stages,
            "startup_s": r["wall_s"] - sum(s["seconds"] for s in stages.values()), "report_s": report["wall_s"],
            "kept_after_heuristics": _ids(out / "heuristics" / "data"),
            "removed_by_filter": _removed_by_filter(out / "heuristics"), "final_docs": stages["shard"]["kept"]}


def _ids(data_dir: Path) -> set[str]:
    import pyarrow.parquet as pq

    out: set[str] = set()
    for f in sorted(data_dir.glob("*.parquet")):
        out.update(pq.read_table(f, columns=["id"]).column("id").to_pylist())
    return out


def _removed_by_filter(stage_dir: Path) -> dict[str, set[str]]:
    """Ids each filter removed, from the stage's removed-document files and their reasons."""
    import pyarrow.parquet as pq

    from pipeline.schema import REASON

    out: dict[str, set[str]] = {name: set() for name in FILTER_ORDER}
    for f in sorted(stage_dir.rglob("*.parquet")):
        if "data" in f.relative_to(stage_dir).parts:
            continue
        table = pq.read_table(f)
        if REASON not in table.column_names or "id" not in table.column_names:
            continue
        for doc_id, reason in zip(table.column("id").to_pylist(), table.column(REASON).to_pylist(), strict=True):
            if reason:
                out.setdefault(reason.split(":", 1)[0], set()).add(doc_id)
    return out


def _jsonl_ids(folder: Path) -> set[str]:
    out: set[str] = set()
    for f in sorted(folder.glob("*.jsonl")):
        with open(f, encoding="utf-8") as fh:
            out.update(json.loads(line)["id"] for line in fh if line.strip())
    return out


def run_datatrove_job(inp: Path, work: Path, workers: int, tasks: int) -> dict:
    import shutil

    import near_dedup as nd
    import pyarrow.parquet as pq

    base = work / "datatrove"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    script = base / "job.py"
    script.write_text(DATATROVE_JOB)
    args = json.dumps({"input": str(inp), "work": str(base / "work"), "tasks": tasks, "workers": workers})
    r = nd.run_measured([sys.executable, str(script), args], base, env={"TQDM_DISABLE": "1"})
    stages = json.loads(r["output"].strip().splitlines()[-1])["seconds"]
    final = sum(pq.read_metadata(f).num_rows for f in (base / "work" / "out").glob("*.parquet"))
    return {"wall_s": r["wall_s"], "cpu_s": r["cpu_s"], "peak_rss_mb": r["peak_rss_mb"], "stages": stages,
            "startup_s": r["wall_s"] - sum(stages.values()),
            "kept_after_heuristics": _jsonl_ids(base / "work" / "filtered"),
            "removed_by_filter": {name: _jsonl_ids(base / "work" / "removed" / name) for name in FILTER_ORDER},
            "final_docs": final}


def _print_side(label: str, r: dict, n_docs: int) -> None:
    print(f"{label}:")
    for name, st in r["stages"].items():
        sec = st["seconds"] if isinstance(st, dict) else st
        extra = f"  in {st['in']:>7,}  kept {st['kept']:>7,}" if isinstance(st, dict) else ""
        print(f"  {name:<24} {sec:7.2f} s{extra}")
    print(f"  {'start-up and between':<24} {r['startup_s']:7.2f} s" + (
        f"  (report.html alone, timed again: {r['report_s']:.2f} s)" if "report_s" in r else ""))
    print(f"  {'wall':<24} {r['wall_s']:7.2f} s  CPU {r['cpu_s']:.1f} s  {n_docs / r['wall_s']:,.0f} docs/s  "
          f"{n_docs / r['cpu_s']:,.0f} docs per CPU-s  peak RSS {r['peak_rss_mb']:.0f} MB")


def compare_job(args: argparse.Namespace) -> dict:
    import os

    sys.path.append(str(REPO / "bench"))  # after REPO: bench/pipeline.py must not shadow the package
    work = Path(args.work) / "e2e"
    inp = job_input(args, work)
    n_docs = int((inp / "_done").read_text())
    mb = sum(f.stat().st_size for f in inp.glob("*.jsonl")) / 1e6
    print(f"{n_docs:,} documents in {args.files} files ({mb:.1f} MB), {args.workers} workers, "
          f"signals: {args.signals}; load average {os.getloadavg()[0]:.2f}", flush=True)
    ours: list[dict] = []
    theirs: list[dict] = []
    for k in range(args.repeat):  # taking turns, so both see the same machine load on average
        ours.append(run_ours_job(inp, work, args.workers, args.signals))
        print(f"run {k + 1}: ours {ours[-1]['wall_s']:.1f} s, CPU {ours[-1]['cpu_s']:.1f} s, stages "
              f"{ {n: st['seconds'] for n, st in ours[-1]['stages'].items()} }, kept after the heuristics "
              f"{len(ours[-1]['kept_after_heuristics'])} (load {os.getloadavg()[0]:.2f})", flush=True)
        if not args.no_datatrove:
            theirs.append(run_datatrove_job(inp, work, args.workers, args.files))
            print(f"run {k + 1}: datatrove {theirs[-1]['wall_s']:.1f} s, CPU {theirs[-1]['cpu_s']:.1f} s "
                  f"(load {os.getloadavg()[0]:.2f})", flush=True)
    o = min(ours, key=lambda r: r["wall_s"])
    _print_side(f"\nours (best of {len(ours)})", o, n_docs)
    summary: dict = {"bench": "pipeline", "mode": "vs_datatrove", "docs": n_docs, "input_mb": round(mb, 1),
                     "workers": args.workers, "signals": args.signals,
                     "docs_per_s": round(n_docs / o["wall_s"], 1), "docs_per_cpu_s": round(n_docs / o["cpu_s"], 1),
                     "peak_rss_mb": round(o["peak_rss_mb"], 1), "seconds": round(o["wall_s"], 2),
                     "stage_seconds": {k: v["seconds"] for k, v in o["stages"].items()},
                     "startup_s": round(o["startup_s"], 2), "report_s": round(o["report_s"], 2),
                     "kept_after_heuristics": len(o["kept_after_heuristics"]),
                     "final_docs": o["final_docs"], "all_runs_s": {"ours": [round(r["wall_s"], 2) for r in ours]}}
    if theirs:
        t = min(theirs, key=lambda r: r["wall_s"])
        _print_side(f"datatrove (best of {len(theirs)})", t, n_docs)
        same = o["kept_after_heuristics"] == t["kept_after_heuristics"]
        print(f"kept after the heuristics: ours {len(o['kept_after_heuristics']):,}, datatrove "
              f"{len(t['kept_after_heuristics']):,}, identical ids: {same}")
        per_filter = {}
        for name in FILTER_ORDER:
            a, b = o["removed_by_filter"].get(name, set()), t["removed_by_filter"][name]
            per_filter[name] = a == b
            print(f"  removed by {name:<18} ours {len(a):>6,}  datatrove {len(b):>6,}  identical: {a == b}"
                  + ("" if a == b else f" (only ours {len(a - b)}, only datatrove {len(b - a)})"))
        print(f"after near-dedup: ours {o['final_docs']:,}, datatrove {t['final_docs']:,} documents")
        ratio, ratio_cpu = t["wall_s"] / o["wall_s"], t["cpu_s"] / o["cpu_s"]
        print(f"ratio vs datatrove: {ratio:.2f}x wall, {ratio_cpu:.2f}x CPU")
        summary.update({"ratio_vs_datatrove": round(ratio, 2), "ratio_vs_datatrove_cpu": round(ratio_cpu, 2),
                        "datatrove_seconds": round(t["wall_s"], 2), "datatrove_stage_seconds": t["stages"],
                        "datatrove_startup_s": round(t["startup_s"], 2),
                        "datatrove_docs_per_s": round(n_docs / t["wall_s"], 1),
                        "datatrove_peak_rss_mb": round(t["peak_rss_mb"], 1),
                        "identical_kept_after_heuristics": same, "identical_removed_per_filter": per_filter,
                        "datatrove_final_docs": t["final_docs"]})
        summary["all_runs_s"]["datatrove"] = [round(r["wall_s"], 2) for r in theirs]
    summary["load_average"] = round(os.getloadavg()[0], 2)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--scales", default=None, help="e.g. 1,4,16: the demo scaling run instead of the job")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", default=str(REPO / ".cache" / "bench"))
    parser.add_argument("--input", default=None, help="JSONL of id, text (bench/real_corpus.py)")
    parser.add_argument("--files", type=int, default=4, help="input files both systems read")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--signals", default="decisive", choices=["decisive", "all"])
    parser.add_argument("--no-datatrove", action="store_true")
    args = parser.parse_args()
    if args.scales is None:
        print(json.dumps(compare_job(args)))
        return
    work = Path(args.work)
    rows = []
    for scale in [int(s) for s in args.scales.split(",")]:
        n = args.docs * scale
        data = corpus(work, n)
        result = run_once(data, work / f"out-pipeline-{n}", args.workers)
        docs_in = result["stages"]["ingest"]["docs_in"]
        print(f"{n} docs ({result['input_mb']:.1f} MB compressed input): {result['seconds']:.1f} s, "
              f"{docs_in / result['seconds']:.0f} docs/s end to end")
        per_stage = {}
        for name, st in result["stages"].items():
            rate = st["docs_in"] / st["seconds"] if st["seconds"] else float("inf")
            mb_s = st["mb_in"] / st["seconds"] if st["mb_in"] is not None and st["seconds"] else None
            per_stage[name] = {"seconds": st["seconds"], "docs_per_s": round(rate, 1),
                               "mb_per_s": round(mb_s, 2) if mb_s is not None else None,
                               "peak_rss_mb": st["peak_rss_mb"]}
            print(f"  {name:<12} {st['seconds']:7.2f} s  {rate:9.0f} docs/s  "
                  f"{'' if mb_s is None else f'{mb_s:6.2f} MB/s'}  peak RSS {st['peak_rss_mb']:.0f} MB")
        rows.append({"docs": n, "seconds": round(result["seconds"], 2),
                     "docs_per_s": round(docs_in / result["seconds"], 1),
                     "per_stage_s": {k: v["seconds"] for k, v in result["stages"].items()},
                     "per_stage": per_stage})
    base = rows[0]["seconds"]
    for row in rows:
        row["time_ratio_vs_smallest"] = round(row["seconds"] / base, 2)
        row["size_ratio_vs_smallest"] = row["docs"] // rows[0]["docs"]
    # time = fixed + per_doc * docs: the fixed part is process start-up and model loading per worker
    import numpy as np

    docs = np.array([r["docs"] for r in rows], dtype=float)
    secs = np.array([r["seconds"] for r in rows], dtype=float)
    fit = None
    if len(rows) >= 2:
        slope, intercept = np.polyfit(docs, secs, 1)
        predicted = intercept + slope * docs
        r2 = 1 - float(((secs - predicted) ** 2).sum() / max(((secs - secs.mean()) ** 2).sum(), 1e-12))
        fit = {"fixed_s": round(float(intercept), 2), "ms_per_doc": round(float(slope) * 1000, 3), "r2": round(r2, 4)}
        print(f"linear fit: {fit['fixed_s']} s fixed + {fit['ms_per_doc']} ms/doc (R^2 {fit['r2']})")
    peak_mb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    print("scaling (size ratio -> time ratio): " + ", ".join(
        f"{r['size_ratio_vs_smallest']}x -> {r['time_ratio_vs_smallest']}x" for r in rows))
    print(json.dumps({"bench": "pipeline", "docs_per_s": rows[-1]["docs_per_s"], "peak_rss_mb": round(peak_mb, 1),
                      "workers": args.workers, "linear_fit": fit, "rows": rows}))


if __name__ == "__main__":
    main()
