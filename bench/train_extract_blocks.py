"""Train the `blocks` extraction model (filters/extract_blocks_model.json) on real pages with human main text.

Data: the article-extraction set (`../shared/data/article-extraction`: 181 real news/blog pages and
their human-made article bodies, MIT). Every page is split into blocks by `filters.html_blocks`; a
block's label is whether its text belongs to the article: at least half of its 4-word shingles (for
blocks under 4 words: the whole block as a phrase) occur in the human text. Each page weighs the
same (a block's weight is its share of the page's characters, plus a floor so short blocks count).

Model: two L2-regularized logistic regressions (Newton's method in numpy) on standardized features,
the second adding the first's scores of the block's neighbours, container and page
(`filters.block_classifier`). The threshold is the one with the best mean page-level F over the sets
(`filters.extract_score`). Held-out figures come
from `--folds`-fold cross-validation by page (the threshold chosen inside each training fold), so the
F1 printed is on pages the model never saw; the shipped model is then fit on all pages.

With `--snippets DIR` (Trafilatura's evaluation set, its repository's tests/ folder: 990 diverse real
pages, each with snippets its main text must and must not contain) blocks holding a `with` snippet are
main text, blocks holding a `without` snippet boilerplate, other blocks of those pages unlabeled (left
out of the fit); folds hold out pages of both sets. The shipped model:
`python bench/train_extract_blocks.py --snippets <trafilatura checkout>/tests --article-weight 4`.

Usage: python bench/train_extract_blocks.py [--data ../shared/data/article-extraction] [--snippets DIR]
       [--article-weight 1] [--folds 5] [--l2 3] [--out filters/extract_blocks_model.json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from filters.block_classifier import CONTEXT_NAMES, MODEL_PATH, context_features, logistic  # noqa: E402
from filters.extract_score import corpus_score, shingles, snippet_counts, snippet_score  # noqa: E402
from filters.html_blocks import FEATURE_NAMES, FORMULA_CLOSE, FORMULA_OPEN, features, segment  # noqa: E402
from pipeline.warc import decode_html  # noqa: E402

_WORD = re.compile(r"\w+")


def load_pages(data: Path) -> list[dict]:
    truth = json.loads((data / "ground-truth.json").read_text(encoding="utf-8"))
    pages = []
    for key in sorted(truth):
        html = decode_html(gzip.decompress((data / "html" / f"{key}.html.gz").read_bytes()), None)[0]
        pages.append({"key": key, "html": html, "truth": truth[key]["articleBody"]})
    return pages


def label_blocks(texts: list[str], truth: str) -> np.ndarray:
    truth_sh = shingles(truth)
    truth_phrase = " " + " ".join(_WORD.findall(truth.lower())) + " "
    labels = np.zeros(len(texts), dtype=np.float32)
    for i, text in enumerate(texts):
        tokens = _WORD.findall(text.lower())
        if not tokens:
            continue
        if len(tokens) < 4:
            labels[i] = 1.0 if " " + " ".join(tokens) + " " in truth_phrase else 0.0
            continue
        sh = shingles(text)
        hit = sum(c for s, c in sh.items() if s in truth_sh)
        labels[i] = 1.0 if hit >= 0.5 * sum(sh.values()) else 0.0
    return labels


def prepare(pages: list[dict]) -> list[dict]:
    out = []
    for p in pages:
        blocks = segment(p["html"])
        texts = [t.replace(FORMULA_OPEN, "").replace(FORMULA_CLOSE, "") for t in blocks.texts]
        x = features(blocks)
        chars = blocks.chars.astype(np.float32)
        w = chars / max(chars.sum(), 1.0) + 1.0 / max(len(blocks), 1)
        out.append({"key": p["key"], "x": x, "blocks": blocks, "y": label_blocks(texts, p["truth"]), "w": w,
                    "texts": texts, "truth": p["truth"]})
    return out


def fit(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float, bias: int | None = None
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardize, then Newton steps on the weighted, L2-penalized log loss (the bias column unpenalized)."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    bias = FEATURE_NAMES.index("bias") if bias is None else bias
    mean[bias], scale[bias] = 0.0, 1.0
    scale[scale < 1e-6] = 1.0
    z = ((x - mean) / scale).astype(np.float64)
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[bias] = 0.0
    w = w.astype(np.float64) / w.sum() * len(w)
    for _ in range(30):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -30, 30)))
        grad = z.T @ (w * (p - y)) + penalty * beta
        hess = (z * (w * p * (1 - p))[:, None]).T @ z + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-4:
            break
    return mean, scale, beta


Model = list[tuple[np.ndarray, np.ndarray, np.ndarray]]


def predict(page: dict, model: Model) -> np.ndarray:
    p1 = logistic(page["x"], *model[0])
    return logistic(np.hstack([page["x"], context_features(page["blocks"], p1)]), *model[1])


def page_text(page: dict, prob: np.ndarray, threshold: float) -> str:
    return "\n".join(t for t, pr in zip(page["texts"], prob, strict=True) if pr >= threshold)


def scores(pages: list[dict], probs: list[np.ndarray], threshold: float) -> dict[str, dict]:
    """Shingle F1 on the article pages, snippet P/R/F on the snippet pages."""
    art = [(p["truth"], page_text(p, pr, threshold)) for p, pr in zip(pages, probs, strict=True) if "truth" in p]
    snip = [snippet_counts(p["with"], p["without"], page_text(p, pr, threshold))
            for p, pr in zip(pages, probs, strict=True) if "with" in p]
    out = {}
    if art:
        out["articles"] = corpus_score(art)
    if snip:
        out["snippets"] = snippet_score(snip)
    return out


def best_threshold(pages: list[dict], probs: list[np.ndarray]) -> float:
    """The threshold with the best mean F over the sets present."""
    grid = np.round(np.arange(0.2, 0.81, 0.05), 2)

    def mean_f(t: float) -> float:
        sc = scores(pages, probs, t)
        return sum(v["f1"] for v in sc.values()) / len(sc)

    return float(max(grid, key=lambda t: mean_f(float(t))))


def train(pages: list[dict], l2: float) -> tuple[Model, float]:
    """Stage 1 on block features; stage 2 on those plus stage 1's view of the neighbourhood."""
    w = np.concatenate([p["w"] for p in pages])
    rows = w > 0  # unlabeled blocks (snippet pages) carry no weight: left out of the fit
    x = np.concatenate([p["x"] for p in pages])[rows]
    y = np.concatenate([p["y"] for p in pages])[rows]
    first = fit(x, y, w[rows], l2)
    x2 = np.concatenate([np.hstack([p["x"], context_features(p["blocks"], logistic(p["x"], *first))])
                         for p in pages])[rows]
    second = fit(x2, y, w[rows], l2, bias=FEATURE_NAMES.index("bias"))
    model = [first, second]
    threshold = best_threshold(pages, [predict(p, model) for p in pages])
    return model, threshold


