"""Driver memory against corpus size for the global stages (near_dedup, quality keep_top, shard).

The global stages decide from per-partition summaries (histograms, label files, one bucket's sizes at a
time), so the driver process should need about the same memory for a corpus ten times larger. For each
size this builds a demo corpus, runs normalize → near_dedup → quality (keep_top) → shard (Parquet and
JSONL.zst) in a fresh driver process (local executor, 2 workers), and reads the driver's own peak RSS
per stage (the workers are separate processes and not counted: they hold one partition or bucket at a
time). Tokenization is left out: it is a row-wise map that holds nothing on the driver, and at 1M
documents on 2 cores it alone costs about 40 minutes.

The run directory is `ROOT/out-N`, so an interrupted size resumes where it stopped: a stage finished in
an earlier process keeps the peak recorded then (`ROOT/peaks-N.json`).

    python bench/driver_memory.py [--sizes 10000,100000] [--workers 2] [--root DIR]

Prints one line per size and stage, then a JSON line with `driver_peak_rss_mb` per size and stage and
`ratio_largest_vs_smallest` per stage (1.0 = flat).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STAGES = ["near_dedup", "quality", "shard"]

DRIVER = r"""
import json, resource, sys, threading, time
from pathlib import Path
import psutil
from pipeline.config import validate
from pipeline.runner import Runner

cfg = validate(json.loads(sys.argv[1]))
out = Path(cfg.output)
peaks, stop = {}, threading.Event()
me = psutil.Process()

def sample():
    while not stop.wait(0.05):
        running = [s for s in %(stages)r
                   if (out / s / "_stage.json").exists() and not (out / s / "_manifest.json").exists()]
        rss = me.memory_info().rss
        for s in running:
            peaks[s] = max(peaks.get(s, 0), rss)

t = threading.Thread(target=sample, daemon=True); t.start()
started = time.monotonic()
Runner(cfg).run()
stop.set(); t.join()
print(json.dumps({"peaks_mb": {s: round(v / 2**20, 1) for s, v in peaks.items()},
                  "seconds": round(time.monotonic() - started, 1)}))
"""


def prepare(root: Path, n: int) -> tuple[Path, Path]:
    """A demo corpus of n documents and a quality model (trained on the demo's labels)."""
    demo = root / f"demo-{n}"
    if not (demo / "truth.jsonl").exists():  # the corpus and the labelled sets the demo trains on
        subprocess.run([sys.executable, "-m", "pipeline", "demo-data", str(demo), "--docs", str(n)], check=True,
                       capture_output=True, cwd=REPO)
    model = root / "quality.bin"
    if not model.exists():
        subprocess.run([sys.executable, "-m", "pipeline", "train", "quality", "--input",
                        str(demo / "labels" / "quality.jsonl"), "--label-field", "label", "--output", str(model)],
                       check=True, capture_output=True, cwd=REPO)
    return demo, model


def config(demo: Path, model: Path, out: Path, workers: int) -> dict:
    from pipeline.demo.corpus import demo_inputs

    return {"name": "driver-memory", "output": str(out), "workers": workers, "partition_rows": 2000,
            "inputs": demo_inputs(demo), "stages": [
                {"name": "normalize"},
                {"name": "near_dedup", "threshold": 0.8},
                {"name": "quality", "kind": "quality_classifier", "model": str(model), "keep_top": 0.5},
                {"name": "shard", "formats": ["parquet", "jsonl.zst"], "max_shard_bytes": 8 << 20}]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10000,100000")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--root", default=None, help="where corpora are kept between runs (default: a temp dir)")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    root = Path(args.root or tempfile.mkdtemp(prefix="bench-driver-"))
    results: dict[str, dict[str, float]] = {}
    for n in sizes:
        demo, model = prepare(root, n)
        out = root / f"out-{n}"
        cfg = config(demo, model, out, args.workers)
        proc = subprocess.run([sys.executable, "-c", DRIVER % {"stages": STAGES}, json.dumps(cfg)],
                              capture_output=True, text=True, cwd=REPO, check=True)
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        recorded = root / f"peaks-{n}.json"  # stages an earlier, interrupted process finished
        peaks = {**(json.loads(recorded.read_text()) if recorded.exists() else {}), **got["peaks_mb"]}
        recorded.write_text(json.dumps(peaks))
        results[str(n)] = peaks
        for s in STAGES:
            print(f"{n:>9} docs  {s:<11} driver peak RSS {got['peaks_mb'].get(s, float('nan')):8.1f} MB"
                  f"  (pipeline {got['seconds']} s)")
    small, large = results[str(sizes[0])], results[str(sizes[-1])]
    ratios = {s: round(large[s] / small[s], 3) for s in STAGES if s in small and s in large}
    print(json.dumps({"sizes": sizes, "driver_peak_rss_mb": results, "ratio_largest_vs_smallest": ratios,
                      "workers": args.workers}))


if __name__ == "__main__":
    main()
