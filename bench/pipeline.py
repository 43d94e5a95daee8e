"""End-to-end throughput of the CPU pipeline, per stage, and how it scales with input size.

Builds demo corpora of N, 4N and 16N documents, runs the demo pipeline's CPU stages (no synth, no
classifiers to train) with the local executor, and prints per stage docs/s and MB/s, the end-to-end
rate, peak RSS, and the time ratios between sizes (linear growth gives 4 and 16).

    python bench/pipeline.py [--docs 2000] [--scales 1,4,16] [--workers 2]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--scales", default="1,4,16")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--work", default=str(REPO / ".cache" / "bench"))
    args = parser.parse_args()
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
