"""`code_filter`: StarCoder's decisions (pinned to bigcode's own code), generated/minified/data/encoded files,
licence headers and files; both executors and resume are covered in test_faults_every_stage / test_spark."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import filters.code
from filters.code import (
    license_header_end,
    license_header_ends,
    load_rules,
    load_thresholds,
    python_search,
    re2_superset,
    table_language,
    text_stats,
)
from pipeline.repo_input import read_file_text, walk_files
from stages.code_filter import CodeFilterConfig, Stage
from tests.conftest import REPO, curate, require_shared_data, write_config

FIXTURES = REPO / "tests" / "data" / "code_files" / "shop"
# bigcode-dataset's preprocessing/filtering.py run on these files by bench/code_filter_agreement.py --record
RECORDED = json.loads((REPO / "tests" / "data" / "code_filter_starcoder.json").read_text())["keep"]
EXTRAS_OFF = {"drop_license_files": False, "data_files": False, "generated": False, "minified": False,
              "encoded": False}


def fixture_table() -> pa.Table:
    paths = list(walk_files(str(FIXTURES)))
    texts = [read_file_text(str(FIXTURES / p), 1_000_000) for p in paths]
    assert all(isinstance(t, str) for t in texts)
    return pa.table({"id": paths, "source": ["code"] * len(paths), "text": texts, "path": paths})


def reasons(**settings: object) -> dict[str, str | None]:
    stage = Stage(CodeFilterConfig(name="code_filter", **settings), None)
    out = stage.apply(fixture_table())
    return dict(zip(out.column("id").to_pylist(), out.column("reason").to_pylist(), strict=True))


def test_table_is_starcoders() -> None:
    table = load_thresholds()
    # 303 rows (the 305 of code_meta.csv less 2 blank ones; its 90 "languages" count the blank), 89 languages;
    # (stan, stan) is listed twice: the last row wins, as in bigcode's dict
    assert len(table) == 302 and len({lang for lang, _ in table}) == 89
    py = table[("python", "py")]
    assert (py.include, py.long_line, py.mean_line, py.alphanum, py.alpha) == (True, 1000, 100, 0.25, None)
    js = table[("json", "json")]
    assert js.long_line is None and js.mean_line is None and js.alpha == 0.5  # no line filter for JSON
    assert table[("markdown", "md")].long_line is None
    assert not table[("xslt", "xsl")].xml and table[("xslt", "xsl")].include
    assert table_language("C#") == "c-sharp" and table_language("Emacs Lisp") == "emacs-lisp"


def test_starcoder_decisions_match_bigcode() -> None:
    ours = reasons(**EXTRAS_OFF)
    assert set(ours) == set(RECORDED)
    assert {p: r is None for p, r in ours.items()} == RECORDED
    # each StarCoder rule is exercised by a fixture
    assert {r for r in ours.values() if r} == {
        "code_filter:not_selected", "code_filter:long_lines", "code_filter:mean_line_length",
        "code_filter:alphanumeric", "code_filter:alphabetic", "code_filter:xml_header",
        "code_filter:html_visible_text"}


def test_every_rule_removes_with_its_reason_and_keeps_neighbours() -> None:
    ours = reasons()
    expected = {
        "proto/user_pb2.py": "generated", "api/user.pb.go": "generated", "clients/Reference.cs": "generated",
        "src/orders/migrations/0001_initial.py": "generated",
        "web/vendor/chart.min.js": "minified", "dist/main.bundle.js": "minified",
        "package-lock.json": "data_file", "go.sum": "data_file", "certs/server.pem": "data_file",
        "assets/icon_data.py": "encoded_data", "LICENSE": "license_file",
        "scripts/table.py": "long_lines", "art/banner.py": "alphanumeric", "i18n/shop_de.ts": "xml_header",
        "web/widget.html": "html_visible_text", "tools/fixtures.js": "mean_line_length",
    }
    for path, rule in expected.items():
        assert ours[path] == f"code_filter:{rule}", path
    # hand-written neighbours: a code generator, hex constants, a minifier, a lock-file reader, ...
    for path in ("src/codegen.py", "src/checksum.py", "web/minify.js", "src/lockfile.py", "src/inventory.py",
                 "src/server.go", "web/app.js", "include/ring_buffer.h", "web/index.html", "Dockerfile",
                 "docs/GUIDE.md", "config/settings.yaml"):
        assert ours[path] is None, path


def test_signals_and_licence_header() -> None:
    stage = Stage(CodeFilterConfig(name="code_filter", strip_license_header=True), None)
    table = fixture_table()
    out = stage.apply(table)
    rows = {r["id"]: r for r in out.to_pylist()}
    inv = rows["src/inventory.py"]
    original = dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist(), strict=True))
    end = inv["license_header"]
    assert end is not None and original["src/inventory.py"][:end].rstrip().endswith("copy of this software.")
    assert inv["text"] == original["src/inventory.py"][end:] and inv["text"].startswith('"""Stock levels')
    assert rows["src/server.go"]["license_header"] is None
    assert inv["code_lines"] == len(original["src/inventory.py"].splitlines())  # measured before the strip
    icon = rows["assets/icon_data.py"]
    assert icon["code_encoded_max_run"] > 1024 and 0 < icon["code_encoded_fraction"] <= 1
    assert rows["art/banner.py"]["code_alphanum_fraction"] < 0.25


