"""`semantic_dedup` on rephrasings written by a real model: does it find a model's paraphrase of a document?

The MRPC figures (bench/semantic_dedup.py) are human paraphrases of news sentences. Synthetic data brings a
second kind: a model rewrites a passage, and a rewrite that lands in the corpus beside its source is a
semantic duplicate MinHash cannot see. This bench makes them with the `synth` stage itself (vLLM, the
recipe, its post-processing and the fidelity checks, exactly as a pipeline runs them) from the real
articles of ../shared/data/article-extraction, then embeds the articles and the surviving rewrites with
the `embed` stage's model and runs the real `semantic_dedup` stage at several eps.

Two ways to rewrite (`--unit`):

  * `sentence` (default): every sentence of an article's opening is its own synth input
    (bench/recipes/sentence_rephrase.yaml), and the rewrites are joined back in order into one document.
    A small model keeps the facts of one sentence; over a whole page it keeps the topic and invents the
    rest, so this is how a 135M model makes paraphrases;
  * `document`: the whole opening through `wiki_rephrase` (the first run's setting).

Whether a rewrite IS a paraphrase is judged without the embedding under test, sentence by sentence
(`sentence_check`): the rewrite keeps >= 3/4 of the source sentence's names and numbers, adds at most one
of its own, keeps >= 0.4 of its content words and is 0.6-1.6 times as long. A document rewrite is a
paraphrase when >= 0.8 of its source's sentences are faithfully rewritten (`paraphrase_check`). Two planted
sets go through `semantic_dedup`, each among the English articles (lid.176; the model is English):

  * all rewrites: each article's opening and its rewrite, whatever the check says;
  * confirmed excerpts: for each article, its sentences that have a faithful rewrite (from this run or a
    `--pool` run: generate again, keep the faithful one), joined in order, and those rewrites joined in
    order; articles with >= `--min-sentences` (3) such sentences.

Printed for each set, at each eps: pairs found (the rewrite or its source removed as `dup_of` the other;
and the looser "not both kept": one of the two removed, possibly against a third document, such as
another outlet's article on the same story that the source duplicates); articles removed against another
article, by other outlets' coverage of the same story (tests/data/article_same_story.json: same-topic
non-paraphrases) and otherwise (false positives).

    python bench/semantic_dedup_rephrase.py --model .cache/demo-model [--docs 40] [--words 250]
        [--unit sentence|document] [--temperature T] [--work DIR] [--pool DIR ...] [--also DIR ...]

`--work DIR` keeps the run: a rerun with the same arguments finds the synth stage done and only
rescores. `--also DIR ...` scores other finished runs on their own (e.g. a `--unit document` run). The
model must be a checkpoint vLLM loads (`curate demo-model DIR` writes SmolLM2-135M-Instruct); figures go
to BENCHMARKS.md with the model named.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from semantic_dedup import ARTICLES, run_stage  # noqa: E402

from filters import langid  # noqa: E402
from filters.embedding import Embedder  # noqa: E402
from filters.vectors import to_column  # noqa: E402

SENTENCE_RECIPE = REPO / "bench" / "recipes" / "sentence_rephrase.yaml"
SAME_STORY = REPO / "tests" / "data" / "article_same_story.json"

# a sentence ends at . ! ? (closing quotes/brackets kept) before a capital, digit or opening quote;
# not after a single capital ("J. Smith", "U.S.") or a common title
_SENT_END = re.compile(r"(?<=[.!?])[\"'”’)\]]*\s+(?=[\"“‘(\[]?[A-Z0-9])")
_NO_END = re.compile(r"(?:\b[A-Z]|\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof|Gen|Gov|Sen|Rep|No|vs|Inc|Co|Jan|Feb|Mar|Apr|"
                     r"Aug|Sept?|Oct|Nov|Dec))\.[\"'”’)\]]*$")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’-]*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
# function words: left out of content-word overlap and of the names check (a capitalized "The")
_STOP = frozenset("""a about above after again against all also am an and any are as at be because been before
being below between both but by can could did do does doing down during each few for from further had has have
having he her here hers herself him himself his how i if in into is it its itself just me more most my myself no
nor not now of off on once only or other our ours ourselves out over own said same she should so some such than
that the their theirs them themselves then there these they this those through to too under until up very was we
were what when where which while who whom why will with would you your yours yourself yourselves says say
according one two new however meanwhile""".split())


def sentences(text: str) -> list[str]:
    """`text` cut into sentences; a piece under 4 words is joined to the one before it."""
    out: list[str] = []
    start = 0
    for m in _SENT_END.finditer(text):
        piece = text[start:m.start() + len(m.group(0).rstrip())].strip()
        if _NO_END.search(piece):
            continue
        out.append(piece)
        start = m.end()
    out.append(text[start:].strip())
    merged: list[str] = []
    for s in out:
        if merged and len(s.split()) < 4:
            merged[-1] += " " + s
        elif s:
            merged.append(s)
    return merged


def opening(text: str, n_words: int) -> list[str]:
    """The whole sentences of `text` within its first `n_words` words (at least one, cut to `n_words`)."""
    out: list[str] = []
    words = 0
    for s in sentences(" ".join(text.split())):
        words += len(s.split())
        if out and words > n_words:
            break
        out.append(s)
    if len(out) == 1 and len(out[0].split()) > n_words:  # a page without sentence ends
        out = [" ".join(out[0].split()[:n_words])]
    return out


def load_articles(n_words: int) -> dict[str, list[str]]:
    """Article id -> the sentences of its opening, for the English articles of the shared set (sorted by
    key; lid.176 >= 0.5 on the opening). The embedding model is English: the stage's `languages: [en]`
    would leave the other pages uncompared, so they are left out here."""
    if not ARTICLES.exists():
        raise SystemExit(f"{ARTICLES} is missing (the shared article set)")
    articles = {f"art-{key[:12]}": opening(value["articleBody"], n_words)
                for key, value in sorted(json.loads(ARTICLES.read_text()).items())}
    model = langid.load_model(langid.resolve_model_path(None))
    langs, scores = langid.predict(model, langid.prepare(pa.array([" ".join(s) for s in articles.values()])))
    return {art: s for (art, s), lang, p in zip(articles.items(), langs, scores, strict=True)
            if lang == "en" and p >= 0.5}


def write_inputs(path: Path, articles: dict[str, list[str]], n_docs: int, unit: str) -> None:
    """The synth inputs: the first `n_docs` articles, whole (`document`) or one row per sentence."""
    with open(path, "w", encoding="utf-8") as fh:
        for art, sents in list(articles.items())[:n_docs]:
            if unit == "document":
                fh.write(json.dumps({"id": art, "text": " ".join(sents), "lang": "en"}) + "\n")
                continue
            for i, s in enumerate(sents):
                fh.write(json.dumps({"id": f"{art}-s{i:03d}", "text": s, "lang": "en"}) + "\n")


def synth_pipeline(tmp: Path, model: str, recipe: str, min_similarity: float,
                   temperature: float | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"recipe": recipe, "select": "id is not None"}
    if temperature is not None:
        entry["temperature"] = temperature
    if recipe == "wiki_rephrase":
        entry["max_output_tokens"] = 448
    name = "wiki_rephrase" if recipe == "wiki_rephrase" else yaml.safe_load(Path(recipe).read_text())["name"]
    return {
        "name": "rephrase-bench", "output": str(tmp / "out"), "workers": 1, "seed": 0,
        "inputs": [{"name": "articles", "path": str(tmp / "inputs.jsonl"), "format": "jsonl"}],
        "stages": [{
            "name": "synth", "engine": "vllm", "model": model, "max_model_len": 2048, "kv_cache_gb": 1,
            "repetition_penalty": 1.1,
            "recipes": [entry],
            # the demo's fidelity settings: unrelated outputs (cosine < floor) and copies (> 0.98) dropped
            "fidelity": {name: {"min_similarity": min_similarity, "max_similarity": 0.98}},
        }],
    }


def generate(tmp: Path, model: str, recipe: str, min_similarity: float, temperature: float | None) -> float:
    """Run `curate run` on the synth-only pipeline (resumes a kept --work run); seconds."""
    cfg = tmp / "pipeline.yaml"
    cfg.write_text(yaml.safe_dump(synth_pipeline(tmp, model, recipe, min_similarity, temperature)))
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline", "run", str(cfg)], check=True, cwd=REPO,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    return time.perf_counter() - t


def rewrites(run: Path) -> dict[str, dict[int, str]]:
    """Article id -> its rewritten sentences by index (-1: a whole-document rewrite). Ingest gives each
    input row its own id and keeps the bench's `id` in `meta.fields`; the rewrites name the former as
    `parent_id`; a sentence longer than the recipe's budget came back in chunks, joined in order."""
    table = pq.read_table(run / "out" / "synth" / "data", columns=["id", "text", "parent_id", "meta"])
    rows = table.to_pylist()
    bench_id = {r["id"]: json.loads(r["meta"])["fields"]["id"] for r in rows if not r["parent_id"]}
    pieces: dict[str, dict[int, list[tuple[int, str]]]] = {}
    for row in rows:
        if row["parent_id"]:
            sid = bench_id[row["parent_id"]]
            m = re.search(r"-s(\d{3})$", sid)
            art, index = (sid[:m.start()], int(m.group(1))) if m else (sid, -1)
            chunk = json.loads(row["meta"]).get("chunk", 0)
            pieces.setdefault(art, {}).setdefault(index, []).append((chunk, row["text"]))
    return {art: {i: " ".join(t for _, t in sorted(ps)) for i, ps in sorted(by.items())}
            for art, by in pieces.items()}


