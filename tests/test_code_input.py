"""Code input: `format: repo` directory trees and The Stack-style records with `path_field`/`repo_field`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq

from filters.code_language import detect_language, extension_table, file_extension
from tests.conftest import curate, write_config


def test_language_table_is_the_stack_v1() -> None:
    table = extension_table()
    assert len(table) == 870  # The Stack v1: 870 extensions
    assert len(set(table.values())) == 370
    assert detect_language("src/main.py") == "Python"
    assert detect_language("include/x.h") == "C" and detect_language("x.C") == "C++"
    assert detect_language("a/CMakeLists.txt") == "CMake" and detect_language("foo.cmake.in") == "CMake"
    assert detect_language("Dockerfile") == "Dockerfile" and detect_language("Dockerfile.dev") == "Dockerfile"
    assert detect_language("GNUmakefile") == "Makefile" and detect_language("Gemfile") == "Ruby"
    assert detect_language("SCRIPT.PY") == "Python"
    assert detect_language("archive.tar.gz") is None and detect_language("noext") is None
    assert file_extension("dir.v2/file.min.js") == "js" and file_extension("Makefile") == ""


def make_repo(root: Path) -> None:
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def main():\n    return 1\n")
    (root / "src" / "util.go").write_text("package util\n\nfunc Add(a, b int) int { return a + b }\n")
    (root / "Dockerfile").write_text("FROM python:3.12\nRUN pip install x\n")
    (root / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    (root / "legacy.c").write_bytes("/* caf\xe9 */\nint x;\n".encode("latin-1"))
    (root / "big.sql").write_text("SELECT 1;\n" * 200)
    (root / "blank.txt").write_text("  \n\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    os.symlink(root / "src" / "app.py", root / "link.py")


def test_repo_tree_ingest(tmp_path: Path) -> None:
    make_repo(tmp_path / "repos" / "alpha")
    (tmp_path / "repos" / "beta").mkdir()
    (tmp_path / "repos" / "beta" / "lib.rs").write_text("pub fn f() -> u8 { 1 }\n")
    (tmp_path / "repos" / "notes.txt").write_text("a file beside the repositories is not a repository\n")
    write_config(tmp_path / "pipeline.yaml", {
        "name": "p", "output": "out", "workers": 1,
        "inputs": [{"name": "code", "path": "repos/*", "format": "repo", "max_file_bytes": 1000}],
        "stages": []})
    validated = curate("validate", cwd=tmp_path)  # its input check samples a tree's files, not the directory
    assert validated.returncode == 0, validated.stderr
    curate("run", cwd=tmp_path, check=True)
    table = pq.read_table(tmp_path / "out" / "ingest" / "data").sort_by("path")
    rows = {(r["repo"], r["path"]): r for r in table.to_pylist()}
    assert set(rows) == {("alpha", "Dockerfile"), ("alpha", "src/app.py"), ("alpha", "src/util.go"),
                         ("beta", "lib.rs")}
    assert rows[("alpha", "src/app.py")]["language"] == "Python"
    assert rows[("alpha", "src/util.go")]["language"] == "Go"
    assert rows[("alpha", "Dockerfile")]["language"] == "Dockerfile"
    assert rows[("beta", "lib.rs")]["language"] == "Rust"
    assert rows[("alpha", "src/app.py")]["text"] == "def main():\n    return 1\n"
    assert json.loads(rows[("alpha", "src/app.py")]["meta"])["file"] == "alpha/src/app.py"
    manifest = json.loads((tmp_path / "out" / "ingest" / "_manifest.json").read_text())
    assert manifest["stats"]["skipped"] == {"binary": 1, "empty": 1, "non_utf8": 1, "symlink": 1, "too_large": 1}
    assert manifest["counts"]["in"] == manifest["counts"]["kept"] == 4
    assert not list((tmp_path / "out" / "quarantine").glob("*.parquet"))
    ids = sorted(table.column("id").to_pylist())
    curate("run", "--fresh", cwd=tmp_path, check=True)
    assert sorted(pq.read_table(tmp_path / "out" / "ingest" / "data").column("id").to_pylist()) == ids


def test_repo_glob_without_directories_is_a_config_error(tmp_path: Path) -> None:
    write_config(tmp_path / "pipeline.yaml", {
        "name": "p", "output": "out", "inputs": [{"name": "code", "path": "nothing/*", "format": "repo"}]})
    result = curate("run", cwd=tmp_path)
    assert result.returncode == 2 and "no directories match" in result.stderr + result.stdout


def test_stack_style_records_and_mixed_inputs(tmp_path: Path) -> None:
    records = [{"content": "import os\nprint(os.sep)\n", "path": "tools/run.py", "repo": "acme/tools"},
               {"content": "#include <stdio.h>\nint main(void) { return 0; }\n", "path": "main.c",
                "repo": "acme/c", "stars": 5},
               {"content": "x = 1\n", "path": 7, "repo": "acme/bad"}]
    (tmp_path / "stack.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (tmp_path / "web.jsonl").write_text(json.dumps({"text": "Plain prose, no path."}) + "\n")
    write_config(tmp_path / "pipeline.yaml", {
        "name": "p", "output": "out", "workers": 1,
        "inputs": [{"name": "stack", "path": "stack.jsonl", "text_field": "content", "path_field": "path",
                    "repo_field": "repo"},
                   {"name": "web", "path": "web.jsonl"}],
        "stages": []})
    curate("run", cwd=tmp_path, check=True)
    table = pq.read_table(tmp_path / "out" / "ingest" / "data")
    rows = {r["source"] + ":" + str(r["path"]): r for r in table.to_pylist()}
    assert rows["stack:tools/run.py"]["language"] == "Python" and rows["stack:tools/run.py"]["repo"] == "acme/tools"
    assert rows["stack:main.c"]["language"] == "C"
    assert json.loads(rows["stack:main.c"]["meta"])["fields"] == {"stars": 5}
    assert rows["web:None"]["language"] is None and rows["web:None"]["repo"] is None
    quarantine = pq.read_table(tmp_path / "out" / "quarantine").to_pylist()
    assert [(q["field"], q["line"]) for q in quarantine] == [("path", 3)]
    assert "path must be a string" in quarantine[0]["error"]


def test_repo_field_needs_path_field(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "x"}) + "\n")
    write_config(tmp_path / "pipeline.yaml", {
        "name": "p", "output": "out", "inputs": [{"name": "a", "path": "a.jsonl", "repo_field": "repo"}]})
    result = curate("validate", cwd=tmp_path)
    assert result.returncode == 2 and "repo_field needs path_field" in result.stderr + result.stdout
