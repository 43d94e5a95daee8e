"""Throughput, memory and accuracy of the `near_dedup` stage on the demo corpus.

For each size (default 10k and 100k documents; `--sizes 10000,100000,1000000` for 1M) it builds the
demo corpus (cached under `--data`), ingests it once, then runs the pipeline with only `near_dedup`
through `curate run` and reports:

* docs/s of the stage (wall clock, and per CPU-second of the whole process tree: the machines are
  shared, so wall time moves with other people's load);
* peak RSS (sum over the process tree, sampled) and the largest single process;
* accuracy, system-agnostic (from the set of removed documents only):
  - against the planted pairs of truth.jsonl (near copies with measured Jaccard >= 0.85, and exact
    copies): a pair is handled when one of its two documents is removed;
  - against exact Jaccard: gold = every pair with exact word-5-gram Jaccard >= threshold after the
    stage's normalization. Pairs are found with a permissive 28 × 4 LSH over independent
    signatures (P(miss | J >= 0.8) < 1e-6) and checked exactly; at <= 20k docs also by an exact
    all-pairs sparse product, and the two must agree. near_dedup removes a document only when it is
    verified against the survivor it is removed for, so a chain of gold pairs (A~B, B~C, A and C
    apart) does not owe k-1 removals: keeping A and C is right. Recall = gold pairs with at least
    one document removed (a pair with both documents kept is a near-duplicate left in the output);
    precision = removed documents with a gold partner that is kept (a removal is justified by a
    near-duplicate that stays: removing B and C with only A kept, C apart from A, counts C wrong).

Usage: python bench/near_dedup.py [--sizes 10000,100000] [--workers 2] [--threshold 0.8]
The last printed line is one JSON object (`docs_per_s`, `peak_rss_mb`, `ratio_vs_datatrove` when
`bench/compare_datatrove.py` has measured datatrove on the same size).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import yaml  # noqa: E402

from pipeline.demo.corpus import demo_inputs  # noqa: E402

CACHE = REPO / ".cache" / "bench-near-dedup"


# ----------------------------------------------------------------------------------------------
# measuring a subprocess tree


class TreeMonitor:
    """Samples RSS and CPU time of a process and its descendants (psutil) every `interval` seconds.

    CPU time per process is its last sample (user + system); summed over every process seen it
    covers descendants that rusage misses (a pool's forkserver children are never reaped by our
    child), at the cost of the last < interval of each process."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.pid = pid
        self.interval = interval
        self.peak_total = 0.0
        self.peak_single = 0.0
        self.cpu: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            import psutil
        except ImportError:  # optional: without it, CPU and RSS come from rusage alone
            return
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                rss = []
                for p in procs:
                    try:
                        rss.append(p.memory_info().rss / 2**20)
                        t = p.cpu_times()
                        self.cpu[p.pid] = t.user + t.system
                    except psutil.Error:
                        pass
                if rss:
                    self.peak_total = max(self.peak_total, sum(rss))
                    self.peak_single = max(self.peak_single, max(rss))
            except psutil.Error:
                pass
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def run_measured(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run a command; wall seconds, CPU seconds of the whole tree (rusage of reaped children), RSS."""
    import os

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    mon = TreeMonitor(proc.pid)
    out, _ = proc.communicate()
    mon.stop()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = max((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), sum(mon.cpu.values()))
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-4000:]}")
    # without psutil: the largest descendant reaped so far (KiB on Linux; an upper bound)
    fallback = after.ru_maxrss / 1024.0
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": mon.peak_total or fallback,
            "peak_rss_single_mb": mon.peak_single or fallback, "output": out}


# ----------------------------------------------------------------------------------------------
# corpus and our pipeline


def corpus(n_docs: int, seed: int = 0) -> Path:
    """The demo corpus of n_docs documents, generated once under .cache."""
    from pipeline.demo.corpus import write_demo_corpus

    root = CACHE / f"corpus-{n_docs}-{seed}"
    stamp = root / "_bench_done.json"
    if not stamp.exists():
        t0 = time.perf_counter()
        summary = write_demo_corpus(root, n_docs, seed)
        stamp.write_text(json.dumps({"n_docs": n_docs, "seed": seed, "near_dups": summary["near_dups"]}))
        print(f"generated {n_docs} demo documents in {time.perf_counter() - t0:.1f}s", flush=True)
    return root


def ingested(n_docs: int, workers: int, seed: int = 0) -> Path:
    """A run directory whose `ingest` stage is done (the near_dedup runs reuse it)."""
    root = corpus(n_docs, seed)
    run_dir = CACHE / f"run-{n_docs}-{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = {"name": "bench", "output": "out", "workers": workers, "seed": 0, "partition_rows": 2000,
           "inputs": demo_inputs(root), "stages": []}
    (run_dir / "ingest.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    if not (run_dir / "out" / "ingest" / "_manifest.json").exists():
        r = run_measured([sys.executable, "-m", "pipeline", "run", "ingest.yaml"], run_dir)
        print(f"ingested {n_docs} documents in {r['wall_s']:.1f}s", flush=True)
    return run_dir


def run_ours(n_docs: int, workers: int, threshold: float, seed: int = 0, **stage: Any) -> dict[str, Any]:
    """`curate run` with ingest cached and one near_dedup stage; returns measurements + manifest."""
    run_dir = ingested(n_docs, workers, seed)
    cfg = yaml.safe_load((run_dir / "ingest.yaml").read_text())
    cfg["workers"] = workers
    cfg["stages"] = [{"name": "near_dedup", "threshold": threshold, **stage}]
    (run_dir / "near_dedup.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    stage_dir = run_dir / "out" / "near_dedup"
    if stage_dir.exists():
        import shutil

        shutil.rmtree(stage_dir)
    r = run_measured([sys.executable, "-m", "pipeline", "run", "near_dedup.yaml"], run_dir)
    manifest = json.loads((stage_dir / "_manifest.json").read_text())
    ingest = json.loads((run_dir / "out" / "ingest" / "_manifest.json").read_text())
    r.update(manifest=manifest, ingest_seconds=ingest["seconds"], run_dir=run_dir)
    return r


def removed_ids(stage_dir: Path) -> set[str]:
    files = sorted((stage_dir / "removed").glob("*.parquet"))
    return {i for f in files for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()}


def documents(run_dir: Path, text: bool = True) -> pa.Table:
    """id (and text) of every ingested document (the input both systems see)."""
    return pq.read_table(run_dir / "out" / "ingest" / "data", columns=["id", "text"] if text else ["id"])


# ----------------------------------------------------------------------------------------------
# gold standards


def exact_gold_pairs(docs: pa.Table, threshold: float, all_pairs: bool) -> tuple[np.ndarray, np.ndarray, dict]:
    """Index pairs (i < j) with exact shingle Jaccard >= threshold, under the stage's normalization."""
    from filters.lsh_graph import unique_edges, window_edges
    from filters.minhash import MinHashParams, band_keys, exact_jaccard, minhash_signatures, shingle_sets

    t0 = time.perf_counter()
    params = MinHashParams(num_perm=112, bands=28, rows=4, seed=12345)  # independent of the stage's seed
    values, sizes, keys = [], [], []
    text = docs.column("text")
    for start in range(0, docs.num_rows, 5000):
        s = shingle_sets(text.slice(start, 5000), seed=0)
        values.append(s.values)
        sizes.append(s.sizes)
        keys.append(band_keys(minhash_signatures(s, params), params))
    vals = np.concatenate(values)
    size = np.concatenate(sizes)
    offsets = np.concatenate([[0], np.cumsum(size)]).astype(np.int64)
    band = np.concatenate(keys)
    nonempty = np.flatnonzero(size > 0)
    us, vs = [], []
    for b in range(params.bands):
        k = band[nonempty, b]
        order = np.argsort(k, kind="stable")
        u, v = window_edges(k[order], nonempty[order], window=1 << 30)  # every pair in a bucket
        us.append(u)
        vs.append(v)
    u, v = unique_edges(np.concatenate(us), np.concatenate(vs))
    jac = np.zeros(len(u))
    for lo in range(0, len(u), 200_000):
        a, b = u[lo:lo + 200_000], v[lo:lo + 200_000]
        jac[lo:lo + len(a)] = exact_jaccard(*_gather(vals, offsets, a), *_gather(vals, offsets, b))
    keep = jac >= threshold
    info = {"gold_candidates": int(len(u)), "gold_pairs": int(keep.sum()), "gold_seconds": 0.0}
    try:
        import scipy.sparse  # noqa: F401 - optional: the all-pairs cross-check needs it
    except ImportError:
        all_pairs = False
    if all_pairs:
        au, av = _all_pairs(vals, offsets, threshold)
        lsh = set(zip(u[keep].tolist(), v[keep].tolist(), strict=True))
        full = set(zip(au.tolist(), av.tolist(), strict=True))
        info["all_pairs_gold"] = len(full)
        info["lsh_gold_missed_by_lsh"] = len(full - lsh)
        info["lsh_gold_not_in_all_pairs"] = len(lsh - full)
    info["gold_seconds"] = round(time.perf_counter() - t0, 1)
    return u[keep], v[keep], info


def _gather(vals: np.ndarray, offsets: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lens = offsets[idx + 1] - offsets[idx]
    out_off = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    pos = np.repeat(offsets[idx] - out_off[:-1], lens) + np.arange(out_off[-1])
    return vals[pos], out_off


def _all_pairs(vals: np.ndarray, offsets: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Exact Jaccard of every pair that shares a shingle (sparse doc × shingle product)."""
    from scipy import sparse

    n = len(offsets) - 1
    cols = np.unique(vals, return_inverse=True)[1]
    m = sparse.csr_matrix((np.ones(len(vals), np.float32), cols, offsets), shape=(n, cols.max() + 1 if n else 0))
    inter = sparse.triu(m @ m.T, k=1).tocoo()
    size = np.diff(offsets)
    jac = inter.data / (size[inter.row] + size[inter.col] - inter.data)
    keep = jac >= threshold - 1e-9
    return inter.row[keep].astype(np.int64), inter.col[keep].astype(np.int64)


def planted_pairs(root: Path, ids: list[str], min_jaccard: float = 0.85) -> tuple[np.ndarray, np.ndarray]:
    """Planted near copies (measured Jaccard >= min_jaccard) and exact copies, as index pairs."""
    from pipeline.demo.corpus import load_truth

    pos = {d: i for i, d in enumerate(ids)}
    us, vs = [], []
    for t in load_truth(root):
        a = pos.get(t["id"])
        other = t.get("exact_dup_of") or (t.get("near_dup_of") if (t.get("jaccard") or 0) >= min_jaccard else None)
        b = pos.get(other) if other else None
        if a is not None and b is not None and a != b:
            us.append(min(a, b))
            vs.append(max(a, b))
    return np.array(us, dtype=np.int64), np.array(vs, dtype=np.int64)


def score(removed: set[str], ids: list[str], u: np.ndarray, v: np.ndarray, groups: list[str] | None = None
          ) -> dict[str, Any]:
    """Removal precision/recall/F1 against a gold pair graph (see the module docstring)."""
    n = len(ids)
    is_removed = np.zeros(n, dtype=bool)
    pos = {d: i for i, d in enumerate(ids)}
    for d in removed:
        if d in pos:
            is_removed[pos[d]] = True
    # a removed document is justified when one of its gold partners is kept
    justified = np.zeros(n, dtype=bool)
    justified[u[is_removed[u] & ~is_removed[v]]] = True
    justified[v[is_removed[v] & ~is_removed[u]]] = True
    handled = is_removed[u] | is_removed[v] if len(u) else np.zeros(0, bool)
    n_removed = int(is_removed.sum())
    precision = float(justified.sum() / n_removed) if n_removed else 1.0
    recall = float(handled.mean()) if len(u) else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out: dict[str, Any] = {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
                           "removed": n_removed, "justified": int(justified.sum()),
                           "pairs_handled": int(handled.sum()), "gold_pairs": int(len(u))}
    if groups is not None:  # gold pairs handled / gold pairs, by the group of the pair's first document
        by: dict[str, list[int]] = {}
        for a, done in zip(u.tolist(), handled.tolist(), strict=True):
            g = by.setdefault(groups[a], [0, 0])
            g[0] += int(done)
            g[1] += 1
        out["by_group"] = dict(sorted(by.items()))
    return out


def accuracy(removed: set[str], docs: pa.Table, root: Path, threshold: float, gold: dict[str, Any] | None = None,
             exact_max_docs: int = 200_000) -> tuple[dict[str, Any], dict[str, Any]]:
    """Scores against planted pairs and exact Jaccard (the latter up to `exact_max_docs` documents);
    `gold` caches the gold pairs between calls."""
    ids = docs.column("id").to_pylist()
    if gold is None:
        from pipeline.demo.corpus import load_truth

        labels = {t["id"]: f"{t.get('lang')}/{t.get('quality')}" for t in load_truth(root)}
        gold = {"planted": planted_pairs(root, ids), "groups": [labels.get(i, "?") for i in ids], "info": {}}
        if docs.num_rows <= exact_max_docs:
            gu, gv, gold["info"] = exact_gold_pairs(docs, threshold, all_pairs=docs.num_rows <= 20_000)
            gold["exact"] = (gu, gv)
    out = {"planted": score(removed, ids, *gold["planted"], groups=gold["groups"])}
    if "exact" in gold:
        out["exact"] = score(removed, ids, *gold["exact"], groups=gold["groups"])
    return out, gold


# ----------------------------------------------------------------------------------------------


def bench_size(n: int, workers: int, threshold: float, exact_max_docs: int = 200_000) -> dict[str, Any]:
    r = run_ours(n, workers, threshold)
    m = r["manifest"]
    stage_s = m["seconds"]
    docs = documents(r["run_dir"], text=n <= exact_max_docs)
    acc, gold = accuracy(removed_ids(r["run_dir"] / "out" / "near_dedup"), docs, corpus(n), threshold,
                         exact_max_docs=exact_max_docs)
    res = {"docs": n, "workers": workers, "stage_seconds": stage_s, "wall_seconds": round(r["wall_s"], 2),
           "docs_per_s": round(n / stage_s, 1), "docs_per_cpu_s": round(n / r["cpu_s"], 1),
           "cpu_seconds": round(r["cpu_s"], 2), "ingest_seconds": r["ingest_seconds"],
           "end_to_end_docs_per_s": round(n / (stage_s + r["ingest_seconds"]), 1),
           "peak_rss_mb": round(r["peak_rss_mb"], 1), "peak_rss_single_mb": round(r["peak_rss_single_mb"], 1),
           "removed": m["counts"]["removed"], "steps": {k: v for k, v in m["stats"].items() if k.startswith("seconds")},
           "candidate_pairs": m["stats"].get("candidate_pairs"), "verified_pairs": m["stats"].get("verified_pairs"),
           "accuracy": acc, "gold": gold["info"]}
    dt = CACHE / f"datatrove-{n}.json"
    if dt.exists():
        d = json.loads(dt.read_text())
        res["datatrove"] = {k: d[k] for k in ("docs_per_s", "docs_per_cpu_s", "peak_rss_mb", "accuracy") if k in d}
        res["ratio_vs_datatrove"] = round(res["docs_per_s"] / d["docs_per_s"], 2)
        res["ratio_vs_datatrove_cpu"] = round(res["docs_per_cpu_s"] / d["docs_per_cpu_s"], 2)
    return res


def print_result(r: dict[str, Any]) -> None:
    a = r["accuracy"]
    print(f"\n== near_dedup, {r['docs']} docs, {r['workers']} workers ==")
    print(f"stage {r['stage_seconds']:.1f}s -> {r['docs_per_s']:.0f} docs/s wall, {r['docs_per_cpu_s']:.0f} docs per "
          f"CPU-second; ingest {r['ingest_seconds']:.1f}s (end to end {r['end_to_end_docs_per_s']:.0f} docs/s)")
    print(f"peak RSS {r['peak_rss_mb']:.0f} MB (process tree), largest process {r['peak_rss_single_mb']:.0f} MB")
    print(f"steps: {r['steps']}")
    print(f"removed {r['removed']}; candidate pairs {r['candidate_pairs']}, verified {r['verified_pairs']}")
    for name, s in a.items():
        print(f"vs {name:7s}: precision {s['precision']:.4f} recall {s['recall']:.4f} F1 {s['f1']:.4f} "
              f"({s['pairs_handled']} of {s['gold_pairs']} gold pairs handled, {s['justified']} of {s['removed']} "
              "removals justified by a kept partner)")
    print(f"gold pairs handled/all by lang/quality: {a.get('exact', a['planted'])['by_group']}")
    print(f"gold: {r['gold']}")
    if "ratio_vs_datatrove" in r:
        print(f"datatrove (same corpus, measured by compare_datatrove.py): {r['datatrove']}; "
              f"ratio {r['ratio_vs_datatrove']}x wall, {r['ratio_vs_datatrove_cpu']}x per CPU-second")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated document counts")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--exact-max-docs", type=int, default=200_000,
                    help="skip the exact-Jaccard gold standard above this many documents")
    args = ap.parse_args(argv)
    results = []
    for n in (int(x) for x in args.sizes.split(",") if x):
        r = bench_size(n, args.workers, args.threshold, args.exact_max_docs)
        print_result(r)
        results.append(r)
    last = results[-1]
    summary = {"bench": "near_dedup", "docs": last["docs"], "docs_per_s": last["docs_per_s"],
               "docs_per_cpu_s": last["docs_per_cpu_s"], "peak_rss_mb": last["peak_rss_mb"],
               "precision_planted": last["accuracy"]["planted"]["precision"],
               "recall_planted": last["accuracy"]["planted"]["recall"],
               "sizes": {str(r["docs"]): {k: r[k] for k in ("docs_per_s", "docs_per_cpu_s", "peak_rss_mb")}
                         for r in results}}
    if "exact" in last["accuracy"]:
        summary.update({f"{k}_exact": last["accuracy"]["exact"][k] for k in ("precision", "recall", "f1")})
    with_dt = [r for r in results if "ratio_vs_datatrove" in r]
    if with_dt:  # the largest size datatrove was measured on (compare_datatrove.py caches it)
        summary["ratio_vs_datatrove"] = with_dt[-1]["ratio_vs_datatrove"]
        summary["ratio_vs_datatrove_cpu"] = with_dt[-1]["ratio_vs_datatrove_cpu"]
        summary["ratio_vs_datatrove_docs"] = with_dt[-1]["docs"]
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
