"""Every shell command shown in README.md and docs/*.md (```bash blocks) is run, and exits 0 as the text
says, or is listed in NOT_RUN with the reason and the test that covers it instead. A command added to
the documentation without either fails `test_every_shown_command_is_run_or_says_why_not`.

The fast tier runs the commands of the quick start (a config on your own data), `curate demo-data`, the
classifier training commands and `--help`. The demo's own commands (`curate validate pipeline.yaml`,
`curate run pipeline.yaml` and what reads its output) need the demo's models and a full demo run with
vLLM: `test_the_demo_commands` (slow, vllm) prepares a checkout as `make run` does and runs them there.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = {path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8")
         for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}


def shown_commands() -> list[str]:
    """Each command of a ```bash block, as `shlex.join` of its words (comments and line continuations gone)."""
    out = []
    for text in PAGES.values():
        for body in re.findall(r"```bash\n(.*?)```", text, re.S):
            for line in body.replace("\\\n", " ").splitlines():
                words = shlex.split(re.sub(r"(^|\s)#.*$", "", line))  # as bash: `#` starts a comment only after a space
                if words:
                    out.append(shlex.join(words))
    return out


# quick start (README): run in a directory with data/mine/*.jsonl and the README's own four-line config
QUICK_START = ["curate validate mine.yaml", "curate run mine.yaml", "curate status out/mine"]
# training (docs/classifiers.md): run on generated labelled examples
TRAINING = [
    "curate train quality --positive good.jsonl --negative pool.jsonl --output models/quality.bin",
    "curate train quality --input labelled.jsonl --label-field label --positive-label hq --output models/quality.bin",
    "curate train domain --input labelled.jsonl --label-field domain --output models/domain.bin",
]
ANYWHERE = ["curate run --help", "curate demo-data data/demo --docs 3000", "java -version"]
# the demo (README), in order: run in a checkout prepared as `make run` prepares it (slow, vllm)
DEMO = [
    "curate demo-model .cache/demo-model",
    "curate validate pipeline.yaml",
    "curate run pipeline.yaml",
    "curate run pipeline.yaml --set workers=4 --set stages.shard.max_shard_bytes=1e8",
    "curate run pipeline.yaml --set 'spark.conf[\"spark.executor.memory\"]=2g' --executor spark",
    "curate status out/demo",
    "curate status out/demo --json",
]
NOT_RUN = {
    "make run": "the set-up command itself (installs .venv); test_the_demo_commands runs its steps",
    "make test": "the set-up command itself: this test runs inside it",
    "curate run pipeline.yaml --fresh": "a second full demo run; --fresh is tested in tests/test_runner.py",
    "curate train quality --from-annotations out/demo --min-score 3 --output models/edu.bin":
        "needs a run with an annotate recipe (the demo has none): tests/test_synth_demo_model.py runs it",
    "pip install -e '.[spark]'": "installs packages; the test environment has the spark extra",
    "spark-submit --master yarn --deploy-mode client --archives venv.tar.gz#venv --conf "
    "spark.pyspark.python=./venv/bin/python --conf spark.sql.shuffle.partitions=400 \"$(python -c 'import "
    "pipeline.executors.spark_submit as m; print(m.__file__)')\" run pipeline.yaml --executor spark":
        "needs a YARN cluster: tests/test_spark_cluster.py submits the same script to local[2]",
}


def test_every_shown_command_is_run_or_says_why_not() -> None:
    shown = shown_commands()
    covered = QUICK_START + TRAINING + ANYWHERE + DEMO + list(NOT_RUN)
    words = {tuple(shlex.split(c)) for c in covered}  # compared word by word: quoting may differ
    assert {tuple(shlex.split(c)) for c in shown} == words, "a command shown in README/docs is neither run nor excused"
    assert len(words) == len(covered)
    for command in NOT_RUN:
        if command.startswith("make "):
            targets = re.findall(r"^([A-Za-z][\w-]*):", (REPO / "Makefile").read_text(), re.M)
            assert command.split()[1] in targets


