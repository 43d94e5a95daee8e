"""SIGKILL inside every step of `decontaminate` and `paragraph_dedup`, then resume: the same kept and
removed files, contamination table and shards as an uninterrupted run, finished work not redone.

Kill points come from a reference run's commit trace, aimed per step with `CURATE_FAULT_MATCH`, with
the step helpers of tests/test_faults_every_stage.py (its `classify` names these stages' steps too).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo.corpus import demo_inputs, write_demo_corpus
from pipeline.demo.plants import EVAL_SET
from tests.conftest import curate, write_config
from tests.test_faults_every_stage import REWRITTEN_BY_DESIGN, classify, kill_points, read_trace, steps_of
from tests.warm_cli import WarmCurate

STAGES = ("decontaminate", "paragraph_dedup", "shard")
OURS = re.compile(r"^(decontaminate|paragraph_dedup): ")


def pipeline(demo: Path, workers: int) -> dict[str, Any]:
    eval_sets = [{"name": EVAL_SET, "path": str(demo / "eval" / f"{EVAL_SET}.jsonl")}]
    return {"name": "decon-faults", "output": "out", "workers": workers, "seed": 3, "partition_rows": 60,
            "inputs": demo_inputs(demo)[:1],
            "stages": [{"name": "normalize"},
                       {"name": "decontaminate", "eval_sets": eval_sets, "action": "mask", "min_chars": 1500},
                       {"name": "paragraph_dedup", "max_docs": 3},
                       {"name": "shard", "formats": ["parquet"], "max_shard_bytes": 50_000}]}


def outputs(out: Path) -> dict[str, Any]:
    """Counts, stats and output-file digests of our finished stages, the contamination table, the shards."""
    found: dict[str, Any] = {}
    for stage in STAGES:
        path = out / stage / "_manifest.json"
        if path.exists():
            m = json.loads(path.read_text())
            files = {k: v for k, v in m["files"].items() if k != "shards/README.md"}  # the card names `workers`
            found[stage] = {"counts": m["counts"], "stats": m["stats"], "files": files}
    table = out / "decontaminate" / "contamination.parquet"
    if (out / "decontaminate" / "_manifest.json").exists():
        found["contamination"] = table.read_bytes()
    shards = out / "shards" / "text"
    if shards.is_dir():
        found["shards"] = {str(p.relative_to(shards)): p.read_bytes() for p in sorted(shards.rglob("*")) if p.is_file()}
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("decon_faults")
    write_demo_corpus(root / "demo", 600, seed=4)
    cwd = root / "ref"
    cwd.mkdir()
    write_config(cwd / "pipeline.yaml", pipeline(root / "demo", 1))
    curate("run", cwd=cwd, env={"CURATE_FAULT_TRACE": str(cwd / "trace.txt")}, check=True)
    commits = read_trace(cwd / "trace.txt")
    return {"root": root, "steps": steps_of(commits), "outputs": outputs(cwd / "out")}


@pytest.fixture(scope="module")
def warm(reference: dict[str, Any]) -> Iterator[WarmCurate]:
    """A warm `curate` (tests/warm_cli.py) for the chains' killed runs; the final resumes run cold."""
    server = WarmCurate(reference["root"] / "ref" / "pipeline.yaml")
    try:
        yield server
    finally:
        server.close()


def chain(reference: dict[str, Any], warm: WarmCurate, name: str, which: str, workers: int) -> int:
    """Kill at each point of our stages' steps in turn, each run resuming the last (forked from the warm
    `curate`); then resume to the end (a cold `curate run`)."""
    points = kill_points(reference["steps"], which, only=OURS)
    labels = {p.step.label for p in points}
    for step in ("decontaminate: _work/ files", "decontaminate: partitions", "decontaminate: contamination.parquet",
                 "paragraph_dedup: group-by units/map",
                 "paragraph_dedup: group-by units/reduce", "paragraph_dedup: partitions"):
        assert step in labels or which == "first", (step, sorted(labels))
    cwd = reference["root"] / name
    cwd.mkdir()
    write_config(cwd / "pipeline.yaml", pipeline(reference["root"] / "demo", workers))
    landed: set[str] = set()
    kills = 0
    for i, point in enumerate([*points, None]):
        where = f"{name} run {i + 1}: " + (f"killed in {point}" if point else "final resume")
        trace = cwd / f"trace-{i:03d}.txt"
        env = {"CURATE_FAULT_TRACE": str(trace)}
        if point:
            env.update(CURATE_FAULT_KILL_AT=str(point.k), CURATE_FAULT_MATCH=point.step.regex)
        proc = (warm.run if point else curate)("run", cwd=cwd, env=env, timeout=180)
        commits = read_trace(trace)
        main = commits[0].pid if commits else None
        if point is None:
            assert proc.returncode == 0, f"{where}: exited {proc.returncode}\n{proc.stderr[-2500:]}"
        elif proc.returncode == -9:
            killed = [c for c in commits if c.pid == main][-1]
            assert classify(killed.path) == point.step, f"{where}: killed at {killed.path}"
            kills += 1
        else:  # a pool worker was killed: the run fails and says so
            assert workers > 1 and proc.returncode == 1 and "terminated abruptly" in proc.stderr, \
                f"{where}: exited {proc.returncode}\n{proc.stderr[-2500:]}"
            kills += 1
        if workers == 1:
            killed_step = points[i - 1].step if i else None
            again = [c.path for c in commits if c.path in landed and not REWRITTEN_BY_DESIGN.match(c.path)
                     and classify(c.path) != killed_step]
            assert not again, f"{where}: files that had landed before were written again: {again[:5]}"
            landed |= {c.path for c in (commits[:-1] if point else commits)}
        got = outputs(cwd / "out")
        for key, value in got.items():  # whatever is finished equals the uninterrupted run
            assert value == reference["outputs"][key], f"{where}: {key} differs from the uninterrupted run"
    assert outputs(cwd / "out") == reference["outputs"]
    assert not [p for p in (cwd / "out").rglob("*") if p.name.endswith(".tmp")]
    return kills


def test_reference_acts(reference: dict[str, Any]) -> None:
    ref = reference["outputs"]
    assert ref["decontaminate"]["stats"]["masked_docs"] > 3
    assert ref["decontaminate"]["counts"]["by_reason"].get("decontaminate:too_short", 0) > 0
    assert ref["paragraph_dedup"]["stats"]["units_removed"] > 10


def test_sigkill_in_the_middle_of_every_step_then_resume(reference: dict[str, Any], warm: WarmCurate) -> None:
    assert chain(reference, warm, "middle", "middle", workers=1) >= 9


def test_sigkill_a_worker_at_the_first_commit_of_every_step_then_resume(reference: dict[str, Any],
                                                                         warm: WarmCurate) -> None:
    assert chain(reference, warm, "first", "first", workers=2) >= 9