def load_snippet_pages(root: Path) -> list[dict]:
    """Trafilatura's evaluation layout: evaldata.json ({url: {file, with, without}}) and eval/ or cache/ HTML."""
    data = json.loads((root / "evaldata.json").read_text(encoding="utf-8"))
    pages = []
    for url in sorted(data):
        item = data[url]
        path = next((root / d / item["file"] for d in ("cache", "eval") if (root / d / item["file"]).is_file()), None)
        if path is None:
            continue
        pages.append({"key": url, "html": decode_html(path.read_bytes(), None)[0], "with": item["with"],
                      "without": item["without"]})
    return pages


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def prepare_snippets(pages: list[dict]) -> list[dict]:
    """Blocks holding (or held by) a `with` snippet are main text, a `without` one boilerplate; others unlabeled."""
    out = []
    for p in pages:
        blocks = segment(p["html"])
        texts = [t.replace(FORMULA_OPEN, "").replace(FORMULA_CLOSE, "") for t in blocks.texts]
        x = features(blocks)
        withs = [_norm(s) for s in p["with"]]
        withouts = [_norm(s) for s in p["without"]]
        y = np.zeros(len(blocks), dtype=np.float32)
        w = np.zeros(len(blocks), dtype=np.float32)
        for i, t in enumerate(texts):
            t = _norm(t)
            if len(t) < 10:
                continue
            if any(s in t or t in s for s in withs):
                y[i], w[i] = 1.0, 1.0
            elif any(s in t or t in s for s in withouts):
                y[i], w[i] = 0.0, 1.0
        w = w / max(w.sum(), 1.0)
        out.append({"key": p["key"], "x": x, "blocks": blocks, "y": y, "w": w, "texts": texts,
                    "with": p["with"], "without": p["without"]})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "article-extraction")
    ap.add_argument("--snippets", type=Path, default=None,
                    help="a second set in Trafilatura's evaluation layout (tests/ of its repository)")
    ap.add_argument("--article-weight", type=float, default=1.0,
                    help="with --snippets: how much an article page weighs against a snippet page")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--l2", type=float, default=3.0)
    ap.add_argument("--out", type=Path, default=MODEL_PATH)
    args = ap.parse_args(argv)
    t0 = time.time()
    pages = prepare(load_pages(args.data))
    if args.snippets:
        for p in pages:
            p["w"] = p["w"] * args.article_weight
        pages += prepare_snippets(load_snippet_pages(args.snippets))
    print(f"{len(pages)} pages, {sum(len(p['y']) for p in pages)} blocks, prepared in {time.time() - t0:.1f} s")
    held_pages, held_probs = [], []
    for fold in range(args.folds):
        test = [p for i, p in enumerate(pages) if i % args.folds == fold]
        train_pages = [p for i, p in enumerate(pages) if i % args.folds != fold]
        model, threshold = train(train_pages, args.l2)
        probs = [predict(p, model) for p in test]
        print(f"fold {fold}: threshold {threshold:.2f}, held-out {scores(test, probs, threshold)}")
        held_pages += test
        held_probs += [p >= threshold for p in probs]
    held = scores(held_pages, [pr.astype(np.float32) for pr in held_probs], 0.5)
    print(f"cross-validated (held-out pages): {held}")
    model, threshold = train(pages, args.l2)
    fitted = scores(pages, [predict(p, model) for p in pages], threshold)
    print(f"all pages: threshold {threshold:.2f}, training-set {fitted}")
    spec = {
        "_about": "Block classifier of the `blocks` extraction method (filters/block_classifier.py): two logistic "
                  "regressions over filters/html_blocks.py's features, made by bench/train_extract_blocks.py "
                  f"{' '.join(sys.argv[1:])} from the article-extraction set (Zyte article-extraction-benchmark, "
                  "MIT; a block is main text when >= half its 4-word shingles are in the human article body)"
                  + (" and the snippet set in trained.snippet_set" if args.snippets else "")
                  + ". Weights only: no page text is stored.",
        "trained": {"pages": len(pages), "l2": args.l2, "folds": args.folds, "cross_validated": held,
                    "article_weight": args.article_weight,
                    "snippet_set": "Trafilatura's evaluation set (tests/evaldata.json, Apache-2.0 repository; "
                                   "a block holding a 'with' snippet is main text, one holding a 'without' "
                                   "snippet boilerplate)" if args.snippets else None},
        "features": FEATURE_NAMES,
        "context_features": CONTEXT_NAMES,
        "stages": [{k: [round(float(v), 6) for v in arr] for k, arr in zip(("mean", "scale", "weights"), stage,
                                                                          strict=True)} for stage in model],
        "threshold": threshold,
    }
    args.out.write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
