"""The example notebook runs top to bottom against a fresh run of the demo corpus."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.conftest import DEMO_INPUTS, REPO, curate, write_config


def test_example_notebook_executes(demo_root: Path, demo_quality_model: Path, tmp_path: Path) -> None:
    cfg = {"name": "notebook", "output": str(tmp_path / "out"), "workers": 2, "inputs": DEMO_INPUTS,
           "stages": [{"name": "normalize"}, {"name": "langid", "keep": ["en", "zh"], "skip_sources": ["code"]},
                      {"name": "exact_dedup"}, {"name": "heuristics", "skip_sources": ["code"]},
                      {"name": "quality", "kind": "quality_classifier", "model": str(demo_quality_model),
                       "threshold": 0.5},
                      {"name": "shard"}]}
    write_config(tmp_path / "p.yaml", cfg)
    curate("run", str(tmp_path / "p.yaml"), cwd=demo_root, check=True)
    notebook = nbformat.read(REPO / "examples" / "inspect_run.ipynb", as_version=4)
    os.environ["LING_CURATE_RUN"] = str(tmp_path / "out")
    try:
        NotebookClient(notebook, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO)}}).execute()
    finally:
        del os.environ["LING_CURATE_RUN"]
    errors = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    images = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the funnel and at least one score histogram
    assert (tmp_path / "out" / "report.html").exists()
