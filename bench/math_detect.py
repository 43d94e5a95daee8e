"""`extract` + `math_detect` on real, hand-labelled web pages: precision, recall and F1 of `is_math`, pages/s.

PATH holds `labels.tsv` (`file<TAB>label<TAB>note`, label 1 = math, 0 = not; `#` lines are comments) and
the pages under `PATH/raw/`. The labelling rules and where the pages come from are in docs/math.md. The
pages split in two halves by a hash of the file name: `--fit` fits the rule score's logistic weights and
picks the threshold (best F1) on the train half only and prints them as the `weights`/`threshold` of
filters/math_detect.json; the figures to quote are the held-out half's. Also printed: per formula form
(MathJax script, TeX delimiters, KaTeX, MathML), how many formulas in the pages' HTML came out as TeX.

Usage: python bench/math_detect.py PATH [--fit] [--threshold T] [--cache FILE]
The last printed line is one JSON object with the held-out precision, recall, F1 and pages/s.
"""

from __future__ import annotations

import argparse
import hashlib
import html as html_lib
import json
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from filters import math_signals  # noqa: E402
from stages.extract import ExtractConfig  # noqa: E402
from stages.extract import Stage as Extract  # noqa: E402
from stages.math_detect import MathDetectConfig  # noqa: E402
from stages.math_detect import Stage as MathDetect  # noqa: E402

# formulas in the raw HTML, per form (counted on the source, independently of the extractor)
FORMS = {
    "mathjax_script": re.compile(r"<script[^>]*type=[\"']math/tex", re.I),
    "katex": re.compile(r"<span[^>]*class=[\"']katex[\"' ]", re.I),
    "mathml": re.compile(r"<math[\s>]", re.I),
    "tex_delimiters": re.compile(r"\\\((.+?)\\\)|\\\[(.+?)\\\]|\$\$(.+?)\$\$", re.S),
}
_NOT_CONTENT = re.compile(r"<(script|style)(?![^>]*math/tex)[^>]*>.*?</\1>", re.S | re.I)


