"""The demo's repository trees (`curate demo-data` writes them): every planted file goes with its reason,
every planted credential is redacted, hand-written files are kept byte for byte (normalize skips them)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.demo.repos import demo_repo_input, write_demo_repos
from tests.conftest import curate, write_config


def test_demo_repos_through_code_filter_and_secrets(tmp_path: Path) -> None:
    truth = write_demo_repos(tmp_path / "demo" / "repos", seed=3)
    assert write_demo_repos(tmp_path / "again" / "repos", seed=3) == truth
    assert (tmp_path / "again" / "repos" / "storefront" / "dist" / "app.min.js").read_bytes() == (
        tmp_path / "demo" / "repos" / "storefront" / "dist" / "app.min.js").read_bytes()
    write_config(tmp_path / "pipeline.yaml", {
        "name": "p", "output": "out", "workers": 2, "partition_rows": 5,
        "inputs": [demo_repo_input(tmp_path / "demo")],
        "stages": [{"name": "code_filter", "sources": ["repos"]}, {"name": "secrets"},
                   {"name": "normalize", "skip_sources": ["repos"]}]})
    curate("run", cwd=tmp_path, check=True)
    removed = pq.read_table(tmp_path / "out" / "code_filter" / "removed").to_pylist()
    got = {f"{r['repo']}/{r['path']}": r["reason"] for r in removed}
    assert got == truth["removed"]
    rows = pq.read_table(tmp_path / "out" / "normalize" / "data").to_pylist()
    kept = {f"{r['repo']}/{r['path']}": r["text"] for r in rows}
    assert sorted(kept) == truth["kept"]
    for value in truth["planted"].values():
        assert not any(value in text for text in kept.values()), value
    stats = json.loads((tmp_path / "out" / "secrets" / "_manifest.json").read_text())["stats"]
    assert {k: stats.get(f"secrets_{k}") for k in truth["planted"]} == dict.fromkeys(truth["planted"], 1)
    for rel, text in kept.items():
        original = (tmp_path / "demo" / "repos" / rel).read_text()
        if rel not in truth["secrets"]:
            assert text == original, rel  # untouched, indentation included
        if rel.endswith(".py"):
            ast.parse(text)
    curate("report", "out", cwd=tmp_path, check=True)
    page = (tmp_path / "out" / "report.html").read_text()
    for reason in truth["removed"].values():  # the report's code funnel names every planted removal
        assert f'data-code-stage="code_filter" data-reason="{reason}">1<' in page, reason