def run(command: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """A shown command as a user types it: `curate ...` is this checkout's CLI."""
    words = shlex.split(command)
    if words[0] == "curate":
        words = [sys.executable, "-m", "pipeline", *words[1:]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(words, cwd=cwd, env=env, text=True, capture_output=True, timeout=timeout)


def check(command: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = run(command, cwd, timeout)
    assert proc.returncode == 0, f"{command} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc


def test_the_quick_start_on_your_own_data(tmp_path: Path) -> None:
    config = re.search(r"## Quick start on your own data.*?```yaml\n(.*?)```", PAGES["README.md"], re.S)
    assert config and "mine.yaml" in PAGES["README.md"]
    (tmp_path / "mine.yaml").write_text(config.group(1))
    (tmp_path / "data" / "mine").mkdir(parents=True)
    words = "the river runs past the old mill and the market square where people meet".split()
    lines = [json.dumps({"text": " ".join(words[i % 7:] + words[:i % 7] + [str(i)])}) for i in range(40)]
    (tmp_path / "data" / "mine" / "a.jsonl").write_text("\n".join(lines) + "\n")
    for command in QUICK_START:
        check(command, tmp_path)
    assert re.search(r"^shard +shard +done", run("curate status out/mine", tmp_path).stdout, re.M)


def test_the_training_commands(tmp_path: Path) -> None:
    rng = random.Random(0)
    good = "historians compared sources and documented careful evidence about the causes".split()
    bad = "buy cheap deal click now free offer best price discount".split()
    rows = [{"text": " ".join(rng.choice(good if i % 2 else bad) for _ in range(25)), "label": "hq" if i % 2 else "lq",
             "domain": ["news", "forum", "code"][i % 3]} for i in range(300)]
    (tmp_path / "labelled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "good.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["label"] == "hq"))
    (tmp_path / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["label"] == "lq"))
    for command in TRAINING:
        check(command, tmp_path)
        assert (tmp_path / command.split("--output ")[1]).is_file()


def test_help_demo_data_and_java(tmp_path: Path) -> None:
    assert "--executor" in check("curate run --help", tmp_path).stdout
    check("curate demo-data data/demo --docs 3000", tmp_path)
    assert (tmp_path / "data" / "demo" / "truth.jsonl").is_file()
    if shutil.which("java") is None and os.environ.get("CI") != "true":
        pytest.skip("no Java here (docs/spark.md: Java 17 for Spark)")
    check("java -version", tmp_path)


def test_the_demo_commands(tmp_path: Path, demo_model_dir: Path) -> None:
    """The demo as `make run` prepares it (corpus, the two classifiers, the tiny tokenizer, the demo
    model), then the README's demo commands in order, each exiting 0. The first, `curate demo-model
    .cache/demo-model`, is the session's `demo_model_dir` (run once there, ~40 s, for this test and
    test_synth_demo_model; or `make run` ran it), linked in."""
    shutil.copy(REPO / "pipeline.yaml", tmp_path / "pipeline.yaml")
    check("curate demo-data data/demo --docs 3000", tmp_path)
    for kind in ("quality", "domain"):  # the Makefile's training steps
        check(f"curate train {kind} --input data/demo/labels/{kind}.jsonl --label-field label "
              f"--output .cache/models/{kind}.bin", tmp_path)
    check("curate tiny-model .cache/tiny-moe", tmp_path)
    assert DEMO[0] == "curate demo-model .cache/demo-model"
    (tmp_path / ".cache" / "demo-model").symlink_to(demo_model_dir)
    spark = shutil.which("java") is not None and _has("pyspark")
    for command in DEMO[1:]:
        if "--executor spark" in command and not spark and os.environ.get("CI") != "true":
            continue  # no JVM or PySpark here: the Spark tests say so (skips outside CI)
        proc = check(command, tmp_path, timeout=3600)
        if command == "curate status out/demo --json":
            assert {s["stage"] for s in json.loads(proc.stdout)["stages"]} >= {"ingest", "synth", "shard"}


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
