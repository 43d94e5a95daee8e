"""`code_filter` (compat: starcoder) against bigcode's own StarCoder filter code, on real repositories.

bigcode's filters are not a package: fetch github.com/bigcode-project/bigcode-dataset (never into this
repository) and pass its path. Its `preprocessing/filtering.py` functions run in a separate Python
process (`basic_filters_per_extension`, `filter_xml` where the table's XML flag is set, `filter_html`
on HTML with BeautifulSoup as its script imports it, `filter_large_and_small_files` on JSON/YAML with
its default 100-5000 window), fed the per-file statistics The Stack stores beside each file
(`max_line_length`, `avg_line_length`, `alphanum_fraction`, computed there per file the way The
Stack's metadata defines them), the threshold table NeMo Curator ships (`code_meta.csv`, given as
`--table`), and each file's language and extension from our `format: repo` reader. Ours: the
`code_filter` stage with only the StarCoder rules (generated/minified/data/encoded/licence-file
rules off, which StarCoderData did not have), on Arrow batches in this process.

Prints agreement (keep/drop), the disagreements, and files/s and MB/s of both per CPU-second (one
process each; bigcode's rows and our Arrow batches are built outside the timings), over `--rounds` rounds
with bigcode and ours alternating first: per-round ratios, their median and the load average. Also ours
with every rule on and the `secrets` redaction's MB/s on the same files. `--record FILE` writes bigcode's
decision per `repo/path` (what tests/test_code_filter.py checks against a shared copy of the
repositories); `--fixtures DIR --fixtures-record FILE` writes its decisions on the test fixtures.

Usage: python bench/code_filter_agreement.py --bigcode /work/fetch/bigcode-dataset --table code_meta.csv
       --repos /work/fetch/repos [--rounds 5] [--record decisions.json]
       [--fixtures tests/data/code_files --fixtures-record tests/data/code_filter_starcoder.json]
The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import pyarrow as pa  # noqa: E402

from filters.code_language import detect_language, file_extension  # noqa: E402
from pipeline.repo_input import read_file_text, walk_files  # noqa: E402
from pipeline.warc import Skipped  # noqa: E402
from stages.code_filter import CodeFilterConfig, Stage  # noqa: E402

# Runs in its own interpreter with bigcode's preprocessing/ on sys.path. The statistics are The Stack's
# per-file metadata columns (bigcode's filters read them, they do not compute them).
ORACLE = r'''
import json, sys, time, types
from argparse import Namespace
pre, table, files, out = sys.argv[1:5]
sys.path.insert(0, pre)
try:
    import utils.manual_sharding  # noqa: F401
except ImportError:  # saving helper only (needs an old huggingface_hub); not a filter
    sys.modules["utils.manual_sharding"] = types.SimpleNamespace(save_manual_shards=None)
import filtering
from bs4 import BeautifulSoup
filtering.BeautifulSoup = BeautifulSoup
filtering.args = Namespace(min_size=100, max_size=5000)
import csv
ext_to_filter = filtering.load_filter_csv(table)
xml_flag = {(r["language"], r["extension"]): r["XML filter"] for r in csv.DictReader(open(table))}

def stack_stats(content):
    lines = [len(x) for x in content.splitlines()]
    return {"max_line_length": max([0] + lines),
            "avg_line_length": sum(lines) / len(lines) if lines else 0,
            "alphanum_fraction": (sum(1 for c in content if c.isalpha() or c.isnumeric()) / len(content)
                                  if content else 0)}

rows = [json.loads(line) for line in open(files)]
decisions = []
start = time.process_time()
for ex in rows:
    ex.update(stack_stats(ex["content"]))
    ex["size"] = len(ex["content"])
    keep = filtering.basic_filters_per_extension(ex, ext_to_filter)
    key = (filtering.language_format_from_dataset(ex["lang"]), ex["ext"])
    if keep and xml_flag.get(key, "1") != "0":
        keep = filtering.filter_xml(ex)
    if keep and ex["lang"] == "HTML":
        keep = filtering.filter_html(ex)
    if keep and ex["lang"] in ("JSON", "YAML"):
        keep = filtering.filter_large_and_small_files(ex)
    decisions.append(bool(keep))
seconds = time.process_time() - start
json.dump({"keep": decisions, "cpu_seconds": seconds}, open(out, "w"))
'''


def collect(root: Path, max_bytes: int = 1_000_000) -> list[dict[str, Any]]:
    """Every text file of every repository directory under `root` (or of `root` itself)."""
    repos = sorted(p for p in root.iterdir() if p.is_dir()) if any(p.is_dir() for p in root.iterdir()) else [root]
    files = []
    for repo in repos:
        for rel in walk_files(str(repo)):
            text = read_file_text(os.path.join(repo, rel), max_bytes)
            if isinstance(text, Skipped):
                continue
            files.append({"repo": repo.name, "path": rel, "language": detect_language(rel), "text": text})
    return files


def run_bigcode(bigcode: Path, table: Path, files: list[dict[str, Any]]) -> tuple[list[bool], float]:
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "files.jsonl", Path(tmp) / "out.json"
        with open(inp, "w") as fh:
            for f in files:  # The Stack's columns: a file without a known language has none (dropped there too)
                row = {"content": f["text"], "lang": f["language"] or "", "ext": file_extension(f["path"])}
                fh.write(json.dumps(row) + "\n")
        subprocess.run([sys.executable, "-c", ORACLE, str(bigcode / "preprocessing"), str(table), str(inp), str(out)],
                       check=True, cwd=str(bigcode / "preprocessing"))
        result = json.loads(out.read_text())
    return result["keep"], result["cpu_seconds"]


def batches(files: list[dict[str, Any]], size: int = 2000) -> list[pa.Table]:
    """The files as the stage receives them: Arrow tables of `size` rows (built outside the timing, as
    bigcode's rows are parsed outside its)."""
    return [pa.table({"id": [str(j) for j in range(len(chunk))], "source": ["code"] * len(chunk),
                      "text": [f["text"] for f in chunk], "path": [f["path"] for f in chunk],
                      "language": [f["language"] for f in chunk]})
            for chunk in (files[i:i + size] for i in range(0, len(files), size))]


def run_ours(tables: list[pa.Table], extras: bool) -> tuple[list[str | None], float]:
    off = {} if extras else {"drop_license_files": False, "data_files": False, "generated": False,
                             "minified": False, "encoded": False}
    stage = Stage(CodeFilterConfig(name="code_filter", **off), None)
    stage.setup()
    stage.apply(tables[0].slice(0, 50))  # compile the patterns once, as bigcode's run excludes its imports
    reasons: list[str | None] = []
    start = time.process_time()
    for table in tables:
        reasons.extend(stage.apply(table).column("reason").to_pylist())
    return reasons, time.process_time() - start


def run_secrets(tables: list[pa.Table]) -> tuple[dict[str, int], float]:
    """The `secrets` stage's redaction over the same files: matches per kind and CPU seconds."""
    from filters.secrets import redact_secrets

    redact_secrets(tables[0].column("text").combine_chunks().slice(0, 50))  # patterns compiled outside the timing
    totals: dict[str, int] = {}
    start = time.process_time()
    for table in tables:
        _, counts = redact_secrets(table.column("text").combine_chunks())
        for found in counts:
            for kind, n in found.items():
                totals[kind] = totals.get(kind, 0) + n
    return dict(sorted(totals.items())), time.process_time() - start


def record_decisions(files: list[dict[str, Any]], keep: list[bool], path: Path) -> None:
    """bigcode's keep/drop per `repo/path` (the layout a shared data set of these repositories carries)."""
    record = {"_source": "bigcode-dataset preprocessing/filtering.py decisions (bench/code_filter_agreement.py)",
              "keep": {f"{f['repo']}/{f['path']}" if f.get("repo") else f["path"]: k
                       for f, k in zip(files, keep, strict=True)}}
    path.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bigcode", type=Path, required=True, help="a checkout of bigcode-project/bigcode-dataset")
    ap.add_argument("--table", type=Path, required=True, help="NeMo Curator's nemo_curator/utils/code_meta.csv")
    ap.add_argument("--repos", type=Path, required=True, help="a directory of checked-out repositories")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds, bigcode and ours alternating (median)")
    ap.add_argument("--record", type=Path, help="write bigcode's decision per repo/path of --repos here (JSON)")
    ap.add_argument("--fixtures", type=Path, help="also record bigcode's decisions on these files")
    ap.add_argument("--fixtures-record", type=Path, help="where to write the fixtures' decisions (JSON)")
    args = ap.parse_args()
    files = collect(args.repos)
    tables = batches(files)
    mb = sum(len(f["text"].encode()) for f in files) / 1e6
    load = [os.getloadavg()[0]]
    rounds: list[dict[str, float]] = []
    for r in range(args.rounds):  # alternate who goes first, so that neither always meets the same load
        order = ("bigcode", "ours") if r % 2 == 0 else ("ours", "bigcode")
        seconds: dict[str, float] = {}
        for who in order:
            if who == "bigcode":
                theirs, seconds["bigcode"] = run_bigcode(args.bigcode, args.table, files)
            else:
                ours, seconds["ours"] = run_ours(tables, extras=False)
        _, seconds["all_rules"] = run_ours(tables, extras=True)
        secrets, seconds["secrets"] = run_secrets(tables)
        rounds.append(seconds)
        load.append(os.getloadavg()[0])
        print(f"round {r + 1}: bigcode {seconds['bigcode']:.3f} s, ours {seconds['ours']:.3f} s "
              f"({seconds['bigcode'] / seconds['ours']:.1f}x), every rule {seconds['all_rules']:.3f} s, "
              f"secrets {seconds['secrets']:.3f} s (CPU seconds); load average {load[-1]:.2f}")
    agree = sum((r is None) == k for r, k in zip(ours, theirs, strict=True))
    print(f"{len(files)} files, {mb:.1f} MB, {len({f['repo'] for f in files})} repositories, "
          f"{len({f['language'] for f in files})} languages; load average {min(load):.2f}-{max(load):.2f}")
    print(f"kept: bigcode {sum(theirs)}, ours {sum(r is None for r in ours)}; agreement {agree / len(files):.4%}")
    for f, r, k in zip(files, ours, theirs, strict=True):
        if (r is None) != k:
            print(f"  differ: {f['repo']}/{f['path']} ({f['language']}): bigcode {'keep' if k else 'drop'}, ours {r}")
    med = {k: median([s[k] for s in rounds]) for k in rounds[0]}
    ratios = [s["bigcode"] / s["ours"] for s in rounds]
    for name, key in (("bigcode", "bigcode"), ("ours (StarCoder rules)", "ours"), ("ours (every rule)", "all_rules")):
        print(f"{name}: {len(files) / med[key]:.0f} files/s, {mb / med[key]:.2f} MB/s (median CPU seconds "
              f"{med[key]:.3f})")
    print(f"secrets: {mb / med['secrets']:.2f} MB/s (median CPU seconds {med['secrets']:.3f}); matches: {secrets}")
    print(f"ratio to bigcode per CPU-second: median {median(ratios):.1f}x, rounds "
          + ", ".join(f"{x:.1f}x" for x in ratios))
    if args.record:
        record_decisions(files, theirs, args.record)
        print(f"recorded {len(files)} decisions in {args.record}")
    if args.fixtures and args.fixtures_record:
        fixtures = collect(args.fixtures)
        keep, _ = run_bigcode(args.bigcode, args.table, fixtures)
        record_decisions([{**f, "repo": None} for f in fixtures], keep, args.fixtures_record)
        print(f"recorded {len(fixtures)} fixture decisions in {args.fixtures_record}")
    print(json.dumps({"files": len(files), "mb": round(mb, 2), "agreement": round(agree / len(files), 5),
                      "rounds": len(rounds), "load_average": [round(min(load), 2), round(max(load), 2)],
                      "bigcode_files_per_s": round(len(files) / med["bigcode"], 1),
                      "ours_files_per_s": round(len(files) / med["ours"], 1),
                      "ours_all_rules_files_per_s": round(len(files) / med["all_rules"], 1),
                      "bigcode_mb_per_s": round(mb / med["bigcode"], 3), "ours_mb_per_s": round(mb / med["ours"], 3),
                      "ours_all_rules_mb_per_s": round(mb / med["all_rules"], 3),
                      "secrets_mb_per_s": round(mb / med["secrets"], 3),
                      "ratio_vs_bigcode_median": round(median(ratios), 2),
                      "ratio_vs_bigcode_rounds": [round(x, 2) for x in ratios]}))


if __name__ == "__main__":
    main()