def failed_causes(run: Path) -> dict[str, int]:
    manifest = run / "out" / "synth" / "_manifest.json"
    return json.loads(manifest.read_text())["stats"].get("dropped_by_cause", {}) if manifest.exists() else {}


def _norm(text: str) -> str:
    return text.replace("’", "'").replace("‘", "'")


def _names(text: str) -> set[str]:
    """Numbers and capitalized words that do not start a sentence (possessive 's dropped, lower case):
    the facts a paraphrase must keep."""
    text = _norm(text)
    out = set(_NUMBER.findall(text))
    for sent in sentences(text):
        words = [re.sub(r"'s?$", "", w) for w in _WORD.findall(sent)]
        out.update(w.lower() for w in words[1:] if len(w) > 1 and w[0].isupper() and w.lower() not in _STOP)
    return out


def _content(text: str) -> set[str]:
    return {re.sub(r"'s?$", "", w.lower()) for w in _WORD.findall(_norm(text))
            if w.lower() not in _STOP and len(w) > 2}


def _in_text(name: str, text: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", text) is not None


def sentence_check(source: str, rewrite: str) -> bool:
    """A faithful rewrite of one sentence, judged on words alone (no embedding): it keeps >= 3/4 of the
    source's names and numbers and adds at most one of its own, keeps >= 0.4 of its content words (a
    same-topic sentence shares few) and is 0.6-1.6 times as long."""
    src_names, new_names = _names(source), _names(rewrite)
    src_lower, new_lower = _norm(source).lower(), _norm(rewrite).lower()
    kept = sum(_in_text(n, new_lower) for n in src_names) / max(1, len(src_names))
    added = [n for n in new_names if not _in_text(n, src_lower)]
    src_words = _content(source)
    overlap = len(src_words & _content(rewrite)) / max(1, len(src_words))
    ratio = len(rewrite.split()) / max(1, len(source.split()))
    return kept >= 0.75 and len(added) <= 1 and overlap >= 0.4 and 0.6 <= ratio <= 1.6


def paraphrase_check(source: list[str], rewrite: dict[int, str]) -> dict[str, Any]:
    """A document rewrite (sentence index -> its rewrite) is a paraphrase when >= 0.8 of the source's
    sentences have a rewrite that `sentence_check` passes; a whole-document rewrite (key -1) is split
    into sentences and each source sentence matched to its best-overlapping rewritten sentence."""
    if list(rewrite) == [-1]:
        parts = sentences(rewrite[-1])
        rewrite = {i: max(parts, key=lambda p, s=s: len(_content(p) & _content(s))) for i, s in enumerate(source)}
    faithful = sum(sentence_check(s, rewrite[i]) for i, s in enumerate(source) if i in rewrite)
    return {"sentences": len(source), "rewritten": sum(i in rewrite for i in range(len(source))),
            "faithful": faithful, "paraphrase": faithful >= 0.8 * len(source)}


def same_story() -> dict[str, int]:
    """Article id -> its same-story group (tests/data/article_same_story.json)."""
    groups = json.loads(SAME_STORY.read_text())["groups"]
    return {f"art-{k}": g for g, members in enumerate(groups) for k in members}


Candidates = dict[str, dict[int, list[str]]]  # article -> sentence index (-1: whole) -> rewrites, by run


def merge(runs: list[dict[str, dict[int, str]]], articles: dict[str, list[str]]) -> Candidates:
    """The rewrites of several runs side by side (English articles only; the first run first)."""
    out: Candidates = {}
    for run in runs:
        for art, parts in run.items():
            if art in articles:
                for i, text in parts.items():
                    out.setdefault(art, {}).setdefault(i, []).append(text)
    return out


def planted_pairs(articles: dict[str, list[str]], cands: Candidates,
                  min_sentences: int) -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """(all, confirmed) planted pairs, article -> (source, rewrite).

    all: the article's opening and the first run's rewrite of it (sentence rewrites joined in order,
    dropped sentences missing): what a pipeline would put beside its source. confirmed: the sentences
    with a rewrite that `sentence_check` passes (any run's, the first that passes), joined in order on
    both sides, for articles with >= `min_sentences` of them: an excerpt and its paraphrase."""
    every: dict[str, tuple[str, str]] = {}
    confirmed: dict[str, tuple[str, str]] = {}
    for art, parts in cands.items():
        every[art] = (" ".join(articles[art]), " ".join(texts[0] for _, texts in sorted(parts.items())))
        src, new = [], []
        for i, texts in sorted(parts.items()):
            good = [t for t in texts if i >= 0 and sentence_check(articles[art][i], t)]
            if good:
                src.append(articles[art][i])
                new.append(good[0])
        if len(src) >= min_sentences:
            confirmed[art] = (" ".join(src), " ".join(new))
    return every, confirmed


def evaluate(articles: dict[str, list[str]], pairs: dict[str, tuple[str, str]], work: Path,
             eps_values: list[float], workers: int) -> dict[str, Any]:
    """semantic_dedup over the English articles, each planted pair's source in its article's place and
    its rewrite beside it: at each eps, pairs found (one removed as `dup_of` the other) and articles
    removed against another article (same story, or any other: a false positive)."""
    docs = {art: pairs[art][0] if art in pairs else " ".join(s) for art, s in articles.items()}
    docs.update({f"{art}-rw": rw for art, (_, rw) in pairs.items()})
    ids, texts = list(docs), list(docs.values())
    vec = Embedder().encode(texts)
    table = pa.table({"id": ids, "text": texts, "embedding": to_column(vec)})
    row = {i: n for n, i in enumerate(ids)}
    cos = sorted(float(vec[row[a]].astype("float32") @ vec[row[f"{a}-rw"]].astype("float32")) for a in pairs)
    story = same_story()
    out: dict[str, Any] = {"pairs": len(pairs), "articles": len(articles),
                           "cosine": [round(c, 3) for c in cos]}
    print(f"{len(pairs)} planted pairs among {len(articles)} articles; cosine(rewrite, source): "
          + " ".join(f"{c:.2f}" for c in cos), flush=True)
    for eps in eps_values:
        result, _ = run_stage(table, work / f"eps{eps}", workers, 256, eps=eps)
        dup = {r["id"]: r["dup_of"] for r in result.to_pylist() if r["dup_of"]}
        found = {a for a in pairs if dup.get(f"{a}-rw") == a or dup.get(a) == f"{a}-rw"}
        against = {a: re.sub(r"-rw$", "", dup[a]) for a in articles if a in dup and dup[a] != f"{a}-rw"}
        same = {a for a, b in against.items() if a in story and story[a] == story.get(b)}
        other = sorted(f"{a}->{b}" for a, b in against.items() if a not in same)
        # a pair not found: its source or rewrite went against a third document (same story), or both stayed
        missed = sorted(f"{a}: source->{dup.get(a)} rewrite->{dup.get(f'{a}-rw')}" for a in pairs if a not in found)
        # what deduplication is for: the two no longer both in the output (one may have gone against a third
        # document, e.g. another outlet's article on the same story that the source duplicates)
        apart = [a for a in pairs if a not in dup and f"{a}-rw" not in dup]
        line = {"found": f"{len(found)}/{len(pairs)}", "found_rate": round(len(found) / max(1, len(pairs)), 3),
                "not_both_kept_rate": round(1 - len(apart) / max(1, len(pairs)), 3),
                "articles_removed_same_story": len(same), "articles_removed_other": len(other),
                "articles_removed_other_rate": round(len(other) / len(articles), 4), "other_pairs": other,
                "missed": missed}
        out[f"eps{eps}"] = line
        print(f"  eps {eps:<5} " + "  ".join(f"{k} {v}" for k, v in line.items()), flush=True)
    return out


def score(articles: dict[str, list[str]], runs: list[dict[str, dict[int, str]]], work: Path,
          eps_values: list[float], workers: int, min_sentences: int) -> dict[str, Any]:
    cands = merge(runs, articles)
    checks = {art: paraphrase_check(articles[art], {i: t[0] for i, t in parts.items()})
              for art, parts in cands.items()}
    every, confirmed = planted_pairs(articles, cands, min_sentences)
    n_sent = sum(c["sentences"] for c in checks.values())
    faithful = sum(c["faithful"] for c in checks.values())
    out: dict[str, Any] = {
        "rewrites": len(checks), "documents_confirmed": sum(c["paraphrase"] for c in checks.values()),
        "sentences": n_sent, "sentences_rewritten": sum(c["rewritten"] for c in checks.values()),
        "sentences_faithful_first_run": faithful,
        "sentences_faithful_any_run": sum(len(confirmed_sentences(articles[a], p)) for a, p in cands.items())}
    print(f"{out['rewrites']} rewritten articles, {out['documents_confirmed']} confirmed as paraphrases "
          f"(>= 0.8 of sentences faithful); sentences: {n_sent}, rewritten {out['sentences_rewritten']}, "
          f"faithful {faithful} (first run), {out['sentences_faithful_any_run']} (any run)", flush=True)
    print("all rewrites:", flush=True)
    out["all"] = evaluate(articles, every, work / "all", eps_values, workers)
    print(f"confirmed excerpts (>= {min_sentences} faithful sentences):", flush=True)
    out["confirmed"] = evaluate(articles, confirmed, work / "confirmed", eps_values, workers)
    return out


def confirmed_sentences(source: list[str], parts: dict[int, list[str]]) -> list[int]:
    """Sentence indices with a faithful rewrite in any run (a whole-document rewrite: as paraphrase_check)."""
    if list(parts) == [-1]:
        return list(range(paraphrase_check(source, {-1: parts[-1][0]})["faithful"]))
    return [i for i, texts in parts.items() if i >= 0 and any(sentence_check(source[i], t) for t in texts)]


def check_on_mrpc(mrpc: Path) -> dict[str, float]:
    """How often `sentence_check` accepts MRPC's human-judged pairs: what "confirmed" means."""
    rows: list[list[str]] = []
    for name in ("msr_paraphrase_train.txt", "msr_paraphrase_test.txt"):
        with open(mrpc / name, encoding="utf-8-sig") as fh:
            rows += list(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    out = {}
    for label, name in (("1", "paraphrase"), ("0", "not_paraphrase")):
        pairs = [r for r in rows if r[0] == label]
        out[f"{name}_accepted"] = round(sum(sentence_check(r[3], r[4]) for r in pairs) / len(pairs), 3)
    print(f"sentence_check on MRPC: {out}", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="a checkpoint directory vLLM loads (curate demo-model DIR)")
    ap.add_argument("--docs", type=int, default=40, help="English articles rewritten (all are in the corpus)")
    ap.add_argument("--words", type=int, default=250, help="each article's opening: whole sentences in N words")
    ap.add_argument("--unit", choices=("sentence", "document"), default="sentence")
    ap.add_argument("--recipe", default=None, help="default: bench/recipes/sentence_rephrase.yaml for "
                    "--unit sentence, wiki_rephrase for --unit document")
    ap.add_argument("--temperature", type=float, default=None, help="override the recipe's (0: greedy)")
    ap.add_argument("--min-similarity", type=float, default=0.3, help="fidelity floor (the demo's)")
    ap.add_argument("--eps", type=lambda s: [float(x) for x in s.split(",")], default=[0.1, 0.2, 0.25, 0.3])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--min-sentences", type=int, default=3, help="a confirmed excerpt has at least this many")
    ap.add_argument("--work", default=None, help="keep the run here (default: a temporary folder)")
    ap.add_argument("--pool", nargs="*", default=[], help="finished --work runs (same --words) whose sentence "
                    "rewrites are further candidates for the confirmed set")
    ap.add_argument("--also", nargs="*", default=[], help="finished --work runs to score on their own")
    ap.add_argument("--mrpc", default=None, help="MRPC folder: print how often the check accepts its pairs")
    args = ap.parse_args()
    recipe = args.recipe or (str(SENTENCE_RECIPE) if args.unit == "sentence" else "wiki_rephrase")
    result: dict[str, Any] = {"load_average_start": round(os.getloadavg()[0], 2), "model": args.model,
                              "unit": args.unit, "recipe": recipe, "words": args.words}
    if args.mrpc:
        result["check_on_mrpc"] = check_on_mrpc(Path(args.mrpc))
    articles = load_articles(args.words)
    with tempfile.TemporaryDirectory(prefix="rephrase-bench-") as name:
        tmp = Path(args.work or name)
        tmp.mkdir(parents=True, exist_ok=True)
        write_inputs(tmp / "inputs.jsonl", articles, args.docs, args.unit)
        seconds = generate(tmp, str(Path(args.model).resolve()), recipe, args.min_similarity, args.temperature)
        runs = [rewrites(tmp)] + [rewrites(Path(p)) for p in args.pool]
        result.update(synth_seconds=round(seconds, 1), dropped=failed_causes(tmp))
        print(f"{min(args.docs, len(articles))} articles -> {len(runs[0])} rewritten (fidelity drops: "
              f"{result['dropped']}) in {seconds:.0f} s", flush=True)
        result["semantic_dedup"] = score(articles, runs, tmp / "sd", args.eps, args.workers, args.min_sentences)
        for i, other in enumerate(args.also):
            print(f"--also {other}:", flush=True)
            result[f"also_{i}"] = score(articles, [rewrites(Path(other))], tmp / f"sd-also{i}", args.eps,
                                        args.workers, args.min_sentences)
    result["load_average_end"] = round(os.getloadavg()[0], 2)
    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_seconds"] = round(sum(u.ru_utime + u.ru_stime for u in usage), 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
