"""Every shell, YAML and Python example in README.md is executed or validated: `curate` lines are parsed
by the real argument parser (and the cheap ones run), `make` lines name real targets, YAML blocks pass
config validation, the "your own data" config runs end to end, the notebook example names real methods;
the README links only to files inside the repository."""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline.cli import build_parser, main
from pipeline.config import ConfigError, validate
from pipeline.run_view import RunView
from tests.conftest import REPO

PAGES = {path.relative_to(REPO).as_posix(): path.read_text(encoding="utf-8")
         for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}
README = PAGES["README.md"]
BLOCKS = [(m.group(1), m.group(2)) for text in PAGES.values() for m in re.finditer(r"```(\w*)\n(.*?)```", text, re.S)]


def commands(lang: str = "bash") -> list[str]:
    """Shell lines of the README's blocks of `lang`, comments removed (a comment may follow a command)."""
    out = []
    for block_lang, body in BLOCKS:
        if block_lang == lang:
            for line in body.replace("\\\n", " ").splitlines():  # continuation lines joined
                parts = shlex.split(line, comments=True)
                if parts:
                    out.append(line)
    return out


def test_the_readme_has_examples_of_each_kind() -> None:
    langs = [lang for lang, _ in BLOCKS]
    assert langs.count("bash") >= 3 and langs.count("yaml") >= 3 and "python" in langs
    assert all(lang in ("bash", "yaml", "python", "") for lang in langs), langs


def test_every_curate_line_parses(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    lines = [c for c in commands() if shlex.split(c, comments=True)[0] == "curate"]
    assert len(lines) >= 12
    for line in lines:
        argv = shlex.split(line, comments=True)[1:]
        if "--help" in argv or "--version" in argv:
            with pytest.raises(SystemExit) as exit_:
                parser.parse_args(argv)
            assert exit_.value.code == 0, line
            continue
        args = parser.parse_args(argv)  # exits 2 on an unknown command or option
        assert callable(args.func), line
    capsys.readouterr()


def test_every_set_override_in_the_readme_applies(tmp_path: Path) -> None:
    from pipeline.config import apply_override, parse_override

    base = yaml.safe_load((REPO / "pipeline.yaml").read_text())
    overrides = [a for c in commands() for a in _set_values(shlex.split(c, comments=True))]
    assert 'spark.conf["spark.executor.memory"]=2g' in overrides and "stages.shard.max_shard_bytes=1e8" in overrides
    for text in overrides:
        apply_override(base, *parse_override(text))
    base["stages"] = [s for s in base["stages"] if s["name"] in ("normalize", "shard")]
    base["stages"][-1].pop("tokenizer")
    base["stages"][-1]["formats"] = ["parquet"]
    cfg = validate(base)
    assert cfg.stage("shard").max_shard_bytes == 100_000_000 and cfg.spark.conf["spark.executor.memory"] == "2g"


def _set_values(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]


def test_every_make_line_names_a_target() -> None:
    makefile = (REPO / "Makefile").read_text()
    targets = set(re.findall(r"^([A-Za-z][\w-]*):", makefile, re.M))
    lines = [c for c in commands() if shlex.split(c, comments=True)[0] == "make"]
    assert lines
    for line in lines:
        assert shlex.split(line, comments=True)[1] in targets, line
    for target in re.findall(r"`make (\w+)`", README):
        assert target in targets, target


def yaml_blocks() -> list[Any]:
    return [yaml.safe_load(body) for lang, body in BLOCKS if lang == "yaml"]


def test_every_yaml_block_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    blocks = yaml_blocks()
    assert len(blocks) >= 3
    base = {"output": "out/demo", "inputs": [{"name": "a", "path": "data/*.jsonl"}]}
    for block in blocks:  # partial blocks (a setting and the stage it concerns) on a minimal base
        if isinstance(block, list):  # a list of stages
            block = {"stages": block}
        try:
            validate({**base, **block})
        except ConfigError as err:  # files the example reads (block lists, models): made here, then it must pass
            missing = [re.search(r"file not found: (\S+)", p) for p in err.problems]
            if not all(missing):
                raise
            for m in missing:
                path = tmp_path / m.group(1)  # type: ignore[union-attr]
                if path.suffix:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text("")
                else:
                    path.mkdir(parents=True, exist_ok=True)
            validate({**base, **block})


def test_the_your_own_data_config_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    match = re.search(r"## Quick start on your own data.*?```yaml\n(.*?)```", README, re.S)
    assert match, "README lost its 'Your own data' example"
    body = match.group(1)
    assert len(body.strip().splitlines()) == 4  # "four lines are a complete config"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text(body)
    (tmp_path / "data" / "mine").mkdir(parents=True)
    words = "the river runs past the old mill and the market square where people meet".split()
    texts = [" ".join(words[i % 5:] + words[: i % 5] + [str(i)]) for i in range(30)]
    (tmp_path / "data" / "mine" / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    assert main(["validate", "mine.yaml"]) == 0
    assert main(["run", "mine.yaml"]) == 0
    out = capsys.readouterr().out
    assert "shards: out/mine/shards" in out and "total time" in out
    assert (tmp_path / "out" / "mine" / "shards" / "text" / "parquet").is_dir()
    assert (tmp_path / "out" / "mine" / "report.html").is_file()


def test_the_notebook_example_uses_real_methods() -> None:
    body = next(b for lang, b in BLOCKS if lang == "python" and "open_run" in b)
    tree = ast.parse(body)
    called = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
              and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
              and node.func.value.id == "run"}
    assert {"stats", "docs", "removed", "explain", "sample", "plot_funnel", "plot_scores", "quarantine"} <= called
    for name in called:
        assert callable(getattr(RunView, name, None)), name


@pytest.mark.parametrize("page", sorted(PAGES))
def test_links_stay_inside_the_repository(page: str) -> None:
    text, here = PAGES[page], (REPO / page).parent
    if page == "README.md":  # the only `../` is an example of a rejected path (docs/ may name ../shared/data)
        assert "../" not in re.sub(r"\(got \.\./x\)", "", text)
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert not target.startswith(("http://", "https://")) and (here / target).resolve().is_relative_to(REPO), target
        assert (here / target).exists(), target
    for path in re.findall(r"`((?:docs|examples|bench|synth/recipes|stages|pipeline)/[\w./-]+)`", text):
        assert (REPO / path).exists(), path


def test_the_readme_maps_every_docs_page_and_stays_short() -> None:
    mapped = set(re.findall(r"\]\((docs/[\w.-]+\.md)\)", README))
    assert mapped == {p for p in PAGES if p.startswith("docs/")}
    assert len(README.splitlines()) <= 250  # read in ten minutes; details go to docs/
