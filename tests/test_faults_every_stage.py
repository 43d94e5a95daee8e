"""SIGKILL inside every step of every stage kind, then resume: the shards are byte-identical to an
uninterrupted run, every ingested id is accounted for exactly once, no temporary file is left, and
work finished before the kill is reused, not redone (finished stages are "already done").

One reference run (workers: 1) records every atomic commit (`CURATE_FAULT_TRACE`); each commit's
path says which stage and which step of it made it (start marker, input files, a group-by's map or
reduce, scores, partitions, shards, manifest). Kill points are picked per step from that trace and
aimed with `CURATE_FAULT_MATCH` (only that step's commits count), so they follow the pipeline as it
changes instead of being magic commit numbers.

The kills of a test form one chain, each run resuming the one killed before it (a second per kill
instead of a full run per kill). After every run each finished stage's counts and output files
(sha256, from its manifest) must equal the uninterrupted run's, which pins a divergence to the kill
just before it; the last run resumes to the end and must produce byte-identical shards.

The killed runs are forked from a warm `curate` (tests/warm_cli.py: the CLI and the stage modules imported
once, each run a new process and process group that a SIGKILL ends as it ends a cold run), which halves
what the ~120 runs cost; the reference run and each chain's final resume are cold `curate run`s.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import build_tokenizer, curate, write_config
from tests.warm_cli import WarmCurate

GOOD = ("research explains how the committee analysed evidence and described the method carefully because "
        "historians compared sources and documented results with clear reasoning about causes").split()
BAD = ("buy cheap deal click now free offer best price discount sale win bonus hot limited subscribe "
       "amazing top viral casino coupon").split()
NOUNS = ("river stone garden window market silver orange planet engine harbor forest letter winter summer bridge "
         "castle meadow thunder signal pocket lantern mirror candle island theory method number pattern record "
         "history science travel season village").split()
GERMAN = ("Der Fluss fließt durch die alte Stadt und am Marktplatz vorbei, wo die Bauern jeden Morgen frisches "
          "Gemüse verkaufen und die Kinder auf dem Platz spielen.")

# ----------------------------------------------------------------------------------------------
# corpus, models, config


def _sentence(rng: random.Random, vocab: list[str]) -> str:
    w = [rng.choice(vocab) for _ in range(8)]
    return f"The {w[0]} {w[1]} of the {NOUNS[rng.randrange(len(NOUNS))]} and {w[2]} {w[3]} with {w[4]} {w[5]} to the " \
           f"{w[6]} {w[7]}."


def _document(rng: random.Random, vocab: list[str]) -> str:
    return "\n\n".join(" ".join(_sentence(rng, vocab) for _ in range(3)) for _ in range(3))


def _near_copy(rng: random.Random, text: str) -> str:
    words = text.split(" ")
    i = rng.randrange(len(words))
    words[i] = rng.choice(NOUNS)
    return " ".join(words)


def build_corpus(root: Path, seed: int = 11) -> None:
    """Three inputs (~170 documents) with something for every stage to act on: German text (langid),
    exact and near duplicates, junk (heuristics), e-mails and phone numbers (pii), low-quality text,
    malformed lines, and ids that repeat within and across inputs (ingest's unique-id step)."""
    rng = random.Random(seed)

    def doc(i: int) -> str:
        vocab = BAD + NOUNS if i % 4 == 3 else GOOD + NOUNS
        return _document(rng, vocab)

    web = [doc(i) for i in range(70)]
    for i in range(0, 60, 10):
        web[i + 1] = "  " + web[i].upper().replace(" ", "  ") + " "  # exact duplicate after normalize
        web[i + 2] = _near_copy(rng, web[i])  # near duplicate
    for i in (5, 25, 45):
        web[i] = "\n\n".join([GERMAN] * 4)
    for i in (7, 27):
        web[i] = "buy now " * 3  # far too short: gopher/c4/fineweb remove it
    for i in (8, 38, 58):
        web[i] += f"\n\nWrite to editor{i}@example.org or call +1 415 555 01{i:02d} for the archive."
    for i in (14, 46):  # math_detect: a derivation in TeX
        web[i] += ("\n\nFor every $n \\ge 1$ we have $$\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2},$$ and by induction "
                   "$$\\sum_{k=1}^{n} k^2 = \\frac{n(n+1)(2n+1)}{6}$$ where $\\frac{a}{b} \\le \\sqrt{x}$.")
    (root / "web").mkdir(parents=True)
    lines = [json.dumps({"text": t, "url": f"https://example.org/{i}"}) for i, t in enumerate(web)]
    lines += ['{"text": "broken', json.dumps({"text": 7})]
    (root / "web" / "web.jsonl").write_text("\n".join(lines) + "\n")

    forum = [doc(i) for i in range(60)]
    forum_ids = [f"f-{i}" for i in range(60)]
    for i in (10, 30, 50):
        forum_ids[i] = forum_ids[i - 1]  # the same id twice in one input
    (root / "forum").mkdir()
    with gzip.open(root / "forum" / "forum.jsonl.gz", "wt", encoding="utf-8") as fh:
        for i, t in zip(forum_ids, forum, strict=True):
            fh.write(json.dumps({"id": i, "text": t}) + "\n")

    wiki = [doc(i) for i in range(45)]
    wiki[3] = _near_copy(rng, forum[4])  # a near duplicate across inputs
    wiki_ids = [f"w-{i}" for i in range(45)]
    wiki_ids[20], wiki_ids[40] = "f-5", "f-6"  # ids another input already has
    (root / "wiki").mkdir()
    pq.write_table(pa.table({"id": wiki_ids, "text": wiki}), root / "wiki" / "wiki.parquet")
    from pipeline.demo.repos import write_demo_repos

    write_demo_repos(root / "repos", seed=seed)  # code_filter and secrets: generated/minified/... files, credentials


def train_quality_model(root: Path) -> Path:
    """A real `curate train` model, with unigrams only (19 KB instead of 800 MB of bigram buckets:
    every run hashes the model file for its stage fingerprint)."""
    rng = random.Random(1)
    with open(root / "train.jsonl", "w") as fh:
        for i in range(300):
            label = "hq" if i % 2 == 0 else "lq"
            words = GOOD if label == "hq" else BAD
            fh.write(json.dumps({"text": " ".join(rng.choice(words) for _ in range(60)), "q": label}) + "\n")
    model = root / "quality.bin"
    curate("train", "quality", "--input", str(root / "train.jsonl"), "--label-field", "q", "--output", str(model),
           "--word-ngrams", "1", cwd=root, check=True)
    return model


def pipeline(model: Path, tokenizer: Path, workers: int = 1) -> dict[str, Any]:
    return {
        "name": "faults", "output": "out", "workers": workers, "seed": 5, "partition_rows": 16,
        "inputs": [
            {"name": "web", "path": "corpus/web/*.jsonl", "format": "jsonl", "url_field": "url"},
            {"name": "forum", "path": "corpus/forum/*.jsonl.gz", "format": "jsonl.gz", "id_field": "id"},
            {"name": "wiki", "path": "corpus/wiki/*.parquet", "format": "parquet", "id_field": "id"},
            {"name": "code", "path": "corpus/repos/*", "format": "repo"},
        ],
        "stages": [
            {"name": "code_filter", "sources": ["code"]},
            {"name": "secrets", "sources": ["code"]},  # the prose's e-mails and phones are pii's
            {"name": "normalize", "skip_sources": ["code"]},
            {"name": "math_detect", "skip_sources": ["code"]},
            {"name": "langid", "keep": ["en"], "skip_sources": ["code"]},
            {"name": "exact_dedup"},
            {"name": "heuristics", "skip_sources": ["code"]},
            {"name": "pii"},
            {"name": "quality", "kind": "quality_classifier", "model": str(model), "keep_top": 0.9, "buckets": 3},
            {"name": "domain", "kind": "domain_classifier",
             "rules": [{"source": "web", "domain": "web"}, {"source": "forum", "domain": "forum"},
                       {"source": "wiki", "domain": "wiki"}, {"source": "code", "domain": "code"}]},
            {"name": "near_dedup"},
            {"name": "embed", "max_tokens": 64},
            {"name": "semantic_dedup", "eps": 0.05, "cluster_size": 40},
            {"name": "tokenize", "tokenizer": str(tokenizer)},
            {"name": "mix", "weights": {"web": 0.3, "forum": 0.2, "wiki": 0.4, "code": 0.1}, "budget_tokens": 40000},
            {"name": "shard", "formats": ["parquet", "jsonl.zst", "megatron"], "tokenizer": str(tokenizer),
             "max_shard_bytes": 12000},
        ],
    }


STAGES = ["ingest"] + [s["name"] for s in pipeline(Path("m"), Path("t"))["stages"]]  # = their directories


# ----------------------------------------------------------------------------------------------
# commits -> steps


@dataclass(frozen=True)
class Step:
    """A step of a stage, as seen from the files it commits; `regex` matches exactly those paths."""

    label: str
    stage: str
    regex: str


def classify(path: str) -> Step:
    """The step that commits `path` (relative to the run's directory, `out/...`)."""
    assert path.startswith("out/"), path
    rel = path.removeprefix("out/")
    parts = rel.split("/")
    top, sub = parts[0], (parts[1] if len(parts) > 1 else "")
    if rel == "_run.json":
        return Step("run: _run.json", "", r"^out/_run\.json$")
    if rel == "report.html":  # written by every finished `curate run`
        return Step("run: report.html", "", r"^out/report\.html$")
    if top == "quarantine" or (top == "ingest" and sub in ("_raw", "_files", "data")):
        if sub == "data" or rel.endswith("-duplicate-ids.parquet"):
            return Step("ingest: unique-id apply", "ingest",
                        r"^out/(ingest/data/|quarantine/[^/]*-duplicate-ids\.parquet$)")
        return Step("ingest: read inputs", "ingest",
                    r"^out/(ingest/_raw/|ingest/_files/|quarantine/(?![^/]*-duplicate-ids\.parquet$))")
    if top == "shards":
        if sub in ("text", "megatron"):
            return Step(f"shard: {sub} shards", "shard", rf"^out/shards/{sub}/")
        return Step("shard: manifest and card", "shard", r"^out/shards/[^/]+$")
    stage = re.escape(top)
    if sub in ("_stage.json", "_manifest.json"):
        return Step(f"{top}: {'start' if sub == '_stage.json' else 'finish'}", top,
                    rf"^out/{stage}/{re.escape(sub)}$")
    if sub in ("data", "removed", "_parts"):
        return Step(f"{top}: partitions", top, rf"^out/{stage}/(data|removed|_parts)/")
    if len(parts) == 2:  # a file of the stage's own, e.g. decontaminate's contamination.parquet
        return Step(f"{top}: {sub}", top, rf"^out/{stage}/{re.escape(sub)}$")
    if sub == "_work" and len(parts) == 3 and parts[2] != "_params.json":  # scratch files (near_dedup's components)
        return Step(f"{top}: _work/ files", top, rf"^out/{stage}/_work/(?!_params\.json$)[^/]+$")
    if sub == "_work":  # a group-by: _work[/roundNNN][/<name>]/{_params.json, map/, map_done/, reduce/}
        rest, prefix = parts[2:], ""
        if len(rest) > 2 and re.fullmatch(r"round\d+", rest[0]):  # near_dedup's clustering rounds
            prefix, rest = f"{rest[0]}/", rest[1:]
        if len(rest) > 1 and rest[0] == "components":  # the components primitive's label files
            return Step(f"{top}: {prefix}components", top, rf"^out/{stage}/_work/{prefix}components/")
        named = rest[0] not in ("_params.json", "map", "map_done", "reduce")
        group = f"{prefix}{rest[0]}/" if named else prefix
        phase = rest[1] if named else rest[0]
        if phase == "reduce":
            return Step(f"{top}: group-by {group or 'keys/'}reduce", top, rf"^out/{stage}/_work/{group}reduce/")
        return Step(f"{top}: group-by {group or 'keys/'}map", top,
                    rf"^out/{stage}/_work/{group}(_params\.json$|map/|map_done/)")
    return Step(f"{top}: {sub}", top, rf"^out/{stage}/{re.escape(sub)}/")


@dataclass(frozen=True)
class Commit:
    pid: int
    n: int
    path: str


def read_trace(path: Path) -> list[Commit]:
    if not path.exists():
        return []
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    return [Commit(int(pid), int(n), p) for pid, n, p in rows]


@dataclass(frozen=True)
class Point:
    step: Step
    k: int  # the k-th commit of the step
    of: int  # commits the step makes in the reference run
    index: int  # its position among all the reference run's commits

    def __str__(self) -> str:
        return f"{self.step.label} (its commit {self.k} of {self.of}; reference commit #{self.index + 1})"


def steps_of(commits: list[Commit]) -> dict[Step, list[int]]:
    """Steps in order of their first commit, each with the positions of its commits."""
    steps: dict[Step, list[int]] = {}
    for i, c in enumerate(commits):
        steps.setdefault(classify(c.path), []).append(i)
    return steps


# Steps whose work the executor hands to its process pool (with more than one worker).
POOL_STEP = re.compile(r": (partitions|group-by .+|_scored|read inputs)$")


def kill_points(steps: dict[Step, list[int]], which: str, only: re.Pattern[str] | None = None) -> list[Point]:
    """`first`: each step's first commit; `middle`: the one after its midpoint (for a step of two
    commits, its last); in the order the reference run makes them. `only`: steps whose label matches."""
    points = []
    for step, idx in steps.items():
        if only is not None and not only.search(step.label):
            continue
        k = 1 if which == "first" else len(idx) // 2 + 1
        points.append(Point(step, k, len(idx), idx[k - 1]))
    return sorted(points, key=lambda p: p.index)


def markers_once_per_shape(points: list[Point]) -> list[Point]:
    """`points` less the start and finish kills of a stage whose steps repeat an earlier stage's.

    A stage's start marker and manifest are the runner's (`_prepare_stage_dir`, `_finish`, the same code
    for every stage): what a kill there leaves differs only by the steps the stage made in between (its
    scratch files, its outputs). So they are killed once per stage shape, e.g. for code_filter but not for
    the nine more stages that also only write partitions; each stage's own steps are still all killed."""
    shapes: dict[str, frozenset[str]] = {}
    for p in points:
        if p.step.stage:
            shapes.setdefault(p.step.stage, frozenset())
            shapes[p.step.stage] |= {p.step.label.split(": ", 1)[1]} - {"start", "finish"}
    seen: set[frozenset[str]] = set()
    first_of_shape = set()
    for stage, shape in shapes.items():  # in pipeline order
        if shape not in seen:
            seen.add(shape)
            first_of_shape.add(stage)
    return [p for p in points if p.step.label.split(": ", 1)[1] not in ("start", "finish")
            or p.step.stage in first_of_shape]


# ----------------------------------------------------------------------------------------------
# reference run


@dataclass
class Reference:
    root: Path  # corpus/, models, the reference run's directory ref/
    config: dict[str, Any]
    commits: list[Commit]
    steps: dict[Step, list[int]]
    manifests: dict[str, dict[str, Any]]
    shards: dict[str, bytes]
    seconds: float


def setup_run_dir(ref_root: Path, name: str, cfg: dict[str, Any]) -> Path:
    cwd = ref_root / name
    cwd.mkdir()
    os.symlink(ref_root / "corpus", cwd / "corpus")
    write_config(cwd / "pipeline.yaml", cfg)
    return cwd


# Stats that count per bucket, before duplicates across buckets are merged: the bucket count follows
# `workers` (near_dedup's candidate edges; its distinct candidate pairs do not).
BUCKETED_STATS = {"candidate_edges"}
CARD = "shards/README.md"  # the dataset card names the run's config hash, which `workers` is part of


def manifests(out: Path) -> dict[str, dict[str, Any]]:
    """Finished stages: their counts and the sha256 of every output file (the card's: see shard_files)."""
    found = {}
    for stage in STAGES:
        path = out / stage / "_manifest.json"
        if path.exists():
            m = json.loads(path.read_text())
            found[stage] = {"counts": m["counts"], "files": {k: v for k, v in m["files"].items() if k != CARD},
                            "stats": {k: v for k, v in m["stats"].items() if not k.startswith("seconds")}}
    return found


def shard_files(out: Path) -> dict[str, bytes]:
    """Every file under shards/, the card with its config hash masked."""
    root = out / "shards"
    files = {f"shards/{p.relative_to(root)}": p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}
    if CARD in files:
        files[CARD] = re.sub(rb"config hash: \w+", b"config hash: *", files[CARD])
    return files


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    root = tmp_path_factory.mktemp("faults_every_stage")
    build_corpus(root / "corpus")
    (root / "tokenizer").mkdir()
    cfg = pipeline(train_quality_model(root), build_tokenizer(root / "tokenizer"))
    cwd = setup_run_dir(root, "ref", cfg)
    t0 = time.monotonic()
    curate("run", cwd=cwd, env={"CURATE_FAULT_TRACE": str(cwd / "trace.txt")}, check=True)
    seconds = time.monotonic() - t0
    commits = read_trace(cwd / "trace.txt")
    assert len({c.pid for c in commits}) == 1  # workers: 1 commits everything in one process
    ref = Reference(root, cfg, commits, steps_of(commits), manifests(cwd / "out"), shard_files(cwd / "out"),
                    seconds)
    assert set(ref.manifests) == set(STAGES)
    return ref


@pytest.fixture(scope="module")
def warm(reference: Reference) -> Iterator[WarmCurate]:
    """A warm `curate` for the chains' killed runs, its stage modules those of the reference config."""
    server = WarmCurate(reference.root / "ref" / "pipeline.yaml")
    try:
        yield server
    finally:
        server.close()


def test_every_stage_kind_acts_and_steps_are_told_apart(reference: Reference) -> None:
    """The corpus gives every stage something to do, and each step's regex matches its commits only."""
    m = {s: v["counts"] for s, v in reference.manifests.items()}
    assert m["ingest"]["by_reason"] == {"quarantine:duplicate_id": 5, "quarantine:invalid_json": 1,
                                        "quarantine:non_string_text": 1}
    for stage in ("code_filter", "langid", "exact_dedup", "heuristics", "quality", "near_dedup", "mix"):
        assert m[stage]["removed"] > 0, stage
    assert reference.manifests["secrets"]["stats"]["secrets_docs"] >= 2
    assert reference.manifests["math_detect"]["stats"]["math"] >= 2
    assert m["mix"]["added"] > 0  # some documents repeat (epoch 1)
    pii = reference.manifests["pii"]["stats"]
    assert pii["pii_email"] > 0 and pii["pii_phone"] > 0
    labels = [s.label for s in reference.steps]
    for stage in STAGES:
        assert f"{stage}: start" in labels and f"{stage}: finish" in labels, stage
    for step in ("ingest: read inputs", "ingest: group-by keys/map", "ingest: group-by keys/reduce",
                 "ingest: unique-id apply", "exact_dedup: group-by key0/map", "quality: _scored",
                 "near_dedup: group-by bands/map", "near_dedup: group-by bands/reduce",
                 "near_dedup: group-by join_u/map", "near_dedup: group-by join_v/reduce",
                 "near_dedup: group-by round000/clusters/map", "near_dedup: partitions", "mix: partitions",
                 "embed: partitions", "semantic_dedup: _work/ files", "semantic_dedup: group-by clusters/reduce",
                 "semantic_dedup: partitions",
                 "shard: group-by keys/map", "shard: text shards", "shard: megatron shards",
                 "shard: manifest and card"):
        assert step in labels, (step, labels)
    for c in reference.commits:
        assert [s for s in reference.steps if re.search(s.regex, c.path)] == [classify(c.path)], c.path


# ----------------------------------------------------------------------------------------------
# kill, resume, compare


def ids_in(path: Path) -> list[str]:
    files = sorted(path.glob("*.parquet")) if path.is_dir() else []
    return [i for f in files for i in pq.read_table(f, columns=["id"]).column("id").to_pylist()]


def check_accounting(out: Path, where: str) -> None:
    """Every ingested id once: in the shards (a repeated copy per extra mix epoch) or removed by one stage."""
    ingested = ids_in(out / "ingest" / "data")
    assert len(ingested) == len(set(ingested)), f"{where}: ingest kept an id twice"
    ingest = json.loads((out / "ingest" / "_manifest.json").read_text())["counts"]
    assert pq.read_table(out / "quarantine").num_rows == ingest["removed"], f"{where}: quarantine rows"
    shards = pq.read_table(out / "shards" / "text" / "parquet", columns=["id", "epoch"]).to_pylist()
    copies = [(r["id"], r["epoch"]) for r in shards]
    assert len(copies) == len(set(copies)), f"{where}: a document copy is in the shards twice"
    final = {i for i, _ in copies}
    mix_added = json.loads((out / "mix" / "_manifest.json").read_text())["counts"]["added"]
    assert len(copies) - len(final) == mix_added, f"{where}: repeated copies != the mix's added"
    removed = [i for stage in STAGES[1:] for i in ids_in(out / stage / "removed")]
    assert len(removed) == len(set(removed)), f"{where}: an id removed twice: {Counter(removed).most_common(3)}"
    assert not final & set(removed), f"{where}: ids both in the shards and removed: {sorted(final & set(removed))[:5]}"
    lost = set(ingested) - final - set(removed)
    assert final | set(removed) == set(ingested), f"{where}: ids lost: {sorted(lost)[:5]}"


@dataclass
class ChainResult:
    kills: int = 0
    worker_kills: int = 0
    seconds: float = 0.0


# Written again by every run that gets there: the run record, a stage's start marker, the shards (a
# resumed shard stage rewrites them all from its kept sort buckets) and near_dedup's components and
# stats (union-find over the kept edge files, in memory). Anything else a resumed run writes again
# must be the unit of work (partition, input file, map task) the kill interrupted: in the killed step.
REWRITTEN_BY_DESIGN = re.compile(r"^out/(_run\.json|report\.html|[^/]+/_stage\.json|shards/.+|near_dedup/_work/[^/]+)$")


def owner(path: str) -> str:
    return classify(path).stage


def run_chain(reference: Reference, warm: WarmCurate, name: str, points: list[Point], workers: int = 1) -> ChainResult:
    """Kill at each point in turn, each run resuming the previous one (warm); then resume to the end (cold).
    After every run, each finished stage's counts and output files equal the uninterrupted run's,
    stages finished before a run are reported "already done" and get no new commit in it."""
    cwd = setup_run_dir(reference.root, name, {**reference.config, "workers": workers})
    out = cwd / "out"
    result = ChainResult()
    landed: set[str] = set()  # files whose commit completed in an earlier (killed) run
    t0 = time.monotonic()
    for i, point in enumerate([*points, None]):
        where = f"{name} (workers={workers}), run {i + 1}: " + (f"killed in {point}" if point else "final resume")
        if i:
            where += f", after a kill in {points[i - 1]}"
        finished_before = manifests(out)
        trace = cwd / f"trace-{i:03d}.txt"
        env = {"CURATE_FAULT_TRACE": str(trace)}
        if point:
            env.update(CURATE_FAULT_KILL_AT=str(point.k), CURATE_FAULT_MATCH=point.step.regex)
        run = warm.run if point else curate
        proc = run("run", cwd=cwd, env=env, timeout=120)  # a hang: e.g. workers outliving a killed run
        commits = read_trace(trace)
        main = commits[0].pid if commits else None
        tail = proc.stderr[-2500:]
        if point is None:
            assert proc.returncode == 0, f"{where}: exited {proc.returncode}\n{tail}"
        elif proc.returncode == -9:
            killed = [c for c in commits if c.pid == main][-1]
            assert classify(killed.path) == point.step, f"{where}: killed at {killed.path} instead"
            result.kills += 1
        else:
            assert workers > 1, f"{where}: exited {proc.returncode}, expected -9 (SIGKILL)\n{tail}"
            assert proc.returncode == 1 and "terminated abruptly" in proc.stderr, \
                f"{where}: exited {proc.returncode}, expected a SIGKILL of the run or of a worker\n{tail}"
            assert any(c.pid != main and classify(c.path) == point.step for c in commits), where
            result.worker_kills += 1
        for stage in finished_before:
            assert f"{stage}: already done" in proc.stderr, f"{where}: finished stage {stage} not reused\n{tail}"
            redone = [c.path for c in commits if owner(c.path) == stage]
            assert not redone, f"{where}: finished stage {stage} wrote again: {redone[:3]}"
        for stage, m in manifests(out).items():
            ref = reference.manifests[stage]
            assert m["counts"] == ref["counts"], f"{where}: {stage} counts {m['counts']} != {ref['counts']}"
            stats, ref_stats = ({k: v for k, v in x.items() if workers == 1 or k not in BUCKETED_STATS}
                                for x in (m["stats"], ref["stats"]))
            assert stats == ref_stats, f"{where}: {stage} stats {stats} != {ref_stats}"
            differ = sorted(f for f in set(m["files"]) | set(ref["files"]) if m["files"].get(f) != ref["files"].get(f))
            assert not differ, f"{where}: {stage} output files differ from the uninterrupted run: {differ[:5]}"
        if workers == 1:  # finished work inside the interrupted stage is not redone either
            killed_step = points[i - 1].step if i else None
            again = [c.path for c in commits if c.path in landed and not REWRITTEN_BY_DESIGN.match(c.path)
                     and classify(c.path) != killed_step]
            assert not again, f"{where}: files that had landed before the kill were written again: {again[:5]}"
            landed |= {c.path for c in (commits[:-1] if point else commits)}
    result.seconds = time.monotonic() - t0
    where = f"{name} (workers={workers}) after {len(points)} kills"
    files = shard_files(out)
    differ = sorted(f for f in set(files) | set(reference.shards) if files.get(f) != reference.shards.get(f))
    assert not differ, f"{where}: shards differ from the uninterrupted run: {differ}"
    check_accounting(out, where)
    leftovers = [str(p.relative_to(out)) for p in out.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers, f"{where}: temporary files left behind: {leftovers}"
    assert json.loads((out / "_run.json").read_text())["status"] == "finished"
    return result


def test_sigkill_in_the_middle_of_every_step_then_resume(reference: Reference, warm: WarmCurate) -> None:
    """One worker (everything in the run's own process): SIGKILL at the middle commit of every step of
    every stage (a single-commit step's only one: start markers, manifests, ...; those of the runner once
    per stage shape), each run resuming."""
    points = markers_once_per_shape(kill_points(reference.steps, "middle"))
    result = run_chain(reference, warm, "middle", points)
    assert result.kills == len(points)
    print(f"{len(points)} kills in {result.seconds:.1f}s (reference run {reference.seconds:.1f}s)")


def test_sigkill_a_worker_at_the_first_commit_of_every_pool_step_then_resume(reference: Reference,
                                                                              warm: WarmCurate) -> None:
    """With two workers, at the first commit of each step the process pool works on (input files,
    group-by map and reduce tasks, scores, partitions): the worker making it is SIGKILLed, the pool
    breaks and the run fails (or, for a step of one task, run inline, the run itself is killed)."""
    points = kill_points(reference.steps, "first", only=POOL_STEP)
    result = run_chain(reference, warm, "first", points, workers=2)
    assert result.kills + result.worker_kills == len(points)
    assert result.worker_kills >= len(points) // 2, result  # most did die in a worker
    print(f"{len(points)} kills ({result.worker_kills} of a worker) in {result.seconds:.1f}s")