def test_settings_turn_rules_off_and_out_of_scope_rows_pass() -> None:
    assert reasons(generated=False)["proto/user_pb2.py"] is None
    assert reasons(compat="none")["notes.txt"] is None
    assert reasons(unlisted="keep")["notes.txt"] is None  # (text, txt) is not in the table
    excluded = pa.table({"id": ["s"], "source": ["code"], "text": ["var x = 1;\nConsole.WriteLine(x);\n"],
                         "path": ["build.csx"]})  # (c-sharp, csx) is in the table, not included
    out = Stage(CodeFilterConfig(name="code_filter", unlisted="keep"), None).apply(excluded)
    assert out.column("reason").to_pylist() == ["code_filter:not_selected"]
    prose = pa.table({"id": ["p"], "source": ["web"], "text": ["Plain prose without a path."],
                      "path": pa.array([None], pa.string())})
    out = Stage(CodeFilterConfig(name="code_filter"), None).apply(prose)
    assert out.column("reason").to_pylist() == [None] and out.column("code_lines").null_count == 1
    tagged = Stage(CodeFilterConfig(name="code_filter", tag_only=True), None).apply(fixture_table())
    assert tagged.column("reason").null_count == tagged.num_rows
    assert "code_filter:generated" in tagged.column("code_reason").to_pylist()


def test_curate_run_on_a_repository(tmp_path: Path) -> None:
    write_config(tmp_path / "pipeline.yaml", {
        "name": "p", "output": "out", "workers": 2, "partition_rows": 8,
        "inputs": [{"name": "code", "path": str(FIXTURES), "format": "repo"}],
        "stages": [{"name": "code_filter"}]})
    curate("run", cwd=tmp_path, check=True)
    manifest = json.loads((tmp_path / "out" / "code_filter" / "_manifest.json").read_text())
    by_reason = manifest["counts"]["by_reason"]
    assert by_reason["code_filter:generated"] == 4 and by_reason["code_filter:data_file"] == 3
    assert manifest["counts"]["in"] == 31 == manifest["counts"]["kept"] + manifest["counts"]["removed"]
    removed = pq.read_table(tmp_path / "out" / "code_filter" / "removed")
    assert set(removed.column("path").to_pylist()) >= {"proto/user_pb2.py", "go.sum", "LICENSE"}


@pytest.mark.parametrize("text", ["", "\n", "x", "a\r\nb\u2028c"])
def test_tiny_texts(text: str) -> None:
    out = Stage(CodeFilterConfig(name="code_filter"), None).apply(
        pa.table({"id": ["a"], "source": ["code"], "text": [text], "path": ["a.py"]}))
    assert out.column("code_lines").to_pylist() == [len(text.splitlines())]


# every line break str.splitlines() knows, letters and numerics outside ASCII, NUL, BOM, astral characters
PIECES = [*"ab Z09_ \t\n\n{}();", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85",
          "\u2028", "\u2029", "é", "ß", "中", "٣", "½", "Ⅻ", "𝔘", "😀", "\u00a0", "\x00", "一", "²", "\ufeff", "ǅ"]


@pytest.mark.parametrize("scan_bytes", [filters.code.SCAN_BYTES, 64])
def test_text_stats_are_the_stacks_definitions(monkeypatch: pytest.MonkeyPatch, scan_bytes: int) -> None:
    """The vectorized statistics equal The Stack's per-file Python definitions on random texts: ASCII and
    `\\n`-only texts, texts with every other break, short rows (counted by reduceat) and long ones (by a
    loop), batches split into many row groups (small SCAN_BYTES), sliced arrays."""
    monkeypatch.setattr(filters.code, "SCAN_BYTES", scan_bytes)
    rng = random.Random(5)
    for trial in range(120):
        pool = PIECES if trial % 3 == 0 else PIECES[:16] if trial % 3 == 1 else PIECES[:16] + PIECES[27:]
        size = rng.choice([0, 1, 40, 3000])
        texts = ["".join(rng.choice(pool) for _ in range(rng.randint(0, size))) for _ in range(rng.randint(1, 12))]
        array = pa.array(["skipped", *texts]).slice(1)
        stats = text_stats(array)
        for i, text in enumerate(texts):
            lines = [len(line) for line in text.splitlines()]
            assert stats.chars[i] == len(text) and stats.lines[i] == len(lines)
            assert stats.max_line[i] == max([0, *lines])
            assert stats.mean_line[i] == pytest.approx(sum(lines) / len(lines) if lines else 0)
            assert stats.alpha[i] == sum(c.isalpha() for c in text)
            assert stats.alnum[i] == sum(c.isalpha() or c.isnumeric() for c in text)


