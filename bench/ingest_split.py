"""Ingest of one large JSONL file with 1 worker and with 2 (in-file parallelism, pipeline/ingest_split.py).

Writes a JSONL file of `--size-mb` megabytes under `--dir` (default /tmp, never the repository):
documents of 2-4 KB cut from real text (the article bodies of ../shared/data/article-extraction,
reshuffled paragraphs; `--text` for another JSON/JSONL file of texts), plus one malformed line per
10,000. Then runs `curate run` with ingest only, once per worker count, side by side, and prints wall
time, CPU seconds of the process tree and the ratios: the whole file in one task (as before), split
on 1 worker, split on 2 workers. The outputs of both runs must be byte-identical.

Usage: python bench/ingest_split.py [--size-mb 800] [--dir /tmp] [--split-mb 64]
The last line is one JSON object: seconds and CPU-seconds per run, `ratio_vs_whole_file`, load averages.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TEXT = REPO.parent / "shared" / "data" / "article-extraction" / "ground-truth.json"


def paragraphs(path: Path) -> list[str]:
    raw = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        data = json.loads(raw)
        items = data.values() if isinstance(data, dict) else data
        texts = [d.get("articleBody") or d.get("text", "") for d in items if isinstance(d, dict)]
    else:
        texts = [json.loads(line).get("text", "") for line in raw.splitlines() if line.strip()]
    return [p for t in texts for p in t.split("\n") if len(p.split()) > 5]


def write_corpus(path: Path, size: int, paras: list[str]) -> int:
    rng = random.Random(0)
    n = written = 0
    with open(path, "w", encoding="utf-8") as fh:
        while written < size:
            target = rng.randint(2000, 4000)
            doc, length = [], 0
            while length < target:
                p = rng.choice(paras)
                doc.append(p)
                length += len(p)
            line = "{broken json\n" if n % 10_000 == 9_999 else json.dumps({"text": "\n".join(doc), "n": n}) + "\n"
            fh.write(line)
            written += len(line.encode())
            n += 1
    return n


def digest(out: Path) -> str:
    h = hashlib.sha256()
    for p in sorted([*(out / "ingest" / "data").glob("*.parquet"), *(out / "quarantine").glob("*.parquet")]):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def run(root: Path, data: Path, workers: int, split_mb: int, label: str) -> tuple[float, float, float]:
    out = root / f"out-{label}"
    shutil.rmtree(out, ignore_errors=True)
    cfg = {"name": "bench", "output": str(out), "workers": workers, "seed": 0, "partition_rows": 20_000,
           "inputs": [{"name": "big", "path": str(data), "format": "jsonl", "split_bytes": split_mb << 20}],
           "stages": []}
    (root / f"cfg-{label}.json").write_text(json.dumps(cfg))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    before = os.times()
    subprocess.run([sys.executable, "-m", "pipeline", "run", str(root / f"cfg-{label}.json")], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    after = os.times()
    stage = json.loads((out / "ingest" / "_manifest.json").read_text())["seconds"]
    return time.perf_counter() - t0, (after.children_user + after.children_system
                                      - before.children_user - before.children_system), stage


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=800)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/ingest_split_bench"))
    ap.add_argument("--split-mb", type=int, default=64)
    ap.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    args = ap.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    data = args.dir / "big.jsonl"
    if not data.exists() or data.stat().st_size < args.size_mb << 20:
        docs = write_corpus(data, args.size_mb << 20, paragraphs(args.text))
        print(f"wrote {data}: {data.stat().st_size / 1e6:.0f} MB, {docs} lines")
    load_before = os.getloadavg()
    results = {}
    # the whole file in one task (what every file got before), then split in pieces on 1 and 2 workers
    for label, workers, split_mb in (("whole", 1, 1 << 30), ("split1", 1, args.split_mb), ("split2", 2, args.split_mb)):
        wall, cpu, stage = run(args.dir, data, workers, split_mb, label)
        results[label] = (wall, cpu, stage)
        print(f"{label}: {workers} worker(s), {wall:.1f} s wall ({stage:.1f} s the ingest stage), {cpu:.1f} CPU-s, "
              f"load {os.getloadavg()[0]:.1f}")
    same = len({digest(args.dir / f"out-{label}") for label in results}) == 1
    print(f"outputs byte-identical: {same}")
    ratio = results["split2"][0] / results["whole"][0]
    print(f"2 workers (split) / 1 worker (whole file) wall time: {ratio:.2f}; "
          f"against 1 worker split: {results['split2'][0] / results['split1'][0]:.2f}; "
          f"stage time: {results['split2'][2] / results['whole'][2]:.2f}")
    print(json.dumps({"size_mb": round(data.stat().st_size / 1e6),
                      **{f"seconds_{k}": round(v[0], 1) for k, v in results.items()},
                      **{f"cpu_s_{k}": round(v[1], 1) for k, v in results.items()},
                      **{f"stage_s_{k}": round(v[2], 1) for k, v in results.items()},
                      "ratio_vs_whole_file": round(ratio, 3),
                      "ratio_vs_split_1_worker": round(results["split2"][0] / results["split1"][0], 3),
                      "identical": same, "load_before": [round(x, 1) for x in load_before],
                      "load_after": [round(x, 1) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
