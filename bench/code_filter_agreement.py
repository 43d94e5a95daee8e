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

Prints agreement (keep/drop), the disagreements, files/s and MB/s of both (per CPU-second, one
process each), the same for ours with every rule on, and the `secrets` redaction's MB/s on the same
files. `--fixtures DIR --record FILE` also writes bigcode's decisions on the files under DIR (the test
fixtures) for tests/test_code_filter.py.

Usage: python bench/code_filter_agreement.py --bigcode /work/fetch/bigcode-dataset --table code_meta.csv
       --repos /work/fetch/repos [--fixtures tests/data/code_files --record tests/data/code_filter_starcoder.json]
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


def run_ours(files: list[dict[str, Any]], extras: bool, batch: int = 2000) -> tuple[list[str | None], float]:
    off = {} if extras else {"drop_license_files": False, "data_files": False, "generated": False,
                             "minified": False, "encoded": False}
    stage = Stage(CodeFilterConfig(name="code_filter", **off), None)
    stage.setup()
    warm = files[:50]  # compile the patterns once, as bigcode's run excludes its imports
    stage.apply(pa.table({"id": ["w"] * len(warm), "source": ["code"] * len(warm), "text": [f["text"] for f in warm],
                          "path": [f["path"] for f in warm], "language": [f["language"] for f in warm]}))
    reasons: list[str | None] = []
    start = time.process_time()
    for i in range(0, len(files), batch):
        chunk = files[i:i + batch]
        table = pa.table({"id": [str(j) for j in range(len(chunk))], "source": ["code"] * len(chunk),
                          "text": [f["text"] for f in chunk], "path": [f["path"] for f in chunk],
                          "language": [f["language"] for f in chunk]})
        reasons.extend(stage.apply(table).column("reason").to_pylist())
    return reasons, time.process_time() - start


def run_secrets(files: list[dict[str, Any]], batch: int = 2000) -> tuple[dict[str, int], float]:
    """The `secrets` stage's redaction over the same files: matches per kind and CPU seconds."""
    from filters.secrets import redact_secrets

    redact_secrets(pa.array([f["text"] for f in files[:50]]))  # patterns compiled outside the timing
    totals: dict[str, int] = {}
    start = time.process_time()
    for i in range(0, len(files), batch):
        _, counts = redact_secrets(pa.array([f["text"] for f in files[i:i + batch]]))
        for found in counts:
            for kind, n in found.items():
                totals[kind] = totals.get(kind, 0) + n
    return dict(sorted(totals.items())), time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bigcode", type=Path, required=True, help="a checkout of bigcode-project/bigcode-dataset")
    ap.add_argument("--table", type=Path, required=True, help="NeMo Curator's nemo_curator/utils/code_meta.csv")
    ap.add_argument("--repos", type=Path, required=True, help="a directory of checked-out repositories")
    ap.add_argument("--fixtures", type=Path, help="also record bigcode's decisions on these files")
    ap.add_argument("--record", type=Path, help="where to write the fixtures' decisions (JSON)")
    args = ap.parse_args()
    files = collect(args.repos)
    mb = sum(len(f["text"].encode()) for f in files) / 1e6
    theirs, their_s = run_bigcode(args.bigcode, args.table, files)
    ours, our_s = run_ours(files, extras=False)
    _, all_s = run_ours(files, extras=True)
    secrets, secrets_s = run_secrets(files)
    agree = sum((r is None) == k for r, k in zip(ours, theirs, strict=True))
    print(f"{len(files)} files, {mb:.1f} MB, {len({f['repo'] for f in files})} repositories, "
          f"{len({f['language'] for f in files})} languages; load average {os.getloadavg()[0]:.2f}")
    print(f"kept: bigcode {sum(theirs)}, ours {sum(r is None for r in ours)}; agreement {agree / len(files):.4%}")
    for f, r, k in zip(files, ours, theirs, strict=True):
        if (r is None) != k:
            print(f"  differ: {f['repo']}/{f['path']} ({f['language']}): bigcode {'keep' if k else 'drop'}, ours {r}")
    print(f"bigcode: {len(files) / their_s:.0f} files/s, {mb / their_s:.2f} MB/s (CPU seconds {their_s:.2f})")
    print(f"ours (StarCoder rules): {len(files) / our_s:.0f} files/s, {mb / our_s:.2f} MB/s (CPU seconds {our_s:.2f})")
    print(f"ours (every rule): {len(files) / all_s:.0f} files/s, {mb / all_s:.2f} MB/s (CPU seconds {all_s:.2f})")
    print(f"secrets: {mb / secrets_s:.2f} MB/s (CPU seconds {secrets_s:.2f}); matches per kind: {secrets}")
    if args.fixtures and args.record:
        fixtures = collect(args.fixtures)
        keep, _ = run_bigcode(args.bigcode, args.table, fixtures)
        record = {"_source": "bigcode-dataset preprocessing/filtering.py decisions (bench/code_filter_agreement.py)",
                  "keep": {f"{f['path']}": k for f, k in zip(fixtures, keep, strict=True)}}
        args.record.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        print(f"recorded {len(fixtures)} fixture decisions in {args.record}")
    print(json.dumps({"files": len(files), "mb": round(mb, 2), "agreement": round(agree / len(files), 5),
                      "bigcode_files_per_s": round(len(files) / their_s, 1),
                      "ours_files_per_s": round(len(files) / our_s, 1),
                      "ours_all_rules_files_per_s": round(len(files) / all_s, 1),
                      "bigcode_mb_per_s": round(mb / their_s, 3), "ours_mb_per_s": round(mb / our_s, 3),
                      "secrets_mb_per_s": round(mb / secrets_s, 3),
                      "ratio_vs_bigcode": round(their_s / our_s, 2)}))


if __name__ == "__main__":
    main()