def test_license_header_ends_match_the_per_text_regex() -> None:
    """The RE2 opener pre-filter only skips texts the header regex cannot match (BOM, Unicode spaces, long
    leading whitespace, shebang and coding lines included)."""
    rules = load_rules()
    rng = random.Random(9)
    leads = ["", "\ufeff", "\n\n", " \t", "\u2028", "\x0b", "\u3000", " " * 300, "#!/bin/sh\n",
             "# -*- coding: utf-8 -*-\n"]
    blocks = ["# Copyright 2020 A\n# Licensed under MIT\n", "/* license: MIT */\n", "<!-- (c) Copyright -->\n",
              '"""Licence: BSD"""\n', "// nothing here\n", "-- GPL licence\n", "{- license -}", "x = 1\n", ""]
    texts = [rng.choice(leads) + rng.choice(blocks) + rng.choice(["int x;\n", "", "\n"]) for _ in range(400)]
    texts += fixture_table().column("text").to_pylist()
    expected = [-1 if (end := license_header_end(t, rules)) is None else end for t in texts]
    assert license_header_ends(pa.array(texts), rules).tolist() == expected
    assert sum(e > 0 for e in expected) > 100


def test_re2_prefilters_never_miss_a_python_match() -> None:
    """The RE2 supersets the generated/minified rules use to skip texts: Python decides on what they flag,
    and they flag every text Python matches, word boundaries next to non-ASCII letters included."""
    rules = load_rules()
    assert rules.generated_candidates is not None and rules.minified_candidates is not None
    heads = ["// Code generated by protoc-gen-go. DO NOT EDIT.", "# éauto-generated file", "# autogeneratedé",
             "/* @generated */", "plain code", "DO NOT EDITé", "var parcelRequire=1", "éparcelRequireé"]
    for pattern, candidates in ((rules.generated_markers, rules.generated_candidates),
                                (rules.minified_markers, rules.minified_candidates)):
        expected = [pattern.search(h) is not None for h in heads]
        assert python_search(heads, pattern, candidates).tolist() == expected
        assert python_search(heads, pattern, None).tolist() == expected
    assert re2_superset(re.compile(r"\d+ generated")) is None  # Python's Unicode classes: no superset
    assert re2_superset(re.compile(r"generated$")) is None
    assert re2_superset(re.compile(r"(?<=x)y")) is None  # RE2 has no lookbehind


def repository_tables(root: Path, batch: int = 1000) -> list[pa.Table]:
    """Every file `format: repo` reads from each repository under `root`, as the stage's Arrow batches."""
    rows = []
    for repo in sorted(p for p in root.iterdir() if p.is_dir()):
        for rel in walk_files(str(repo)):
            text = read_file_text(str(repo / rel), 1_000_000)
            if isinstance(text, str):
                rows.append({"id": f"{repo.name}/{rel}", "source": "code", "text": text, "path": rel})
    return [pa.Table.from_pylist(rows[i:i + batch]) for i in range(0, len(rows), batch)]


def test_starcoder_agreement_on_real_repositories() -> None:
    """Acceptance: bigcode's StarCoder filter code, run on the files of ten real repositories
    (bench/code_filter_agreement.py --record), and `code_filter` with the StarCoder rules agree on every file."""
    # ten real repositories and bigcode's decisions on their files (README there: sources, commits, how recorded)
    code_repos = require_shared_data("code-repos")
    recorded = json.loads((code_repos / "bigcode_decisions.json").read_text())["keep"]
    stage = Stage(CodeFilterConfig(name="code_filter", **EXTRAS_OFF), None)
    ours: dict[str, bool] = {}
    for table in repository_tables(code_repos / "repos"):
        out = stage.apply(table)
        ours.update(zip(out.column("id").to_pylist(), (r is None for r in out.column("reason").to_pylist()),
                        strict=True))
    assert set(ours) == set(recorded)
    differ = sorted(f"{key}: bigcode {'keep' if recorded[key] else 'drop'}"
                    for key in ours if ours[key] != recorded[key])
    assert not differ, differ[:20]
    assert len(ours) > 1000 and 0.5 < sum(ours.values()) / len(ours) < 0.95  # both decisions well represented
