"""`make bench`: run every benchmark at a size that finishes in minutes on 2 cores, collect the JSON
object each prints as its last line, and write the results table into BENCHMARKS.md (between the
`<!-- bench:begin -->` / `<!-- bench:end -->` markers, so the prose around it stays)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# script -> arguments for the quick suite (the scripts' own defaults are the larger runs)
QUICK: dict[str, list[str]] = {
    "pipeline.py": ["--docs", "8000", "--scales", "1,4,16"],
    "heuristics.py": ["--docs", "20000"],
    "shards.py": ["--docs", "4000"],
    "near_dedup.py": ["--sizes", "10000,40000"],
    "compare_datatrove.py": ["--sizes", "10000"],
    "decontaminate.py": ["--docs", "8000", "--sizes", "1000,10000,100000"],
    "spark.py": ["--sizes", "2000,8000"],
    "extract.py": ["--pages", "4000", "--files", "4"],
    "synth.py": [],
}
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def run(script: str, args: list[str]) -> dict:
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(REPO / "bench" / script), *args], cwd=REPO, text=True,
                          capture_output=True, timeout=1800)
    seconds = time.monotonic() - started
    lines = [line for line in proc.stdout.strip().splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        result = {}
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
    return {"script": script, "command": " ".join(["python", f"bench/{script}", *args]), "exit": proc.returncode,
            "seconds": round(seconds, 1), "result": result}


def _fmt(value: object) -> str:
    if isinstance(value, dict):  # e.g. spark.py's docs/s per executor
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[dict]) -> str:
    out = [f"Run {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')} on {platform.machine()}, "
           f"{os.cpu_count()} cores, Python {platform.python_version()} (`make bench`).", "",
           "| benchmark | command | docs/s | peak RSS MB | ratios | wall s |", "|---|---|---|---|---|---|"]
    for row in rows:
        r = row["result"]
        ratios = ", ".join(f"{k.removeprefix('ratio_vs_')} {_fmt(v)}" for k, v in r.items()
                           if k.startswith("ratio_vs_"))
        status = "" if row["exit"] == 0 else f" (exit {row['exit']})"
        out.append(f"| {row['script']}{status} | `{row['command']}` | {_fmt(r.get('docs_per_s', ''))} | "
                   f"{_fmt(r.get('peak_rss_mb', ''))} | {ratios} | {row['seconds']} |")
    scaling = next((row["result"].get("rows") for row in rows if row["script"] == "pipeline.py"), None)
    if scaling and scaling[-1].get("per_stage"):
        out += ["", f"Per stage, CPU pipeline at {scaling[-1]['docs']:,} documents (bench/pipeline.py; MB/s is "
                    "UTF-8 text in (ingest: compressed input files); peak RSS sums the driver and its 2 "
                    "workers, sampled every 50 ms):", "",
                "| stage | seconds | docs/s | MB/s | peak RSS MB |", "|---|---|---|---|---|"]
        for name, st in scaling[-1]["per_stage"].items():
            out.append(f"| {name} | {st['seconds']} | {_fmt(st['docs_per_s'])} | "
                       f"{'' if st['mb_per_s'] is None else _fmt(st['mb_per_s'])} | {_fmt(st['peak_rss_mb'])} |")
    if scaling:
        fit = next(row["result"].get("linear_fit") for row in rows if row["script"] == "pipeline.py")
        fixed = fit["fixed_s"] if fit else 0.0
        out += ["", "Scaling of the CPU pipeline (bench/pipeline.py). Linear growth shows as a constant cost per "
                    "document once the fixed start-up (fitted below) is taken off:", "",
                "| documents | seconds | docs/s | size × | time × | ms per doc after the fixed part |",
                "|---|---|---|---|---|---|"]
        for s in scaling:
            marginal = (s["seconds"] - fixed) / s["docs"] * 1000
            out.append(f"| {s['docs']:,} | {s['seconds']} | {_fmt(s['docs_per_s'])} | {s['size_ratio_vs_smallest']} | "
                       f"{s['time_ratio_vs_smallest']} | {marginal:.3f} |")
        if fit:
            out += ["", f"Linear fit: {fit['fixed_s']} s fixed (worker start-up, model loading) + "
                        f"{fit['ms_per_doc']} ms per document, R² {fit['r2']}."]
    return "\n".join(out)


def main() -> None:
    only = sys.argv[1:]
    rows = [run(script, args) for script, args in QUICK.items()
            if (REPO / "bench" / script).exists() and (not only or script in only)]
    path = REPO / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{BEGIN}\n{table(rows)}\n{END}{tail}")
    print(json.dumps({"bench": "all", "scripts": {r["script"]: r["exit"] for r in rows}}))


if __name__ == "__main__":
    main()