def read_labels(root: Path) -> list[tuple[str, int]]:
    out = []
    for line in (root / "labels.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, label = line.split("\t")[:2]
            out.append((name, int(label)))
    return out


def held_out(name: str) -> bool:
    return hashlib.sha1(name.encode()).digest()[0] % 2 == 1


def form_counts(html: str) -> dict[str, int]:
    """Formulas per form in the page source. KaTeX pages carry MathML copies inside `.katex` spans, so
    a KaTeX page's `<math>` elements are its KaTeX formulas, not MathML ones."""
    body = _NOT_CONTENT.sub(" ", html)
    counts = {form: len(p.findall(body)) for form, p in FORMS.items()}
    if counts["katex"]:
        counts["mathml"] = 0
    if counts["mathjax_script"] or counts["mathml"]:  # delimiters are left in pages MathJax has not run on
        counts["tex_delimiters"] = 0
    return counts


def _squash(tex: str) -> str:
    return re.sub(r"\s+", "", tex)


def delimited_as_tex(html: str, text: str) -> int:
    """How many of the page's `\\(..\\)`, `\\[..\\]`, `$$..$$` formulas are in the extracted text as a
    `$..$` / `$$..$$` formula with the same TeX (`math_formulas` counts only inline formulas that look
    like TeX, so `$c$` would be missed by a count)."""
    flat = _squash(text)
    wanted: dict[str, int] = {}
    for m in FORMS["tex_delimiters"].finditer(_NOT_CONTENT.sub(" ", html)):
        key = _squash(html_lib.unescape(next(g for g in m.groups() if g is not None)))
        wanted[key] = wanted.get(key, 0) + 1
    n = 0
    for key, k in wanted.items():
        n += min(k, flat.count("$" + key + "$"))  # `$key$` is inside `$$key$$` too
    return n


def extracted(root: Path, labels: list[tuple[str, int]], cache: Path | None) -> tuple[pa.Table, float]:
    """The extract stage's output for every page (cached: extraction dominates and does not change here)."""
    if cache is not None and cache.is_file():
        table = pq.read_table(cache)
        if table.column("id").to_pylist() == [n for n, _ in labels]:
            return table, float(table.schema.metadata[b"extract_s"])
    html = [(root / "raw" / n).read_bytes().decode("utf-8", "replace") for n, _ in labels]
    table = pa.table({"id": [n for n, _ in labels], "text": [""] * len(labels), "source": ["web"] * len(labels),
                      "url": [None] * len(labels), "html": html})
    stage = Extract(ExtractConfig(name="extract", timeout_s=60), None)
    start = time.perf_counter()
    parts = [stage.apply(table.slice(i, 50)) for i in range(0, table.num_rows, 50)]
    seconds = time.perf_counter() - start
    forms = [form_counts(h) for h in html]
    out = pa.concat_tables(parts)
    for form in FORMS:
        out = out.append_column(f"html_{form}", pa.array([f[form] for f in forms], pa.int32()))
    out = out.drop_columns(["reason"]).replace_schema_metadata({"extract_s": str(seconds)})
    if cache is not None:
        pq.write_table(out, cache)
    return out, seconds


def prf(pred: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    tp, fp, fn = int((pred & gold).sum()), int((pred & ~gold).sum()), int((~pred & gold).sum())
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
            "tp": tp, "fp": fp, "fn": fn, "pages": len(gold), "math": int(gold.sum())}


def fit(x: np.ndarray, y: np.ndarray, prior: np.ndarray, l2: float = 1.0, steps: int = 50) -> np.ndarray:
    """Logistic regression by Newton's method, with a Gaussian prior centred on `prior` (the data file's
    weights; not on the bias): a signal these pages say nothing about (plain-text equations, Unicode
    symbols: real web math is TeX) keeps its prior weight instead of being zeroed. Columns of x: bias first."""
    w = prior.astype(np.float64).copy()
    reg = np.full(x.shape[1], l2)
    reg[0] = 0.0
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        grad = x.T @ (p - y) + reg * (w - prior)
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(reg)
        w -= np.linalg.solve(hess, grad)
    return w


def best_threshold(scores: np.ndarray, gold: np.ndarray) -> float:
    """The middle of the widest run of thresholds with the best F1 (not its edge, which a single page sets)."""
    candidates = np.unique(np.round(scores, 3))
    f1 = np.array([prf(scores >= t, gold)["f1"] for t in candidates])
    best = np.flatnonzero(f1 == f1.max())
    return round(float((candidates[best[0]] + candidates[best[-1]]) / 2), 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path", type=Path)
    ap.add_argument("--fit", action="store_true", help="fit the weights and threshold on the train half")
    ap.add_argument("--threshold", type=float, default=None, help="is_math threshold (default: the data file's)")
    ap.add_argument("--cache", type=Path, default=None, help="parquet file caching the extracted pages")
    args = ap.parse_args()
    labels = read_labels(args.path)
    table, extract_s = extracted(args.path, labels, args.cache)
    gold = np.array([lab == 1 for _, lab in labels])
    test = np.array([held_out(n) for n, _ in labels])
    stage = MathDetect(MathDetectConfig(name="math_detect", threshold=args.threshold), None)
    stage.setup()
    start = time.perf_counter()
    result = stage.apply(table)
    detect_s = time.perf_counter() - start
    sig = math_signals.measure(table.column("text"))
    feats = math_signals.features(sig, table.column("math_formulas").to_numpy(zero_copy_only=False))
    if args.fit:
        x = np.column_stack([np.ones(len(gold))] + [feats[f] for f in math_signals.FEATURES])
        current = math_signals.tables().weights
        prior = np.array([current["bias"]] + [current[f] for f in math_signals.FEATURES])
        w = fit(x[~test], gold[~test].astype(float), prior)
        weights = {"bias": round(float(w[0]), 3)} | {f: round(float(v), 3) for f, v in
                                                     zip(math_signals.FEATURES, w[1:], strict=True)}
        train_scores = math_signals.rule_score({k: v[~test] for k, v in feats.items()}, weights)
        print(json.dumps({"weights": weights, "threshold": best_threshold(train_scores, gold[~test])}))
        return
    pred = result.column("is_math").to_numpy(zero_copy_only=False)
    scores = result.column("math_score").to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(pred != gold):
        print(f"  {'FP' if pred[i] else 'FN'} {'test ' if test[i] else 'train'} {labels[i][0]}  score {scores[i]:.3f}"
              f"  formulas {int(table.column('math_formulas')[i].as_py() or 0)}")
    print("train half:", prf(pred[~test], gold[~test]))
    print("held-out half:", prf(pred[test], gold[test]))
    print("all:", prf(pred, gold))
    coverage = {}
    for form in FORMS:
        only = np.ones(len(gold), bool)
        for other in FORMS:
            if other != form:
                only &= table.column(f"html_{other}").to_numpy() == 0
        raw = table.column(f"html_{form}").to_numpy()
        pages = only & (raw > 0)
        out = table.column("math_formulas").to_numpy(zero_copy_only=False)
        if form == "tex_delimiters":
            out = np.zeros(len(gold), np.int64)
            for i in np.flatnonzero(pages):
                page_html = (args.path / "raw" / labels[i][0]).read_bytes().decode("utf-8", "replace")
                out[i] = delimited_as_tex(page_html, table.column("text")[i].as_py())
        coverage[form] = {"pages": int(pages.sum()), "formulas_in_html": int(raw[pages].sum()),
                          "as_tex": int(np.minimum(out[pages], raw[pages]).sum())}
    loads = np.array([bool(re.search(rb"mathjax|katex", (args.path / "raw" / n).read_bytes(), re.I))
                      for n, _ in labels])
    print(f"not math but loading MathJax/KaTeX: {int((loads & ~gold).sum())} pages, "
          f"{int((loads & ~gold & pred).sum())} called math")
    print("formulas as TeX, by form (pages with only that form):", json.dumps(coverage))
    n = len(labels)
    print(json.dumps({**{f"held_out_{k}": v for k, v in prf(pred[test], gold[test]).items()},
                      "pages": n, "math_detect_pages_per_s": round(n / detect_s, 1),
                      "extract_plus_detect_pages_per_s": round(n / (extract_s + detect_s), 1)}))


if __name__ == "__main__":
    main()
